"""Trade core vs payment core (交易核心 / 支付核心): a business order paid by several attempts.

A trade (`trade.create`: merchant_order_no, user, amount) is the merchant's business order, in
table `trade_orders`; each payment attempt (`trade.pay`: an amount, a product, a card) is a pay
order of the payment core with `parent_id` = the trade id, `attempt` 1, 2, 3... and its own
merchant_order_no `<trade's>.<attempt>` (attempts add up: none is another's duplicate). The
attempt runs the normal flow of its product; the family learns its final state through
`PARENTS["B"]` (`on_attempt_final`). State table:

    WAITING --part--> PARTIAL --part--> PARTIAL          (paid less than the amount)
    WAITING/PARTIAL --paid--> PAID                       (paid exactly)
    WAITING/PARTIAL/PAID --overpaid--> OVERPAID_REFUNDING --refunded--> PAID
    WAITING/PARTIAL --close--> CLOSED                    (its TTL passed unpaid)

What the trade has received is recomputed from its attempts each time (the SUCCEEDED attempts
minus the refunds of the excess), so a repeated or late report changes nothing twice. An
over-payment is refunded automatically: the excess, from the attempt that caused it, by a
refund of that attempt (refund_no `<trade>.x<n>`, a merchant-side refund of a kept charge, as
the money is the trade's); a failed excess refund is made again. A trade still unpaid at its
TTL closes: nothing to refund when it is WAITING; each paid attempt of a PARTIAL one, and any
attempt paid after the close, is refunded in full (refund_no `<trade>.c.<order>`).
"""

from dataclasses import dataclass
from enum import StrEnum

from paysys import payments, store, validation
from paysys.errors import GatewayError
from paysys.products.base import Posting
from paysys.products.combined_refunds import affordable, refund_child
from paysys.validation import Rule

DEFAULT_TTL_MS = 30 * 60_000
POLL_MS = 2_000
RETRY_MS = 60_000


@dataclass(frozen=True)
class TradeSettings:
    """`[products.trade]` as the payment system reads it: a trade's time to live."""

    ttl_ms: int = DEFAULT_TTL_MS


class TradeStatus(StrEnum):
    WAITING = "WAITING"
    PARTIAL = "PARTIAL"
    PAID = "PAID"
    OVERPAID_REFUNDING = "OVERPAID_REFUNDING"
    CLOSED = "CLOSED"


T = TradeStatus
TRANSITIONS: dict[TradeStatus, dict[str, TradeStatus]] = {
    T.WAITING: {"part": T.PARTIAL, "paid": T.PAID, "overpaid": T.OVERPAID_REFUNDING,
                "close": T.CLOSED},
    T.PARTIAL: {"part": T.PARTIAL, "paid": T.PAID, "overpaid": T.OVERPAID_REFUNDING,
                "close": T.CLOSED},
    T.PAID: {"overpaid": T.OVERPAID_REFUNDING},
    T.OVERPAID_REFUNDING: {"refunded": T.PAID, "overpaid": T.OVERPAID_REFUNDING},
    T.CLOSED: {},
}
FINAL = frozenset({T.CLOSED})
OPEN = (T.WAITING.value, T.PARTIAL.value)
COLUMNS = ("trade_id", "merchant_id", "merchant_order_no", "user_id", "amount", "currency",
           "status", "paid_total", "refunded_excess", "attempts", "created_ms", "updated_ms",
           "expire_ms", "notify_url", "error_code", "notified")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS trade_orders (trade_id TEXT PRIMARY KEY, merchant_id TEXT NOT "
    "NULL, merchant_order_no TEXT NOT NULL, user_id TEXT NOT NULL, amount INTEGER NOT NULL, "
    "currency TEXT NOT NULL, status TEXT NOT NULL, paid_total INTEGER NOT NULL DEFAULT 0, "
    "refunded_excess INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
    "created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, expire_ms INTEGER NOT NULL, "
    "notify_url TEXT NOT NULL DEFAULT '', error_code TEXT NOT NULL DEFAULT '', "
    "notified TEXT NOT NULL DEFAULT '')",
    "CREATE UNIQUE INDEX IF NOT EXISTS trade_orders_no ON trade_orders (merchant_id, "
    "merchant_order_no)",
)
ORDERS = {"trade": ("trade_orders", "trade_id", TRANSITIONS, FINAL)}


def get(conn, trade_id: str) -> dict | None:
    row = conn.execute(f"SELECT {','.join(COLUMNS)} FROM trade_orders WHERE trade_id=?",
                       (trade_id,)).fetchone()
    return dict(zip(COLUMNS, row, strict=True)) if row else None


def _view(trade: dict, reply_type: str, **more) -> dict:
    return {"type": f"{reply_type}.reply", "ok": True, "trade_id": trade["trade_id"],
            "merchant_order_no": trade["merchant_order_no"], "status": trade["status"],
            "amount": trade["amount"], "paid_total": trade["paid_total"],
            "refunded_excess": trade["refunded_excess"], "attempts": trade["attempts"], **more}


def _mine(node, body: dict) -> dict:
    trade = get(node.conn, body["trade_id"])
    if trade is None or trade["merchant_id"] != body["merchant_id"]:
        raise GatewayError("NOT_FOUND", f"trade_id: no trade {body['trade_id']} for this "
                           "merchant", "trade_id")
    return trade


def create(node, src: str, body: dict, now_ms: int) -> None:
    conn = node.conn
    old = conn.execute("SELECT trade_id FROM trade_orders WHERE merchant_id=? AND "
                       "merchant_order_no=?", (body["merchant_id"],
                                               body["merchant_order_no"])).fetchone()
    if old is not None:
        trade = get(conn, old[0])
        if (trade["amount"], trade["user_id"]) != (body["amount"], body["user_id"]):
            raise GatewayError("DUPLICATE_ORDER", "merchant_order_no: already used for another "
                               "trade", "merchant_order_no")
        node.answer(src, body, _view(trade, body["type"]), now_ms, deferred=False)
        return
    settings = node.cfg.products.get("trade")
    ttl = body.get("ttl_ms") or getattr(settings, "ttl_ms", DEFAULT_TTL_MS)
    trade = {"trade_id": node.new_id("B"), "merchant_id": body["merchant_id"],
             "merchant_order_no": body["merchant_order_no"], "user_id": body["user_id"],
             "amount": body["amount"], "currency": body["currency"], "status": T.WAITING.value,
             "paid_total": 0, "refunded_excess": 0, "attempts": 0, "created_ms": now_ms,
             "updated_ms": now_ms, "expire_ms": now_ms + ttl,
             "notify_url": body.get("notify_url") or "", "error_code": "", "notified": ""}
    node.create_order("trade", trade, now_ms)
    node.at(trade["expire_ms"], "trade_expire", trade["trade_id"])
    node.answer(src, body, _view(trade, body["type"]), now_ms, deferred=False)


def pay(node, src: str, body: dict, now_ms: int) -> None:
    """A payment attempt of a trade: a pay order of the payment core, answered at once (its
    outcome comes with trade.query and the trade's notification)."""
    trade = _mine(node, body)
    if trade["status"] not in OPEN:
        raise GatewayError("BAD_STATE", f"trade_id: trade {trade['trade_id']} is "
                           f"{trade['status']}, it takes no more payments", "trade_id")
    product = body["product"]
    if product in node.internal:
        channel = product
    else:
        route = node.router.route(product, body["amount"], trade["currency"], now_ms)
        if route.channel_id is None:
            raise GatewayError("NO_ROUTE", f"no channel can take this payment: {route.reason}",
                               "product")
        channel = route.channel_id
    n = trade["attempts"] + 1
    node.conn.execute("UPDATE trade_orders SET attempts=?, updated_ms=? WHERE trade_id=?",
                      (n, now_ms, trade["trade_id"]))
    trade["attempts"] = n
    order = {
        "order_id": node.new_id("P"), "merchant_id": trade["merchant_id"],
        "merchant_order_no": f"{trade['merchant_order_no']}.{n}", "user_id": trade["user_id"],
        "product": product, "channel": channel, "amount": body["amount"],
        "currency": trade["currency"], "status": "CREATED", "merchant_fee": 0,
        "channel_cost": 0, "refunded": 0, "created_ms": now_ms, "updated_ms": now_ms,
        "channel_ref": "", "notify_url": "", "error_code": "", "card_no": body.get("card_no") or "",
        "attempt": n, "idempotency_key": body.get("idempotency_key") or "", "received": 0,
        "app_id": "", "parent_id": trade["trade_id"], "mandate_no": "",
    }
    node.create_order("pay", order, now_ms)
    node.event("trade.attempt", trade["trade_id"], {"order_id": order["order_id"], "attempt": n,
                                                    "amount": body["amount"]})
    node.answer(src, body, _view(trade, body["type"], order_id=order["order_id"], attempt=n),
                now_ms, deferred=False)
    payments.submit(node, order, "submit", now_ms)


def query(node, src: str, body: dict, now_ms: int) -> None:
    node.answer(src, body, _view(_mine(node, body), body["type"]), now_ms, deferred=False)


# -- what the attempts paid --------------------------------------------------------------------

def _sums(conn, trade_id: str) -> tuple[int, int, int]:
    """(paid by SUCCEEDED attempts, excess refunds not FAILED, excess refunds SUCCEEDED)."""
    (paid,) = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM pay_orders WHERE parent_id=? "
                           "AND status='SUCCEEDED'", (trade_id,)).fetchone()
    covered, done = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN status != 'FAILED' THEN amount END), 0), "
        "COALESCE(SUM(CASE WHEN status = 'SUCCEEDED' THEN amount END), 0) FROM refund_orders "
        "WHERE merchant_id=(SELECT merchant_id FROM trade_orders WHERE trade_id=?) "
        "AND refund_no LIKE ? || '.x%'", (trade_id, trade_id)).fetchone()
    return paid, covered, done


def _move(node, trade: dict, event: str, now_ms: int, **changes) -> None:
    node.move("trade", trade, event, now_ms, **changes)


def on_attempt_final(node, order: dict, now_ms: int) -> None:
    """payments.finished of an attempt (PARENTS["B"]): account for what it paid."""
    trade = get(node.conn, order["parent_id"])
    if trade is None or order["status"] != "SUCCEEDED":
        return
    if trade["status"] == T.CLOSED.value:
        _refund_closed(node, trade, now_ms)
        return
    _account(node, trade, order, now_ms)


def _account(node, trade: dict, order: dict | None, now_ms: int) -> None:
    conn, tid = node.conn, trade["trade_id"]
    paid, covered, done = _sums(conn, tid)
    conn.execute("UPDATE trade_orders SET paid_total=?, refunded_excess=? WHERE trade_id=?",
                 (paid, done, tid))
    trade.update(paid_total=paid, refunded_excess=done)
    net = paid - covered
    if net < trade["amount"]:
        if trade["status"] in OPEN:
            _move(node, trade, "part", now_ms)
    elif net == trade["amount"]:
        if trade["status"] in OPEN:
            _move(node, trade, "paid", now_ms)
    else:
        excess = net - trade["amount"]
        source = order or _last_attempt(conn, tid)
        (n,) = conn.execute("SELECT COUNT(*) FROM refund_orders WHERE merchant_id=? AND "
                            "refund_no LIKE ? || '.x%'", (trade["merchant_id"], tid)).fetchone()
        part = min(excess, source["amount"] - source["refunded"])
        rid = ""
        if affordable(node, trade["merchant_id"], trade["currency"], part):
            rid = refund_child(node, source, part, f"{tid}.x{n + 1}", now_ms)
        node.event("trade.overpaid", tid, {"excess": excess, "refund_id": rid,
                                           "order_id": source["order_id"]})
        if trade["status"] != T.OVERPAID_REFUNDING.value:
            _move(node, trade, "overpaid", now_ms)
        node.at(now_ms + (POLL_MS if rid else RETRY_MS), "trade_refund_poll", tid)
    _tell(node, trade, now_ms)


def _last_attempt(conn, trade_id: str) -> dict:
    (oid,) = conn.execute("SELECT order_id FROM pay_orders WHERE parent_id=? AND status="
                          "'SUCCEEDED' ORDER BY attempt DESC LIMIT 1", (trade_id,)).fetchone()
    return store.pay_order(conn, oid)


def _flying(node, trade: dict, pattern: str) -> int:
    (n,) = node.conn.execute(
        "SELECT COUNT(*) FROM refund_orders WHERE merchant_id=? AND refund_no LIKE ? AND "
        "status NOT IN ('SUCCEEDED','FAILED')", (trade["merchant_id"], pattern)).fetchone()
    return n


def on_refund_poll(node, trade_id: str, arg: int, now_ms: int) -> None:
    """The refunds of a trade: an over-paid one is PAID again once its excess went back (a
    failed excess refund is made again); a closed one refunds every paid attempt until each
    is back."""
    trade = get(node.conn, trade_id)
    if trade is None:
        return
    if trade["status"] == T.CLOSED.value:
        if _flying(node, trade, f"{trade_id}.c.%"):
            node.at(now_ms + POLL_MS, "trade_refund_poll", trade_id)
        else:
            _refund_closed(node, trade, now_ms)
        return
    if trade["status"] != T.OVERPAID_REFUNDING.value:
        return
    if _flying(node, trade, f"{trade_id}.x%"):
        node.at(now_ms + POLL_MS, "trade_refund_poll", trade_id)
        return
    paid, covered, done = _sums(node.conn, trade_id)
    if paid - covered > trade["amount"]:   # an excess refund failed or waited: again
        _account(node, trade, None, now_ms)
        return
    node.conn.execute("UPDATE trade_orders SET paid_total=?, refunded_excess=? WHERE trade_id=?",
                      (paid, done, trade_id))
    trade.update(paid_total=paid, refunded_excess=done)
    _move(node, trade, "refunded", now_ms)
    _tell(node, trade, now_ms)


def _refund_whole(node, trade: dict, order: dict, now_ms: int) -> bool:
    """Refund the whole of attempt `order` (paid to a closed trade) unless a refund of it
    succeeded or is in flight; False when the merchant cannot pay it now."""
    base = f"{trade['trade_id']}.c.{order['order_id']}"
    tried = node.conn.execute("SELECT status FROM refund_orders WHERE merchant_id=? AND "
                              "(refund_no = ? OR refund_no LIKE ? || '.%')",
                              (order["merchant_id"], base, base)).fetchall()
    if any(status != "FAILED" for (status,) in tried):
        return True
    if not affordable(node, order["merchant_id"], order["currency"], order["amount"]):
        return False
    refund_no = base if not tried else f"{base}.{len(tried)}"
    rid = refund_child(node, order, order["amount"], refund_no, now_ms)
    node.event("trade.refund_attempt", trade["trade_id"],
               {"order_id": order["order_id"], "refund_id": rid, "amount": order["amount"]})
    return True


def _refund_closed(node, trade: dict, now_ms: int) -> None:
    """Every attempt paid to a closed trade goes back; the poll watches them."""
    done = True
    for (oid,) in node.conn.execute("SELECT order_id FROM pay_orders WHERE parent_id=? AND "
                                    "status='SUCCEEDED' ORDER BY attempt",
                                    (trade["trade_id"],)).fetchall():
        done &= _refund_whole(node, trade, store.pay_order(node.conn, oid), now_ms)
    if _flying(node, trade, f"{trade['trade_id']}.c.%") or not done:
        node.at(now_ms + (POLL_MS if done else RETRY_MS), "trade_refund_poll", trade["trade_id"])


def on_expire_due(node, trade_id: str, arg: int, now_ms: int) -> None:
    """The TTL passed: a trade not paid in full closes, giving back what it received."""
    trade = get(node.conn, trade_id)
    if trade is None or trade["status"] not in OPEN:
        return
    _move(node, trade, "close", now_ms, error_code="EXPIRED")
    _refund_closed(node, trade, now_ms)
    _tell(node, trade, now_ms)


def _tell(node, trade: dict, now_ms: int) -> None:
    """Notify the merchant once the trade is PAID or CLOSED (once per such status)."""
    status = trade["status"]
    if status not in (T.PAID.value, T.CLOSED.value) or trade["notified"] == status:
        return
    node.conn.execute("UPDATE trade_orders SET notified=? WHERE trade_id=?",
                      (status, trade["trade_id"]))
    trade["notified"] = status
    payload = {"merchant_id": trade["merchant_id"], "order_id": trade["trade_id"],
               "merchant_order_no": trade["merchant_order_no"], "status": status,
               "amount": trade["amount"], "currency": trade["currency"]}
    node.notify_merchant("notify.payment", trade["trade_id"], trade["merchant_id"],
                         trade["notify_url"], payload, now_ms)
    node.publish("trade.final", trade["trade_id"], {"status": status}, now_ms)


def recover(node, now_ms: int) -> None:
    for trade_id, status, expire_ms in node.conn.execute(
            "SELECT trade_id, status, expire_ms FROM trade_orders WHERE status IN "
            "('WAITING','PARTIAL','OVERPAID_REFUNDING','CLOSED')").fetchall():
        if status in (T.OVERPAID_REFUNDING.value, T.CLOSED.value):
            node.at(now_ms, "trade_refund_poll", trade_id)
        else:
            node.at(max(now_ms, expire_ms), "trade_expire", trade_id)


_ID = Rule("str", validation.ID_EXPECT, pattern=validation.ID_PATTERN)
_KEY = Rule("str", validation.ID_EXPECT, required=False, pattern=validation.ID_PATTERN)
FIELDS = {
    "trade.create": {
        "idempotency_key": _KEY, "merchant_order_no": _ID, "user_id": _ID,
        "amount": validation.AMOUNT, "currency": validation.CURRENCY,
        "notify_url": Rule("str", "an http(s) URL of at most 512 characters", required=False,
                           max_len=512, pattern=validation.URL_PATTERN),
        "ttl_ms": Rule("int", "a positive integer of ms", required=False, min_value=1),
    },
    "trade.pay": {
        "idempotency_key": _KEY, "trade_id": _ID, "amount": validation.AMOUNT,
        "product": Rule("str", "a product name", pattern=r"^[a-z_]{1,32}$"),
        "card_no": Rule("str", "a card number of 13-19 digits (required for product 'quick')",
                        required=False, pattern=validation.CARD_PATTERN,
                        required_when=("product", "quick")),
    },
    "trade.query": {"trade_id": _ID},
}
API = {"trade.create": create, "trade.pay": pay, "trade.query": query}
TIMERS = {"trade_expire": on_expire_due, "trade_refund_poll": on_refund_poll}
PARENTS = {"B": on_attempt_final}
POSTINGS = (
    Posting("trade", "attempt", "(a pay order of its product, its own entry)", "", "attempt"),
    Posting("trade", "excess refund", "liability:merchant:<merchant_id>", "Dr", "excess"),
    Posting("trade", "excess refund", "asset:channel:<channel>", "Cr", "excess"),
)
