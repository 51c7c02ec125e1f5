"""The state tables, the tables and the reads of the pre-authorisation family (预授权):
a pre-authorisation (`preauth_orders`) and its operations (`preauth_ops`), their statuses and
transitions (ORDERS), the settings of `[products.preauth]`, and the merchant's view.
See paysys/products/preauth.py for the family as a whole.
"""

from dataclasses import dataclass
from enum import StrEnum

from paysys.products.preauth_ledger import SCHEMA as PENDING_SCHEMA

PRODUCT = "preauth"


@dataclass(frozen=True)
class Settings:
    """`[products.preauth]`: how long the bank holds the money, and how long after the bank's
    expiry paysys asks it whether the hold lapsed."""

    hold_ms: int = 2 * 3_600_000
    expiry_margin_ms: int = 60_000


class Status(StrEnum):
    CREATED = "CREATED"
    SIGNING = "SIGNING"
    AUTHORISING = "AUTHORISING"
    UNKNOWN = "UNKNOWN"
    AUTHORISED = "AUTHORISED"
    CANCELLING = "CANCELLING"
    CAPTURING = "CAPTURING"
    CAPTURED = "CAPTURED"
    UNCAPTURING = "UNCAPTURING"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"


class OpStatus(StrEnum):
    PROCESSING = "PROCESSING"
    UNKNOWN = "UNKNOWN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


S, Op = Status, OpStatus
# A pre-authorisation. sign/submit: the agreement, then the hold asked; success/decline/timeout:
# the bank's answer to the hold (timeout: unknown, resolved by query); cancel/capture/
# capture_cancel: an operation leaves for the bank; done/refused: its answer (refused: declined,
# the pre-auth is as before); expire: the bank says the hold lapsed.
TRANSITIONS: dict[Status, dict[str, Status]] = {
    S.CREATED: {"sign": S.SIGNING, "submit": S.AUTHORISING, "decline": S.FAILED},
    S.SIGNING: {"submit": S.AUTHORISING, "decline": S.FAILED},
    S.AUTHORISING: {"success": S.AUTHORISED, "decline": S.FAILED, "timeout": S.UNKNOWN},
    S.UNKNOWN: {"success": S.AUTHORISED, "decline": S.FAILED},
    S.AUTHORISED: {"cancel": S.CANCELLING, "capture": S.CAPTURING, "expire": S.EXPIRED},
    S.CANCELLING: {"done": S.CANCELLED, "refused": S.AUTHORISED, "expire": S.EXPIRED},
    S.CAPTURING: {"done": S.CAPTURED, "refused": S.AUTHORISED, "expire": S.EXPIRED},
    S.CAPTURED: {"capture_cancel": S.UNCAPTURING},
    S.UNCAPTURING: {"done": S.AUTHORISED, "refused": S.CAPTURED},
    S.CANCELLED: {},
    S.EXPIRED: {},
    S.FAILED: {},
}
FINAL = frozenset({S.CAPTURED, S.CANCELLED, S.EXPIRED, S.FAILED})
# An operation on a pre-authorisation (its channel request): unknown is never failure.
OP_TRANSITIONS: dict[OpStatus, dict[str, OpStatus]] = {
    Op.PROCESSING: {"success": Op.SUCCEEDED, "decline": Op.FAILED, "timeout": Op.UNKNOWN},
    Op.UNKNOWN: {"success": Op.SUCCEEDED, "decline": Op.FAILED},
    Op.SUCCEEDED: {},
    Op.FAILED: {},
}
OP_FINAL = frozenset({Op.SUCCEEDED, Op.FAILED})
LIVE = (Op.PROCESSING.value, Op.UNKNOWN.value)     # an operation whose outcome is awaited
ORDERS = {"preauth": ("preauth_orders", "preauth_id", TRANSITIONS, FINAL),
          "preauth_op": ("preauth_ops", "op_id", OP_TRANSITIONS, OP_FINAL)}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS preauth_orders (preauth_id TEXT PRIMARY KEY, "
    "merchant_id TEXT NOT NULL, merchant_order_no TEXT NOT NULL, user_id TEXT NOT NULL, "
    "card_no TEXT NOT NULL, channel TEXT NOT NULL, amount INTEGER NOT NULL, "
    "currency TEXT NOT NULL, status TEXT NOT NULL, held INTEGER NOT NULL DEFAULT 0, "
    "captured INTEGER NOT NULL DEFAULT 0, capture_id TEXT NOT NULL DEFAULT '', "
    "agreement_no TEXT NOT NULL DEFAULT '', channel_ref TEXT NOT NULL DEFAULT '', "
    "expire_ms INTEGER NOT NULL DEFAULT 0, notify_url TEXT NOT NULL DEFAULT '', "
    "error_code TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, "
    "updated_ms INTEGER NOT NULL, CHECK (captured <= amount), "
    "UNIQUE (merchant_id, merchant_order_no))",
    "CREATE TABLE IF NOT EXISTS preauth_ops (op_id TEXT PRIMARY KEY, "
    "preauth_id TEXT NOT NULL, op TEXT NOT NULL, amount INTEGER NOT NULL, "
    "status TEXT NOT NULL, order_id TEXT NOT NULL DEFAULT '', error_code TEXT NOT NULL DEFAULT '', "
    "created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS preauth_ops_preauth ON preauth_ops (preauth_id)",
    *PENDING_SCHEMA,
)

COLUMNS = ("preauth_id", "merchant_id", "merchant_order_no", "user_id", "card_no", "channel",
           "amount", "currency", "status", "held", "captured", "capture_id", "agreement_no",
           "channel_ref", "expire_ms", "notify_url", "error_code", "created_ms", "updated_ms")
OP_COLUMNS = ("op_id", "preauth_id", "op", "amount", "status", "order_id", "error_code",
              "created_ms", "updated_ms")
EXTERNAL = {"CREATED": "PROCESSING", "SIGNING": "PROCESSING", "AUTHORISING": "PROCESSING",
            "UNKNOWN": "PROCESSING"}


def settings(node) -> Settings:
    return node.cfg.products.get(PRODUCT) or Settings()


def get(conn, preauth_id: str) -> dict | None:
    row = conn.execute(f"SELECT {','.join(COLUMNS)} FROM preauth_orders WHERE preauth_id=?",
                       (preauth_id,)).fetchone()
    return dict(zip(COLUMNS, row, strict=True)) if row else None


def get_op(conn, op_id: str) -> dict | None:
    row = conn.execute(f"SELECT {','.join(OP_COLUMNS)} FROM preauth_ops WHERE op_id=?",
                       (op_id,)).fetchone()
    return dict(zip(OP_COLUMNS, row, strict=True)) if row else None


def view(pre: dict, reply_type: str, op: dict | None = None) -> dict:
    """The merchant's view of a pre-authorisation (and of the operation it asked for)."""
    reply = {"type": f"{reply_type}.reply", "ok": True, "preauth_id": pre["preauth_id"],
             "merchant_order_no": pre["merchant_order_no"],
             "status": EXTERNAL.get(pre["status"], pre["status"]), "amount": pre["amount"],
             "held": pre["held"], "captured": pre["captured"],
             "capture_order_id": pre["capture_id"], "expire_ms": pre["expire_ms"]}
    if pre["error_code"]:
        reply["code"] = pre["error_code"]
    if op is not None:
        reply.update(op_id=op["op_id"], op=op["op"], op_status=(
            "PROCESSING" if op["status"] == Op.UNKNOWN else op["status"]))
        if op["error_code"]:
            reply["code"] = op["error_code"]
    return reply


# -- shared by the flows (paysys/products/preauth_flows.py, preauth_ops.py) ------------------


def auth_req(pre: dict) -> str:
    return f"{pre['preauth_id']}.a1"


def answer(node, key: str, pre: dict, now_ms: int, op: dict | None = None) -> None:
    node.release_answer(key, lambda t: view(pre, t, op), now_ms)


def tell(node, pre: dict, now_ms: int) -> None:
    """The merchant's notification and the domain event of a pre-auth that came to rest."""
    payload = {"merchant_id": pre["merchant_id"], "order_id": pre["preauth_id"],
               "preauth_id": pre["preauth_id"], "merchant_order_no": pre["merchant_order_no"],
               "status": pre["status"], "amount": pre["amount"], "held": pre["held"],
               "captured": pre["captured"], "currency": pre["currency"]}
    node.notify_merchant("notify.payment", pre["preauth_id"], pre["merchant_id"],
                         pre["notify_url"], payload, now_ms)
    node.publish("preauth.state", pre["preauth_id"], {"status": pre["status"]}, now_ms)


def move(node, pre: dict, event: str, now_ms: int, **changes) -> None:
    node.move("preauth", pre, event, now_ms, **changes)


def schedule_query(node, orig: str, attempt: int, now_ms: int) -> None:
    backoff = node.cfg.query_backoff_ms
    node.at(now_ms + backoff[min(attempt, len(backoff) - 1)], "preauth_query", orig, attempt)


def arm_expiry(node, pre: dict, now_ms: int) -> None:
    margin = settings(node).expiry_margin_ms
    node.at(max(now_ms, pre["expire_ms"]) + margin, "preauth_expire", pre["preauth_id"])
