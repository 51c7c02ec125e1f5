"""The run's metrics: one SQL query per name of `sim.catalogue.METRICS`, as a table.

`compute(conn)` reads the run database (docs/run-database.md: the order tables, `transitions`,
`channel_requests`, `notifications` and the `events` log) and returns `{name: int | float}`.
Counts are ints; `success_rate` is the only float.

`success_rate` = succeeded / payment orders that reached a channel, i.e. whose status is not
`BLOCKED`, that were not rejected at routing (`error_code` `NO_ROUTE`) and that have a channel
(1.0 when there are none). An order that failed its OTP challenge after routing counts as
having reached its channel.
"""

import sqlite3

from sim.catalogue import METRICS

FAULT_EVENTS = ("msg.drop", "msg.duplicate", "msg.hang", "msg.delay", "msg.refused",
                "merchant.error")
PAY_FINAL = ("SUCCEEDED", "FAILED", "CLOSED", "BLOCKED")


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
}

_RATE = f"""SELECT SUM(status = 'SUCCEEDED'), COUNT(*) FROM pay_orders WHERE {_REACHED}"""


def _one(conn: sqlite3.Connection, sql: str) -> int:
    value = conn.execute(sql).fetchone()[0]
    return int(value or 0)


def success_rate(conn: sqlite3.Connection) -> float:
    succeeded, reached = conn.execute(_RATE).fetchone()
    return 1.0 if not reached else (succeeded or 0) / reached


def compute(conn: sqlite3.Connection) -> dict[str, int | float]:
    """Every metric of `sim.catalogue.METRICS`, in the catalogue's order."""
    values: dict[str, int | float] = {name: _one(conn, sql) for name, sql in QUERIES.items()}
    values["success_rate"] = success_rate(conn)
    return {name: values[name] for name in METRICS}
