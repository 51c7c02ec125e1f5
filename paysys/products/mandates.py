"""Agreement pay / withholding (协议支付/代扣): mandates signed once, then debits under them.

A merchant signs a mandate for one of its users ONCE (`mandate.sign` {user_id, card_no}: paysys
asks the bank, `bank.mandate.sign`), then debits it whenever a bill is due (`pay.create` with
product `withhold` and `mandate_no`: the generic pay flow sends `bank.debit`, which the bank
declines MANDATE_REVOKED once the mandate is revoked, or INSUFFICIENT_FUNDS...). `mandate.revoke`
{mandate_no} revokes it (REVOKING at once, REVOKED when the bank confirms); `mandate.query`
{mandate_no} tells its status. A user may also revoke at the bank: paysys learns it from a debit
declined MANDATE_REVOKED (the mandate is then REVOKED, event `bank_revoked`): a sweep every
SYNC_MS while any mandate is ACTIVE, and every mandate request, look for such debits.

Mandates are orders of kind `mandate` (table `mandates`, state table MANDATE_TRANSITIONS below).
One mandate per (merchant, user) is SIGNING, ACTIVE or REVOKING at a time: signing again while
one is ACTIVE answers that one. A sign or revoke the bank did not answer (timeout, refused
connection) is sent again under the same request id every RETRY_MS (the bank answers a request id
once) until it is answered. Debits are pay orders (their ledger entry is a payment's, below).
"""

import weakref
from enum import StrEnum

from paysys.channels.base import FAILURE, REJECTED, SUCCESS
from paysys.errors import GatewayError
from paysys.products.base import Posting
from paysys.validation import CARD_NO, ID_EXPECT, ID_PATTERN, Rule

RETRY_MS = 10_000          # a sign or revoke the bank did not answer is asked again after
SYNC_MS = 5 * 60_000       # how often ACTIVE mandates are compared with their debits' answers
_syncing: "weakref.WeakSet" = weakref.WeakSet()   # nodes whose sync timer is armed


class MandateStatus(StrEnum):
    SIGNING = "SIGNING"
    ACTIVE = "ACTIVE"
    REVOKING = "REVOKING"
    REVOKED = "REVOKED"
    FAILED = "FAILED"


M = MandateStatus
# signed: the bank agreed; decline: it refused (or refused to do anything); revoke: the merchant
# asked; revoked: the bank confirmed; bank_revoked: the bank declined a debit MANDATE_REVOKED
# (the user revoked it at the bank)
MANDATE_TRANSITIONS: dict[MandateStatus, dict[str, MandateStatus]] = {
    M.SIGNING: {"signed": M.ACTIVE, "decline": M.FAILED},
    M.ACTIVE: {"revoke": M.REVOKING, "bank_revoked": M.REVOKED},
    M.REVOKING: {"revoked": M.REVOKED},
    M.REVOKED: {},
    M.FAILED: {},
}
FINAL = frozenset({M.REVOKED, M.FAILED})
LIVE = (M.SIGNING.value, M.ACTIVE.value, M.REVOKING.value)

ORDERS = {"mandate": ("mandates", "mandate_no", MANDATE_TRANSITIONS, FINAL)}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mandates (mandate_no TEXT PRIMARY KEY, merchant_id TEXT, "
    "user_id TEXT, card_no TEXT, channel TEXT, bank_mandate_no TEXT, status TEXT, "
    "error_code TEXT, created_ms INTEGER, updated_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS mandates_owner ON mandates (merchant_id, user_id)",
)
COLUMNS = ("mandate_no", "merchant_id", "user_id", "card_no", "channel", "bank_mandate_no",
           "status", "error_code", "created_ms", "updated_ms")

_ID = Rule("str", ID_EXPECT, pattern=ID_PATTERN)
_KEY = Rule("str", ID_EXPECT, required=False, pattern=ID_PATTERN)
FIELDS = {
    "mandate.sign": {"idempotency_key": _KEY, "user_id": _ID, "card_no": CARD_NO},
    "mandate.revoke": {"idempotency_key": _KEY, "mandate_no": _ID},
    "mandate.query": {"mandate_no": _ID},
}

POSTINGS = (
    Posting("withhold", "debit", "asset:channel:<channel>", "Dr", "amount"),
    Posting("withhold", "debit", "liability:merchant:<merchant>", "Cr", "amount - fee"),
    Posting("withhold", "debit", "income:fee", "Cr", "fee"),
    Posting("withhold", "debit", "expense:channel:<channel>", "Dr", "channel cost"),
    Posting("withhold", "debit", "asset:channel:<channel>", "Cr", "channel cost"),
)


def mandate(conn, mandate_no: str) -> dict | None:
    row = conn.execute(f"SELECT {','.join(COLUMNS)} FROM mandates WHERE mandate_no=?",
                       (mandate_no,)).fetchone()
    return dict(zip(COLUMNS, row, strict=True)) if row else None


def _live(conn, merchant_id: str, user_id: str) -> dict | None:
    """The mandate of (merchant, user) that is SIGNING, ACTIVE or REVOKING, if any."""
    row = conn.execute(
        f"SELECT mandate_no FROM mandates WHERE merchant_id=? AND user_id=? AND status IN "
        f"{LIVE} ORDER BY created_ms DESC, mandate_no DESC LIMIT 1",
        (merchant_id, user_id)).fetchone()
    return mandate(conn, row[0]) if row else None


def _view(row: dict, reply_type: str) -> dict:
    reply = {"type": f"{reply_type}.reply", "ok": row["status"] != M.FAILED.value,
             "mandate_no": row["mandate_no"], "status": row["status"],
             "user_id": row["user_id"], "channel": row["channel"]}
    if row["error_code"]:
        reply["code"] = row["error_code"]
    return reply


def _owned(node, body: dict) -> dict:
    row = mandate(node.conn, body["mandate_no"])
    if row is None or row["merchant_id"] != body["merchant_id"]:
        raise GatewayError("NOT_FOUND", f"mandate_no: no mandate {body['mandate_no']} for this "
                           "merchant", "mandate_no")
    return row


def sync(node, row: dict, now_ms: int) -> None:
    """An ACTIVE mandate the bank refused a debit under (MANDATE_REVOKED) is REVOKED."""
    if row["status"] == M.ACTIVE.value and node.conn.execute(
            "SELECT 1 FROM pay_orders WHERE mandate_no=? AND product='withhold' AND "
            "error_code='MANDATE_REVOKED' LIMIT 1", (row["mandate_no"],)).fetchone():
        node.move("mandate", row, "bank_revoked", now_ms, error_code="MANDATE_REVOKED")


def _channel(node) -> str | None:
    """The bank that signs mandates: the first by priority serving `withhold`."""
    for c in sorted(node.channels.values(), key=lambda c: (c.priority, c.id)):
        if "withhold" in c.products and hasattr(node.adapters[c.id], "mandate_sign"):
            return c.id
    return None


# -- the merchant API ------------------------------------------------------------------------

def sign(node, src: str, body: dict, now_ms: int) -> None:
    live = _live(node.conn, body["merchant_id"], body["user_id"])
    if live is not None:
        sync(node, live, now_ms)
    if live is not None and live["status"] == M.REVOKING.value:
        raise GatewayError("BAD_STATE", f"user_id: mandate {live['mandate_no']} of this user is "
                           "being revoked; sign again once it is REVOKED", "user_id")
    if live is not None and live["status"] in (M.SIGNING.value, M.ACTIVE.value):
        node.answer(src, body, _view(live, body["type"]), now_ms, deferred=False)
        return
    channel = _channel(node)
    if channel is None:
        raise GatewayError("NO_ROUTE", "product: no channel serves withhold mandates", "product")
    row = {"mandate_no": node.new_id("W"), "merchant_id": body["merchant_id"],
           "user_id": body["user_id"], "card_no": body["card_no"], "channel": channel,
           "bank_mandate_no": "", "status": M.SIGNING.value, "error_code": "",
           "created_ms": now_ms, "updated_ms": now_ms}
    node.create_order("mandate", row, now_ms)
    node.defer_answer(row["mandate_no"], src, body)
    req_id = node.req_id(row["mandate_no"], "mandate_sign")
    node.call_channel(channel, "mandate_sign", row["mandate_no"], req_id,
                      node.adapters[channel].mandate_sign(req_id, row), now_ms)


def revoke(node, src: str, body: dict, now_ms: int) -> None:
    row = _owned(node, body)
    sync(node, row, now_ms)
    if row["status"] in (M.SIGNING.value, M.FAILED.value):
        raise GatewayError("BAD_STATE", f"mandate_no: mandate {row['mandate_no']} is "
                           f"{row['status']}, not ACTIVE", "mandate_no")
    if row["status"] == M.ACTIVE.value:
        node.move("mandate", row, "revoke", now_ms)
        req_id = node.req_id(row["mandate_no"], "revoke_mandate")
        node.call_channel(row["channel"], "revoke_mandate", row["mandate_no"], req_id,
                          node.adapters[row["channel"]].mandate_revoke(req_id, row), now_ms)
    node.answer(src, body, _view(row, body["type"]), now_ms, deferred=False)


def query(node, src: str, body: dict, now_ms: int) -> None:
    row = _owned(node, body)
    sync(node, row, now_ms)
    node.answer(src, body, _view(row, body["type"]), now_ms, deferred=False)


API = {"mandate.sign": sign, "mandate.revoke": revoke, "mandate.query": query}


# -- the bank's answers ----------------------------------------------------------------------

def on_sign(node, channel: str, mandate_no: str, req_id: str, outcome, now_ms: int) -> None:
    row = mandate(node.conn, mandate_no)
    if row is None or row["status"] != M.SIGNING.value:
        return
    if outcome.kind == SUCCESS:
        node.move("mandate", row, "signed", now_ms, bank_mandate_no=outcome.channel_ref)
        _arm_sync(node, now_ms)
    elif outcome.kind in (FAILURE, REJECTED):
        node.move("mandate", row, "decline", now_ms, error_code=outcome.code or "SIGN_FAILED")
    else:
        _retry_later(node, mandate_no, now_ms)
        return
    node.release_answer(mandate_no, lambda t: _view(row, t), now_ms)


def on_revoke(node, channel: str, mandate_no: str, req_id: str, outcome, now_ms: int) -> None:
    row = mandate(node.conn, mandate_no)
    if row is None or row["status"] != M.REVOKING.value:
        return
    if outcome.kind == SUCCESS:
        node.move("mandate", row, "revoked", now_ms)
    else:
        _retry_later(node, mandate_no, now_ms)


def on_no_answer(node, channel: str, mandate_no: str, req_id: str, now_ms: int) -> None:
    """A timeout or a refused connection: the request is sent again later, same id."""
    _retry_later(node, mandate_no, now_ms)


def _retry_later(node, mandate_no: str, now_ms: int) -> None:
    node.at(now_ms + RETRY_MS, "mandate_retry", mandate_no)


def on_retry_due(node, mandate_no: str, arg: int, now_ms: int) -> None:
    row = mandate(node.conn, mandate_no)
    if row is None or row["status"] not in (M.SIGNING.value, M.REVOKING.value):
        return
    op = "mandate_sign" if row["status"] == M.SIGNING.value else "revoke_mandate"
    found = node.conn.execute(
        "SELECT req_id FROM channel_requests WHERE ref=? AND kind=? ORDER BY sent_ms DESC, "
        "req_id DESC LIMIT 1", (mandate_no, op)).fetchone()
    if found and found[0] in node.inflight:
        return   # still waiting for that one
    adapter = node.adapters[row["channel"]]
    body_of = adapter.mandate_sign if op == "mandate_sign" else adapter.mandate_revoke
    if found:
        node.resend_channel(row["channel"], op, mandate_no, found[0], body_of(found[0], row),
                            now_ms)
    else:
        req_id = node.req_id(mandate_no, op)
        node.call_channel(row["channel"], op, mandate_no, req_id, body_of(req_id, row), now_ms)


def _arm_sync(node, now_ms: int) -> None:
    if node not in _syncing:
        _syncing.add(node)
        node.at(now_ms + SYNC_MS, "mandate_sync", "")


def on_sync_due(node, key: str, arg: int, now_ms: int) -> None:
    """Every ACTIVE mandate a debit was refused under (MANDATE_REVOKED) becomes REVOKED; the
    sweep comes back while any mandate is ACTIVE."""
    _syncing.discard(node)
    for (mandate_no,) in node.conn.execute(
            "SELECT DISTINCT m.mandate_no FROM mandates m JOIN pay_orders o "
            "ON o.mandate_no = m.mandate_no AND o.product = 'withhold' "
            "AND o.error_code = 'MANDATE_REVOKED' WHERE m.status = 'ACTIVE' "
            "ORDER BY m.mandate_no").fetchall():
        sync(node, mandate(node.conn, mandate_no), now_ms)
    if node.conn.execute("SELECT 1 FROM mandates WHERE status='ACTIVE' LIMIT 1").fetchone():
        _arm_sync(node, now_ms)


FLOWS = {"mandate_sign": on_sign, "revoke_mandate": on_revoke}
TIMEOUTS = {"mandate_sign": on_no_answer, "revoke_mandate": on_no_answer}
REFUSED = {"mandate_sign": on_no_answer, "revoke_mandate": on_no_answer}
TIMERS = {"mandate_retry": on_retry_due, "mandate_sync": on_sync_due}


def recover(node, now_ms: int) -> None:
    """After a restart: every mandate still signing or revoking asks the bank again."""
    for (mandate_no,) in node.conn.execute(
            "SELECT mandate_no FROM mandates WHERE status IN ('SIGNING','REVOKING') "
            "ORDER BY mandate_no").fetchall():
        node.at(now_ms, "mandate_retry", mandate_no)
    if node.conn.execute("SELECT 1 FROM mandates WHERE status='ACTIVE' LIMIT 1").fetchone():
        _arm_sync(node, now_ms)


__all__ = ["API", "FIELDS", "FLOWS", "MANDATE_TRANSITIONS", "ORDERS", "POSTINGS", "REFUSED",
           "SCHEMA", "TIMEOUTS", "TIMERS", "MandateStatus", "mandate", "recover", "sync"]
