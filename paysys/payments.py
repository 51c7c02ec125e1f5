"""The pay flow: validate → route → risk → create order → call channel → update order → notify.

Functions of the engine node (`node` is a `paysys.engine.PaySys`), one per step or per channel
answer. An unknown outcome (timeout, error, unexpected answer) is never a failure: the order
goes to UNKNOWN and query compensation (查单) resolves it, with backoff; a channel notification
resolves it too. A "not found" answer is never taken as failure without first closing the
order at the channel, so that a late request cannot charge the user afterwards.
"""

from paysys import compensation, ledger, paid, store
from paysys.channels.base import CLOSED, FAILURE, NOT_FOUND, PENDING, REJECTED, SUCCESS, Outcome
from paysys.errors import GatewayError
from paysys.orders import PayStatus, is_final

P = PayStatus
ACTIVE = (P.PROCESSING.value, P.UNKNOWN.value)
SIGN_ATTEMPTS = 3
CLOSE_MARGIN_MS = 5 * 60_000   # the platform's deadline, after paysys's own close
EXTERNAL = {"CREATED": "PROCESSING", "UNKNOWN": "PROCESSING"}  # what a merchant sees


def _order_view(order: dict, reply_type: str, code_url: str = "") -> dict:
    reply = {"type": f"{reply_type}.reply", "ok": True, "order_id": order["order_id"],
             "merchant_order_no": order["merchant_order_no"], "channel": order["channel"],
             "status": EXTERNAL.get(order["status"], order["status"]),
             "amount": order["amount"], "refunded": order["refunded"]}
    if order.get("error_code"):
        reply["code"] = order["error_code"]
    if code_url:
        reply["code_url"] = code_url
    return reply


def create(node, src: str, body: dict, now_ms: int) -> None:
    conn = node.conn
    merchant_id = body["merchant_id"]
    attempts = store.pay_attempts(conn, merchant_id, body["merchant_order_no"])
    if attempts and not node.flawed("no_idempotency"):
        first = attempts[0]
        if (first["amount"], first["user_id"]) != (body["amount"], body["user_id"]):
            raise GatewayError("DUPLICATE_ORDER", "merchant_order_no: already used for another order",
                               "merchant_order_no")
        paid = [a for a in attempts if a["status"] == P.SUCCEEDED.value]
        same = [a for a in attempts if a["product"] == body["product"]]
        if paid or same:
            # the same order under another idempotency key, or one already paid: that key's
            # answer is the order as it is
            node.answer(src, body, _order_view((paid or same)[-1], body["type"]), now_ms,
                        deferred=False)
            return
        # another product for the same merchant order (a second tab): a new payment attempt
    if body["product"] not in node.products:
        raise GatewayError("INVALID_PARAM", f"product: expected one of "
                           f"{', '.join(sorted(node.products))}, got {body['product']!r}",
                           "product")
    order_id = node.new_id("P")
    internal = node.internal.get(body["product"])
    if internal is None:
        route = node.router.route(body["product"], body["amount"], body["currency"], now_ms)
        node.event("route.decision", order_id, route.event_data())
        if route.channel_id is None:
            raise GatewayError("NO_ROUTE", f"no channel can take this payment: {route.reason}",
                               "product")
        channel = route.channel_id
    else:   # paid inside paysys (balance, coins, credit, combined): no channel to route to
        channel = body["product"]
    decision = node.risk.assess(body["user_id"], body.get("device_id", ""), body["amount"], now_ms)
    node.event("risk.decision", order_id, {"outcome": decision.outcome, "rule": decision.rule,
                                          "detail": decision.detail})
    order = {
        "order_id": order_id, "merchant_id": merchant_id,
        "merchant_order_no": body["merchant_order_no"], "user_id": body["user_id"],
        "product": body["product"], "channel": channel, "amount": body["amount"],
        "currency": body["currency"], "status": P.CREATED.value, "merchant_fee": 0,
        "channel_cost": 0, "refunded": 0, "created_ms": now_ms, "updated_ms": now_ms,
        "channel_ref": "", "notify_url": body.get("notify_url") or "", "error_code": "",
        "card_no": body.get("card_no") or "", "attempt": len(attempts) + 1,
        "idempotency_key": body.get("idempotency_key") or "", "received": 0,
        "app_id": body.get("app_id") or "", "mandate_no": body.get("mandate_no") or "",
    }
    if internal is not None and internal.accept is not None:
        internal.accept(node, order, body, now_ms)   # its own fields (legs, coupons...): checked
    node.create_order("pay", order, now_ms)          # before anything is written
    if decision.outcome == "BLOCK":
        move(node, order, "block", now_ms, error_code="RISK_BLOCKED")
        node.publish("order.final", order_id, {"status": order["status"]}, now_ms)
        node.answer(src, body, {"type": "pay.create.reply", "ok": False, "code": "RISK_BLOCKED",
                                "message": f"blocked by risk rule {decision.rule}",
                                "field": None, "order_id": order_id, "status": "BLOCKED"},
                    now_ms, deferred=False)
        return
    if decision.outcome == "CHALLENGE":
        move(node, order, "challenge", now_ms)
        otp = node.otps[order_id] = node.risk.new_otp()
        node.send("sms", {"type": "sms.otp", "user_id": order["user_id"], "order_id": order_id,
                          "merchant_id": merchant_id, "otp": otp})
        node.at(now_ms + node.cfg.otp_ttl_ms, "otp_expire", order_id)
        reply = _order_view(order, "pay.create")
        reply["challenge"] = True
        node.answer(src, body, reply, now_ms, deferred=False)
        return
    node.defer_answer(order_id, src, body)
    submit(node, order, "submit", now_ms)


def confirm_otp(node, src: str, body: dict, now_ms: int) -> None:
    order = _merchant_order(node, body)
    if order["status"] != P.CHALLENGE.value:
        raise GatewayError("BAD_STATE", f"order {order['order_id']} is {order['status']}, not CHALLENGE",
                           "order_id")
    expected = node.otps.pop(order["order_id"], None)
    if expected is None or not node.risk.check_otp(expected, body["otp"]):
        move(node, order, "otp_fail", now_ms, error_code="OTP_INVALID")
        finished(node, order, now_ms)
        reply = _order_view(order, "pay.confirm_otp")
        reply.update(ok=False, code="OTP_INVALID", message="the one-time password is wrong", field="otp")
        node.answer(src, body, reply, now_ms, deferred=False)
        return
    node.defer_answer(order["order_id"], src, body)
    submit(node, order, "otp_ok", now_ms)


def query(node, src: str, body: dict, now_ms: int) -> None:
    node.answer(src, body, _order_view(_merchant_order(node, body), "pay.query"), now_ms, deferred=False)


def _merchant_order(node, body: dict) -> dict:
    order = store.pay_order(node.conn, body["order_id"])
    if order is None or order["merchant_id"] != body["merchant_id"]:
        raise GatewayError("NOT_FOUND", f"order_id: no order {body['order_id']} for this merchant",
                           "order_id")
    return order


def submit(node, order: dict, event: str, now_ms: int) -> None:
    """The order leaves for its channel (or is paid inside paysys)."""
    move(node, order, event, now_ms)
    internal = node.internal.get(order["product"])
    if internal is not None:
        internal.pay(node, order, now_ms)
    else:
        _to_channel(node, order, now_ms)


def _to_channel(node, order: dict, now_ms: int) -> None:
    """Send the order to its channel, after signing the card agreement when one is needed."""
    adapter = node.adapters[order["channel"]]
    if adapter.signs(order["product"]):
        agreement = store.agreement(node.conn, order["user_id"], order["card_no"], order["channel"])
        if agreement is None or agreement["status"] != "active":
            req_id = node.req_id(order["order_id"], "sign")
            node.call_channel(order["channel"], "sign", order["order_id"], req_id,
                              adapter.sign(req_id, order["user_id"], order["card_no"]), now_ms)
            return
        _send_pay(node, order, agreement["agreement_no"], now_ms)
    else:
        _send_pay(node, order, "", now_ms)


def _send_pay(node, order: dict, agreement_no: str, now_ms: int) -> None:
    adapter = node.adapters[order["channel"]]
    req_id = node.req_id(order["order_id"], "pay")
    close_at = order["created_ms"] + node.cfg.platform_expire_ms
    # the platform's own deadline comes later: paysys closes the order itself, and learns
    # from the close whether it was paid meanwhile
    order["expire_ms"] = close_at + CLOSE_MARGIN_MS
    columns = adapter.order_columns(order, node.cfg)   # e.g. what a foreign channel settles
    if columns:
        sets = ",".join(f"{c}=?" for c in columns)
        node.conn.execute(f"UPDATE pay_orders SET {sets} WHERE order_id=?",
                          (*columns.values(), order["order_id"]))
        order.update(columns)
    body = adapter.pay(req_id, order, agreement_no, now_ms, node.cfg.self_url)
    node.call_channel(order["channel"], "pay", order["order_id"], req_id, body, now_ms)
    if adapter.is_async(order["product"]):
        node.at(close_at, "expire", order["order_id"])


def on_sign(node, channel: str, order_id: str, req_id: str, outcome, now_ms: int) -> None:
    order = store.pay_order(node.conn, order_id)
    if order is None or order["status"] != P.PROCESSING.value:
        return
    card_no = _card_no(node, order_id)
    node.sign_attempts.pop(order_id, None)
    if outcome.kind == SUCCESS:
        store.save_agreement(node.conn, order["user_id"], card_no, channel, outcome.channel_ref, "active")
        order["card_no"] = card_no
        _send_pay(node, order, outcome.channel_ref, now_ms)
    elif outcome.kind == REJECTED:
        _failover(node, order, channel, f"failover from {channel} ({outcome.code})", now_ms,
                  outcome.code)
    else:
        _fail(node, order, outcome.code or "SIGN_FAILED", now_ms)


def on_sign_timeout(node, channel: str, order_id: str, req_id: str, now_ms: int) -> None:
    """Signing moves no money: it is asked again under the same id (the bank answers it once),
    and an agreement still unconfirmed after SIGN_ATTEMPTS fails the order safely."""
    order = store.pay_order(node.conn, order_id)
    if order is None or order["status"] != P.PROCESSING.value:
        return
    attempts = node.sign_attempts.get(order_id, 1)
    if attempts >= SIGN_ATTEMPTS:
        _fail(node, order, "SIGN_UNCONFIRMED", now_ms)
        return
    node.sign_attempts[order_id] = attempts + 1
    adapter = node.adapters[channel]
    node.resend_channel(channel, "sign", order_id, req_id,
                        adapter.sign(req_id, order["user_id"], _card_no(node, order_id)), now_ms)


def _card_no(node, order_id: str) -> str:
    (card_no,) = node.conn.execute("SELECT card_no FROM pay_orders WHERE order_id=?", (order_id,)).fetchone()
    return card_no


def _settled(node, channel: str, order: dict | None, outcome, now_ms: int) -> bool:
    """True when `order` is no longer in flight (nothing more to do but compensation): a charge
    the channel reports for it now is a repeat, a second charge or a late success. Under the
    `no_cas` flaw a handler never asks."""
    if order is None:
        return True
    if order["status"] in ACTIVE or node.flawed("no_cas"):
        return False
    for charge in _charges(outcome):
        compensation.charge_reported(node, channel, order, charge, now_ms)
    return True


def _charges(outcome) -> list:
    """Every charge an answer reports: the ones a query lists, else the answer's own."""
    listed = (outcome.extra or {}).get("charges")
    if listed:
        return [Outcome(SUCCESS, "", ref, amount) for ref, amount in listed]
    return [outcome] if outcome.kind == SUCCESS else []


def on_late_answer(node, channel: str, order_id: str, outcome, now_ms: int) -> None:
    """An answer to a request paysys no longer waits for (it timed out, or a copy was already
    answered): only a charge it reports matters now, to compensation."""
    order = store.pay_order(node.conn, order_id)
    if order is None:
        return
    if order["status"] not in ACTIVE:
        for charge in _charges(outcome):
            compensation.charge_reported(node, channel, order, charge, now_ms)
    elif channel != order["channel"]:
        _left_behind(node, channel, order, outcome, now_ms)


def _left_behind(node, channel: str, order: dict, outcome, now_ms: int) -> None:
    """A charge at a channel the order has failed over from (its rejection or refusal was
    for another copy of the request): the order is paid elsewhere, this money goes back."""
    for charge in _charges(outcome):
        if charge.channel_ref and charge.amount is not None and not compensation.known(
                node, order["order_id"], charge.channel_ref):
            compensation.hold_and_refund(node, order, channel, charge.channel_ref, charge.amount,
                                         "late_success", now_ms)


def on_pay(node, channel: str, order_id: str, req_id: str, outcome, now_ms: int) -> None:
    order = store.pay_order(node.conn, order_id)
    if _settled(node, channel, order, outcome, now_ms):
        return
    if outcome.kind == SUCCESS:
        paid.succeed(node, order, outcome, now_ms)
    elif outcome.kind == REJECTED:
        _failover(node, order, channel, f"failover from {channel} ({outcome.code})", now_ms,
                  outcome.code)
    elif outcome.kind == FAILURE:
        _fail(node, order, outcome.code or "DECLINED", now_ms)
    elif outcome.kind == PENDING:
        code_url = (outcome.extra or {}).get("code_url", "")
        if code_url:  # waiting for the user in the wallet; expiry closes it
            node.conn.execute("UPDATE pay_orders SET channel_ref=? WHERE order_id=?",
                              (outcome.channel_ref, order_id))
            node.release_answer(order_id, lambda t: _order_view(order, t, code_url), now_ms)
        else:
            schedule_query(node, order_id, 0, now_ms)
            node.release_answer(order_id, lambda t: _order_view(order, t), now_ms)
    else:
        _unknown(node, order, now_ms)


def on_pay_timeout(node, channel: str, order_id: str, req_id: str, now_ms: int) -> None:
    order = store.pay_order(node.conn, order_id)
    if order is not None and order["status"] in ACTIVE:
        if node.flawed("timeout_as_failure"):
            _fail(node, order, "TIMEOUT", now_ms)
        else:
            _unknown(node, order, now_ms)


def on_pay_refused(node, channel: str, order_id: str, req_id: str, now_ms: int) -> None:
    """The connection was refused: the pay (or the signing before it) never reached the
    channel, so the payment can safely fail over to another channel that takes it."""
    order = store.pay_order(node.conn, order_id)
    if order is None or order["status"] not in ACTIVE:
        return
    _failover(node, order, channel, f"failover from {channel}", now_ms, "CHANNEL_UNREACHABLE")


def _failover(node, order: dict, channel: str, why: str, now_ms: int, code: str) -> None:
    """Nothing was done at `channel`: send the payment to another channel that takes it; with
    none, it fails with `code`."""
    order_id = order["order_id"]
    route = node.router.route(order["product"], order["amount"], order["currency"], now_ms,
                              exclude=(channel,))
    node.event("route.decision", order_id, dict(route.event_data(), reason=f"{why}: {route.reason}"))
    if route.channel_id is None:
        _fail(node, order, code, now_ms)
        return
    node.conn.execute("UPDATE pay_orders SET channel=? WHERE order_id=?", (route.channel_id, order_id))
    order["channel"] = route.channel_id
    order["card_no"] = _card_no(node, order_id)
    _to_channel(node, order, now_ms)


def _unknown(node, order: dict, now_ms: int) -> None:
    if order["status"] == P.PROCESSING.value:
        move(node, order, "timeout", now_ms)
    schedule_query(node, order["order_id"], 0, now_ms)
    node.release_answer(order["order_id"], lambda t: _order_view(order, t), now_ms)


def schedule_query(node, order_id: str, attempt: int, now_ms: int) -> None:
    if node.flawed("no_query"):
        return   # the flaw: the order waits for a notification that may never come
    backoff = node.cfg.query_backoff_ms
    node.at(now_ms + backoff[min(attempt, len(backoff) - 1)], "query", order_id, attempt)


def on_query_due(node, order_id: str, attempt: int, now_ms: int) -> None:
    order = store.pay_order(node.conn, order_id)
    if order is None or order["status"] not in ACTIVE:
        return
    ask(node, order, now_ms)
    node.query_attempts[order_id] = attempt


def ask(node, order: dict, now_ms: int, channel: str | None = None) -> None:
    """Query `order` at `channel` (its own by default): the answer comes to `on_query`, and
    every charge it lists goes through the compensation door."""
    order_id = order["order_id"]
    req_id = node.req_id(order_id, "query")
    body = node.adapters[channel or order["channel"]].query(
        store.pay_request_id(node.conn, order_id, channel), order)
    node.call_channel(channel or order["channel"], "query", order_id, req_id, body, now_ms)


def on_query(node, channel: str, order_id: str, req_id: str, outcome, now_ms: int) -> None:
    """An answer to a query or a close."""
    order = store.pay_order(node.conn, order_id)
    if _settled(node, channel, order, outcome, now_ms):
        return
    attempt = node.query_attempts.get(order_id, 0)
    listed = (outcome.extra or {}).get("charges")
    if listed:   # several charges (legs of a partial payment, a double charge): each in turn
        for charge in _charges(outcome):
            if order["status"] in ACTIVE:
                paid.succeed(node, order, charge, now_ms)
            else:
                compensation.charge_reported(node, channel, order, charge, now_ms)
        if order["status"] in ACTIVE:
            schedule_query(node, order_id, attempt + 1, now_ms)
        return
    if outcome.kind == SUCCESS:
        if outcome.amount is None:  # "already paid" without the details: ask for them
            schedule_query(node, order_id, 0, now_ms)
        else:
            paid.succeed(node, order, outcome, now_ms)
    elif outcome.kind == FAILURE:
        _fail(node, order, outcome.code or "DECLINED", now_ms)
    elif outcome.kind == CLOSED:
        was_active = order["status"] in ACTIVE   # (not so only under the no_cas flaw)
        move(node, order, "close", now_ms, error_code=order["error_code"] or "CLOSED")
        compensation.refund_held_legs(node, order, "partial", now_ms)
        if node.adapters[channel].is_async(order["product"]) and was_active:
            paid.check(node, order, now_ms)   # a platform order may have been paid in part
        finished(node, order, now_ms)
    elif outcome.kind == NOT_FOUND:
        close_at_channel(node, order, now_ms)
    else:
        schedule_query(node, order_id, attempt + 1, now_ms)


def on_query_timeout(node, channel: str, order_id: str, req_id: str, now_ms: int) -> None:
    order = store.pay_order(node.conn, order_id)
    if order is not None and order["status"] in ACTIVE:
        schedule_query(node, order_id, node.query_attempts.get(order_id, 0) + 1, now_ms)


def close_at_channel(node, order: dict, now_ms: int) -> None:
    """Close the order at the channel; only its confirmation makes the order CLOSED."""
    req_id = node.req_id(order["order_id"], "close")
    body = node.adapters[order["channel"]].close(store.pay_request_id(node.conn, order["order_id"]), order)
    node.call_channel(order["channel"], "close", order["order_id"], req_id, body, now_ms)


def on_expire_due(node, order_id: str, arg: int, now_ms: int) -> None:
    order = store.pay_order(node.conn, order_id)
    if order is not None and order["status"] in ACTIVE:
        close_at_channel(node, order, now_ms)


def on_otp_expire(node, order_id: str, arg: int, now_ms: int) -> None:
    order = store.pay_order(node.conn, order_id)
    if order is not None and order["status"] == P.CHALLENGE.value:
        node.otps.pop(order_id, None)
        move(node, order, "expire", now_ms, error_code="OTP_EXPIRED")
        finished(node, order, now_ms)


def on_notification(node, channel: str, body: dict, now_ms: int) -> None:
    notice = node.adapters[channel].notification(body, verify=not node.flawed("no_signature_check"))
    if notice is None:
        node.event("paysys.unexpected", "", {"src": channel, "type": str(body.get("type"))})
        return
    order = store.pay_order(node.conn, notice.order_id) if notice.valid else None
    duplicate = order is not None and is_final("pay", order["status"])
    node.event("channel.notify", notice.order_id, {"channel": channel, "valid": notice.valid,
                                                   "duplicate": duplicate})
    node.reply(notice.ack)
    if order is None or notice.outcome.kind != SUCCESS:
        return
    if order["channel"] != channel:
        if order["status"] in ACTIVE:
            _left_behind(node, channel, order, notice.outcome, now_ms)
        else:
            compensation.charge_reported(node, channel, order, notice.outcome, now_ms)
        return
    if _settled(node, channel, order, notice.outcome, now_ms):
        return
    paid.succeed(node, order, notice.outcome, now_ms)


def post(node, ref: str, memo: str, lines: list, now_ms: int) -> int:
    """Post an entry and publish it; returns its id."""
    entry_id = ledger.post(node.conn, now_ms, ref, memo, lines)
    node.event("ledger.post", ref, {"entry_id": entry_id, "memo": memo,
                                    "postings": [list(line) for line in lines]})
    return entry_id


def _fail(node, order: dict, code: str, now_ms: int) -> None:
    move(node, order, "decline", now_ms, error_code=code)
    finished(node, order, now_ms)


def finished(node, order: dict, now_ms: int) -> None:
    """The order reached a final state: answer a waiting request, notify, publish."""
    node.release_answer(order["order_id"], lambda t: _order_view(order, t), now_ms)
    node.forget(order["order_id"], ("sign", "pay", "query", "close"))
    payload = {"merchant_id": order["merchant_id"], "order_id": order["order_id"],
               "merchant_order_no": order["merchant_order_no"], "status": order["status"],
               "amount": order["amount"], "currency": order["currency"]}
    node.notify_merchant("notify.payment", order["order_id"], order["merchant_id"],
                         order["notify_url"], payload, now_ms)
    node.publish("order.final", order["order_id"], {"status": order["status"]}, now_ms)
    parent = order.get("parent_id") or ""
    if parent and parent[0] in node.parents:   # a leg or an attempt of a product's order
        node.parents[parent[0]](node, order, now_ms)


def move(node, order: dict, event: str, now_ms: int, **changes) -> None:
    node.move("pay", order, event, now_ms, **changes)


def recover(node, now_ms: int) -> None:
    """Re-arm the timers of every pay order still in flight after a restart. An order with a
    request still pending waits for its answer or its (re-armed) timeout."""
    waiting = {ref for _, _, ref in node.inflight.values()}
    for order_id, status, channel, product, created_ms in node.conn.execute(
        "SELECT order_id, status, channel, product, created_ms FROM pay_orders WHERE status IN "
        "('CHALLENGE','PROCESSING','UNKNOWN')"
    ).fetchall():
        if status == P.CHALLENGE.value:  # the one-time password was in memory: it is lost
            node.at(now_ms, "otp_expire", order_id)
        elif channel not in node.adapters:
            continue   # served inside paysys: its product family recovers it
        elif node.adapters[channel].is_async(product):
            node.at(max(now_ms, created_ms + node.cfg.platform_expire_ms), "expire", order_id)
        elif order_id not in waiting:
            node.at(now_ms, "query", order_id)
