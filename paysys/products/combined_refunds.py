"""Refunds of combined orders, and the refund of one child pay order (a card leg, a trade's
attempt) that the combined and trade families both use.

A refund of `amount` on a combined order gives each leg back in a fixed order: the balance
leg first, then the card leg, then the coupon's cut (`allocate`). The card part is a refund
order of the card leg (reason "merchant", refund_no `<refund_id>.card`) sent to its channel
like any refund (`refund_child`); the combined refund waits for it (`combined_refund_poll`
timer: no hook is needed in refunds.py) and then succeeds or fails with it. On success one
entry gives the rest back: Dr liability:merchant, Cr liability:user (balance part), Cr
expense:marketing (coupon part); the refund that makes the order fully refunded restores the
coupon (USED -> ISSUED). Table `combined_refunds` records each refund's split.
"""

from paysys import ledger, payments, refunds, store
from paysys.ledger import Line
from paysys.products import coupons

POLL_MS = 2_000
ORDER = ("balance", "card", "coupon")   # which leg a refund gives back first

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS combined_refunds (refund_id TEXT PRIMARY KEY, "
    "order_id TEXT NOT NULL, balance INTEGER NOT NULL, card INTEGER NOT NULL, "
    "coupon INTEGER NOT NULL, child_refund_id TEXT NOT NULL DEFAULT '')",
)


def allocate(parts: dict[str, int], before: int, amount: int) -> dict[str, int]:
    """Split a refund of `amount`, after `before` was already refunded, over the legs `parts`
    ({leg: amount}) taken in the order ORDER: {leg: part} (every leg of ORDER, 0 if none)."""
    out, start, end = {}, before, before + amount
    low = 0
    for leg in ORDER:
        high = low + parts.get(leg, 0)
        out[leg] = max(0, min(end, high) - max(start, low))
        low = high
    return out


def affordable(node, merchant_id: str, currency: str, amount: int) -> bool:
    """Whether the merchant's balance, less the refunds in flight, can pay `amount`."""
    held = ledger.balance(node.conn, f"liability:merchant:{merchant_id}", currency)
    return amount <= held - node.reserved(merchant_id)


def refund_child(node, child: dict, amount: int, refund_no: str, now_ms: int) -> str:
    """Refund `amount` of the pay order `child` at its channel (a merchant refund, so the
    charge stays the child's and the refund is the merchant's); returns the refund id. The
    usual refund flow (refunds.on_refund) takes the answer, posts and publishes it. The
    caller checks the merchant can pay it (`affordable`)."""
    refund = {"refund_id": node.new_id("R"), "order_id": child["order_id"],
              "merchant_id": child["merchant_id"], "refund_no": refund_no, "amount": amount,
              "currency": child["currency"], "status": "CREATED", "channel": child["channel"],
              "created_ms": now_ms, "updated_ms": now_ms, "error_code": "", "reason": "merchant",
              "charge_ref": "", "method": "refund"}
    node.create_order("refund", refund, now_ms)
    node.reserve(child["merchant_id"], amount)
    node.move("refund", refund, "submit", now_ms)
    req_id = f"{refund['refund_id']}.r1"   # refunds.py's own numbering: its retries find it
    body = node.adapters[child["channel"]].refund(
        req_id, store.pay_request_id(node.conn, child["order_id"], child["channel"]), refund, child)
    node.call_channel(child["channel"], "refund", refund["refund_id"], req_id, body, now_ms)
    return refund["refund_id"]


def _parts(conn, order_id: str) -> tuple[dict[str, int], dict[str, str]]:
    rows = conn.execute("SELECT leg, amount, ref FROM combined_legs WHERE order_id=?",
                        (order_id,)).fetchall()
    return {leg: amount for leg, amount, _ in rows}, {leg: ref for leg, _, ref in rows}


def refund(node, order: dict, refund_row: dict, now_ms: int) -> None:
    """Internal.refund of product combined: `refund_row` is PROCESSING, its amount reserved."""
    conn, rid = node.conn, refund_row["refund_id"]
    parts, refs = _parts(conn, order["order_id"])
    before = store.pending_refund_total(conn, order["order_id"]) - refund_row["amount"]
    split = allocate(parts, before, refund_row["amount"])
    child_refund = ""
    if split["card"]:
        child = store.pay_order(conn, refs["card"])
        child_refund = refund_child(node, child, split["card"], f"{rid}.card", now_ms)
    conn.execute("INSERT INTO combined_refunds (refund_id, order_id, balance, card, coupon, "
                 "child_refund_id) VALUES (?,?,?,?,?,?)",
                 (rid, order["order_id"], split["balance"], split["card"], split["coupon"],
                  child_refund))
    node.event("combined.refund", order["order_id"], {"refund_id": rid, **split})
    if child_refund:
        node.at(now_ms + POLL_MS, "combined_refund_poll", rid)
    else:
        _finish(node, rid, now_ms)


def on_poll_due(node, refund_id: str, arg: int, now_ms: int) -> None:
    _finish(node, refund_id, now_ms)


def _finish(node, refund_id: str, now_ms: int) -> None:
    conn = node.conn
    refund_row = store.refund_order(conn, refund_id)
    split = conn.execute("SELECT order_id, balance, card, coupon, child_refund_id FROM "
                         "combined_refunds WHERE refund_id=?", (refund_id,)).fetchone()
    if refund_row is None or split is None or refund_row["status"] != "PROCESSING":
        return
    order_id, balance, _card, cut, child_refund = split
    if child_refund:
        child = store.refund_order(conn, child_refund)
        if child["status"] not in ("SUCCEEDED", "FAILED"):
            node.at(now_ms + POLL_MS, "combined_refund_poll", refund_id)
            return
        if child["status"] == "FAILED":
            node.move("refund", refund_row, "decline", now_ms,
                      error_code=child["error_code"] or "CARD_REFUND_FAILED")
            refunds._finished(node, refund_row, now_ms)
            return
    order = store.pay_order(conn, order_id)
    cur = order["currency"]
    lines = [Line(f"liability:merchant:{order['merchant_id']}", cur, balance + cut, 0),
             Line(f"liability:user:{order['user_id']}", cur, 0, balance),
             Line(coupons.MARKETING, cur, 0, cut)]
    node.move("refund", refund_row, "success", now_ms)
    if balance + cut:
        payments.post(node, refund_id, "refund", [x for x in lines if x.debit or x.credit],
                      now_ms)
    store.add_refunded(conn, order_id, refund_row["amount"], now_ms)
    if order["refunded"] + refund_row["amount"] >= order["amount"]:   # fully refunded
        _, refs = _parts(conn, order_id)
        if "coupon" in refs:
            coupons.release(node, refs["coupon"], order_id, now_ms, event="restore")
    refunds._finished(node, refund_row, now_ms)


def recover(node, now_ms: int) -> None:
    for (refund_id,) in node.conn.execute(
            "SELECT c.refund_id FROM combined_refunds c JOIN refund_orders r "
            "ON r.refund_id = c.refund_id WHERE r.status='PROCESSING'").fetchall():
        node.at(now_ms, "combined_refund_poll", refund_id)


TIMERS = {"combined_refund_poll": on_poll_due}
