"""Trade core vs payment core: a business order paid by several attempts, driven by hand.

- the trade state table;
- partial payments accumulate (WAITING -> PARTIAL -> PAID), failed attempts count for nothing;
- an over-payment is refunded automatically (the excess, from the last attempt) -> PAID;
- a trade closes at its TTL: nothing to refund when WAITING, every paid attempt refunded when
  PARTIAL, and an attempt paid after the close refunded too;
- Hypothesis: any sequence of attempts (amounts, outcomes) ends PAID with exactly the amount
  kept, the excess refunded, or (not enough) stays PARTIAL/WAITING.
"""

import pytest
from _node import Driver, bank_reply, pay_create, replies, sends
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paysys import ledger, orders
from paysys.products import trade

CARD = "6222020000000001"


def answer_bank(d: Driver, fx: list, pay_result: str = "SUCCESS") -> None:
    pending = sends(fx, "bank")
    while pending:
        body = pending.pop(0)
        kind = body["type"]
        if kind == "bank.sign":
            reply = bank_reply(body, "OK", agreement_no="AG1")
        elif kind == "bank.pay":
            reply = (bank_reply(body, "SUCCESS", amount=body["amount"],
                                bank_txn_id=f"T{body['req_id']}") if pay_result == "SUCCESS"
                     else bank_reply(body, "DECLINED", code="CARD_FROZEN"))
        elif kind == "bank.refund":
            reply = bank_reply(body, "SUCCESS")
        else:
            continue
        pending += sends(d.handle("bank", reply), "bank")


def create(d: Driver, no: str = "T1", amount: int = 10_000, ttl_ms: int = 600_000) -> str:
    fx = d.merchant({"type": "trade.create", "idempotency_key": f"K-{no}",
                     "merchant_order_no": no, "user_id": "U00001", "amount": amount,
                     "currency": "CNY", "notify_url": "http://merchant-m001/notify",
                     "ttl_ms": ttl_ms})
    reply = replies(fx)[0]
    assert reply["ok"] and reply["status"] == "WAITING", reply
    return reply["trade_id"]


def attempt(d: Driver, trade_id: str, amount: int, result: str = "SUCCESS") -> dict:
    d.now += 1_000
    fx = d.merchant({"type": "trade.pay", "idempotency_key": f"K-{trade_id}-{d.now}",
                     "trade_id": trade_id, "amount": amount, "product": "quick",
                     "card_no": CARD})
    reply = replies(fx)[0]
    answer_bank(d, fx, result)
    for _ in range(3):   # the excess refund is polled, the bank answers at once
        answer_bank(d, d.advance(2_000), result)
    return reply


def status(d: Driver, trade_id: str) -> str:
    return trade.get(d.conn, trade_id)["status"]


def test_trade_state_table():
    assert orders.fire("trade", "WAITING", "part") == "PARTIAL"
    assert orders.fire("trade", "PARTIAL", "paid") == "PAID"
    assert orders.fire("trade", "PARTIAL", "overpaid") == "OVERPAID_REFUNDING"
    assert orders.fire("trade", "OVERPAID_REFUNDING", "refunded") == "PAID"
    assert orders.fire("trade", "WAITING", "close") == "CLOSED"
    with pytest.raises(orders.IllegalTransition):
        orders.fire("trade", "PAID", "close")


def test_partial_payments_accumulate_until_paid():
    d = Driver()
    tid = create(d)
    first = attempt(d, tid, 3_000)
    assert first["attempt"] == 1 and status(d, tid) == "PARTIAL"
    attempt(d, tid, 2_000, "DECLINED")
    assert status(d, tid) == "PARTIAL"
    third = attempt(d, tid, 7_000)
    assert third["attempt"] == 3 and status(d, tid) == "PAID"
    row = trade.get(d.conn, tid)
    assert (row["paid_total"], row["refunded_excess"], row["attempts"]) == (10_000, 0, 3)
    nos = [r[0] for r in d.conn.execute("SELECT merchant_order_no FROM pay_orders WHERE "
                                        "parent_id=? ORDER BY attempt", (tid,))]
    assert nos == ["T1.1", "T1.2", "T1.3"]
    # a paid trade takes no more payments
    fx = d.merchant({"type": "trade.pay", "idempotency_key": "K-late", "trade_id": tid,
                     "amount": 1, "product": "quick", "card_no": CARD})
    assert replies(fx)[0]["code"] == "BAD_STATE"


def test_an_over_payment_refunds_the_excess_from_the_last_attempt():
    d = Driver()
    tid = create(d)
    attempt(d, tid, 6_000)
    last = attempt(d, tid, 5_500)
    row = trade.get(d.conn, tid)
    assert row["status"] == "PAID"
    assert (row["paid_total"], row["refunded_excess"]) == (11_500, 1_500)
    refund = d.conn.execute("SELECT order_id, amount, status, refund_no FROM refund_orders"
                            ).fetchone()
    assert refund == (last["order_id"], 1_500, "SUCCEEDED", f"{tid}.x1")


def test_a_waiting_trade_closes_at_its_ttl_refunding_nothing():
    d = Driver()
    tid = create(d, ttl_ms=60_000)
    d.advance(61_000)
    assert status(d, tid) == "CLOSED"
    assert d.conn.execute("SELECT COUNT(*) FROM refund_orders").fetchone() == (0,)


def test_a_partial_trade_closes_giving_back_what_it_received():
    d = Driver()
    answer_bank(d, d.merchant(pay_create("F1", 1_000, now=d.now)))   # the merchant's float
    tid = create(d, ttl_ms=60_000)
    attempt(d, tid, 4_000)
    fx = d.advance(trade.get(d.conn, tid)["expire_ms"] - d.now)
    answer_bank(d, fx)
    assert status(d, tid) == "CLOSED"
    assert d.conn.execute("SELECT SUM(amount) FROM refund_orders WHERE status='SUCCEEDED'"
                          ).fetchone() == (4_000,)
    fees = d.conn.execute("SELECT SUM(merchant_fee) FROM pay_orders").fetchone()[0]
    assert ledger.balance(d.conn, "liability:merchant:M001", "CNY") == 1_000 - fees


def test_a_closed_trade_waits_for_the_merchant_float_before_refunding():
    d = Driver()
    tid = create(d, ttl_ms=60_000)
    attempt(d, tid, 4_000)
    d.advance(60_000)
    assert status(d, tid) == "CLOSED"
    assert d.conn.execute("SELECT COUNT(*) FROM refund_orders").fetchone() == (0,)
    answer_bank(d, d.merchant(pay_create("F1", 1_000, now=d.now)))
    for _ in range(trade.RETRY_MS // 1_000):   # time passes, the bank answers at once
        answer_bank(d, d.advance(1_000))
    assert d.conn.execute("SELECT SUM(amount) FROM refund_orders WHERE status='SUCCEEDED'"
                          ).fetchone() == (4_000,)


# -- the property -------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amount=st.integers(2, 30_000),
       tries=st.lists(st.tuples(st.integers(1, 15_000), st.booleans()), min_size=1, max_size=5))
def test_any_sequence_of_partial_payments_accumulates_to_paid_with_the_excess_refunded(
        amount, tries):
    d = Driver()
    answer_bank(d, d.merchant(pay_create("F1", 50_000, now=d.now)))   # the merchant's float
    tid = create(d, amount=amount)
    kept = 0
    for part, ok in tries:
        if status(d, tid) not in trade.OPEN:
            break
        attempt(d, tid, part, "SUCCESS" if ok else "DECLINED")
        kept += part if ok else 0
    row = trade.get(d.conn, tid)
    (refunded,) = d.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM refund_orders WHERE "
                                 "status='SUCCEEDED'").fetchone()
    assert row["paid_total"] == kept
    if kept >= amount:
        assert row["status"] == "PAID"
        assert kept - refunded == amount and row["refunded_excess"] == kept - amount
    else:
        assert row["status"] == ("PARTIAL" if kept else "WAITING")
        assert refunded == 0
