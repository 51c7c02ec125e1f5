"""A restart of the payment-system node: its memory rebuilt from the database.

Pending requests get their timeouts back, undelivered outbox rows are sent again (channels
answer a request id once), notifications are re-armed, and every flow and product family
re-arms its own timers (`recover`), then the calendar jobs (`arm`).
"""

import itertools

from paysys import backoffice, notify, outbox, payments, products, refunds, store


def recover(node, now_ms: int) -> None:
    conn = node.conn
    for ref, op, n in conn.execute(
        "SELECT ref, kind, COUNT(*) FROM channel_requests GROUP BY ref, kind"
    ):
        node._req_n[(ref, op)] = itertools.count(n + 1)
    for req_id, channel, op, ref, sent_ms in store.pending_requests(conn):
        node.inflight[req_id] = (channel, op, ref)
        node._by_key[(channel, op, ref)] = req_id
        due = max(now_ms, sent_ms + node.channels[channel].timeout_ms)
        node._deadline[req_id] = due
        node.at(due, "timeout", req_id, due)
    for oid, topic, ref, payload in outbox.pending(conn, limit=1_000_000):
        if topic == "channel":
            node._relay.append((oid, payload["dst"], payload["body"]))
        else:
            node._relay.append((oid, None, {"topic": topic, "ref": ref, **payload}))
    for notify_id, next_at in notify.pending(conn):
        node._notifying.add(notify_id)
        node.at(max(now_ms, next_at), "notify", notify_id)
    for merchant_id, total in conn.execute(
        "SELECT merchant_id, SUM(amount) FROM refund_orders WHERE status IN "
        "('CREATED','PROCESSING','UNKNOWN') AND reason = 'merchant' GROUP BY merchant_id"
    ):
        node._reserved[merchant_id] = total
    payments.recover(node, now_ms)
    refunds.recover(node, now_ms)
    for recover in products.every("recover"):
        recover(node, now_ms)
    node.backoffice_armed = True
    backoffice.arm(node, now_ms)
    for arm in products.every("arm"):
        arm(node, now_ms)
    node.event("paysys.recovered", "", {"inflight": len(node.inflight),
                                        "outbox": len(node._relay)})


