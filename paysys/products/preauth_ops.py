"""Operations on a granted pre-authorisation: cancel (预授权撤销), capture (预授权完成) and capture
cancel (预授权完成撤销), each a row of `preauth_ops` whose id is its request's req_id.

An answer settles the operation and its pre-auth (done / refused / expire), posts the capture's
payment entry (and resolves the pending entry as posted), voids the pending entry (cancel), or
reverses the capture's entry and opens a new pending entry (capture cancel). An unknown answer
(timeout, error, rejection, pending) is queried (paysys/products/preauth_flows.py); a request the
bank never saw is sent again under its id (`send_op(first=False)`).
"""

from paysys import compensation, payments, refunds, store
from paysys.channels.base import FAILURE, SUCCESS
from paysys.products import preauth_ledger as pending
from paysys.products.preauth_tables import (
    LIVE,
    OpStatus,
    Status,
    answer,
    arm_expiry,
    auth_req,
    get,
    get_op,
    move,
    schedule_query,
    tell,
)

S, Op = Status, OpStatus


def op_req_id(node, pre: dict, op: str, order_id: str) -> str:
    if op == "capture":
        return f"{order_id}.p1"
    if op == "capture_cancel":
        return f"{order_id}.x1"
    (n,) = node.conn.execute("SELECT COUNT(*) FROM preauth_ops WHERE preauth_id=? AND op=?",
                             (pre["preauth_id"], op)).fetchone()
    return f"{pre['preauth_id']}.v{n + 1}"


def start_op(node, src: str, body: dict, pre: dict, op: str, amount: int, order_id: str,
             now_ms: int) -> None:
    """A merchant's operation leaves for the bank; its answer waits for the bank's."""
    row = {"op_id": op_req_id(node, pre, op, order_id), "preauth_id": pre["preauth_id"],
           "op": op, "amount": amount, "status": Op.PROCESSING.value, "order_id": order_id,
           "error_code": "", "created_ms": now_ms, "updated_ms": now_ms}
    node.create_order("preauth_op", row, now_ms)
    move(node, pre, op, now_ms)
    node.defer_answer(row["op_id"], src, body)
    send_op(node, pre, row, now_ms, first=True)


def send_op(node, pre: dict, op: dict, now_ms: int, first: bool) -> None:
    adapter, req_id, cur = node.adapters[pre["channel"]], op["op_id"], pre["currency"]
    if op["op"] == "cancel":
        body = adapter.preauth_cancel(req_id, auth_req(pre), op["amount"], cur)
    elif op["op"] == "capture":
        body = adapter.preauth_capture(req_id, auth_req(pre), op["amount"], cur)
    else:
        body = adapter.preauth_capture_cancel(req_id, f"{pre['capture_id']}.p1", op["amount"],
                                              cur)
    call = node.call_channel if first else node.resend_channel
    call(pre["channel"], f"preauth_{op['op']}", pre["preauth_id"], req_id, body, now_ms)


def on_op(node, channel: str, ref: str, req_id: str, outcome, now_ms: int) -> None:
    op = get_op(node.conn, req_id)
    if op is None or op["status"] not in LIVE:
        return
    pre = get(node.conn, op["preauth_id"])
    if outcome.kind == SUCCESS:
        op_done(node, pre, op, outcome, now_ms)
    elif outcome.kind == FAILURE:
        op_declined(node, pre, op, outcome.code or "DECLINED", now_ms)
    else:   # unknown, pending, rejected (this copy did nothing; another may have): ask
        _op_unknown(node, pre, op, now_ms)


def _op_unknown(node, pre: dict, op: dict, now_ms: int) -> None:
    if op["status"] == Op.PROCESSING.value:
        node.move("preauth_op", op, "timeout", now_ms)
    schedule_query(node, op["op_id"], 0, now_ms)
    answer(node, op["op_id"], pre, now_ms, op)


def on_op_timeout(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    op = get_op(node.conn, req_id)
    if op is not None and op["status"] in LIVE:
        _op_unknown(node, get(node.conn, op["preauth_id"]), op, now_ms)


def on_op_refused(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    """Never delivered: a first send did nothing (declined); a resent one is asked about."""
    op = get_op(node.conn, req_id)
    if op is None or op["status"] not in LIVE:
        return
    if op["status"] == Op.PROCESSING.value:
        op_declined(node, get(node.conn, op["preauth_id"]), op, "CHANNEL_UNREACHABLE", now_ms)
    else:
        schedule_query(node, op["op_id"], 1, now_ms)


def op_done(node, pre: dict, op: dict, outcome, now_ms: int) -> None:
    node.move("preauth_op", op, "success", now_ms)
    kind, amount, op_id = op["op"], op["amount"], op["op_id"]
    if kind == "cancel":
        _resolve(node, pre, "voided", op_id, now_ms)
        move(node, pre, "done", now_ms, held=0)
    elif kind == "capture":
        order = store.pay_order(node.conn, op["order_id"])
        merchant_fee = node.merchant_fee(order, amount)
        channel_cost = node.channels[order["channel"]].fee.fee(amount)
        payments.move(node, order, "submit", now_ms)
        payments.move(node, order, "success", now_ms, channel_ref=outcome.channel_ref,
                      merchant_fee=merchant_fee, channel_cost=channel_cost, received=amount)
        compensation.record(node, order, order["channel"], outcome.channel_ref, amount, True,
                            now_ms)
        lines = node.adapters[order["channel"]].payment_lines(order, merchant_fee, channel_cost)
        entry_id = payments.post(node, order["order_id"], "payment", lines, now_ms)
        _resolve(node, pre, "posted", op_id, now_ms, posted=amount, entry_id=entry_id)
        move(node, pre, "done", now_ms, held=0, captured=amount, capture_id=order["order_id"])
        payments.finished(node, order, now_ms)
    else:   # capture_cancel: the capture's entry reversed, its amount pending again
        refund = store.refund_order(node.conn, op["order_id"])
        order = store.pay_order(node.conn, refund["order_id"])
        node.move("refund", refund, "success", now_ms)
        payments.post(node, refund["refund_id"], "cancel", refunds.cancel_lines(node, order),
                      now_ms)
        store.add_refunded(node.conn, order["order_id"], amount, now_ms)
        _refund_final(node, refund, now_ms)
        move(node, pre, "done", now_ms, held=amount, captured=0, capture_id="")
        pending.open_pending(node, pre["preauth_id"], f"asset:channel:{pre['channel']}",
                             f"liability:merchant:{pre['merchant_id']}", pre["currency"],
                             amount, now_ms)
        arm_expiry(node, pre, now_ms)
    answer(node, op_id, pre, now_ms, op)
    tell(node, pre, now_ms)


def op_declined(node, pre: dict, op: dict, code: str, now_ms: int) -> None:
    node.move("preauth_op", op, "decline", now_ms, error_code=code)
    if op["op"] == "capture":
        order = store.pay_order(node.conn, op["order_id"])
        payments.move(node, order, "submit", now_ms)
        payments.move(node, order, "decline", now_ms, error_code=code)
        payments.finished(node, order, now_ms)
    elif op["op"] == "capture_cancel":
        refund = store.refund_order(node.conn, op["order_id"])
        node.move("refund", refund, "decline", now_ms, error_code=code)
        _refund_final(node, refund, now_ms)
    if code == "EXPIRED" and pre["status"] in (S.CANCELLING.value, S.CAPTURING.value):
        expired(node, pre, op["op_id"], now_ms)
    else:
        move(node, pre, "refused", now_ms)
        if pre["status"] == S.AUTHORISED.value:
            arm_expiry(node, pre, now_ms)
    answer(node, op["op_id"], pre, now_ms, op)


def _refund_final(node, refund: dict, now_ms: int) -> None:
    """A capture cancel's refund order is final: the merchant is told, the event published."""
    node.reserve(refund["merchant_id"], -refund["amount"])
    order = store.pay_order(node.conn, refund["order_id"])
    payload = {"merchant_id": refund["merchant_id"], "order_id": refund["order_id"],
               "refund_id": refund["refund_id"], "refund_no": refund["refund_no"],
               "status": refund["status"], "amount": refund["amount"],
               "currency": refund["currency"], "method": "cancel"}
    node.notify_merchant("notify.refund", refund["refund_id"], refund["merchant_id"],
                         order["notify_url"], payload, now_ms)
    node.publish("refund.final", refund["refund_id"], {"status": refund["status"]}, now_ms)


def _resolve(node, pre: dict, status: str, by: str, now_ms: int, **kw) -> None:
    row = pending.open_of(node.conn, pre["preauth_id"])
    if row is not None:
        pending.resolve(node, row["pending_id"], status, now_ms, by, **kw)


def expired(node, pre: dict, by: str, now_ms: int) -> None:
    move(node, pre, "expire", now_ms, held=0)
    _resolve(node, pre, "expired", by, now_ms)
    tell(node, pre, now_ms)
