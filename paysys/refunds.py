"""The refund flow: full and partial refunds of a succeeded payment.

A refund is accepted only while the order's refundable amount (its amount minus every refund
that succeeded or may still succeed) covers it, and while the merchant's balance, less the
refunds already in flight, can pay for it. The request to the channel carries a stable refund
number, so an unknown outcome is resolved by sending the same request again: the channel
answers it once and never refunds twice. The ledger entry is posted when the channel confirms.
"""

from paysys import ledger, store
from paysys.channels.base import FAILURE, SUCCESS
from paysys.errors import GatewayError
from paysys.ledger import Line
from paysys.orders import RefundStatus

R = RefundStatus
RETRY_MS = (5_000, 30_000, 120_000, 600_000, 1_800_000)


def _view(refund: dict, reply_type: str) -> dict:
    return {"type": f"{reply_type}.reply", "ok": True, "refund_id": refund["refund_id"],
            "order_id": refund["order_id"], "amount": refund["amount"],
            "status": "PROCESSING" if refund["status"] in ("CREATED", "UNKNOWN") else refund["status"],
            "method": refund.get("method") or "refund"}


def choose_method(node, order: dict, amount: int, now_ms: int) -> tuple[str, str]:
    """("cancel" | "refund", why) for a merchant refund of `amount` of `order` asked now."""
    adapter = node.adapters.get(order["channel"])
    if adapter is None or not getattr(adapter, "CANCELS", False):
        return "refund", "the channel does not distinguish a cancel from a refund"
    if amount != order["amount"] or order["refunded"] or store.pending_refund_total(
            node.conn, order["order_id"]):
        return "refund", "not the full amount"
    if order["product"] == "preauth":
        return "refund", "a pre-authorisation's capture is cancelled by preauth.capture_cancel"
    if node.cfg.backoffice.settlement:   # (reported: settlement statements and the oracle's
        # profit_matches / settlement_exact do not count a cancel's returned fees yet; and a
        # payment's entry with profit-sharing lines is not reversed blindly)
        return "refund", "settlement runs: its statements count refunds only"
    if not adapter.can_cancel(order["updated_ms"], now_ms):
        return "refund", "another business day or after the channel's cut-off"
    return "cancel", "full amount, same business day, before the cut-off"


def cancel_lines(node, order: dict) -> list[Line]:
    """A cancel's entry: the payment's entry reversed (fees returned on both sides)."""
    lines = node.adapters[order["channel"]].payment_lines(order, order["merchant_fee"],
                                                          order["channel_cost"])
    return [Line(a, cur, credit, debit) for a, cur, debit, credit in lines]


def create(node, src: str, body: dict, now_ms: int) -> None:
    conn = node.conn
    merchant_id = body["merchant_id"]
    existing = store.refund_by_merchant_no(conn, merchant_id, body["refund_no"])
    if existing is not None:
        if (existing["order_id"], existing["amount"]) != (body["order_id"], body["amount"]):
            raise GatewayError("DUPLICATE_ORDER", "refund_no: already used for another refund", "refund_no")
        node.answer(src, body, _view(existing, body["type"]), now_ms, deferred=False)
        return
    order = store.pay_order(conn, body["order_id"])
    if order is None or order["merchant_id"] != merchant_id:
        raise GatewayError("NOT_FOUND", f"order_id: no order {body['order_id']} for this merchant", "order_id")
    if order["status"] != "SUCCEEDED":
        raise GatewayError("BAD_STATE", f"order {order['order_id']} is {order['status']}: only a "
                           "succeeded payment can be refunded", "order_id")
    refundable = order["amount"] - store.pending_refund_total(conn, order["order_id"])
    if body["amount"] > refundable:
        raise GatewayError("REFUND_EXCEEDS", f"amount: {body['amount']} exceeds the refundable "
                           f"{refundable}", "amount")
    account = f"liability:merchant:{merchant_id}"
    available = ledger.balance(conn, account, order["currency"]) - node.reserved(merchant_id)
    if body["amount"] > available:
        raise GatewayError("INSUFFICIENT_MERCHANT_BALANCE", f"amount: the merchant balance "
                           f"{available} cannot pay {body['amount']}", "amount")
    refund = {"refund_id": node.new_id("R"), "order_id": order["order_id"], "merchant_id": merchant_id,
              "refund_no": body["refund_no"], "amount": body["amount"], "currency": order["currency"],
              "status": R.CREATED.value, "channel": order["channel"], "created_ms": now_ms,
              "updated_ms": now_ms, "error_code": ""}
    internal = node.internal.get(order["product"])
    method, why = ("refund", "paid inside paysys") if internal is not None else choose_method(
        node, order, body["amount"], now_ms)
    refund["method"] = method
    node.create_order("refund", refund, now_ms)
    node.event("refund.method", refund["refund_id"], {"method": method, "reason": why,
                                                      "order_id": order["order_id"]})
    node.reserve(merchant_id, refund["amount"])
    _move(node, refund, "submit", now_ms)
    if internal is not None:   # paid inside paysys: given back inside paysys
        internal.refund(node, order, refund, now_ms)
    else:
        _send(node, refund, order, now_ms, first=True)
    node.answer(src, body, _view(refund, body["type"]), now_ms, deferred=False)


def compensate(node, order: dict, channel: str, charge_ref: str, amount: int, reason: str,
               now_ms: int) -> str:
    """A refund paysys makes itself, of one charge no order keeps (`reason`: duplicate,
    double_charge, late_success, partial). The money is in suspense, not the merchant's."""
    refund = {"refund_id": node.new_id("R"), "order_id": order["order_id"],
              "merchant_id": order["merchant_id"], "refund_no": f"{reason}:{charge_ref}",
              "amount": amount, "currency": order["currency"], "status": R.CREATED.value,
              "channel": channel, "created_ms": now_ms, "updated_ms": now_ms, "error_code": "",
              "reason": reason, "charge_ref": charge_ref}
    if node.flawed("no_notify_dedupe") or store.refund_by_merchant_no(
            node.conn, refund["merchant_id"], refund["refund_no"]) is not None:
        refund["refund_no"] += f":{refund['refund_id']}"   # a second try (or, flawed, a repeat)
    node.create_order("refund", refund, now_ms)
    _move(node, refund, "submit", now_ms)
    _send(node, refund, order, now_ms, first=True)
    return refund["refund_id"]


def _req_id(refund: dict) -> str:
    return f"{refund['refund_id']}.{'x' if refund.get('method') == 'cancel' else 'r'}1"


def _send(node, refund: dict, order: dict, now_ms: int, first: bool) -> None:
    req_id = _req_id(refund)
    pay_req_id = store.pay_request_id(node.conn, order["order_id"], refund["channel"])
    adapter = node.adapters[refund["channel"]]
    if refund.get("method") == "cancel":
        body = adapter.cancel(req_id, pay_req_id, refund, order)
    else:
        body = adapter.refund(req_id, pay_req_id, refund, order)
    call = node.call_channel if first else node.resend_channel
    call(refund["channel"], "refund", refund["refund_id"], req_id, body, now_ms)


def on_refund(node, channel: str, refund_id: str, req_id: str, outcome, now_ms: int) -> None:
    refund = store.refund_order(node.conn, refund_id)
    if refund is None or refund["status"] not in (R.PROCESSING.value, R.UNKNOWN.value):
        return
    if outcome.kind == SUCCESS:
        _move(node, refund, "success", now_ms)
        merchant = refund["reason"] == "merchant"
        order = store.pay_order(node.conn, refund["order_id"])
        memo = "refund" if merchant else f"compensation:{refund['reason']}"
        if refund.get("method") == "cancel":
            lines, memo = cancel_lines(node, order), "cancel"
        elif merchant:
            lines = node.adapters[refund["channel"]].refund_lines(refund, order)
        else:
            lines = ledger.suspense_refund_lines(refund["channel"], refund["currency"],
                                                 refund["amount"])
        entry_id = ledger.post(node.conn, now_ms, refund_id, memo, lines)
        node.event("ledger.post", refund_id, {"entry_id": entry_id, "memo": memo,
                                              "postings": [list(line) for line in lines]})
        if merchant:
            store.add_refunded(node.conn, refund["order_id"], refund["amount"], now_ms)
        _finished(node, refund, now_ms)
    elif outcome.kind == FAILURE and refund.get("method") == "cancel" and outcome.code in getattr(
            node.adapters[channel], "FALLBACK_CODES", ()):
        node.conn.execute("UPDATE refund_orders SET method='refund' WHERE refund_id=?", (refund_id,))
        refund["method"] = "refund"
        node.event("refund.method", refund_id, {"method": "refund", "reason": f"the channel "
                                                f"declined the cancel ({outcome.code})",
                                                "order_id": refund["order_id"]})
        _send(node, refund, store.pay_order(node.conn, refund["order_id"]), now_ms, first=True)
    elif outcome.kind == FAILURE:
        _move(node, refund, "decline", now_ms, error_code=outcome.code or "DECLINED")
        _finished(node, refund, now_ms)
    else:
        _unknown(node, refund, now_ms)


def on_refund_timeout(node, channel: str, refund_id: str, req_id: str, now_ms: int) -> None:
    refund = store.refund_order(node.conn, refund_id)
    if refund is not None and refund["status"] in (R.PROCESSING.value, R.UNKNOWN.value):
        _unknown(node, refund, now_ms)


def on_refund_refused(node, channel: str, refund_id: str, req_id: str, now_ms: int) -> None:
    """Not delivered: nothing happened at the channel, so the same request is simply sent again."""
    on_refund_timeout(node, channel, refund_id, req_id, now_ms)


def _unknown(node, refund: dict, now_ms: int) -> None:
    if refund["status"] == R.PROCESSING.value:
        _move(node, refund, "timeout", now_ms)
    attempt = node.refund_attempts.get(refund["refund_id"], 0)
    node.refund_attempts[refund["refund_id"]] = attempt + 1
    node.at(now_ms + RETRY_MS[min(attempt, len(RETRY_MS) - 1)], "refund_retry", refund["refund_id"])


def on_retry_due(node, refund_id: str, arg: int, now_ms: int) -> None:
    refund = store.refund_order(node.conn, refund_id)
    if refund is None or refund["status"] != R.UNKNOWN.value or _req_id(refund) in node.inflight:
        return
    _send(node, refund, store.pay_order(node.conn, refund["order_id"]), now_ms, first=False)


def _finished(node, refund: dict, now_ms: int) -> None:
    node.forget(refund["refund_id"], ("refund",))
    if refund["reason"] != "merchant":   # the merchant did not ask: nothing to tell it
        node.publish("refund.final", refund["refund_id"], {"status": refund["status"],
                                                           "reason": refund["reason"]}, now_ms)
        return
    node.reserve(refund["merchant_id"], -refund["amount"])
    order = store.pay_order(node.conn, refund["order_id"])
    payload = {"merchant_id": refund["merchant_id"], "order_id": refund["order_id"],
               "refund_id": refund["refund_id"], "refund_no": refund["refund_no"],
               "status": refund["status"], "amount": refund["amount"], "currency": refund["currency"]}
    node.notify_merchant("notify.refund", refund["refund_id"], refund["merchant_id"],
                         order["notify_url"], payload, now_ms)
    node.publish("refund.final", refund["refund_id"], {"status": refund["status"]}, now_ms)


def _move(node, refund: dict, event: str, now_ms: int, **changes) -> None:
    node.move("refund", refund, event, now_ms, **changes)


def recover(node, now_ms: int) -> None:
    """Refunds whose outcome was in flight are resolved by sending them again."""
    for (refund_id,) in node.conn.execute(
        "SELECT refund_id FROM refund_orders WHERE status='UNKNOWN'"
    ).fetchall():
        node.at(now_ms, "refund_retry", refund_id)
