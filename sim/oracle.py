"""The oracle: decides, Jepsen-style, whether a finished run was correct.

`verify(conn, scenario)` runs every check of `sim.invariants.CHECKS` and `sim.metrics.compute`
on the run database, then judges the scenario's expectations: one per invariant it names
("invariant <name>") and one per metric bound ("metric <name> >= x" / "metric <name> <= y").
Every invariant is computed (the report shows them all); only the named ones decide the verdict.
`write(conn, verdict)` stores the verdict in the tables `invariants`, `expectations` and
`metrics` of the same database (created if absent; their rows replaced).

Per invariant the verdict keeps the number of violations, the first, the last, the worst (the
largest absolute money difference `diff`, when violations carry money) and up to 50 order/refund
ids to trace. Liveness violations (orders not final, notifications pending, outbox messages not
delivered: `LIVENESS`) also get `stuck_ms`, how long before the scenario's `end_ms` the thing
last moved.

`invariants.worst` is a column the docs' table list does not show yet (JSON, like `first`).
"""

import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from sim.catalogue import INVARIANTS, METRICS
from sim.invariants import CHECKS, TABLES
from sim.metrics import compute

MAX_REFS = 50
ORDER_ID = re.compile(r"^[PR]\d+$")
LIVENESS = ("orders_final", "notifications_settled", "outbox_drained")
METRIC_TABLES = ("pay_orders", "refund_orders", "transitions", "channel_requests",
                 "notifications", "events")


@dataclass
class InvariantResult:
    name: str
    ok: bool
    violations: int
    first: dict | None = None
    last: dict | None = None
    worst: dict | None = None
    refs: list[str] = field(default_factory=list)


@dataclass
class Expectation:
    name: str
    ok: bool
    detail: str


@dataclass
class Verdict:
    invariants: dict[str, InvariantResult]
    metrics: dict[str, int | float]
    expectations: list[Expectation]
    ok: bool


def _missing_tables(conn: sqlite3.Connection) -> list[str]:
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    needed = {t for tables in TABLES.values() for t in tables} | set(METRIC_TABLES)
    return sorted(needed - present)


def summarize(name: str, violations: list[dict]) -> InvariantResult:
    """The verdict of one invariant from its list of violations."""
    if not violations:
        return InvariantResult(name, True, 0)
    with_money = [v for v in violations if isinstance(v.get("diff"), int) and v["diff"] != 0]
    worst = max(with_money, key=lambda v: abs(v["diff"])) if with_money else None
    refs: list[str] = []
    for v in violations:
        ref = v.get("ref") if ORDER_ID.match(str(v.get("ref"))) else v.get("order_id")
        if ref and ORDER_ID.match(str(ref)) and ref not in refs:
            refs.append(ref)
            if len(refs) == MAX_REFS:
                break
    return InvariantResult(name, False, len(violations), violations[0], violations[-1], worst,
                           refs)


def _annotate_stuck(violations: list[dict], end_ms: int | None) -> None:
    if end_ms is None:
        return
    for v in violations:
        moved = v.get("updated_ms", v.get("last_at_ms", v.get("created_ms")))
        if isinstance(moved, int):
            v["stuck_ms"] = end_ms - moved


def _num(x: int | float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def judge(invariants: dict[str, InvariantResult], metrics: dict[str, int | float],
          expectations: Any) -> list[Expectation]:
    """One Expectation per named invariant, one per metric bound, in the scenario's order."""
    out = []
    for name in expectations.invariants:
        if name not in invariants:
            raise ValueError(f"expectations.invariants: unknown invariant {name!r} "
                             f"(known: {', '.join(INVARIANTS)})")
        r = invariants[name]
        detail = "holds" if r.ok else f"{r.violations} violations; first: {r.first['message']}"
        out.append(Expectation(f"invariant {name}", r.ok, detail))
    for name, (low, high) in expectations.metrics.items():
        if name not in metrics:
            raise ValueError(f"expectations.metrics: unknown metric {name!r} "
                             f"(known: {', '.join(METRICS)})")
        value = metrics[name]
        if low is not None:
            out.append(Expectation(f"metric {name} >= {_num(low)}", value >= low,
                                   f"measured {_num(value)}"))
        if high is not None:
            out.append(Expectation(f"metric {name} <= {_num(high)}", value <= high,
                                   f"measured {_num(value)}"))
    return out


def verify(conn: sqlite3.Connection, scenario: Any) -> "Verdict":
    """Check every invariant, compute every metric and judge `scenario.expectations`."""
    missing = _missing_tables(conn)
    if missing:
        raise ValueError(f"run database: missing table(s) {', '.join(missing)} "
                         f"(see docs/run-database.md)")
    end_ms = getattr(scenario, "end_ms", None)
    invariants = {}
    for name, check in CHECKS.items():
        violations = check(conn)
        if name in LIVENESS:
            _annotate_stuck(violations, end_ms)
        invariants[name] = summarize(name, violations)
    metrics = compute(conn)
    expectations = judge(invariants, metrics, scenario.expectations)
    return Verdict(invariants, metrics, expectations, all(e.ok for e in expectations))


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def create_tables(conn: sqlite3.Connection) -> None:
    """The verdict tables (docs/run-database.md), plus `invariants.worst` if it is missing."""
    conn.execute("""CREATE TABLE IF NOT EXISTS invariants (name TEXT PRIMARY KEY, ok INTEGER,
                    violations INTEGER, first TEXT, last TEXT, worst TEXT, refs TEXT)""")
    conn.execute("CREATE TABLE IF NOT EXISTS expectations (name TEXT PRIMARY KEY, ok INTEGER, "
                 "detail TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS metrics (name TEXT PRIMARY KEY, value)")
    columns = {r[1] for r in conn.execute("PRAGMA table_info(invariants)")}
    if "worst" not in columns:
        conn.execute("ALTER TABLE invariants ADD COLUMN worst TEXT")


def write(conn: sqlite3.Connection, verdict: Verdict) -> None:
    """Store `verdict` (replacing any previous one) and commit."""
    with conn:
        create_tables(conn)
        for table in ("invariants", "expectations", "metrics"):
            conn.execute(f"DELETE FROM {table}")
        conn.executemany(
            "INSERT OR REPLACE INTO invariants (name, ok, violations, first, last, worst, refs) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r.name, int(r.ok), r.violations, _json(r.first), _json(r.last), _json(r.worst),
              _json(r.refs)) for r in verdict.invariants.values()],
        )
        conn.executemany("INSERT OR REPLACE INTO expectations (name, ok, detail) VALUES (?, ?, ?)",
                         [(e.name, int(e.ok), e.detail) for e in verdict.expectations])
        conn.executemany("INSERT OR REPLACE INTO metrics (name, value) VALUES (?, ?)",
                         list(verdict.metrics.items()))
