"""Combined payment (组合支付): one order paid by a coupon, the user's balance and a card.

A pay order of product "combined" (served inside paysys: its channel is "combined") names its
legs in `pay.create`: `coupon_id` (optional), `balance_amount` (optional, default 0) and, for
the rest, `card_no`. `accept` checks them (the coupon is the user's and usable, the balance
covers its leg, the legs add up to the amount: card = amount - coupon's cut - balance) and
stores them in `combined_legs`. When the order is submitted (`pay`):

1. the coupon is LOCKED for the order (paysys/products/coupons.py);
2. the balance leg leaves the user's stored value for `liability:combined` (money of legs in
   flight): Dr liability:user:<U>, Cr liability:combined;
3. the card leg is a child pay order of product "quick" (`parent_id` = this order, no merchant
   notification of its own) that runs the normal quick flow, query compensation included.

The family learns the child's final state through `PARENTS["P"]` (payments.finished calls
`on_leg_final`). Card leg SUCCEEDED: the order succeeds; the merchant is credited the full
price (the card part by the child's own entry, the balance and coupon parts by the order's:
Dr liability:combined, Dr expense:marketing, Cr liability:merchant, Cr income:fee) and the
coupon is USED. Card leg failed (FAILED, CLOSED, BLOCKED, HELD, DUPLICATE): every leg taken is
reversed (a new entry gives the balance back, the coupon is released) and the order fails with
the child's code. A card leg that succeeds after its order failed (a late success reopened
under the "reopen" policy) is refunded in full. Refunds: `combined_refunds.py`.

Legs (`combined_legs.status`): PENDING (stored) -> TAKEN (locked / debited / sent) -> KEPT (the
order succeeded) or REVERSED (given back) / FAILED (the card leg did not pay).
"""

from paysys import ledger, payments, store
from paysys.errors import GatewayError
from paysys.ledger import LedgerError, Line
from paysys.products import coupons
from paysys.products.base import Internal, Posting
from paysys.products.combined_refunds import SCHEMA as REFUND_SCHEMA
from paysys.products.combined_refunds import TIMERS as REFUND_TIMERS
from paysys.products.combined_refunds import recover as recover_refunds
from paysys.products.combined_refunds import refund, refund_child
from paysys.validation import CARD_PATTERN, Rule

ledger.register_family("liability:combined", "liability", "credit")
TRANSIT = "liability:combined"
PRODUCT = "combined"
CARD_PRODUCT = "quick"
LEGS = ("coupon", "balance", "card")
FAILED_CHILD = ("FAILED", "CLOSED", "BLOCKED", "HELD", "DUPLICATE")

SCHEMA = (
    *coupons.SCHEMA,
    "CREATE TABLE IF NOT EXISTS combined_legs (order_id TEXT NOT NULL, leg TEXT NOT NULL, "
    "amount INTEGER NOT NULL, ref TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, "
    "updated_ms INTEGER NOT NULL, PRIMARY KEY (order_id, leg))",
    *REFUND_SCHEMA,
)


def user_account(user_id: str) -> str:
    return f"liability:user:{user_id}"


def _balance(conn, user_id: str, currency: str) -> int:
    return ledger.balance(conn, user_account(user_id), currency)


def legs(conn, order_id: str) -> dict[str, dict]:
    """The legs of a combined order: {leg: {amount, ref, status}}."""
    return {leg: {"amount": amount, "ref": ref, "status": status}
            for leg, amount, ref, status in conn.execute(
                "SELECT leg, amount, ref, status FROM combined_legs WHERE order_id=? ORDER BY leg",
                (order_id,)).fetchall()}


def _set_leg(conn, order_id: str, leg: str, status: str, now_ms: int, ref: str | None = None):
    if ref is None:
        conn.execute("UPDATE combined_legs SET status=?, updated_ms=? WHERE order_id=? AND leg=?",
                     (status, now_ms, order_id, leg))
    else:
        conn.execute("UPDATE combined_legs SET status=?, ref=?, updated_ms=? WHERE order_id=? AND "
                     "leg=?", (status, ref, now_ms, order_id, leg))


def plan(conn, order: dict, body: dict, now_ms: int) -> dict[str, tuple[int, str]]:
    """The legs `body` asks for: {leg: (amount, ref)}, only those with an amount; GatewayError
    naming the field when they do not add up. Writes nothing."""
    amount, user_id, currency = order["amount"], order["user_id"], order["currency"]
    out: dict[str, tuple[int, str]] = {}
    cut = 0
    if body.get("coupon_id"):
        coupon = coupons.usable(conn, body["coupon_id"], user_id, currency, amount, now_ms)
        cut = coupons.off(coupon, amount)
        out["coupon"] = (cut, coupon["coupon_id"])
    balance = body.get("balance_amount") or 0
    if isinstance(balance, bool) or not isinstance(balance, int) or balance < 0:
        raise GatewayError("INVALID_PARAM", f"balance_amount: expected an integer >= 0 of minor "
                           f"units, got {balance!r}", "balance_amount")
    if balance > amount - cut:
        raise GatewayError("INVALID_PARAM", f"balance_amount: expected at most {amount - cut} "
                           f"(the amount after the coupon), got {balance}", "balance_amount")
    if balance:
        held = _balance(conn, user_id, currency)
        if balance > held:
            raise GatewayError("INVALID_PARAM", f"balance_amount: the user's balance "
                               f"{held} {currency} cannot pay {balance}", "balance_amount")
        out["balance"] = (balance, "")
    card = amount - cut - balance
    if card:
        card_no = body.get("card_no") or ""
        if not card_no:
            raise GatewayError("INVALID_PARAM", f"card_no: expected a card for the {card} left "
                               "after the coupon and the balance, got nothing", "card_no")
        out["card"] = (card, card_no)
    return out


def accept(node, order: dict, body: dict, now_ms: int) -> None:
    planned = plan(node.conn, order, body, now_ms)
    for leg, (amount, ref) in planned.items():
        node.conn.execute("INSERT INTO combined_legs (order_id, leg, amount, ref, status, "
                          "updated_ms) VALUES (?,?,?,?,?,?)",
                          (order["order_id"], leg, amount, ref, "PENDING", now_ms))
    node.event("combined.legs", order["order_id"],
               {"legs": {leg: amount for leg, (amount, _) in planned.items()}})


def pay(node, order: dict, now_ms: int) -> None:
    """The order is submitted: take the coupon and the balance, send the card leg."""
    conn, oid = node.conn, order["order_id"]
    todo = legs(conn, oid)
    if "coupon" in todo:
        if coupons.lock(node, todo["coupon"]["ref"], oid, now_ms) is None:
            _unwind(node, order, "COUPON_UNAVAILABLE", now_ms)
            return
        _set_leg(conn, oid, "coupon", "TAKEN", now_ms)
    if "balance" in todo:
        amount = todo["balance"]["amount"]
        lines = [Line(user_account(order["user_id"]), order["currency"], amount, 0),
                 Line(TRANSIT, order["currency"], 0, amount)]
        try:
            entry_id = payments.post(node, oid, "combined:balance", lines, now_ms)
        except LedgerError as err:
            if err.code != "INSUFFICIENT_BALANCE":
                raise
            _unwind(node, order, "INSUFFICIENT_BALANCE", now_ms)
            return
        _set_leg(conn, oid, "balance", "TAKEN", now_ms, ref=str(entry_id))
    if "card" in todo:
        _send_card(node, order, todo["card"], now_ms)
    else:
        _settle(node, order, now_ms)


def _send_card(node, order: dict, leg: dict, now_ms: int) -> None:
    oid = order["order_id"]
    route = node.router.route(CARD_PRODUCT, leg["amount"], order["currency"], now_ms)
    child_id = node.new_id("P")
    node.event("route.decision", child_id, route.event_data())
    if route.channel_id is None:
        _set_leg(node.conn, oid, "card", "FAILED", now_ms)
        _unwind(node, order, "NO_ROUTE", now_ms)
        return
    child = {
        "order_id": child_id, "merchant_id": order["merchant_id"],
        "merchant_order_no": f"{order['merchant_order_no']}.card", "user_id": order["user_id"],
        "product": CARD_PRODUCT, "channel": route.channel_id, "amount": leg["amount"],
        "currency": order["currency"], "status": "CREATED", "merchant_fee": 0,
        "channel_cost": 0, "refunded": 0, "created_ms": now_ms, "updated_ms": now_ms,
        "channel_ref": "", "notify_url": "", "error_code": "", "card_no": leg["ref"],
        "attempt": 1, "idempotency_key": "", "received": 0, "app_id": order.get("app_id") or "",
        "parent_id": oid, "mandate_no": "",
    }
    node.create_order("pay", child, now_ms)
    _set_leg(node.conn, oid, "card", "TAKEN", now_ms, ref=child_id)
    payments.submit(node, child, "submit", now_ms)


def on_leg_final(node, child: dict, now_ms: int) -> None:
    """payments.finished of a pay order whose parent is a pay order (PARENTS["P"])."""
    order = store.pay_order(node.conn, child["parent_id"])
    if order is None or order["product"] != PRODUCT:
        return
    leg = legs(node.conn, order["order_id"]).get("card")
    if leg is None or leg["ref"] != child["order_id"]:
        return
    if order["status"] not in payments.ACTIVE:
        if child["status"] == "SUCCEEDED" and order["status"] != "SUCCEEDED":
            _unwound_late(node, child, now_ms)
        return
    if child["status"] == "SUCCEEDED":
        _settle(node, order, now_ms)
    elif child["status"] in FAILED_CHILD:
        _set_leg(node.conn, order["order_id"], "card", "FAILED", now_ms)
        _unwind(node, order, child["error_code"] or f"CARD_LEG_{child['status']}", now_ms)


def _unwound_late(node, child: dict, now_ms: int) -> None:
    """The card leg was paid after its order failed: the whole charge goes back."""
    refund_no = f"{child['order_id']}.unwind"
    if store.refund_by_merchant_no(node.conn, child["merchant_id"], refund_no) is None:
        node.event("combined.late_leg", child["parent_id"], {"child": child["order_id"],
                                                             "amount": child["amount"]})
        refund_child(node, child, child["amount"], refund_no, now_ms)


def _settle(node, order: dict, now_ms: int) -> None:
    """Every leg paid: the order succeeds, the merchant is credited the full price."""
    conn, oid, cur = node.conn, order["order_id"], order["currency"]
    todo = legs(conn, oid)
    balance = todo.get("balance", {}).get("amount", 0)
    cut = todo.get("coupon", {}).get("amount", 0)
    inside = balance + cut
    fee = node.merchant_fee(order, inside) if inside else 0
    lines = [Line(TRANSIT, cur, balance, 0), Line(coupons.MARKETING, cur, cut, 0),
             Line(f"liability:merchant:{order['merchant_id']}", cur, 0, inside - fee),
             Line("income:fee", cur, 0, fee)]
    if "coupon" in todo:
        coupons.use(node, todo["coupon"]["ref"], oid, now_ms)
    payments.move(node, order, "success", now_ms, merchant_fee=fee, channel_cost=0,
                  received=order["amount"])
    if inside:
        payments.post(node, oid, "payment", [x for x in lines if x.debit or x.credit], now_ms)
    conn.execute("UPDATE combined_legs SET status='KEPT', updated_ms=? WHERE order_id=?",
                 (now_ms, oid))
    payments.finished(node, order, now_ms)


def _unwind(node, order: dict, code: str, now_ms: int) -> None:
    """A leg could not be paid: give back every leg taken, and fail the order with `code`."""
    conn, oid, cur = node.conn, order["order_id"], order["currency"]
    for leg, row in legs(conn, oid).items():
        if row["status"] != "TAKEN":
            continue
        if leg == "coupon":
            coupons.release(node, row["ref"], oid, now_ms)
        elif leg == "balance":
            payments.post(node, oid, "combined:reverse",
                          [Line(TRANSIT, cur, row["amount"], 0),
                           Line(user_account(order["user_id"]), cur, 0, row["amount"])], now_ms)
        _set_leg(conn, oid, leg, "REVERSED", now_ms)
    node.event("combined.reversed", oid, {"code": code})
    payments.move(node, order, "decline", now_ms, error_code=code)
    payments.finished(node, order, now_ms)


def recover(node, now_ms: int) -> None:
    """The card legs recover as pay orders; coupon expiries and refund polls are re-armed."""
    coupons.recover(node, now_ms)
    recover_refunds(node, now_ms)


_MONEY = Rule("int", "an integer >= 0 of minor units", required=False, min_value=0)
INTERNAL = {PRODUCT: Internal(pay=pay, refund=refund, accept=accept)}
PARENTS = {"P": on_leg_final}
ORDERS = dict(coupons.ORDERS)
API = dict(coupons.API)
FIELDS = dict(coupons.FIELDS)
TIMERS = {**coupons.TIMERS, **REFUND_TIMERS}
# the fields pay.create takes for product "combined" (validated by `plan`): coupon_id,
# balance_amount, card_no (pattern CARD_PATTERN)
PAY_FIELDS = {"coupon_id": Rule("str", "a coupon id", required=False),
              "balance_amount": _MONEY,
              "card_no": Rule("str", "a card number of 13-19 digits", required=False,
                              pattern=CARD_PATTERN)}
POSTINGS = (
    *coupons.POSTINGS,
    Posting(PRODUCT, "pay: balance leg", "liability:user:<user_id>", "Dr", "balance leg"),
    Posting(PRODUCT, "pay: balance leg", TRANSIT, "Cr", "balance leg"),
    Posting(PRODUCT, "pay: card leg", "(a quick pay order, its own entry)", "", "card leg"),
    Posting(PRODUCT, "pay: success", TRANSIT, "Dr", "balance leg"),
    Posting(PRODUCT, "pay: success", coupons.MARKETING, "Dr", "coupon cut"),
    Posting(PRODUCT, "pay: success", "liability:merchant:<merchant_id>", "Cr",
            "balance leg + coupon cut - fee"),
    Posting(PRODUCT, "pay: success", "income:fee", "Cr", "fee on balance leg + coupon cut"),
    Posting(PRODUCT, "pay: reverse", TRANSIT, "Dr", "balance leg"),
    Posting(PRODUCT, "pay: reverse", "liability:user:<user_id>", "Cr", "balance leg"),
    Posting(PRODUCT, "refund", "liability:merchant:<merchant_id>", "Dr",
            "balance part + coupon part"),
    Posting(PRODUCT, "refund", "liability:user:<user_id>", "Cr", "balance part"),
    Posting(PRODUCT, "refund", coupons.MARKETING, "Cr", "coupon part"),
    Posting(PRODUCT, "refund", "(card part: a refund of the card leg, its own entry)", "",
            "card part"),
)
