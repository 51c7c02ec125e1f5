"""The bank's pre-authorisations (holds, cancels, captures, capture cancels, queries, expiry) and
its same-day cancel of a payment, fed message by message."""

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.bank_preauth import HOLD_ACCOUNT
from mockbanks.fees import Fee

T0 = int(datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp()) * 1000   # 09:00 in UTC+8
HOUR = 3_600_000
CARD, FROZEN, SHORT, MAGIC = "6222000000001111", "6222000000003333", "62220000000009995", "62220000000004242"


def make_bank() -> Bank:
    bank = Bank(name="bank", rng=random.Random(3), fee_rule=Fee(rate_bp=100), capacity=8,
                max_queue_ms=1000, service_time=lambda rng: 100)
    bank.open_account("U1", CARD, 100_000, 10**9)
    bank.open_account("U3", FROZEN, 100_000, 10**9, frozen=True)
    bank.open_account("U4", SHORT, 10**9, 10**9)
    bank.open_account("U5", MAGIC, 0, 10**9)
    return bank


def call(bank: Bank, body: dict, now: int = T0) -> tuple[dict, list]:
    effects = bank.handle("paysys", body, now)
    (reply,) = [e[1] for e in effects if e[0] == "reply"]
    return reply, [e for e in effects if e[0] == "event"]


def agreement(bank: Bank, user: str, card: str) -> str:
    reply, _ = call(bank, {"type": "bank.sign", "req_id": f"S{card}", "user_id": user,
                           "card_no": card})
    return reply["agreement_no"]


def hold(bank: Bank, req_id: str, amount: int, card: str = CARD, user: str = "U1",
         now: int = T0, hold_ms: int = 2 * HOUR) -> dict:
    return call(bank, {"type": "bank.preauth", "req_id": req_id,
                       "agreement_no": agreement(bank, user, card), "amount": amount,
                       "currency": "CNY", "hold_ms": hold_ms}, now)[0]


def op(bank: Bank, kind: str, req_id: str, target: str, amount: int, now: int = T0) -> dict:
    key = "capture_req_id" if kind == "capture_cancel" else "preauth_req_id"
    return call(bank, {"type": f"bank.preauth.{kind}", "req_id": req_id, key: target,
                       "amount": amount, "currency": "CNY"}, now)[0]


def bal(bank: Bank, account: str) -> int:
    return bank.truth.balance(account, "CNY")


def conserved(bank: Bank) -> bool:
    return bank.truth.total("CNY") == bank.truth.initial_total("CNY")


def test_a_hold_moves_the_money_to_the_holds_account_and_a_repeat_moves_nothing() -> None:
    bank = make_bank()
    reply = hold(bank, "A1.a1", 30_000)
    assert reply["result"] == "SUCCESS" and reply["expire_ms"] == T0 + 100 + 2 * HOUR
    assert (bal(bank, "card:" + CARD), bal(bank, HOLD_ACCOUNT)) == (70_000, 30_000)
    assert hold(bank, "A1.a1", 30_000) == reply
    assert bal(bank, HOLD_ACCOUNT) == 30_000 and conserved(bank)


def test_declines_hold_nothing() -> None:
    bank = make_bank()
    assert hold(bank, "A1.a1", 200_000)["code"] == "INSUFFICIENT_FUNDS"
    assert hold(bank, "A2.a1", 1_000, FROZEN, "U3")["code"] == "CARD_FROZEN"
    assert hold(bank, "A3.a1", 1_000, SHORT, "U4")["code"] == "INSUFFICIENT_FUNDS"
    bad = call(bank, {"type": "bank.preauth", "req_id": "A4.a1", "agreement_no": "nope",
                      "amount": 5, "currency": "CNY"})[0]
    assert bad["code"] == "AGREEMENT_INVALID"
    assert bal(bank, HOLD_ACCOUNT) == 0
    query = call(bank, {"type": "bank.preauth.query", "req_id": "A2.a1.e1",
                        "orig_req_id": "A2.a1"})[0]
    assert (query["result"], query["code"], query["state"]) == ("DECLINED", "CARD_FROZEN", None)


def test_a_funded_magic_card_holds_whatever_its_balance() -> None:
    bank = make_bank()
    assert hold(bank, "A1.a1", 5_000, MAGIC, "U5")["result"] == "SUCCESS"
    assert bal(bank, HOLD_ACCOUNT) == 5_000 and conserved(bank)


def test_capture_charges_less_and_releases_the_rest_once() -> None:
    bank = make_bank()
    hold(bank, "A1.a1", 30_000)
    reply = op(bank, "capture", "P1.p1", "A1.a1", 20_000)
    assert (reply["result"], reply["released"]) == ("SUCCESS", 10_000)
    assert bal(bank, "platform") == 20_000 - 200 and bal(bank, "bank_fees") == 200
    assert bal(bank, "card:" + CARD) == 80_000 and bal(bank, HOLD_ACCOUNT) == 0
    assert op(bank, "capture", "P1.p1", "A1.a1", 20_000) == reply        # a repeat
    assert op(bank, "capture", "P2.p1", "A1.a1", 1)["code"] == "BAD_STATE"  # captured already
    pays = [t for t in bank.truth.txns() if t["kind"] == "pay"]
    assert [(t["ref"], t["amount"], t["fee"]) for t in pays] == [("P1", 20_000, 200)]
    assert conserved(bank)


def test_capture_more_than_held_is_declined() -> None:
    bank = make_bank()
    hold(bank, "A1.a1", 30_000)
    assert op(bank, "capture", "P1.p1", "A1.a1", 30_001)["code"] == "EXCEEDS_HELD"
    assert op(bank, "capture", "P2.p1", "A9.a1", 1)["code"] == "NOT_FOUND"


def test_cancel_is_full_only_and_releases_everything() -> None:
    bank = make_bank()
    hold(bank, "A1.a1", 30_000)
    assert op(bank, "cancel", "A1.v1", "A1.a1", 29_999)["code"] == "NOT_FULL"
    assert op(bank, "cancel", "A1.v2", "A1.a1", 30_000)["result"] == "SUCCESS"
    assert bal(bank, "card:" + CARD) == 100_000 and bal(bank, HOLD_ACCOUNT) == 0
    assert op(bank, "capture", "P1.p1", "A1.a1", 1)["code"] == "BAD_STATE"


def test_capture_cancel_puts_the_capture_back_on_hold_then_it_may_be_captured_again() -> None:
    bank = make_bank()
    hold(bank, "A1.a1", 30_000)
    op(bank, "capture", "P1.p1", "A1.a1", 20_000)
    assert op(bank, "capture_cancel", "R1.x1", "P1.p1", 19_000)["code"] == "NOT_FULL"
    reply = op(bank, "capture_cancel", "R2.x1", "P1.p1", 20_000)
    assert reply["result"] == "SUCCESS"
    assert (bal(bank, "platform"), bal(bank, "bank_fees"), bal(bank, HOLD_ACCOUNT)) == (0, 0, 20_000)
    query = call(bank, {"type": "bank.preauth.query", "req_id": "A1.a1.e1",
                        "orig_req_id": "A1.a1"})[0]
    assert (query["state"], query["held"]) == ("HELD", 20_000)
    assert op(bank, "capture", "P2.p1", "A1.a1", 20_001)["code"] == "EXCEEDS_HELD"
    assert op(bank, "capture", "P3.p1", "A1.a1", 15_000)["result"] == "SUCCESS"
    assert op(bank, "capture_cancel", "R3.x1", "P1.p1", 20_000)["code"] == "BAD_STATE"
    refunds = [t for t in bank.truth.txns() if t["kind"] == "refund"]
    assert [(t["ref"], t["amount"]) for t in refunds] == [("R2", 20_000)]
    assert bal(bank, "card:" + CARD) == 85_000 and conserved(bank)


def test_an_uncaptured_hold_expires_by_timer_and_answers_expired() -> None:
    bank = make_bank()
    reply = hold(bank, "A1.a1", 30_000)
    assert bank.next_deadline() == reply["expire_ms"]
    bank.on_timer(reply["expire_ms"])
    assert bal(bank, "card:" + CARD) == 100_000 and bank.next_deadline() is None
    assert op(bank, "capture", "P1.p1", "A1.a1", 1, reply["expire_ms"] + 1)["code"] == "EXPIRED"
    query = call(bank, {"type": "bank.preauth.query", "req_id": "q", "orig_req_id": "A1.a1"})[0]
    assert query["state"] == "EXPIRED"


def test_expiry_is_applied_when_a_request_arrives_after_it() -> None:
    bank = make_bank()
    reply = hold(bank, "A1.a1", 30_000)
    later = reply["expire_ms"] + 5
    assert op(bank, "cancel", "A1.v1", "A1.a1", 30_000, later)["code"] == "EXPIRED"
    assert bal(bank, "card:" + CARD) == 100_000


def test_query_of_an_operation_answers_its_stored_result_or_not_found() -> None:
    bank = make_bank()
    hold(bank, "A1.a1", 30_000)
    captured = op(bank, "capture", "P1.p1", "A1.a1", 10_000)
    query = call(bank, {"type": "bank.preauth.query", "req_id": "P1.p1.e1",
                        "orig_req_id": "P1.p1"})[0]
    assert (query["result"], query["bank_txn_id"], query["state"]) == (
        "SUCCESS", captured["bank_txn_id"], "CAPTURED")
    missing = call(bank, {"type": "bank.preauth.query", "req_id": "x", "orig_req_id": "P9.p1"})[0]
    assert missing["result"] == "NOT_FOUND"


def test_invalid_requests_name_their_field() -> None:
    bank = make_bank()
    reply = call(bank, {"type": "bank.preauth", "req_id": "A1.a1", "agreement_no": "x",
                        "amount": 5, "currency": "CNY", "hold_ms": -1})[0]
    assert (reply["code"], reply["field"]) == ("INVALID_PARAM", "hold_ms")
    reply = call(bank, {"type": "bank.preauth.capture", "req_id": "P1.p1", "amount": 5,
                        "currency": "CNY"})[0]
    assert reply["field"] == "preauth_req_id"


# -- bank.cancel ------------------------------------------------------------------------------


def paid(bank: Bank, req_id: str, amount: int, now: int) -> None:
    reply, _ = call(bank, {"type": "bank.pay", "req_id": req_id, "amount": amount,
                           "agreement_no": agreement(bank, "U1", CARD), "currency": "CNY"}, now)
    assert reply["result"] == "SUCCESS"


def cancel(bank: Bank, req_id: str, orig: str, amount: int, now: int) -> dict:
    return call(bank, {"type": "bank.cancel", "req_id": req_id, "orig_req_id": orig,
                       "amount": amount, "currency": "CNY"}, now)[0]


def test_a_same_day_cancel_returns_everything_fee_included() -> None:
    bank = make_bank()
    paid(bank, "P1.p1", 10_000, T0)
    reply = cancel(bank, "R1.x1", "P1.p1", 10_000, T0 + HOUR)
    assert reply["result"] == "SUCCESS"
    assert (bal(bank, "card:" + CARD), bal(bank, "platform"), bal(bank, "bank_fees")) == (
        100_000, 0, 0)
    assert cancel(bank, "R1.x1", "P1.p1", 10_000, T0 + HOUR) == reply
    assert cancel(bank, "R2.x1", "P1.p1", 10_000, T0 + HOUR)["code"] == "ALREADY_REFUNDED"
    refund = call(bank, {"type": "bank.refund", "req_id": "R3.r1", "orig_req_id": "P1.p1",
                         "amount": 1, "currency": "CNY"}, T0 + HOUR)[0]
    assert refund["code"] == "EXCEEDS_REFUNDABLE" and conserved(bank)


def test_cancel_is_refused_partial_after_the_cutoff_and_the_next_day() -> None:
    bank = make_bank()
    paid(bank, "P1.p1", 10_000, T0)
    assert cancel(bank, "R1.x1", "P1.p1", 9_000, T0)["code"] == "NOT_FULL"
    assert cancel(bank, "R2.x1", "P1.p1", 10_000, T0 + 14 * HOUR)["code"] == "CANCEL_CLOSED"
    assert cancel(bank, "R3.x1", "P1.p1", 10_000, T0 + 24 * HOUR)["code"] == "CANCEL_CLOSED"
    assert cancel(bank, "R4.x1", "P9.p1", 10_000, T0)["code"] == "NOT_FOUND"
    assert bal(bank, "platform") == 9_900


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["capture", "cancel", "capture_cancel", "wait"]),
                          st.integers(1, 40_000)), max_size=12))
def test_any_sequence_keeps_conservation_and_captures_at_most_what_was_held(steps) -> None:
    bank = make_bank()
    hold(bank, "A1.a1", 30_000)
    now, last_capture = T0, None
    for i, (kind, amount) in enumerate(steps):
        now += 1_000
        if kind == "wait":
            now += HOUR
            bank.on_timer(now)
        elif kind == "capture_cancel":
            if last_capture:
                op(bank, kind, f"R{i}.x1", last_capture, amount, now)
        else:
            reply = op(bank, kind, f"P{i}.p1", "A1.a1", amount, now)
            if kind == "capture" and reply["result"] == "SUCCESS":
                last_capture = f"P{i}.p1"
        assert conserved(bank)
        txns = bank.truth.txns()
        net = (sum(t["amount"] for t in txns if t["kind"] == "pay")
               - sum(t["amount"] for t in txns if t["kind"] == "refund"))
        assert 0 <= net <= 30_000
        assert bal(bank, HOLD_ACCOUNT) + net <= 30_000
