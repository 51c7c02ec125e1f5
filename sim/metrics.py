"""The run's metrics: one SQL query per name of `sim.catalogue.METRICS`, as a table.

`compute(conn)` reads the run database (docs/run-database.md: the order tables, `transitions`,
`channel_requests`, `notifications` and the `events` log) and returns `{name: int | float}`.
Counts are ints; `success_rate` is the only float.

`success_rate` = succeeded / payment orders that reached a channel, i.e. whose status is not
`BLOCKED`, that were not rejected at routing (`error_code` `NO_ROUTE`) and that have a channel
(1.0 when there are none). An order that failed its OTP challenge after routing counts as
having reached its channel.

`faults_acted` counts every time any fault acted: `fault.fired` events (mocks and actors), `msg.*`
events that carry a `fault_id` (the network) and `paysys.crash`. `faults_fired` is the older,
narrower count of messages a network or merchant fault acted on.

The back-office metrics (`BACKOFFICE`: reconciliation, settlement, the accounting day) read
tables only runs with a back office have; each is 0 when its table is absent.
`recon_precision` and `recon_recall` (floats, 1.0 when there is nothing to measure) and the
other `recon_*` figures of statement reconciliation come from `sim._invariants_recon.stats`,
which also gives `recon_summary`, the `recon` object of `paysim run --json`.
"""

import sqlite3

from sim import checks
from sim._invariants_recon import has_tables, stats
from sim.catalogue import METRICS

FAULT_EVENTS = ("msg.drop", "msg.duplicate", "msg.hang", "msg.delay", "msg.refused",
                "msg.reset", "msg.reorder", "msg.jitter", "msg.partition", "merchant.error")
PAY_FINAL = ("SUCCEEDED", "FAILED", "CLOSED", "BLOCKED", "HELD", "DUPLICATE")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{k}'" for k in kinds) + ")"


_REACHED = """status <> 'BLOCKED' AND COALESCE(error_code, '') <> 'NO_ROUTE'
              AND COALESCE(channel, '') <> ''"""

# name -> SQL returning one number (NULL counts as 0).
QUERIES: dict[str, str] = {
    "payments": "SELECT COUNT(*) FROM pay_orders",
    "succeeded": "SELECT COUNT(*) FROM pay_orders WHERE status = 'SUCCEEDED'",
    "failed": "SELECT COUNT(*) FROM pay_orders WHERE status = 'FAILED'",
    "closed": "SELECT COUNT(*) FROM pay_orders WHERE status = 'CLOSED'",
    "blocked": "SELECT COUNT(*) FROM pay_orders WHERE status = 'BLOCKED'",
    "challenged": """SELECT COUNT(DISTINCT ref) FROM transitions
                     WHERE kind = 'pay' AND to_status = 'CHALLENGE'""",
    "rejected": "SELECT COUNT(*) FROM events WHERE kind = 'gateway.reject'",
    "refunds": "SELECT COUNT(*) FROM refund_orders",
    "refunds_succeeded": "SELECT COUNT(*) FROM refund_orders WHERE status = 'SUCCEEDED'",
    "unknown": """SELECT COUNT(DISTINCT ref) FROM transitions
                  WHERE kind = 'pay' AND to_status = 'UNKNOWN'""",
    "unknown_resolved": f"""SELECT COUNT(*) FROM pay_orders WHERE status IN {_kinds(PAY_FINAL)}
                  AND order_id IN (SELECT ref FROM transitions
                                   WHERE kind = 'pay' AND to_status = 'UNKNOWN')""",
    "queries": "SELECT COUNT(*) FROM channel_requests WHERE kind = 'query'",
    "late_replies": "SELECT COUNT(*) FROM events WHERE kind = 'channel.late_reply'",
    "failovers": """SELECT COUNT(*) FROM events WHERE kind = 'route.decision'
                    AND json_extract(data, '$.reason') LIKE 'failover from %'""",
    "channel_notifications": "SELECT COUNT(*) FROM events WHERE kind = 'channel.notify'",
    "duplicate_channel_notifications": """SELECT COUNT(*) FROM events
        WHERE kind = 'channel.notify' AND json_extract(data, '$.duplicate') = 1""",
    "notifications_acked": "SELECT COUNT(*) FROM notifications WHERE status = 'acked'",
    "notifications_dead": "SELECT COUNT(*) FROM notifications WHERE status = 'dead'",
    "notification_retries": """SELECT SUM(MAX(COALESCE(attempts, 0) - 1, 0))
                               FROM notifications""",
    "faults_fired": f"SELECT COUNT(*) FROM events WHERE kind IN {_kinds(FAULT_EVENTS)}",
    "idempotent_replays": "SELECT COUNT(*) FROM events WHERE kind = 'gateway.replay'",
    "crashes": "SELECT COUNT(*) FROM events WHERE kind = 'paysys.crash'",
    "recoveries": "SELECT COUNT(*) FROM events WHERE kind = 'paysys.recovered'",
    "compensation_refunds": """SELECT COUNT(*) FROM refund_orders
                               WHERE COALESCE(reason, 'merchant') <> 'merchant'""",
    "held": "SELECT COUNT(*) FROM pay_orders WHERE status = 'HELD'",
    "duplicates": "SELECT COUNT(*) FROM pay_orders WHERE status = 'DUPLICATE'",
    "amount_mismatches": "SELECT COUNT(*) FROM events WHERE kind = 'channel.amount_mismatch'",
    "forged_rejected": """SELECT COUNT(*) FROM events
        WHERE kind = 'channel.notify' AND json_extract(data, '$.valid') = 0""",
    "late_charges": "SELECT COUNT(*) FROM events WHERE kind = 'channel.late_charge'",
    "attempts": "SELECT COUNT(*) FROM pay_orders WHERE attempt > 1",
    # kind range 'msg.' .. 'msg/' is every msg.* kind and uses the index on kind
    "faults_acted": """SELECT COUNT(*) FROM events WHERE kind IN ('fault.fired', 'paysys.crash')
        OR (kind >= 'msg.' AND kind < 'msg/' AND json_extract(data, '$.fault_id') IS NOT NULL)""",
    "cas_conflicts": "SELECT COUNT(*) FROM events WHERE kind = 'order.cas_conflict'",
}

# name -> (table it needs, SQL returning one number); 0 when the table is absent
BACKOFFICE: dict[str, tuple[str, str]] = {
    "recon_unresolved": ("recon_breaks", "SELECT COUNT(*) FROM recon_breaks WHERE status = 'open'"),
    "recon_manual": ("recon_breaks", "SELECT COUNT(*) FROM recon_breaks WHERE status = 'manual'"),
    "recon_files": ("recon_files", "SELECT COUNT(*) FROM recon_files WHERE status = 'reconciled'"),
    "recon_files_missing": ("recon_files",
                            "SELECT COUNT(*) FROM recon_files WHERE status = 'missing'"),
    "stream_breaks": ("recon_breaks", "SELECT COUNT(*) FROM recon_breaks WHERE phase = 'stream'"),
    "settlements_paid": ("settlements", "SELECT COUNT(*) FROM settlements WHERE status = 'paid'"),
    "settled_amount": ("settlements",
                       "SELECT SUM(amount) FROM settlements WHERE status = 'paid'"),
    "settlement_batches": ("settlement_batches", "SELECT COUNT(*) FROM settlement_batches"),
    "days_closed": ("accounting_days", "SELECT COUNT(*) FROM accounting_days"),
    "reserve_topups": ("positions", "SELECT COUNT(*) FROM positions WHERE topped_up > 0"),
}

_RATE = f"""SELECT SUM(status = 'SUCCEEDED'), COUNT(*) FROM pay_orders WHERE {_REACHED}"""


def _one(conn: sqlite3.Connection, sql: str) -> int:
    value = conn.execute(sql).fetchone()[0]
    return int(value or 0)


def success_rate(conn: sqlite3.Connection) -> float:
    succeeded, reached = conn.execute(_RATE).fetchone()
    return 1.0 if not reached else (succeeded or 0) / reached


def recon_summary(conn: sqlite3.Connection) -> dict:
    """The `recon` object of `paysim run --json`: statement reconciliation at a glance."""
    s = stats(conn)
    manual = _one(conn, "SELECT COUNT(*) FROM recon_breaks WHERE status = 'manual'") \
        if has_tables(conn, "recon_breaks") else 0
    unresolved = _one(conn, "SELECT COUNT(*) FROM recon_breaks WHERE status = 'open'") \
        if has_tables(conn, "recon_breaks") else 0
    return {"injected": s["injected"], "expected": s["expected"], "found": s["found"],
            "precision": s["precision"], "recall": s["recall"], "unresolved": unresolved,
            "manual": manual, "by_class": s["by_class"]}


def compute(conn: sqlite3.Connection) -> dict[str, int | float]:
    """Every metric of `sim.catalogue.METRICS`, in the catalogue's order."""
    values: dict[str, int | float] = {name: _one(conn, sql) for name, sql in QUERIES.items()}
    values["success_rate"] = success_rate(conn)
    for name, (table, sql) in BACKOFFICE.items():
        values[name] = _one(conn, sql) if has_tables(conn, table) else 0
    recon = stats(conn)
    values.update({f"recon_{k}": recon[k] for k in ("injected", "expected", "found",
                                                     "true_positive", "precision", "recall",
                                                     "not_reached")})
    for name, metric in checks.METRICS.items():   # the product families' (sim/checks/)
        values[name] = metric.value(conn)
    return {name: values[name] for name in METRICS}
