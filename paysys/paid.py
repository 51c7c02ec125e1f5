"""A channel reports a charge for an order in flight: what it means for the order.

The charge is the payment (SUCCEEDED, the ledger posted), or the order's other attempt was paid
first (DUPLICATE, refunded), or it is of another amount (HELD for a person, or a leg of a partial
payment under the scenario's policy). The table of every case is in `compensation.py`; the flow
around it is `payments.py`.
"""

from paysys import clearing, compensation, ledger, payments
from paysys.recon import stream


def other_attempt_paid(node, order: dict) -> bool:
    """Whether another payment attempt of the same merchant order has succeeded."""
    return node.conn.execute(
        "SELECT 1 FROM pay_orders WHERE merchant_id=? AND merchant_order_no=? AND order_id<>? "
        "AND status='SUCCEEDED'", (order["merchant_id"], order["merchant_order_no"],
                                   order["order_id"])).fetchone() is not None


def succeed(node, order: dict, outcome, now_ms: int) -> None:
    """The channel reports a charge for an order in flight (see compensation.py's table)."""
    amount, ref, channel = outcome.amount, outcome.channel_ref, order["channel"]
    if amount is None:
        payments.schedule_query(node, order["order_id"], 0, now_ms)   # paid, but how much? ask
        return
    if ref and compensation.known(node, order["order_id"], ref):
        return   # a repeat of a charge already counted (a leg of a partial payment)
    if amount != order["amount"] and not node.flawed("trust_notified_amount"):
        _other_amount(node, order, outcome, now_ms)
        return
    if other_attempt_paid(node, order) and not node.flawed("no_idempotency"):
        compensation.record(node, order, channel, ref, amount, False, now_ms)
        payments.move(node, order, "duplicate", now_ms, channel_ref=ref, received=amount,
              error_code="DUPLICATE_PAYMENT")
        compensation.to_suspense(node, order, channel, amount, now_ms)
        stream.flag(node, order, channel, ref, amount, "refund", now_ms)
        compensation.refund(node, order, channel, ref, amount, "duplicate", now_ms)
        payments.finished(node, order, now_ms)
        return
    compensation.record(node, order, channel, ref, amount, True, now_ms)
    _pay_in_full(node, order, ref, "success", now_ms)


def _pay_in_full(node, order: dict, ref: str, event: str, now_ms: int,
                 from_suspense: bool = False) -> None:
    merchant_fee = node.merchant_fee(order, order["amount"])
    channel_cost = node.channels[order["channel"]].fee.fee(order["amount"])
    payments.move(node, order, event, now_ms, channel_ref=ref, merchant_fee=merchant_fee,
          channel_cost=channel_cost, received=order["amount"])
    lines = node.adapters[order["channel"]].payment_lines(order, merchant_fee, channel_cost)
    if from_suspense:
        lines = ledger.from_suspense(lines, order["channel"])
    if node.cfg.backoffice.settlement:   # profit sharing (分账) of the merchant's share
        rule = node.cfg.backoffice.rule(order["merchant_id"])
        lines += clearing.split_lines(order["merchant_id"], order["currency"], order["amount"],
                                      rule.splits, available=order["amount"] - merchant_fee)
    payments.post(node, order["order_id"], "payment", lines, now_ms)
    payments.finished(node, order, now_ms)


def succeed_late(node, order: dict, outcome, now_ms: int) -> None:
    """Policy "reopen": a closed or failed order whose charge the channel reports late is paid."""
    _pay_in_full(node, order, outcome.channel_ref, "late_success", now_ms)


def _other_amount(node, order: dict, outcome, now_ms: int) -> None:
    """A charge of another amount than the order's: never marked paid as it is."""
    channel, ref, amount = order["channel"], outcome.channel_ref, outcome.amount
    node.event("channel.amount_mismatch", order["order_id"],
               {"expected": order["amount"], "reported": amount, "charge_ref": ref})
    received = order["received"] + amount
    partial = node.adapters[channel].is_async(order["product"]) and received < order["amount"]
    compensation.record(node, order, channel, ref, amount, False, now_ms)
    compensation.to_suspense(node, order, channel, amount, now_ms)
    policy = node.cfg.partial_payment
    if not (partial and policy == "complete"):   # a leg that may yet complete the order is no break
        stream.flag(node, order, channel, ref, amount,
                    "refund" if partial and policy == "refund" else "manual", now_ms)
    if partial and policy in ("complete", "refund"):
        node.conn.execute("UPDATE pay_orders SET received=? WHERE order_id=?",
                          (received, order["order_id"]))
        order["received"] = received
        if policy == "refund":   # no more of it: refund this leg, CLOSED once the close is confirmed
            compensation.refund(node, order, channel, ref, amount, "partial", now_ms)
            payments.close_at_channel(node, order, now_ms)
        return   # "complete": the rest may come before the order expires, else the legs are refunded
    if received == order["amount"] and policy == "complete" and order["received"] > 0:
        compensation.keep_legs(node, order["order_id"])   # the last leg completes it
        _pay_in_full(node, order, ref, "success", now_ms, from_suspense=True)
        return
    code = "PARTIAL_PAYMENT" if partial else "AMOUNT_MISMATCH"
    payments.move(node, order, "hold", now_ms, channel_ref=ref, received=received, error_code=code)
    check(node, order, now_ms)
    payments.finished(node, order, now_ms)


def check(node, order: dict, now_ms: int) -> None:
    """One last query of an order that just became final without a clean charge: its answer
    lists every charge, and any charge nobody reported (a lost notification, a second charge)
    goes to compensation."""
    if not node.flawed("no_query"):
        payments.ask(node, order, now_ms)
