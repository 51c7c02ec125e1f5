"""The Alipay-like platform, fed message by message (no simulator): its protocol, its RSA2
signature, the notification schedule (8 tries in 25 h) and acknowledgement string, refunds."""

import base64
import random
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.alipay import Alipay
from mockbanks.alipay_notify import NOTIFY_TRIES
from mockbanks.alipay_records import _private_key, sign_string
from mockbanks.faults import ChannelFault
from mockbanks.fees import Fee
from paysys.channels.alipay import rsa2_verify
from paysys.recon.formats import parse

T0 = int(datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp()) * 1000
S, M, H = 1000, 60_000, 3_600_000


def make(dup: float = 0.0, platform_balance: int = 0, faults=(), **kw) -> Alipay:
    ali = Alipay(name="alipay", rng=random.Random(3), fee_rule=Fee(rate_bp=60),
                 duplicate_notify_probability=dup, platform_balance=platform_balance,
                 faults=faults, **kw)
    ali.open_wallet("U1", 100_000)
    ali.open_wallet("U2", 500)
    return ali


def call(ali: Alipay, body: dict, now: int = T0, src: str = "paysys") -> tuple[dict, list]:
    effects = ali.handle(src, body, now)
    assert effects[0][0] == "reply" and effects[0][2] == 0, effects
    assert effects[0][1]["type"] == f"{body['type']}.reply"
    return effects[0][1], effects[1:]


def precreate(ali: Alipay, no: str = "P1", amount: int = 10_000,
              expire: int | None = T0 + 30 * M, now: int = T0) -> dict:
    return call(ali, {"type": "alipay.trade.precreate", "req_id": f"{no}.p1", "out_trade_no": no,
                      "total_amount": amount, "currency": "CNY", "notify_url": "paysys",
                      "time_expire": expire, "subject": "s"}, now)[0]


def user_pay(ali: Alipay, qr: str, user: str = "U1", now: int = T0, **extra) -> tuple[dict, list]:
    return call(ali, {"type": "ali.user.pay", "qr_code": qr, "user_id": user, **extra}, now,
                src=f"user:{user}")


def paid(ali: Alipay, no: str = "P1", amount: int = 10_000, user: str = "U1") -> list:
    reply, effects = user_pay(ali, precreate(ali, no, amount)["qr_code"], user)
    assert reply["result"] == "SUCCESS", reply
    return effects


def query(ali: Alipay, no: str = "P1", now: int = T0) -> dict:
    return call(ali, {"type": "alipay.trade.query", "req_id": f"{no}.p1", "out_trade_no": no},
                now)[0]


def refund(ali: Alipay, amount: int, request_no: str = "R1", no: str = "P1", now: int = T0,
           **extra) -> dict:
    return call(ali, {"type": "alipay.trade.refund", "req_id": f"{request_no}.r1",
                      "out_trade_no": no, "out_request_no": request_no, "refund_amount": amount,
                      **extra}, now)[0]


def sends(effects: list) -> list[dict]:
    return [e[2] for e in effects if e[0] == "send"]


def bal(ali: Alipay, account: str) -> int:
    return ali.truth.balance(account, "CNY")


# -- precreate and payment ----------------------------------------------------------------------

def test_precreate_answers_a_qr_code_and_echoes_the_request_id() -> None:
    ali = make()
    reply = precreate(ali)
    assert reply["code"] == "10000" and reply["req_id"] == "P1.p1"
    assert reply["qr_code"].startswith("https://qr.alipay.com/")
    assert precreate(ali) == reply                      # same content: same answer
    other = precreate(ali, amount=9_999)
    assert (other["code"], other["sub_code"]) == ("40004", "ACQ.CONTEXT_INCONSISTENT")


def test_precreate_refuses_a_bad_field_by_name() -> None:
    ali = make()
    reply, _ = call(ali, {"type": "alipay.trade.precreate", "out_trade_no": "P1",
                          "total_amount": 0, "notify_url": "paysys"})
    assert (reply["code"], reply["field"]) == ("40002", "total_amount")
    reply, _ = call(ali, {"type": "alipay.trade.precreate", "out_trade_no": "P1",
                          "total_amount": 5, "notify_url": "paysys", "currency": "USD"})
    assert reply["field"] == "currency" and "CNY" in reply["sub_msg"]


def test_user_pays_from_the_wallet_with_the_fee_to_the_platform() -> None:
    ali = make()
    effects = paid(ali)
    assert bal(ali, "wallet:U1") == 90_000
    assert bal(ali, "platform") == 10_000 - 60 and bal(ali, "ali_fees") == 60
    (txn,) = ali.truth.txns()
    assert (txn["ref"], txn["kind"], txn["amount"], txn["fee"]) == ("P1", "pay", 10_000, 60)
    (note,) = sends(effects)
    assert note["trade_no"] == txn["channel_ref"] and note["total_amount"] == 10_000
    assert query(ali)["trade_status"] == "TRADE_SUCCESS"


@pytest.mark.parametrize(("setup", "user", "extra", "result"), [
    ("open", "U2", {}, "BALANCE_NOT_ENOUGH"),
    ("open", "U9", {}, "BALANCE_NOT_ENOUGH"),                 # no wallet at all
    ("open", "U1", {"amount": 4_000}, "INVALID_PARAMETER"),   # no partial payments
    ("paid", "U1", {}, "TRADE_HAS_SUCCESS"),
    ("closed", "U1", {}, "TRADE_CLOSED"),
    ("expired", "U1", {}, "TRADE_CLOSED"),
])
def test_user_pay_declines_and_moves_nothing(setup, user, extra, result) -> None:
    ali = make()
    qr = precreate(ali)["qr_code"]
    now = T0
    if setup == "paid":
        user_pay(ali, qr)
    elif setup == "closed":
        call(ali, {"type": "alipay.trade.close", "out_trade_no": "P1"})
    elif setup == "expired":
        now = T0 + 30 * M
    before = ali.truth.accounts()
    reply, effects = user_pay(ali, qr, user, now, **extra)
    assert reply["result"] == result and effects == []
    assert ali.truth.accounts() == before


def test_an_unknown_qr_code_is_trade_not_exist() -> None:
    reply, _ = user_pay(make(), "https://qr.alipay.com/nothing")
    assert reply["result"] == "TRADE_NOT_EXIST"


# -- query and close ------------------------------------------------------------------------------

def test_query_tells_every_trade_status() -> None:
    ali = make(platform_balance=100_000, refund_window_ms=2 * H)
    assert query(ali)["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    precreate(ali)
    assert query(ali)["trade_status"] == "WAIT_BUYER_PAY"
    assert query(ali, now=T0 + 30 * M)["trade_status"] == "TRADE_CLOSED"    # expired unpaid
    paid(ali, "P2")
    answer = query(ali, "P2")
    assert (answer["trade_status"], answer["buyer_pay_amount"]) == ("TRADE_SUCCESS", 10_000)
    assert query(ali, "P2", now=T0 + 2 * H)["trade_status"] == "TRADE_FINISHED"
    paid(ali, "P3")
    refund(ali, 10_000, "R3", "P3")
    answer = query(ali, "P3")       # refunded in full: closed, but it was paid
    assert (answer["trade_status"], answer["buyer_pay_amount"]) == ("TRADE_CLOSED", 10_000)
    assert answer["refund_amount"] == 10_000


def test_close_an_unpaid_trade_then_nobody_can_pay_it() -> None:
    ali = make()
    qr = precreate(ali)["qr_code"]
    reply, _ = call(ali, {"type": "alipay.trade.close", "req_id": "P1.p1", "out_trade_no": "P1"})
    assert reply["code"] == "10000" and reply["req_id"] == "P1.p1"
    assert call(ali, {"type": "alipay.trade.close", "out_trade_no": "P1"})[0]["code"] == "10000"
    assert user_pay(ali, qr)[0]["result"] == "TRADE_CLOSED"


def test_close_a_paid_trade_is_refused() -> None:
    ali = make()
    paid(ali)
    reply, _ = call(ali, {"type": "alipay.trade.close", "out_trade_no": "P1"})
    assert reply["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    assert query(ali)["trade_status"] == "TRADE_SUCCESS"


def test_close_of_an_unknown_number_bars_a_late_precreate() -> None:
    ali = make()
    reply, _ = call(ali, {"type": "alipay.trade.close", "out_trade_no": "P1"})
    assert reply["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert precreate(ali)["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert query(ali)["sub_code"] == "ACQ.TRADE_NOT_EXIST"


# -- refunds --------------------------------------------------------------------------------------

def test_partial_refunds_up_to_the_amount_then_closed() -> None:
    ali = make(platform_balance=1_000)
    paid(ali)
    first = refund(ali, 3_000, "R1")
    assert (first["code"], first["fund_change"], first["refund_fee"]) == ("10000", "Y", 3_000)
    assert query(ali)["trade_status"] == "TRADE_SUCCESS"
    assert refund(ali, 7_001, "R2")["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert refund(ali, 7_000, "R3")["refund_fee"] == 10_000
    assert query(ali)["trade_status"] == "TRADE_CLOSED"
    assert bal(ali, "wallet:U1") == 100_000                     # the fee is not returned
    assert (bal(ali, "platform"), bal(ali, "ali_fees")) == (1_000 - 60, 60)
    assert [t["kind"] for t in ali.truth.txns()] == ["pay", "refund", "refund"]


def test_refund_is_idempotent_by_out_request_no() -> None:
    ali = make(platform_balance=50_000)
    paid(ali)
    first = refund(ali, 4_000)
    wallet = bal(ali, "wallet:U1")
    again = refund(ali, 4_000, now=T0 + M)
    assert again["code"] == "10000" and again["fund_change"] == "N"
    assert again["refund_id"] == first["refund_id"]
    assert bal(ali, "wallet:U1") == wallet                      # money moved once
    assert len([t for t in ali.truth.txns() if t["kind"] == "refund"]) == 1


@pytest.mark.parametrize(("case", "sub_code"), [
    ("unknown", "ACQ.TRADE_NOT_EXIST"),
    ("other_trade_no", "ACQ.TRADE_NOT_EXIST"),
    ("unpaid", "ACQ.TRADE_STATUS_ERROR"),
    ("finished", "ACQ.TRADE_HAS_FINISHED"),
    ("seller_short", "ACQ.SELLER_BALANCE_NOT_ENOUGH"),
])
def test_refund_refusals_move_nothing_and_may_be_retried(case, sub_code) -> None:
    ali = make(platform_balance=0 if case == "seller_short" else 50_000, refund_window_ms=H)
    now, extra = T0, {}
    if case == "unpaid":
        precreate(ali)
    elif case != "unknown":
        paid(ali)
    if case == "other_trade_no":
        extra["trade_no"] = "ALT9999999999"
    if case == "finished":
        now = T0 + H
    if case == "seller_short":              # the platform account was emptied meanwhile
        ali.truth.move("platform", "ali_fees", 9_000, "CNY", T0, "x", "x", "fee")
    before = ali.truth.accounts()
    assert refund(ali, 5_000, now=now, **extra)["sub_code"] == sub_code
    assert ali.truth.accounts() == before
    if case == "seller_short":
        ali.truth.move("ali_fees", "platform", 9_000, "CNY", T0, "x", "x", "fee")
        assert refund(ali, 5_000)["code"] == "10000"     # the same number, tried again


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 50_000), st.lists(st.tuples(st.integers(1, 60_000), st.integers(0, 5)),
                                        max_size=12))
def test_refunds_never_exceed_the_trade_and_money_is_conserved(amount, asks) -> None:
    ali = make(platform_balance=1_000_000)
    ali.open_wallet("U3", 50_000)
    paid(ali, amount=amount, user="U3")
    total = ali.truth.total("CNY")
    done: dict[str, int] = {}
    for ask, number in asks:
        answer = refund(ali, ask, f"R{number}")
        if answer["code"] == "10000":
            done.setdefault(f"R{number}", answer["refund_amount"])
    assert sum(done.values()) <= amount
    assert bal(ali, "wallet:U3") == 50_000 - amount + sum(done.values())
    assert ali.truth.total("CNY") == total
    refunded = query(ali)["refund_amount"]
    assert refunded == sum(done.values())
    assert query(ali)["trade_status"] == ("TRADE_CLOSED" if refunded == amount
                                          else "TRADE_SUCCESS")


# -- notifications ---------------------------------------------------------------------------------

def test_notification_is_rsa2_signed_with_the_platform_key() -> None:
    (note,) = sends(paid(make()))
    assert note["type"] == "ali.notify" and note["sign_type"] == "RSA2"
    assert note["trade_status"] == "TRADE_SUCCESS" and isinstance(note["total_amount"], int)
    assert "sign=" not in sign_string(note) and "sign_type" not in sign_string(note)
    public = _private_key().public_key()
    public.verify(base64.b64decode(note["sign"]), sign_string(note).encode(),
                  padding.PKCS1v15(), hashes.SHA256())      # raises if it were wrong
    assert rsa2_verify(note)                                # the key paysys holds matches
    forged = dict(note, total_amount=note["total_amount"] + 1)
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(forged["sign"]), sign_string(forged).encode(),
                      padding.PKCS1v15(), hashes.SHA256())
    assert not rsa2_verify(forged)


def _attempts(ali: Alipay, until: int) -> list[int]:
    """Instants of every notification attempt until `until`, firing the node's timers."""
    times = []
    while (due := ali.next_deadline()) is not None and due <= until:
        effects = ali.on_timer(due)
        times += [due] * len(sends(effects))
    return times


def test_notify_schedule_is_eight_tries_within_25_hours() -> None:
    ali = make()
    assert len(sends(paid(ali))) == 1                            # the first at once
    times = [T0] + _attempts(ali, T0 + 48 * H)
    assert len(times) == NOTIFY_TRIES == 8
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [4 * M, 10 * M, 10 * M, H, 2 * H, 6 * H, 15 * H]
    assert times[-1] - T0 < 25 * H
    assert ali.next_deadline() is None                           # then it gives up


@pytest.mark.parametrize("answer", ["fail", "SUCCESS", "success ", "", None])
def test_only_the_literal_success_stops_the_notifications(answer) -> None:
    ali = make()
    (note,) = sends(paid(ali))
    effects = ali.handle("paysys", {"type": "ali.notify.reply", "notify_id": note["notify_id"],
                                    "body": answer}, T0 + 10)
    assert [e[1] for e in effects] == ["ali.notify.refused"]
    assert ali.next_deadline() == T0 + 4 * M
    assert len(_attempts(ali, T0 + 4 * M)) == 1                  # retried


@pytest.mark.parametrize("by", ["notify_id", "out_trade_no"])
def test_success_stops_the_series(by) -> None:
    ali = make()
    (note,) = sends(paid(ali))
    ack = {"type": "ali.notify.reply", by: note[by], "body": "success"}
    assert ali.handle("paysys", ack, T0 + 5) == []
    assert ali.next_deadline() is None
    assert _attempts(ali, T0 + 30 * H) == []


def test_an_answer_to_a_notification_we_did_not_send_is_ignored() -> None:
    ali = make()
    sends(paid(ali))
    ack = {"type": "ali.notify.reply", "notify_id": "forged-1", "out_trade_no": "P1",
           "body": "success"}
    assert ali.handle("paysys", ack, T0 + 5) == []
    assert ali.next_deadline() == T0 + 4 * M


def test_a_refused_notification_is_a_failed_attempt() -> None:
    ali = make()
    (note,) = sends(paid(ali))
    assert ali.handle("paysys", {"type": "net.error", "error": "refused", "request": note},
                      T0 + 1) == []
    assert ali.next_deadline() == T0 + 4 * M


def test_duplicate_notifications_send_each_attempt_twice() -> None:
    ali = make(dup=1.0)
    first = sends(paid(ali))
    assert len(first) == 2 and first[0] == first[1]
    assert len(_attempts(ali, T0 + 4 * M)) == 2


# -- faults --------------------------------------------------------------------------------------

def fault(kind: str, **params) -> ChannelFault:
    return ChannelFault(1, kind, T0, T0 + H, 1.0, params)


def test_maintenance_refuses_everything_and_does_nothing() -> None:
    ali = make(faults=[fault("maintenance")])
    reply = precreate(ali)
    assert (reply["code"], reply["sub_code"], reply["req_id"]) == (
        "20000", "ACQ.SYSTEM_MAINTENANCE", "P1.p1")
    assert query(ali, now=T0 + 1)["sub_code"] == "ACQ.SYSTEM_MAINTENANCE"
    reply, effects = user_pay(ali, "https://qr.alipay.com/x")
    assert reply["result"] == "SYSTEM_MAINTENANCE"
    assert effects[0][1] == "fault.fired" and effects[0][3]["kind"] == "maintenance"
    after = precreate(ali, now=T0 + H)                    # the window is over
    assert after["code"] == "10000"


def test_rate_limit_refuses_beyond_max_per_second() -> None:
    ali = make(faults=[fault("rate_limit", max_per_s=2)])
    codes = [query(ali, f"P{i}", now=T0 + i)["sub_code"] for i in range(4)]
    assert codes == ["ACQ.TRADE_NOT_EXIST"] * 2 + ["ACQ.FREQUENCY_LIMITED"] * 2
    assert query(ali, now=T0 + S)["sub_code"] == "ACQ.TRADE_NOT_EXIST"


def test_cutoff_refuses_only_new_trades() -> None:
    ali = make(faults=[fault("cutoff")])
    assert precreate(ali)["sub_code"] == "ACQ.CUTOFF_IN_PROGRESS"
    assert query(ali)["sub_code"] == "ACQ.TRADE_NOT_EXIST"


def test_unsupported_fault_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="notify_lost"):
        make(faults=[ChannelFault(1, "notify_lost", T0, T0 + H, 1.0)])


# -- bills ----------------------------------------------------------------------------------------

def test_bill_is_the_alipay_csv_of_the_day_once_ready() -> None:
    ali = make(platform_balance=10_000)
    paid(ali)
    refund(ali, 2_500, now=T0 + M)
    body = {"type": "alipay.data.bill.download", "req_id": "B1", "bill_type": "trade",
            "bill_date": "2026-11-02"}
    early = call(ali, body, T0 + H)[0]
    assert (early["sub_code"], early["content"], early["req_id"]) == (
        "ACQ.BILL_NOT_EXIST", None, "B1")
    ready = call(ali, body, T0 + 2 * 24 * H)[0]
    assert ready["code"] == "10000" and ready["format"] == "alipay"
    rows = parse("alipay", ready["content"])
    assert [(r.kind, r.ref, r.amount, r.fee) for r in rows] == [
        ("pay", "P1", 10_000, 60), ("refund", "R1", 2_500, 0)]
    bad = call(ali, dict(body, bill_date="20261102"), T0)[0]
    assert (bad["code"], bad["field"]) == ("40002", "bill_date")
