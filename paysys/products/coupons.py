"""Coupons (卡券): vouchers (a fixed amount off) and discounts (basis points off, capped).

The platform issues them to users (`coupon.issue`, one request may issue `count` alike); a
combined order (`paysys/products/combined.py`) locks one while it is in flight, uses it when
it is paid, releases it when it fails, and a full refund restores it. Each coupon is an order
of kind "coupon" (table `coupons`, state table `TRANSITIONS`), so every change is a CAS move
with its `order.state` event:

    ISSUED --lock--> LOCKED --use--> USED --restore--> ISSUED
    LOCKED --release--> ISSUED        ISSUED --expire--> EXPIRED

A coupon's value is the platform's marketing expense: when a paid order uses it, the merchant
is still credited the full price, the platform's `expense:marketing` pays the part off. Issuing
posts nothing (a promise, not money). `promo.credit` is the platform's gift of stored value to a
user (红包), also a marketing expense: the way a run gives users a balance to spend.
"""

from enum import StrEnum

from paysys import ledger, payments, validation
from paysys.errors import GatewayError
from paysys.ledger import Line
from paysys.products.base import Posting
from paysys.validation import Rule

ledger.register_family("expense:marketing", "expense", "debit")
MARKETING = "expense:marketing"
DEFAULT_TTL_MS = 30 * 86_400_000
KINDS = ("voucher", "discount")
MAX_COUNT = 100   # coupons one coupon.issue may issue


class CouponStatus(StrEnum):
    ISSUED = "ISSUED"
    LOCKED = "LOCKED"
    USED = "USED"
    EXPIRED = "EXPIRED"


C = CouponStatus
TRANSITIONS: dict[CouponStatus, dict[str, CouponStatus]] = {
    C.ISSUED: {"lock": C.LOCKED, "expire": C.EXPIRED},
    C.LOCKED: {"use": C.USED, "release": C.ISSUED},
    C.USED: {"restore": C.ISSUED},
    C.EXPIRED: {},
}
FINAL = frozenset({C.EXPIRED})
COLUMNS = ("coupon_id", "user_id", "kind", "currency", "value", "cap", "min_amount", "status",
           "order_id", "issued_ms", "expires_ms", "updated_ms")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS coupons (coupon_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
    "kind TEXT NOT NULL, currency TEXT NOT NULL, value INTEGER NOT NULL, cap INTEGER NOT NULL, "
    "min_amount INTEGER NOT NULL, status TEXT NOT NULL, order_id TEXT NOT NULL DEFAULT '', "
    "issued_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS coupons_user ON coupons (user_id, status)",
)
ORDERS = {"coupon": ("coupons", "coupon_id", TRANSITIONS, FINAL)}


def off(coupon: dict, amount: int) -> int:
    """What `coupon` takes off an order of `amount` (never more than the amount): a voucher
    its value, a discount value bp of the amount (half-up), at most its cap (0: no cap)."""
    if coupon["kind"] == "voucher":
        cut = coupon["value"]
    else:
        cut = (amount * coupon["value"] + 5_000) // 10_000
        if coupon["cap"]:
            cut = min(cut, coupon["cap"])
    return max(0, min(cut, amount))


def get(conn, coupon_id: str) -> dict | None:
    row = conn.execute(f"SELECT {','.join(COLUMNS)} FROM coupons WHERE coupon_id=?",
                       (coupon_id,)).fetchone()
    return dict(zip(COLUMNS, row, strict=True)) if row else None


def usable(conn, coupon_id: str, user_id: str, currency: str, amount: int, now_ms: int) -> dict:
    """The coupon `coupon_id` if `user_id` may use it now on an order of `amount` `currency`,
    else GatewayError naming field coupon_id."""
    coupon = get(conn, coupon_id)
    if coupon is None or coupon["user_id"] != user_id:
        raise GatewayError("INVALID_PARAM", f"coupon_id: expected a coupon of user {user_id}, "
                           f"got {coupon_id!r}", "coupon_id")
    problem = ""
    if coupon["status"] != C.ISSUED.value:
        problem = f"it is {coupon['status']}"
    elif coupon["expires_ms"] <= now_ms:
        problem = "it has expired"
    elif coupon["currency"] != currency:
        problem = f"it is in {coupon['currency']}"
    elif amount < coupon["min_amount"]:
        problem = f"it needs an order of at least {coupon['min_amount']}"
    if problem:
        raise GatewayError("BAD_STATE", f"coupon_id: expected a usable coupon, got "
                           f"{coupon_id} ({problem})", "coupon_id")
    return coupon


def move(node, coupon: dict, event: str, now_ms: int, **changes) -> None:
    node.move("coupon", coupon, event, now_ms, **changes)


def lock(node, coupon_id: str, order_id: str, now_ms: int) -> dict | None:
    """Lock the coupon for `order_id`; None when it is no longer ISSUED or has expired."""
    coupon = get(node.conn, coupon_id)
    if coupon is None or coupon["status"] != C.ISSUED.value or coupon["expires_ms"] <= now_ms:
        return None
    move(node, coupon, "lock", now_ms, order_id=order_id)
    return coupon


def release(node, coupon_id: str, order_id: str, now_ms: int, event: str = "release") -> None:
    """Give a locked (`release`) or used (`restore`) coupon of `order_id` back to its user; one
    past its expiry expires at once."""
    coupon = get(node.conn, coupon_id)
    wanted = C.LOCKED.value if event == "release" else C.USED.value
    if coupon is None or coupon["status"] != wanted or coupon["order_id"] != order_id:
        return
    move(node, coupon, event, now_ms, order_id="")
    if coupon["expires_ms"] <= now_ms:
        move(node, coupon, "expire", now_ms)


def use(node, coupon_id: str, order_id: str, now_ms: int) -> None:
    coupon = get(node.conn, coupon_id)
    if coupon is not None and coupon["status"] == C.LOCKED.value and coupon["order_id"] == order_id:
        move(node, coupon, "use", now_ms)


# -- the platform's marketing API -------------------------------------------------------------

def issue(node, user_id: str, kind: str, currency: str, value: int, now_ms: int, cap: int = 0,
          min_amount: int = 0, ttl_ms: int = DEFAULT_TTL_MS) -> dict:
    if kind not in KINDS:
        raise GatewayError("INVALID_PARAM", f"kind: expected one of {', '.join(KINDS)}, got "
                           f"{kind!r}", "kind")
    if kind == "discount" and not 1 <= value <= 10_000:
        raise GatewayError("INVALID_PARAM", f"value: expected basis points 1..10000 for a "
                           f"discount, got {value}", "value")
    coupon = {"coupon_id": node.new_id("K"), "user_id": user_id, "kind": kind,
              "currency": currency, "value": value, "cap": cap, "min_amount": min_amount,
              "status": C.ISSUED.value, "order_id": "", "issued_ms": now_ms,
              "expires_ms": now_ms + ttl_ms, "updated_ms": now_ms}
    node.create_order("coupon", coupon, now_ms)
    node.at(coupon["expires_ms"], "coupon_expire", coupon["coupon_id"])
    return coupon


def api_issue(node, src: str, body: dict, now_ms: int) -> None:
    if (body.get("count") or 1) > MAX_COUNT:
        raise GatewayError("INVALID_PARAM", f"count: expected an integer 1..{MAX_COUNT}, got "
                           f"{body['count']}", "count")
    ids = [issue(node, body["user_id"], body["kind"], body["currency"], body["value"], now_ms,
                 cap=body.get("cap") or 0, min_amount=body.get("min_amount") or 0,
                 ttl_ms=body.get("ttl_ms") or DEFAULT_TTL_MS)["coupon_id"]
           for _ in range(body.get("count") or 1)]
    node.answer(src, body, {"type": "coupon.issue.reply", "ok": True, "coupon_ids": ids,
                            "user_id": body["user_id"], "status": C.ISSUED.value}, now_ms,
                deferred=False)


def api_credit(node, src: str, body: dict, now_ms: int) -> None:
    """A gift of stored value to a user, paid by the platform's marketing budget."""
    ref = f"promo:{body['merchant_id']}:{body['idempotency_key']}"
    lines = [Line(MARKETING, body["currency"], body["amount"], 0),
             Line(f"liability:user:{body['user_id']}", body["currency"], 0, body["amount"])]
    payments.post(node, ref, "promo:credit", lines, now_ms)
    node.answer(src, body, {"type": "promo.credit.reply", "ok": True, "user_id": body["user_id"],
                            "amount": body["amount"], "currency": body["currency"]}, now_ms,
                deferred=False)


def on_expire_due(node, coupon_id: str, arg: int, now_ms: int) -> None:
    coupon = get(node.conn, coupon_id)
    if coupon is not None and coupon["status"] == C.ISSUED.value and coupon["expires_ms"] <= now_ms:
        move(node, coupon, "expire", now_ms)


def recover(node, now_ms: int) -> None:
    for coupon_id, expires_ms in node.conn.execute(
            "SELECT coupon_id, expires_ms FROM coupons WHERE status='ISSUED'").fetchall():
        node.at(max(now_ms, expires_ms), "coupon_expire", coupon_id)


_ID = Rule("str", validation.ID_EXPECT, pattern=validation.ID_PATTERN)
FIELDS = {
    "coupon.issue": {
        "idempotency_key": Rule("str", validation.ID_EXPECT, pattern=validation.ID_PATTERN),
        "user_id": _ID,
        "kind": Rule("str", "'voucher' or 'discount'", allowed=KINDS),
        "value": Rule("int", "a positive integer (minor units off, or basis points)",
                      min_value=1),
        "currency": validation.CURRENCY,
        "cap": Rule("int", "an integer >= 0 of minor units", required=False, min_value=0),
        "min_amount": Rule("int", "an integer >= 0 of minor units", required=False, min_value=0),
        "ttl_ms": Rule("int", "a positive integer of ms", required=False, min_value=1),
        "count": Rule("int", "an integer 1..100", required=False, min_value=1),
    },
    "promo.credit": {
        "idempotency_key": Rule("str", validation.ID_EXPECT, pattern=validation.ID_PATTERN),
        "user_id": _ID,
        "amount": validation.AMOUNT,
        "currency": validation.CURRENCY,
    },
}
API = {"coupon.issue": api_issue, "promo.credit": api_credit}
TIMERS = {"coupon_expire": on_expire_due}
POSTINGS = (
    Posting("promo", "credit", MARKETING, "Dr", "gift"),
    Posting("promo", "credit", "liability:user:<user_id>", "Cr", "gift"),
)
