"""Render one run database into one self-contained HTML report.

Owns the report's sections and the queries behind them: summary (verdict, run facts, orders by
status), invariants and expectations, the timeline (geometry in `_timeline`), channels, metrics,
and payment traces (`_traces`); when the run has back-office data, reconciliation (`_recon`),
settlement and accounting days (`_books`), each left out entirely when its tables are absent or
empty. The output is a single file with inline CSS, JS and SVG: no
network resource, so it opens offline. Tables a crashed run never wrote are reported as missing
and their sections say so; the rest still renders. Reads the database only (never writes it) and
imports none of our other packages.

    render("out/run.db", "out/run.html")      # -> "out/run.html"
"""

from __future__ import annotations

import sqlite3
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import _books, _db, _recon, _timeline, _traces
from . import _format as fmt

TEMPLATES = Path(__file__).parent / "templates"
_FINAL = ("SUCCEEDED", "FAILED", "CLOSED", "BLOCKED")


@cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt.FILTERS)
    return env


def _by_status(conn: sqlite3.Connection, table: str) -> list[dict]:
    """Count and amount (per currency) per status, final statuses first."""
    rows: dict[str, dict] = {}
    for status, currency, count, amount in conn.execute(
            f"SELECT status, currency, COUNT(*), SUM(amount) FROM {table} "
            "GROUP BY status, currency"):
        row = rows.setdefault(status or "?", {"status": status or "?", "count": 0, "amounts": []})
        row["count"] += count
        row["amounts"].append(fmt.money(amount or 0, currency))
    order = {s: i for i, s in enumerate(_FINAL)}
    return sorted(rows.values(), key=lambda r: (order.get(r["status"], 99), r["status"]))


def _summary(conn, present: set[str], run: dict[str, str]) -> dict:
    start, end = _db.as_int(run.get("start_ms")), _db.as_int(run.get("end_ms"))
    ok = _db.as_bool(run.get("ok")) if run.get("ok") not in (None, "") else None
    if ok is None and "expectations" in present:
        oks = [_db.as_bool(r[0]) for r in conn.execute("SELECT ok FROM expectations")]
        ok = all(oks) if oks else None
    wall = _db.as_float(run.get("wall_s"))
    payments = _by_status(conn, "pay_orders") if "pay_orders" in present else None
    refunds = _by_status(conn, "refund_orders") if "refund_orders" in present else None
    return {
        "scenario": run.get("scenario") or "(unknown scenario)",
        "scenario_file": run.get("scenario_file", ""), "seed": run.get("seed", ""),
        "digest": run.get("digest", ""), "version": run.get("paysim_version", ""),
        "verdict": {True: "PASS", False: "FAIL", None: "INCOMPLETE"}[ok],
        "start": start, "end": end,
        "period": fmt.duration(end - start) if start is not None and end is not None else "",
        "traffic_end": _db.as_int(run.get("traffic_end_ms")),
        "faults_end": _db.as_int(run.get("faults_end_ms")),
        "wall": f"{wall:.2f} s" if wall is not None else "",
        "payments": payments, "refunds": refunds,
        "payments_total": sum(r["count"] for r in payments or []),
        "refunds_total": sum(r["count"] for r in refunds or []),
    }


def _invariants(conn, present: set[str]) -> list[dict]:
    if "invariants" not in present:
        return []
    out = []
    worst = "worst" if "worst" in _db.columns(conn, "invariants") else "NULL AS worst"
    for r in conn.execute(f"SELECT name, ok, violations, first, {worst}, last, refs "
                          "FROM invariants ORDER BY ok, name"):
        refs = _db.loads(r["refs"], [])
        out.append({"name": r["name"], "ok": bool(_db.as_bool(r["ok"])),
                    "violations": _db.as_int(r["violations"]) or 0,
                    "first": _violation(_db.loads(r["first"])),
                    "worst": _violation(_db.loads(r["worst"])),
                    "last": _violation(_db.loads(r["last"])),
                    "refs": [str(x) for x in refs] if isinstance(refs, list) else []})
    return out


def _violation(v: object) -> dict | None:
    """A violation as {ref, message, rest}; rest = the numbers involved, compactly."""
    if v in (None, "", {}):
        return None
    if not isinstance(v, dict):
        return {"ref": "", "message": str(v), "rest": ""}
    rest = ", ".join(f"{k}={val}" for k, val in v.items() if k not in ("ref", "message"))
    return {"ref": str(v.get("ref") or ""), "message": str(v.get("message") or ""), "rest": rest}


_LATENCY_SQL = """
SELECT r.channel, a.at_ms - r.at_ms, a.kind FROM
  (SELECT json_extract(data, '$.req_id') AS req_id, json_extract(data, '$.channel') AS channel,
          MIN(at_ms) AS at_ms
     FROM events WHERE kind = 'channel.request' AND json_extract(data, '$.op') = 'pay'
    GROUP BY 1) AS r
JOIN
  (SELECT json_extract(data, '$.req_id') AS req_id, MIN(at_ms) AS at_ms, kind
     FROM events WHERE kind IN ('channel.reply', 'channel.timeout') GROUP BY 1) AS a
USING (req_id)
"""


def _pay_latencies(conn) -> dict[str, dict]:
    """Per channel: latencies (ms) of pay requests to their first reply or timeout, and timeouts.

    Joined in SQL (JSON1) for speed on large runs; falls back to Python if SQLite lacks JSON1
    or a `data` cell is not JSON."""
    try:
        out: dict[str, dict] = {}
        for channel, latency, kind in conn.execute(_LATENCY_SQL):
            stats = out.setdefault(str(channel), {"lat": [], "timeouts": 0})
            stats["lat"].append(latency)
            stats["timeouts"] += kind == "channel.timeout"
        return out
    except sqlite3.OperationalError:
        return _pay_latencies_py(conn)


def _pay_latencies_py(conn) -> dict[str, dict]:
    pending: dict[str, tuple[str, int]] = {}
    out: dict[str, dict] = {}
    for kind, at_ms, data in conn.execute(
            "SELECT kind, at_ms, data FROM events WHERE kind IN "
            "('channel.request', 'channel.reply', 'channel.timeout') ORDER BY seq"):
        d = _db.loads(data, {})
        if not isinstance(d, dict) or d.get("op", "pay") != "pay":
            continue
        req_id = d.get("req_id")
        if kind == "channel.request":
            pending[req_id] = (str(d.get("channel")), at_ms)
        elif req_id in pending:
            channel, sent = pending.pop(req_id)
            stats = out.setdefault(channel, {"lat": [], "timeouts": 0})
            stats["lat"].append(at_ms - sent)
            stats["timeouts"] += kind == "channel.timeout"
    return out


def _percentile(values: list[int], p: int) -> int | None:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return None
    return values[max(0, -(-len(values) * p // 100) - 1)]


def _channels(conn, present: set[str]) -> list[dict]:
    if "pay_orders" not in present:
        return []
    rows: dict[str, dict] = {}
    for channel, currency, volume, ok, fee, cost in conn.execute(
            "SELECT channel, currency, COUNT(*), SUM(status = 'SUCCEEDED'), SUM(merchant_fee), "
            "SUM(channel_cost) FROM pay_orders GROUP BY channel, currency ORDER BY channel"):
        row = rows.setdefault(channel or "", {"channel": channel or "(no route)", "volume": 0,
                                              "succeeded": 0, "fees": [], "costs": []})
        row["volume"] += volume
        row["succeeded"] += ok or 0
        row["fees"].append(fmt.money(fee or 0, currency))
        row["costs"].append(fmt.money(cost or 0, currency))
    latencies = _pay_latencies(conn) if "events" in present else {}
    for name, row in rows.items():
        lat = sorted(latencies.get(name, {}).get("lat", []))
        row.update(rate=fmt.percent(row["succeeded"], row["volume"]), requests=len(lat),
                   p50=fmt.duration(_percentile(lat, 50)), p99=fmt.duration(_percentile(lat, 99)),
                   timeouts=latencies.get(name, {}).get("timeouts", 0))
    return list(rows.values())


def _simple(conn, present: set[str], table: str, sql: str) -> list[dict]:
    return [dict(r) for r in conn.execute(sql)] if table in present else []


def _known_orders(conn, present: set[str], ids: list[str]) -> set[str] | None:
    if "pay_orders" not in present:
        return None
    found: set[str] = set()
    for part in _db.chunks(ids):
        found |= {r[0] for r in conn.execute(
            f"SELECT order_id FROM pay_orders WHERE order_id IN ({','.join('?' * len(part))})",
            part)}
    return found


def _context(conn: sqlite3.Connection, db_path: str, max_traces: int,
             orders: tuple[str, ...] = ()) -> dict:
    present = _db.tables(conn)
    run = _db.run_info(conn, present)
    summary = _summary(conn, present, run)
    invariants = _invariants(conn, present)
    refunds = _traces.refund_map(conn, present)
    flagged_by: dict[str, list[str]] = {}
    raw = []
    for inv in (i for i in invariants if not i["ok"]):
        refs = inv["refs"] + [v["ref"] for v in (inv["first"], inv["worst"], inv["last"])
                              if v and v["ref"]]
        raw += refs
        for ref in refs:
            names = flagged_by.setdefault(refunds.get(ref, ref), [])
            if inv["name"] not in names:
                names.append(inv["name"])
    for ref in orders:  # asked for by name: traced first, even when nothing is wrong with them
        flagged_by.setdefault(refunds.get(ref, ref), []).insert(0, "asked for")
    raw = list(orders) + raw
    known = _known_orders(conn, present, list(dict.fromkeys(refunds.get(r, r) for r in raw)))
    flagged = _traces.flagged_orders(raw, refunds, known)
    recon = _recon.build(conn, present)
    recon_refs = _recon.refs(recon)
    # the orders reconciliation names join the sample, so a break can link to its story
    broken = _known_orders(conn, present, list(dict.fromkeys(refunds.get(r, r)
                                                             for r in recon_refs))) or set()
    extra = (("reconciliation break", sorted(broken)),) if broken else ()
    chosen = _traces.select_orders(conn, present, flagged, refunds, max(0, max_traces), extra)
    traces = _traces.load(conn, present, chosen, flagged_by, refunds)
    traced = {t["order_id"] for t in traces["traces"]}
    link = {ref: refunds.get(ref, ref) for ref in raw + recon_refs
            if refunds.get(ref, ref) in traced}
    markers = {"traffic ends": summary["traffic_end"], "faults end": summary["faults_end"]}
    return {
        "db_name": Path(db_path).name, "s": summary, "tz": fmt.TZ_LABEL,
        "missing": [t for t in _db.EXPECTED_TABLES if t not in present], "present": present,
        "invariants": invariants, "link": link, "flagged_total": len(flagged),
        "expectations": _simple(conn, present, "expectations",
                                "SELECT name, ok, detail FROM expectations ORDER BY ok, name"),
        "timeline": _timeline.build(conn, present, summary["start"], summary["end"], markers),
        "faults": _simple(conn, present, "faults", "SELECT * FROM faults ORDER BY start_ms"),
        "channels": _channels(conn, present),
        "metrics": _simple(conn, present, "metrics", "SELECT name, value FROM metrics "
                                                     "ORDER BY name"),
        "traces": traces["traces"], "trace_source": traces["source"], "max_traces": max_traces,
        "recon": recon, "settlement": _books.settlement(conn, present),
        "accounting": _books.accounting(conn, present),
    }


def render(db_path: str, out_path: str, max_traces: int = 300, orders: tuple[str, ...] = ()) -> str:
    """Write the HTML report of the run database `db_path` to `out_path`; return `out_path`.
    The traces of `orders` (pay or refund ids) come first, whatever else is sampled."""
    conn = _db.connect(db_path)
    try:
        context = _context(conn, db_path, max(max_traces, len(orders)), tuple(orders))
    finally:
        conn.close()
    html = _env().get_template("report.html").render(**context)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out_path
