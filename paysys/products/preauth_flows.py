"""The pre-authorisation family's channel flows: what paysys does with each answer of the bank
(or its absence) to a signing, a hold, an operation on a hold, and a query.

- sign (`<A>.s1`) -> the hold (`<A>.a1`, `bank.preauth`) -> AUTHORISED with a pending entry and
  an expiry timer; a declined hold fails the pre-auth, an unknown one is queried.
- operations: cancel `<A>.v<n>`, capture `<P>.p1` (P: the capture's pay order, so that the
  bank's ground truth names it), capture cancel `<R>.x1` (R: its refund order). An answer settles
  the operation and its pre-auth (done / refused / expire, see preauth_tables.TRANSITIONS), posts
  or resolves the ledger; an unknown one (timeout, error, rejection, pending) is queried:
  `bank.preauth.query` (`<orig>.e<n>`) answers what became of the request, and a request the bank
  never saw (NOT_FOUND) is sent again under its own id, so the bank does it at most once.
- expiry: at the bank's expiry + a margin paysys asks the bank; a lapsed hold expires the
  pre-auth and its pending entry.
"""

from paysys import store
from paysys.channels.base import FAILURE, NOT_FOUND, REJECTED, SUCCESS
from paysys.products import preauth_ledger as pending
from paysys.products import preauth_ops as ops
from paysys.products.preauth_tables import (
    LIVE,
    Status,
    answer,
    arm_expiry,
    auth_req,
    get,
    get_op,
    move,
    schedule_query,
    settings,
    tell,
)

S = Status
SIGN_ATTEMPTS = 3
start_op = ops.start_op


# -- signing and the hold --------------------------------------------------------------------


def sign(node, pre: dict, now_ms: int) -> None:
    move(node, pre, "sign", now_ms)
    node.sign_attempts[pre["preauth_id"]] = 1
    _send_sign(node, pre, now_ms, first=True)


def _send_sign(node, pre: dict, now_ms: int, first: bool) -> None:
    req_id = f"{pre['preauth_id']}.s1"
    body = node.adapters[pre["channel"]].sign(req_id, pre["user_id"], pre["card_no"])
    call = node.call_channel if first else node.resend_channel
    call(pre["channel"], "preauth_sign", pre["preauth_id"], req_id, body, now_ms)


def on_sign(node, channel: str, ref: str, req_id: str, outcome, now_ms: int) -> None:
    pre = get(node.conn, ref)
    if pre is None or pre["status"] != S.SIGNING.value:
        return
    if outcome.kind == SUCCESS:
        node.sign_attempts.pop(ref, None)
        store.save_agreement(node.conn, pre["user_id"], pre["card_no"], channel,
                             outcome.channel_ref, "active")
        authorise(node, pre, outcome.channel_ref, now_ms)
    elif outcome.kind in (FAILURE, REJECTED):
        _fail(node, pre, outcome.code or "SIGN_FAILED", now_ms)
    else:
        on_sign_timeout(node, channel, ref, req_id, now_ms)


def on_sign_timeout(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    """Signing moves no money: asked again under its id, failed after SIGN_ATTEMPTS."""
    pre = get(node.conn, ref)
    if pre is None or pre["status"] != S.SIGNING.value:
        return
    attempts = node.sign_attempts.get(ref, 1)
    if attempts >= SIGN_ATTEMPTS:
        _fail(node, pre, "SIGN_UNCONFIRMED", now_ms)
        return
    node.sign_attempts[ref] = attempts + 1
    _send_sign(node, pre, now_ms, first=False)


def on_sign_refused(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    pre = get(node.conn, ref)
    if pre is not None and pre["status"] == S.SIGNING.value:
        _fail(node, pre, "CHANNEL_UNREACHABLE", now_ms)


def authorise(node, pre: dict, agreement_no: str, now_ms: int) -> None:
    move(node, pre, "submit", now_ms, agreement_no=agreement_no)
    _send_hold(node, pre, now_ms, first=True)


def _send_hold(node, pre: dict, now_ms: int, first: bool) -> None:
    body = node.adapters[pre["channel"]].preauth(auth_req(pre), pre["agreement_no"],
                                                 pre["amount"], pre["currency"],
                                                 settings(node).hold_ms)
    call = node.call_channel if first else node.resend_channel
    call(pre["channel"], "preauth", pre["preauth_id"], auth_req(pre), body, now_ms)


def _fail(node, pre: dict, code: str, now_ms: int) -> None:
    node.sign_attempts.pop(pre["preauth_id"], None)
    move(node, pre, "decline", now_ms, error_code=code)
    answer(node, pre["preauth_id"], pre, now_ms)
    tell(node, pre, now_ms)


def on_hold(node, channel: str, ref: str, req_id: str, outcome, now_ms: int) -> None:
    pre = get(node.conn, ref)
    if pre is None or pre["status"] not in (S.AUTHORISING.value, S.UNKNOWN.value):
        return
    if outcome.kind == SUCCESS:
        _authorised(node, pre, outcome, now_ms)
    elif outcome.kind == FAILURE:
        _fail(node, pre, outcome.code or "DECLINED", now_ms)
    else:
        _hold_unknown(node, pre, now_ms)


def _authorised(node, pre: dict, outcome, now_ms: int) -> None:
    extra = outcome.extra or {}
    expire = extra.get("expire_ms")
    if not isinstance(expire, int) or isinstance(expire, bool):
        expire = now_ms + settings(node).hold_ms
    move(node, pre, "success", now_ms, held=pre["amount"], expire_ms=expire,
          channel_ref=str(extra.get("preauth_no") or ""))
    pending.open_pending(node, pre["preauth_id"], f"asset:channel:{pre['channel']}",
                         f"liability:merchant:{pre['merchant_id']}", pre["currency"],
                         pre["amount"], now_ms)
    arm_expiry(node, pre, now_ms)
    answer(node, pre["preauth_id"], pre, now_ms)
    tell(node, pre, now_ms)


def _hold_unknown(node, pre: dict, now_ms: int) -> None:
    if pre["status"] == S.AUTHORISING.value:
        move(node, pre, "timeout", now_ms)
    schedule_query(node, auth_req(pre), 0, now_ms)
    answer(node, pre["preauth_id"], pre, now_ms)


def on_hold_timeout(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    pre = get(node.conn, ref)
    if pre is not None and pre["status"] in (S.AUTHORISING.value, S.UNKNOWN.value):
        _hold_unknown(node, pre, now_ms)


def on_hold_refused(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    """Never delivered: a first hold fails (nothing was held); a resent one is asked about."""
    pre = get(node.conn, ref)
    if pre is None:
        return
    if pre["status"] == S.AUTHORISING.value:
        _fail(node, pre, "CHANNEL_UNREACHABLE", now_ms)
    elif pre["status"] == S.UNKNOWN.value:
        schedule_query(node, auth_req(pre), 1, now_ms)


# -- queries and expiry ------------------------------------------------------------------


def _target(conn, orig: str) -> tuple[dict | None, dict | None]:
    """(pre-auth, operation or None) a query of request `orig` is about."""
    if orig.endswith(".a1"):
        return get(conn, orig.split(".", 1)[0]), None
    op = get_op(conn, orig)
    return (get(conn, op["preauth_id"]) if op else None), op


def _wanted(pre: dict | None, op: dict | None) -> bool:
    if pre is None:
        return False
    if op is not None:
        return op["status"] in LIVE
    return pre["status"] in (S.AUTHORISING.value, S.UNKNOWN.value, S.AUTHORISED.value)


def on_query_due(node, orig: str, attempt: int, now_ms: int) -> None:
    pre, op = _target(node.conn, orig)
    if not _wanted(pre, op) or any(r == orig or r.startswith(f"{orig}.") for r in node.inflight):
        return   # resolved meanwhile, or being asked (or resent) already
    if op is None and pre["status"] == S.AUTHORISING.value:
        return   # the hold's own answer (or its timeout) is awaited
    n = 1 + store.count_requests(node.conn, pre["preauth_id"], "preauth_query")
    req_id = f"{orig}.e{n}"
    node.query_attempts[orig] = attempt
    body = node.adapters[pre["channel"]].preauth_query(req_id, orig)
    node.call_channel(pre["channel"], "preauth_query", pre["preauth_id"], req_id, body, now_ms)


def on_query(node, channel: str, ref: str, req_id: str, outcome, now_ms: int) -> None:
    orig = req_id.rsplit(".e", 1)[0]
    pre, op = _target(node.conn, orig)
    if not _wanted(pre, op):
        return
    attempt = node.query_attempts.get(orig, 0)
    if op is not None:
        if outcome.kind == SUCCESS:
            ops.op_done(node, pre, op, outcome, now_ms)
        elif outcome.kind == FAILURE:
            ops.op_declined(node, pre, op, outcome.code or "DECLINED", now_ms)
        elif outcome.kind == NOT_FOUND:   # never reached the bank: send it again, same id
            ops.send_op(node, pre, op, now_ms, first=False)
        else:
            schedule_query(node, orig, attempt + 1, now_ms)
        return
    if pre["status"] == S.AUTHORISED.value:   # the expiry check
        state = (outcome.extra or {}).get("state")
        if state == "EXPIRED":
            ops.expired(node, pre, req_id, now_ms)
        elif state == "HELD":
            arm_expiry(node, pre, now_ms)
        elif outcome.kind not in (SUCCESS, FAILURE):
            schedule_query(node, orig, attempt + 1, now_ms)
        else:
            node.event("preauth.mismatch", pre["preauth_id"], {"status": pre["status"],
                                                               "bank_state": state})
        return
    if outcome.kind == SUCCESS:
        _authorised(node, pre, outcome, now_ms)
    elif outcome.kind == FAILURE:
        _fail(node, pre, outcome.code or "DECLINED", now_ms)
    elif outcome.kind == NOT_FOUND:
        _send_hold(node, pre, now_ms, first=False)
    else:
        schedule_query(node, orig, attempt + 1, now_ms)


def on_query_timeout(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    orig = req_id.rsplit(".e", 1)[0]
    if _wanted(*_target(node.conn, orig)):
        schedule_query(node, orig, node.query_attempts.get(orig, 0) + 1, now_ms)


def on_expire_due(node, preauth_id: str, arg: int, now_ms: int) -> None:
    """paysys's own timer: is the hold lapsed at the bank? (only an idle AUTHORISED pre-auth;
    one with an operation in flight learns it from that operation's answer)"""
    pre = get(node.conn, preauth_id)
    if pre is not None and pre["status"] == S.AUTHORISED.value:
        on_query_due(node, auth_req(pre), 0, now_ms)


def recover(node, now_ms: int) -> None:
    """After a restart: resend unconfirmed signings, ask about holds and operations whose answer
    was lost, re-arm the expiry of every idle pre-auth."""
    waiting = {ref for _, _, ref in node.inflight.values()}
    for preauth_id, status in node.conn.execute(
            "SELECT preauth_id, status FROM preauth_orders WHERE status IN "
            "('SIGNING','AUTHORISING','UNKNOWN','AUTHORISED')").fetchall():
        pre = get(node.conn, preauth_id)
        if status == S.AUTHORISED.value:
            arm_expiry(node, pre, now_ms)
        elif preauth_id in waiting:
            continue
        elif status == S.SIGNING.value:
            node.sign_attempts[preauth_id] = 1
            _send_sign(node, pre, now_ms, first=False)
        else:
            if status == S.AUTHORISING.value:
                move(node, pre, "timeout", now_ms)
            schedule_query(node, auth_req(pre), 0, now_ms)
    for (op_id,) in node.conn.execute("SELECT op_id FROM preauth_ops WHERE status IN "
                                      "('PROCESSING','UNKNOWN')").fetchall():
        if op_id not in node.inflight:
            schedule_query(node, op_id, 0, now_ms)


FLOWS = {"preauth_sign": on_sign, "preauth": on_hold, "preauth_cancel": ops.on_op,
         "preauth_capture": ops.on_op, "preauth_capture_cancel": ops.on_op, "preauth_query": on_query}
TIMEOUTS = {"preauth_sign": on_sign_timeout, "preauth": on_hold_timeout,
            "preauth_cancel": ops.on_op_timeout, "preauth_capture": ops.on_op_timeout,
            "preauth_capture_cancel": ops.on_op_timeout, "preauth_query": on_query_timeout}
REFUSED = {"preauth_sign": on_sign_refused, "preauth": on_hold_refused,
           "preauth_cancel": ops.on_op_refused, "preauth_capture": ops.on_op_refused,
           "preauth_capture_cancel": ops.on_op_refused, "preauth_query": on_query_timeout}
TIMERS = {"preauth_query": on_query_due, "preauth_expire": on_expire_due}
