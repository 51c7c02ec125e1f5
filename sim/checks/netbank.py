"""The oracle's checks of netbank (网银支付): pages paid, abandoned, paid too late.

Metrics read the payment system's orders (`pay_orders`, product `netbank`) and the events of the
run (`bank.netbank.refused`: the bank's page refused a user who came after the close;
`channel.late_charge`: paysys learned of a charge after it closed the order, a late success it
refunds). Invariant `netbank_late_refunded`: every netbank charge paysys learned of after the
close was refunded by a compensation refund that succeeded (the order keeps nothing).
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table

_NETBANK = "SELECT order_id FROM pay_orders WHERE product = 'netbank'"


def _count(conn: sqlite3.Connection, sql: str) -> int:
    if not has_table(conn, "pay_orders"):
        return 0
    return int(conn.execute(sql).fetchone()[0] or 0)


def completed(conn: sqlite3.Connection) -> int:
    return _count(conn, "SELECT COUNT(*) FROM pay_orders WHERE product = 'netbank' "
                        "AND status = 'SUCCEEDED'")


def late_refused(conn: sqlite3.Connection) -> int:
    return _count(conn, f"SELECT COUNT(DISTINCT ref) FROM events WHERE kind = "
                        f"'bank.netbank.refused' AND ref IN ({_NETBANK})")


def late_success(conn: sqlite3.Connection) -> int:
    return _count(conn, f"SELECT COUNT(DISTINCT ref) FROM events WHERE kind = "
                        f"'channel.late_charge' AND ref IN ({_NETBANK})")


def late_paid(conn: sqlite3.Connection) -> int:
    return _count(conn, f"SELECT COUNT(DISTINCT ref) FROM events WHERE kind IN "
                        f"('bank.netbank.refused', 'channel.late_charge') AND ref IN ({_NETBANK})")


def abandoned(conn: sqlite3.Connection) -> int:
    """CLOSED netbank orders whose user never came back to the page (no refusal, no charge)."""
    return _count(conn, """
        SELECT COUNT(*) FROM pay_orders o WHERE o.product = 'netbank' AND o.status = 'CLOSED'
        AND NOT EXISTS (SELECT 1 FROM events e WHERE e.ref = o.order_id AND e.kind IN
                        ('bank.netbank.refused', 'channel.late_charge', 'bank.txn'))""")


def late_refunded(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "pay_orders"):
        return []
    rows = conn.execute(f"""
        SELECT e.ref, json_extract(e.data, '$.charge_ref'), json_extract(e.data, '$.amount')
        FROM events e WHERE e.kind = 'channel.late_charge' AND e.ref IN ({_NETBANK})
        AND json_extract(e.data, '$.status') IN ('CLOSED', 'FAILED')
        AND NOT EXISTS (SELECT 1 FROM refund_orders r WHERE r.order_id = e.ref
                        AND r.charge_ref = json_extract(e.data, '$.charge_ref')
                        AND r.reason <> 'merchant' AND r.status = 'SUCCEEDED')
        AND NOT EXISTS (SELECT 1 FROM pay_orders o WHERE o.order_id = e.ref
                        AND o.status = 'SUCCEEDED')
        ORDER BY e.seq""").fetchall()
    return [{"ref": ref, "charge_ref": charge, "amount": amount, "diff": amount or 0,
             "message": f"netbank order {ref} was charged {amount} ({charge}) after its close "
                        "and no compensation refund gave it back"}
            for ref, charge, amount in rows]


INVARIANTS = {
    "netbank_late_refunded": Invariant(
        "every netbank charge reported after its order was closed (a page paid as it closed) is "
        "given back by a compensation refund that succeeded, unless the order was reopened",
        late_refunded, ("events", "refund_orders")),
}
METRICS = {
    "netbank_completed": Metric("netbank orders the user paid on the bank's page (SUCCEEDED)",
                                completed),
    "netbank_abandoned": Metric("netbank orders closed unpaid whose user never paid the page",
                                abandoned),
    "netbank_late_paid": Metric("netbank orders the user paid after (or as) paysys closed them: "
                                "refused by the page, or charged and refunded", late_paid),
    "netbank_late_refused": Metric("netbank orders whose page refused a user who came after "
                                   "the close", late_refused),
    "netbank_late_success": Metric("netbank orders charged as they were closed: a late success "
                                   "refunded by compensation", late_success),
}
