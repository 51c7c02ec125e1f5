"""The PayPal-like platform, fed message by message (no simulator): orders in the merchant's
currency with the settle amount paysys computed, buyer approval in USD, webhooks, void, query,
refunds converted down at the order's rate, faults."""

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.faults import ChannelFault
from mockbanks.fees import Fee
from mockbanks.paypal import APPROVE_URL, FEE_ACCOUNT, PayPal
from mockbanks.paypal_records import refund_settle_of, settle_of, sign_string, signature
from mockbanks.paypal_webhooks import WEBHOOK_SCHEDULE_MS

T0 = int(datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp()) * 1000
KEY = "key-paypal"
RATE = 138_900          # 1 CNY = 0.1389 USD
M = 60_000
FEE = Fee(rate_bp=340, fixed=30)


def make_pp(dup: float = 0.0, faults=(), fee: Fee = FEE) -> PayPal:
    pp = PayPal(name="paypal", rng=random.Random(5), fee_rule=fee,
                api_key=KEY, duplicate_notify_probability=dup, faults=faults)
    pp.open_buyer("U1", 100_000)        # $1000.00
    pp.open_buyer("U2", 100)            # $1.00
    return pp


def call(pp: PayPal, body: dict, now: int = T0, src: str = "paysys") -> tuple[dict, list]:
    effects = pp.handle(src, body, now)
    assert effects[0][0] == "reply", effects
    return effects[0][1], effects[1:]


def create_body(order: str = "P1", amount: int = 10_000, **over) -> dict:
    body = {"type": "pp.order.create", "req_id": f"{order}.p1", "out_trade_no": order,
            "amount": amount, "currency": "CNY",
            "settle_amount": settle_of(amount, "CNY", "USD", RATE), "settle_currency": "USD",
            "fx_rate_ppm": RATE, "notify_url": "paysys", "time_expire": T0 + 20 * M}
    return {**body, **over}


def approve(pp: PayPal, reply: dict, user: str = "U1", now: int = T0 + 1000):
    token = reply["approve_url"].removeprefix(APPROVE_URL)
    return call(pp, {"type": "pp.user.approve", "token": token, "user_id": user}, now,
                src=f"user:{user}")


def sends(effects: list) -> list[dict]:
    return [e[2] for e in effects if e[0] == "send"]


def test_create_answers_an_approval_link_and_echoes_the_request_id():
    pp = make_pp()
    reply, _ = call(pp, create_body())
    assert reply["type"] == "pp.order.create.reply" and reply["req_id"] == "P1.p1"
    assert reply["status_code"] == 201 and reply["status"] == "CREATED"
    assert reply["approve_url"].startswith(APPROVE_URL) and reply["settle_amount"] == 1389
    again, _ = call(pp, create_body())
    assert again["id"] == reply["id"]
    other, _ = call(pp, create_body(amount=20_000))
    assert (other["status_code"], other["name"]) == (422, "DUPLICATE_INVOICE_ID")


@pytest.mark.parametrize("over, name, field", [
    ({"settle_amount": 1390}, "SETTLE_AMOUNT_MISMATCH", "settle_amount"),
    ({"settle_currency": "EUR"}, "CURRENCY_NOT_SUPPORTED", "settle_currency"),
    ({"settle_amount": None}, "INVALID_REQUEST", "settle_amount"),
    ({"fx_rate_ppm": 0}, "INVALID_REQUEST", "fx_rate_ppm"),
    ({"currency": "XYZ"}, "INVALID_REQUEST", "currency"),
    ({"time_expire": "soon"}, "INVALID_REQUEST", "time_expire"),
])
def test_create_refuses_what_breaks_the_contract_naming_the_field(over, name, field):
    reply, effects = call(make_pp(), create_body(**over))
    assert reply["name"] == name and reply["field"] == field and field in reply["message"]
    assert effects == []


def test_approval_captures_in_usd_and_records_the_order_currency():
    pp = make_pp()
    reply, _ = call(pp, create_body(amount=10_000))
    answer, effects = approve(pp, reply)
    assert answer["result"] == "COMPLETED" and answer["out_trade_no"] == "P1"
    fee = 51    # the fee rule on 10000 fen: 340 + 30 = 370 fen = 51.393 US cents -> 51
    assert pp.truth.balance("buyer:U1", "USD") == 100_000 - 1389
    assert pp.truth.balance("platform", "USD") == 1389 - fee
    assert pp.truth.balance(FEE_ACCOUNT, "USD") == fee
    (txn,) = pp.truth.txns()
    assert (txn["amount"], txn["currency"], txn["fee"], txn["kind"]) == (10_000, "CNY", 370, "pay")
    events = [e for e in effects if e[0] == "event" and e[1] == "pp.txn"]
    assert events[0][3]["settle_amount"] == 1389 and events[0][3]["settle_currency"] == "USD"
    (hook,) = sends(effects)
    assert hook["event_type"] == "PAYMENT.CAPTURE.COMPLETED" and hook["amount"] == 10_000
    assert hook["settle_amount"] == 1389 and hook["capture_id"] == answer["capture_id"]
    assert hook["signature"] == signature(hook, KEY)


def test_the_webhook_signature_is_hmac_sha256_over_the_sorted_fields():
    assert sign_string({"b": 2, "a": "x", "signature": "s", "c": None, "d": "", "e": True}) == \
        "a=x&b=2&e=true"
    assert signature({"a": 1}, KEY) != signature({"a": 1}, "other")
    assert len(signature({"a": 1}, KEY)) == 64


def test_a_buyer_who_cannot_pay_is_refused_and_nothing_moves():
    pp = make_pp()
    reply, _ = call(pp, create_body())
    answer, effects = approve(pp, reply, user="U2")
    assert answer["result"] == "INSUFFICIENT_FUNDS" and effects == []
    assert pp.truth.txns() == [] and pp.truth.balance("buyer:U2", "USD") == 100
    again, _ = approve(pp, reply, user="U1")
    assert again["result"] == "COMPLETED"
    third, _ = approve(pp, reply, user="U1")
    assert third["result"] == "ORDER_ALREADY_CAPTURED"


def test_webhooks_are_retried_on_the_schedule_until_a_200():
    pp = make_pp()
    reply, _ = call(pp, create_body())
    _, effects = approve(pp, reply, now=T0)
    assert len(sends(effects)) == 1
    assert pp.next_deadline() == T0 + WEBHOOK_SCHEDULE_MS[0]
    second = pp.on_timer(T0 + WEBHOOK_SCHEDULE_MS[0])
    assert len(sends(second)) == 1 and sends(second)[0]["event_id"].endswith("-2")
    assert pp.handle("paysys", {"type": "pp.webhook.reply", "status_code": 401,
                                "capture_id": sends(second)[0]["capture_id"]}, T0) == []
    assert pp.next_deadline() is not None                  # not a 200: goes on
    pp.handle("paysys", {"type": "pp.webhook.reply", "status_code": 200,
                         "capture_id": sends(second)[0]["capture_id"]}, T0)
    assert pp.next_deadline() is None


def test_an_unacknowledged_series_gives_up_after_the_schedule():
    pp = make_pp()
    reply, _ = call(pp, create_body())
    approve(pp, reply, now=T0)
    attempts = 1
    while (due := pp.next_deadline()) is not None:
        attempts += len(sends(pp.on_timer(due)))
    assert attempts == len(WEBHOOK_SCHEDULE_MS) + 1


def test_duplicate_probability_sends_each_attempt_twice():
    pp = make_pp(dup=1.0)
    reply, _ = call(pp, create_body())
    _, effects = approve(pp, reply)
    assert len(sends(effects)) == 2


def test_an_order_not_approved_in_time_is_voided():
    pp = make_pp()
    reply, _ = call(pp, create_body())
    answer, _ = approve(pp, reply, now=T0 + 21 * M)
    assert answer["result"] == "ORDER_NOT_APPROVABLE"
    got, _ = call(pp, {"type": "pp.order.get", "req_id": "P1.p1", "out_trade_no": "P1"},
                  T0 + 21 * M)
    assert got["status"] == "VOIDED"


def test_void_query_and_a_void_of_a_number_never_seen():
    pp = make_pp()
    missing, _ = call(pp, {"type": "pp.order.get", "req_id": "P9.p1", "out_trade_no": "P9"})
    assert (missing["status_code"], missing["name"]) == (404, "RESOURCE_NOT_FOUND")
    voided, _ = call(pp, {"type": "pp.order.void", "req_id": "P9.p1", "out_trade_no": "P9"})
    assert voided["status"] == "VOIDED"
    late, _ = call(pp, create_body("P9"))
    assert late["name"] == "DUPLICATE_INVOICE_ID"          # nobody can pay it later
    reply, _ = call(pp, create_body("P1"))
    got, _ = call(pp, {"type": "pp.order.get", "req_id": "P1.p1", "out_trade_no": "P1"})
    assert got["status"] == "CREATED" and got["settle_amount"] == 1389
    answer, _ = approve(pp, reply)
    got, _ = call(pp, {"type": "pp.order.get", "req_id": "P1.p1", "out_trade_no": "P1"})
    assert got["status"] == "COMPLETED" and got["capture_id"] == answer["capture_id"]
    assert got["amount"] == 10_000 and got["currency"] == "CNY"
    refused, _ = call(pp, {"type": "pp.order.void", "req_id": "P1.p1", "out_trade_no": "P1"})
    assert refused["name"] == "ORDER_ALREADY_CAPTURED" and refused["capture_id"]


def refund(pp: PayPal, no: str, amount: int, order: str = "P1") -> dict:
    reply, _ = call(pp, {"type": "pp.capture.refund", "req_id": f"{no}.r1", "out_trade_no": order,
                         "out_refund_no": no, "amount": amount, "currency": "CNY"})
    return reply


def test_refunds_convert_down_at_the_orders_rate_and_never_exceed_the_capture():
    pp = make_pp(fee=Fee())
    reply, _ = call(pp, create_body(amount=100))            # 13.89 cents -> 14 captured
    approve(pp, reply)
    assert refund(pp, "R0", 1, order="P0")["name"] == "RESOURCE_NOT_FOUND"
    parts = [refund(pp, no, 33) for no in ("R1", "R2", "R3")] + [refund(pp, "R4", 1)]
    assert [p["settle_amount"] for p in parts] == [4, 4, 4, 0]   # 4.58 cents -> 4 each
    assert all(p["status"] == "COMPLETED" for p in parts)
    assert refund(pp, "R5", 1)["name"] == "REFUND_AMOUNT_EXCEEDED"
    assert refund(pp, "R1", 33)["refund_id"] == parts[0]["refund_id"]   # stored answer
    assert pp.truth.balance("buyer:U1", "USD") == 100_000 - 14 + 12
    assert sum(t["amount"] for t in pp.truth.txns() if t["kind"] == "refund") == 100


def test_a_refund_the_platform_account_cannot_pay_is_refused():
    pp = make_pp()                                          # its fee leaves 9 of the 14 cents
    reply, _ = call(pp, create_body(amount=100))
    approve(pp, reply)
    assert [refund(pp, no, 33).get("name") for no in ("R1", "R2", "R3")] == [
        None, None, "INSUFFICIENT_FUNDS"]
    assert pp.truth.balance("platform", "USD") == 1


def test_a_refund_in_another_currency_than_the_orders_is_invalid():
    pp = make_pp()
    reply, _ = call(pp, create_body())
    approve(pp, reply)
    bad, _ = call(pp, {"type": "pp.capture.refund", "req_id": "R1.r1", "out_trade_no": "P1",
                       "out_refund_no": "R1", "amount": 10, "currency": "USD"})
    assert bad["field"] == "currency"


def window(kind: str, **params) -> ChannelFault:
    return ChannelFault(1, kind, T0, T0 + 10 * M, 1.0, params)


def test_maintenance_refuses_everything_and_does_nothing():
    pp = make_pp(faults=[window("maintenance")])
    reply, effects = call(pp, create_body())
    assert (reply["status_code"], reply["name"]) == (503, "SERVICE_UNAVAILABLE")
    assert reply["req_id"] == "P1.p1" and any(e[1] == "fault.fired" for e in effects)
    reply, _ = call(pp, create_body(), now=T0 + 11 * M)
    answer, _ = approve(pp, reply, now=T0 + 1000)
    assert answer["result"] == "SERVICE_UNAVAILABLE" and pp.truth.txns() == []


def test_rate_limit_refuses_paysys_beyond_max_per_s():
    pp = make_pp(faults=[window("rate_limit", max_per_s=2)])
    names = [call(pp, create_body(f"P{i}"))[0]["name"] for i in range(4)]
    assert names == [None, None, "RATE_LIMIT_REACHED", "RATE_LIMIT_REACHED"]


def test_notify_lost_sends_no_webhook_but_the_query_tells():
    pp = make_pp(faults=[window("notify_lost")])
    reply, _ = call(pp, create_body())
    _, effects = approve(pp, reply)
    assert sends(effects) == [] and pp.next_deadline() is None
    got, _ = call(pp, {"type": "pp.order.get", "req_id": "P1.p1", "out_trade_no": "P1"})
    assert got["status"] == "COMPLETED"


def test_unsupported_fault_kinds_are_refused():
    with pytest.raises(ValueError, match="double_charge"):
        make_pp(faults=[window("double_charge")])


@settings(max_examples=60, deadline=None)
@given(amount=st.integers(1, 10**9), rate=st.integers(1, 10**9),
       parts=st.lists(st.integers(1, 10**8), min_size=1, max_size=6))
def test_money_is_conserved_and_refunds_stay_within_the_capture(amount, rate, parts):
    pp = PayPal(name="paypal", rng=random.Random(1), fee_rule=Fee(rate_bp=340, fixed=30),
                api_key=KEY)
    settle = settle_of(amount, "CNY", "USD", rate)
    pp.open_buyer("U1", settle)
    body = create_body(amount=amount, fx_rate_ppm=rate, settle_amount=settle)
    reply, _ = call(pp, body)
    assert approve(pp, reply)[0]["result"] == "COMPLETED"
    given_back = 0
    for i, part in enumerate(parts):
        answer = refund(pp, f"R{i}", part)
        if answer["name"] is None:
            given_back += answer["settle_amount"]
            assert answer["settle_amount"] == refund_settle_of(part, "CNY", "USD", rate)
    assert given_back <= settle
    assert pp.truth.total("USD") == pp.truth.initial_total("USD")
    assert pp.truth.balance("platform", "USD") >= 0
