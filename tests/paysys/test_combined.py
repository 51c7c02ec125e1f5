"""Combined payment (balance + coupon + card) and coupons, driven through the node by hand.

- the coupon state table and what a coupon takes off (vouchers, discounts with a cap);
- a combined order pays exactly its amount: the merchant is credited the full price (minus
  fees), the user's balance and the card pay their legs, marketing pays the coupon's cut;
- a failing card leg reverses every leg (balance back, coupon ISSUED again);
- refunds give each leg back; a full refund restores the coupon;
- Hypothesis: for any legs/coupon/amounts and any card outcome, the order either pays exactly
  its amount or reverses every leg; coupon counts are conserved.
"""

import pytest
from _node import (
    CHALLENGE_AMOUNT,
    Driver,
    bank_reply,
    confirm_otp,
    pay_create,
    refund_create,
    replies,
    sends,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paysys import ledger, orders
from paysys.errors import GatewayError
from paysys.products import combined, combined_refunds, coupons

CARD = "6222020000000001"


def credit(d: Driver, user: str, amount: int) -> None:
    fx = d.merchant({"type": "promo.credit", "idempotency_key": f"gift-{user}-{d.now}",
                     "user_id": user, "amount": amount, "currency": "CNY"})
    assert replies(fx)[0]["ok"], replies(fx)


def issue(d: Driver, user: str, kind: str = "voucher", value: int = 1_000, **more) -> str:
    fx = d.merchant({"type": "coupon.issue", "idempotency_key": f"c-{user}-{d.now}-{kind}",
                     "user_id": user, "kind": kind, "value": value, "currency": "CNY", **more})
    reply = replies(fx)[0]
    assert reply["ok"], reply
    d.now += 1
    return reply["coupon_ids"][0]


def answer_bank(d: Driver, fx: list, pay_result: str = "SUCCESS", refund_result: str = "SUCCESS"):
    """Answer every bank request in `fx` (and those they lead to) until none is left."""
    pending = sends(fx, "bank")
    while pending:
        body = pending.pop(0)
        kind = body["type"]
        if kind == "bank.sign":
            reply = bank_reply(body, "OK", agreement_no=f"AG{body['card_no'][-4:]}")
        elif kind == "bank.pay":
            if pay_result == "SUCCESS":
                reply = bank_reply(body, "SUCCESS", amount=body["amount"],
                                   bank_txn_id=f"T{body['req_id']}")
            else:
                reply = bank_reply(body, "DECLINED", code="CARD_FROZEN")
        elif kind == "bank.refund":
            reply = bank_reply(body, refund_result, code="" if refund_result == "SUCCESS"
                               else "EXCEEDS_REFUNDABLE")
        else:
            continue
        pending += sends(d.handle("bank", reply), "bank")


def pay(d: Driver, order_no: str, amount: int, **fields) -> tuple[str, list]:
    card_no = fields.pop("card_no", None)
    body = pay_create(order_no, amount, product="combined", now=d.now, **fields)
    if card_no:
        body["card_no"] = card_no
    fx = d.merchant(body)
    row = d.conn.execute("SELECT order_id FROM pay_orders WHERE merchant_order_no=?",
                         (order_no,)).fetchone()
    return (row[0] if row else ""), fx


def user_balance(d: Driver, user: str) -> int:
    return ledger.balance(d.conn, f"liability:user:{user}", "CNY")


def merchant_balance(d: Driver) -> int:
    return ledger.balance(d.conn, "liability:merchant:M001", "CNY")


def coupon_status(d: Driver, coupon_id: str) -> str:
    return coupons.get(d.conn, coupon_id)["status"]


# -- coupons ------------------------------------------------------------------------------------

def test_coupon_state_table():
    assert orders.fire("coupon", "ISSUED", "lock") == "LOCKED"
    assert orders.fire("coupon", "LOCKED", "use") == "USED"
    assert orders.fire("coupon", "LOCKED", "release") == "ISSUED"
    assert orders.fire("coupon", "USED", "restore") == "ISSUED"
    assert orders.fire("coupon", "ISSUED", "expire") == "EXPIRED"
    with pytest.raises(orders.IllegalTransition):
        orders.fire("coupon", "USED", "lock")
    assert orders.is_final("coupon", "EXPIRED") and not orders.is_final("coupon", "USED")


@pytest.mark.parametrize(("kind", "value", "cap", "amount", "cut"), [
    ("voucher", 1_000, 0, 5_000, 1_000),
    ("voucher", 1_000, 0, 600, 600),          # never more than the order
    ("discount", 1_000, 0, 5_005, 501),       # 10 %, half-up
    ("discount", 2_000, 300, 5_000, 300),     # capped
])
def test_coupon_cut(kind, value, cap, amount, cut):
    assert coupons.off({"kind": kind, "value": value, "cap": cap}, amount) == cut


def test_coupon_expires_when_its_time_comes():
    d = Driver()
    cid = issue(d, "U00001", ttl_ms=60_000)
    d.advance(61_000)
    assert coupon_status(d, cid) == "EXPIRED"


def test_issue_refuses_a_discount_over_100_percent():
    d = Driver()
    fx = d.merchant({"type": "coupon.issue", "idempotency_key": "c-x", "user_id": "U00001",
                     "kind": "discount", "value": 10_001, "currency": "CNY"})
    assert replies(fx)[0]["field"] == "value"


# -- combined orders ----------------------------------------------------------------------------

def test_combined_pays_the_full_price_to_the_merchant():
    d = Driver()
    credit(d, "U00001", 5_000)
    cid = issue(d, "U00001", value=1_000)
    oid, fx = pay(d, "MO1", 10_000, coupon_id=cid, balance_amount=3_000, card_no=CARD)
    assert coupon_status(d, cid) == "LOCKED"
    assert user_balance(d, "U00001") == 2_000
    answer_bank(d, fx)
    order = d.order(oid)
    assert order["status"] == "SUCCEEDED"
    child = d.conn.execute("SELECT order_id, amount, status, merchant_fee FROM pay_orders "
                           "WHERE parent_id=?", (oid,)).fetchone()
    assert child[1:3] == (6_000, "SUCCEEDED")
    assert coupon_status(d, cid) == "USED"
    # full price less the merchant's fees (60 bp) on each part
    assert merchant_balance(d) == 10_000 - order["merchant_fee"] - child[3]
    assert order["merchant_fee"] == 24   # 60 bp of 4 000 (balance + coupon)
    assert ledger.balance(d.conn, coupons.MARKETING, "CNY") == 5_000 + 1_000
    assert ledger.balance(d.conn, combined.TRANSIT, "CNY") == 0


def test_failed_card_leg_reverses_balance_and_coupon():
    d = Driver()
    credit(d, "U00001", 5_000)
    cid = issue(d, "U00001")
    oid, fx = pay(d, "MO1", 10_000, coupon_id=cid, balance_amount=3_000, card_no=CARD)
    answer_bank(d, fx, pay_result="DECLINED")
    order = d.order(oid)
    assert (order["status"], order["error_code"]) == ("FAILED", "CARD_FROZEN")
    assert user_balance(d, "U00001") == 5_000
    assert coupon_status(d, cid) == "ISSUED"
    assert merchant_balance(d) == 0
    statuses = {leg: row["status"] for leg, row in combined.legs(d.conn, oid).items()}
    assert statuses == {"coupon": "REVERSED", "balance": "REVERSED", "card": "FAILED"}


def test_balance_and_coupon_only_need_no_card():
    d = Driver()
    credit(d, "U00001", 9_000)
    cid = issue(d, "U00001", kind="discount", value=1_000)
    oid, fx = pay(d, "MO1", 10_000, coupon_id=cid, balance_amount=9_000)
    assert d.order(oid)["status"] == "SUCCEEDED"
    assert sends(fx, "bank") == []
    assert user_balance(d, "U00001") == 0


@pytest.mark.parametrize(("fields", "field"), [
    ({"balance_amount": 6_000, "card_no": CARD}, "balance_amount"),     # more than held
    ({"balance_amount": 3_000}, "card_no"),                             # the rest has no card
    ({"coupon_id": "K0000000999", "card_no": CARD}, "coupon_id"),       # not a coupon of hers
])
def test_legs_that_do_not_add_up_are_refused(fields, field):
    d = Driver()
    credit(d, "U00001", 5_000)
    order = {"order_id": "P1", "amount": 10_000, "user_id": "U00001", "currency": "CNY"}
    with pytest.raises(GatewayError) as err:
        combined.plan(d.conn, order, fields, d.now)
    assert err.value.field == field


def test_a_coupon_in_use_is_refused_at_the_door():
    d = Driver()
    cid = issue(d, "U00001")
    first, fx1 = pay(d, "MO1", 5_000, coupon_id=cid, card_no=CARD)
    _, fx2 = pay(d, "MO2", 5_000, coupon_id=cid, card_no=CARD)
    assert (replies(fx2)[0]["code"], replies(fx2)[0]["field"]) == ("BAD_STATE", "coupon_id")
    answer_bank(d, fx1)
    assert d.order(first)["status"] == "SUCCEEDED" and coupon_status(d, cid) == "USED"


def test_a_coupon_taken_meanwhile_fails_the_second_order():
    """Both orders wait for a one-time password; the first confirmed takes the coupon."""
    d = Driver()
    cid = issue(d, "U00001")
    first, fx1 = pay(d, "MO1", CHALLENGE_AMOUNT, coupon_id=cid, card_no=CARD)
    second, fx2 = pay(d, "MO2", CHALLENGE_AMOUNT, coupon_id=cid, card_no=CARD)
    otp1, otp2 = (sends(fx, "sms")[0]["otp"] for fx in (fx1, fx2))
    answer_bank(d, d.merchant(confirm_otp(first, otp1)))
    d.merchant(confirm_otp(second, otp2))
    assert d.order(second)["error_code"] == "COUPON_UNAVAILABLE"
    assert d.order(first)["status"] == "SUCCEEDED" and coupon_status(d, cid) == "USED"


def test_refunds_give_each_leg_back_and_restore_the_coupon():
    d = Driver()
    credit(d, "U00001", 5_000)
    answer_bank(d, d.merchant(pay_create("MO0", 1_000, now=d.now)))   # the merchant's float
    cid = issue(d, "U00001", value=1_000)
    oid, fx = pay(d, "MO1", 10_000, coupon_id=cid, balance_amount=3_000, card_no=CARD)
    answer_bank(d, fx)
    # first 4 000: the balance leg (3 000) then 1 000 of the card leg
    fx = d.merchant(refund_create(oid, "RF1", 4_000))
    answer_bank(d, fx)
    d.advance(3_000)
    assert user_balance(d, "U00001") == 5_000
    assert d.order(oid)["refunded"] == 4_000 and coupon_status(d, cid) == "USED"
    fx = d.merchant(refund_create(oid, "RF2", 6_000))
    answer_bank(d, fx)
    d.advance(3_000)
    assert d.order(oid)["refunded"] == 10_000
    assert coupon_status(d, cid) == "ISSUED"
    assert ledger.balance(d.conn, coupons.MARKETING, "CNY") == 5_000
    child = d.conn.execute("SELECT refunded FROM pay_orders WHERE parent_id=?", (oid,)).fetchone()
    assert child == (6_000,)


def test_allocate_takes_balance_then_card_then_coupon():
    parts = {"balance": 3_000, "card": 6_000, "coupon": 1_000}
    assert combined_refunds.allocate(parts, 0, 4_000) == {"balance": 3_000, "card": 1_000,
                                                          "coupon": 0}
    assert combined_refunds.allocate(parts, 8_500, 1_500) == {"balance": 0, "card": 500,
                                                              "coupon": 1_000}


@given(amounts=st.lists(st.integers(1, 10_000), min_size=1, max_size=6),
       before=st.integers(0, 10_000), parts=st.fixed_dictionaries(
           {"balance": st.integers(0, 5_000), "card": st.integers(0, 5_000),
            "coupon": st.integers(0, 5_000)}))
def test_allocate_splits_exactly(amounts, before, parts):
    total = sum(parts.values())
    before = min(before, total)
    amount = min(sum(amounts), total - before)
    split = combined_refunds.allocate(parts, before, amount)
    assert sum(split.values()) == amount
    assert all(0 <= split[leg] <= parts[leg] for leg in parts)


# -- the property -------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amount=st.integers(1, 50_000), held=st.integers(0, 20_000),
       balance=st.integers(0, 20_000), coupon=st.sampled_from(("", "voucher", "discount")),
       value=st.integers(1, 10_000), outcome=st.sampled_from(("SUCCESS", "DECLINED")))
def test_a_combined_order_pays_exactly_or_reverses_every_leg(amount, held, balance, coupon,
                                                            value, outcome):
    d = Driver()
    if held:
        credit(d, "U00001", held)
    cid = issue(d, "U00001", kind=coupon, value=value, cap=2_000) if coupon else ""
    issue(d, "U00001")   # another coupon, never used
    fields = {"balance_amount": balance, "card_no": CARD}
    if cid:
        fields["coupon_id"] = cid
    before = ledger.balance(d.conn, coupons.MARKETING, "CNY")
    oid, fx = pay(d, "MO1", amount, **fields)
    answer_bank(d, fx, pay_result=outcome)
    order = d.order(oid) if oid else None
    legs = combined.legs(d.conn, oid) if oid else {}
    if order is None or not legs:   # refused at the door (legs do not add up): nothing moved
        assert user_balance(d, "U00001") == held
    elif order["status"] == "SUCCEEDED":
        assert sum(leg["amount"] for leg in legs.values()) == amount
        assert all(leg["status"] == "KEPT" for leg in legs.values())
        fees = d.conn.execute("SELECT SUM(merchant_fee) FROM pay_orders").fetchone()[0]
        assert merchant_balance(d) == amount - fees
        assert user_balance(d, "U00001") == held - legs.get("balance", {}).get("amount", 0)
        cut = legs.get("coupon", {}).get("amount", 0)
        assert ledger.balance(d.conn, coupons.MARKETING, "CNY") == before + cut
    else:
        assert order["status"] == "FAILED"
        assert all(leg["status"] in ("REVERSED", "FAILED") for leg in legs.values())
        assert user_balance(d, "U00001") == held and merchant_balance(d) == 0
        assert ledger.balance(d.conn, combined.TRANSIT, "CNY") == 0
    counts = dict(d.conn.execute("SELECT status, COUNT(*) FROM coupons GROUP BY status"))
    assert sum(counts.values()) == (2 if cid else 1)
    used = d.conn.execute("SELECT COUNT(*) FROM coupons c JOIN pay_orders o ON "
                          "o.order_id = c.order_id WHERE c.status='USED' AND "
                          "o.status='SUCCEEDED'").fetchone()[0]
    assert used == counts.get("USED", 0)
