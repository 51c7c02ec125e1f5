"""Compensation: money a channel charged that no paid order keeps, and what paysys does about it.

Every charge a channel reports (a success with its transaction id and amount) is recorded once in
table `charges`, so a repeat of the same report (a duplicate notification, a late copy of a
reply) is recognised and changes nothing. A charge that is new decides by the order's state:

| the order is | the charge is | what paysys does |
|---|---|---|
| in flight, amount as ordered, no other attempt paid | the payment | SUCCEEDED (payments.py) |
| in flight, another attempt of the merchant order already paid | a duplicate payment | DUPLICATE, refund it |
| in flight, another amount | a mismatch | HELD for a person (never marked paid) |
| in flight, less, platform order | a partial payment | policy: hold (HELD), refund (close + refund), complete (wait for the rest) |
| SUCCEEDED / HELD / DUPLICATE | a second charge (the channel charged twice) | refund it |
| FAILED / CLOSED | a late success | policy: refund it, or reopen the order as SUCCEEDED |

Money that no order keeps goes to `liability:suspense` when it is reported and leaves it when
the compensation refund succeeds (refunds.py sends it, targeting that one charge). A janitor
sweeps now and then for orders still in flight long after their last change and queries them,
so that nothing stays stuck even if a timer was lost.
"""

from paysys import ledger, paid, payments, refunds, store
from paysys.recon import stream

JANITOR_MS = 15 * 60_000       # how often the janitor sweeps
STUCK_MS = 60 * 60_000         # an order in flight this long without a change is looked at


def record(node, order: dict, channel: str, charge_ref: str, amount: int, kept: bool,
           now_ms: int) -> None:
    """Record a charge the channel reported (once: a repeat is ignored; `known` tells)."""
    node.conn.execute(
        "INSERT OR IGNORE INTO charges (order_id, channel_ref, channel, amount, kept, at_ms) "
        "VALUES (?,?,?,?,?,?)", (order["order_id"], charge_ref, channel, amount, int(kept), now_ms))


def known(node, order_id: str, charge_ref: str) -> bool:
    if node.flawed("no_notify_dedupe"):
        return False   # the flaw: a repeat of a charge looks like a new one
    return node.conn.execute("SELECT 1 FROM charges WHERE order_id=? AND channel_ref=?",
                             (order_id, charge_ref)).fetchone() is not None


def charge_reported(node, channel: str, order: dict, outcome, now_ms: int) -> None:
    """A channel reports a charge (`outcome`: success with channel_ref and amount) for an order
    that is no longer in flight: a repeat, a second charge, or a late success."""
    ref, amount = outcome.channel_ref, outcome.amount
    if not ref or amount is None or known(node, order["order_id"], ref):
        return
    status = order["status"]
    node.event("channel.late_charge", order["order_id"],
               {"channel": channel, "charge_ref": ref, "amount": amount, "status": status})
    reopen = (status in ("FAILED", "CLOSED") and node.cfg.late_success == "reopen"
              and amount == order["amount"] and not paid.other_attempt_paid(node, order))
    if reopen:
        record(node, order, channel, ref, amount, True, now_ms)
        paid.succeed_late(node, order, outcome, now_ms)
        return
    reason = "double_charge" if status in ("SUCCEEDED", "HELD", "DUPLICATE") else "late_success"
    hold_and_refund(node, order, channel, ref, amount, reason, now_ms)


def hold_and_refund(node, order: dict, channel: str, charge_ref: str, amount: int, reason: str,
                    now_ms: int) -> None:
    """Put a charge no order keeps into suspense and refund it."""
    record(node, order, channel, charge_ref, amount, False, now_ms)
    to_suspense(node, order, channel, amount, now_ms)
    stream.flag(node, order, channel, charge_ref, amount, "refund", now_ms)
    refund(node, order, channel, charge_ref, amount, reason, now_ms)


def to_suspense(node, order: dict, channel: str, amount: int, now_ms: int) -> None:
    cost = node.channels[channel].fee.fee(amount)
    payments.post(node, order["order_id"], "suspense",
                  ledger.suspense_lines(channel, order["currency"], amount, cost), now_ms)


def refund(node, order: dict, channel: str, charge_ref: str, amount: int, reason: str,
           now_ms: int) -> None:
    refund_id = refunds.compensate(node, order, channel, charge_ref, amount, reason, now_ms)
    node.event("compensation.refund", order["order_id"],
               {"refund_id": refund_id, "reason": reason, "charge_ref": charge_ref,
                "amount": amount, "channel": channel})


def refund_held_legs(node, order: dict, reason: str, now_ms: int) -> None:
    """Refund every charge of `order` waiting in suspense (the legs of a partial payment that
    was never completed)."""
    for channel, charge_ref, amount in node.conn.execute(
        "SELECT channel, channel_ref, amount FROM charges WHERE order_id=? AND kept=0 AND "
        "channel_ref NOT IN (SELECT charge_ref FROM refund_orders WHERE order_id=? AND "
        "reason != 'merchant') ORDER BY at_ms, channel_ref",
        (order["order_id"], order["order_id"]),
    ).fetchall():
        refund(node, order, channel, charge_ref, amount, reason, now_ms)


def _failed_compensations(node) -> list[tuple]:
    """Charges whose compensation refund failed, with none succeeded or in flight since."""
    return node.conn.execute(
        "SELECT r.order_id, r.channel, r.charge_ref, r.amount, MAX(r.reason) FROM refund_orders r "
        "WHERE r.reason != 'merchant' GROUP BY r.order_id, r.charge_ref "
        "HAVING SUM(r.status != 'FAILED') = 0 ORDER BY r.order_id, r.charge_ref"
    ).fetchall()


def keep_legs(node, order_id: str) -> None:
    node.conn.execute("UPDATE charges SET kept=1 WHERE order_id=?", (order_id,))


# -- the janitor --------------------------------------------------------------------------------

def on_janitor_due(node, key: str, arg: int, now_ms: int) -> None:
    """Sweep: every order in flight with nothing in flight for it and no change for STUCK_MS is
    queried, every refund left UNKNOWN sent again. The janitor comes back while anything is in
    flight; an idle node sleeps until the next message wakes it (engine._housekeeping)."""
    node.janitor_armed = False
    failed = _failed_compensations(node)
    busy = failed or node.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pay_orders WHERE status IN ('PROCESSING','UNKNOWN')) OR "
        "EXISTS (SELECT 1 FROM refund_orders WHERE status IN ('PROCESSING','UNKNOWN'))"
    ).fetchone()[0]
    if busy:
        node.arm_janitor(now_ms)
    for order_id, channel, charge_ref, amount, reason in failed:
        # the channel refused to give it back (its account there was short, say): again
        node.event("janitor.action", order_id, {"status": "refund failed", "action": "refund",
                                                "charge_ref": charge_ref})
        refund(node, store.pay_order(node.conn, order_id), channel, charge_ref, amount, reason,
               now_ms)
    if node.flawed("no_query"):
        return   # the janitor is query compensation too
    waiting = {ref for _, _, ref in node.inflight.values()}
    for order_id, status, channel in node.conn.execute(
        "SELECT order_id, status, channel FROM pay_orders WHERE status IN ('PROCESSING','UNKNOWN') "
        "AND updated_ms <= ? ORDER BY updated_ms, order_id", (now_ms - STUCK_MS,)
    ).fetchall():
        if order_id in waiting or channel not in node.adapters:   # (inside paysys: not asked)
            continue
        node.event("janitor.action", order_id, {"status": status, "action": "query"})
        payments.on_query_due(node, order_id, 0, now_ms)
    for (refund_id,) in node.conn.execute(
        "SELECT refund_id FROM refund_orders WHERE status='UNKNOWN' AND updated_ms <= ? "
        "ORDER BY updated_ms, refund_id", (now_ms - STUCK_MS,)
    ).fetchall():
        if f"{refund_id}.r1" in node.inflight:
            continue
        node.event("janitor.action", refund_id, {"status": "UNKNOWN", "action": "resend"})
        refunds.on_retry_due(node, refund_id, 0, now_ms)
