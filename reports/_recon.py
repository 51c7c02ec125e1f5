"""The report's reconciliation section: statement files, breaks, and injected faults vs findings.

Owns reading the tables paysys's reconciliation writes (`recon_files`, `recon_breaks`) and the
simulator's record of what the mocks broke on purpose (`stmt_injected`), and putting them side by
side: every injected statement fault is marked found (a statement break of the same channel, key
and class), `other class` (found under another class: the oracle may still expect that, e.g.
`channel_only` when paysys had no row yet), `not reached` / `file missing` (its governing file
was never reconciled), or missed; a statement break no injection explains is counted apart. The
oracle (`sim/_invariants_recon.py`) judges finer and gives the verdict (the recon invariants and
metrics); this section shows the evidence. Precision and recall come from the run's `metrics` (`recon_precision`,
`recon_recall`, `recon_unresolved`), which the oracle computes; absent metrics are simply not
shown. A run without these tables (or with them empty) has no reconciliation section: `build`
returns None. Columns are read with `SELECT *` so a writer adding or omitting one does not break
the report.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from . import _db
from . import _format as fmt

TABLES = ("recon_files", "recon_breaks", "stmt_injected")
# Contract order (docs/run-database.md, issue 5 section 4); unknown classes sort after these.
CLASSES = ("channel_only", "platform_only", "amount_over", "amount_under", "status", "fee",
           "currency", "cross_day", "late_file", "missing_file", "malformed_file")
BREAK_STATUSES = ("open", "resolved", "manual")
SCORES = (("recon_precision", "precision"), ("recon_recall", "recall"),
          ("recon_unresolved", "unresolved"))
ROW_FIELDS = ("key", "kind", "ref", "channel_ref", "amount", "fee", "currency", "status", "date")


def present_in(conn: sqlite3.Connection, present: set[str]) -> bool:
    return any(_db.has_rows(conn, present, t) for t in TABLES)


def _row(value: object) -> dict | None:
    """A JSON Row (object, or the array a NamedTuple serialises to) as a dict; None if absent."""
    value = _db.loads(value)
    if isinstance(value, list) and len(value) == len(ROW_FIELDS):
        value = dict(zip(ROW_FIELDS, value, strict=True))
    if not isinstance(value, dict):
        return None if value in (None, "") else {"raw": str(value)}
    return value


def _side(row: dict | None, date: str) -> dict | None:
    """One side of a break for display: the amount; underneath, the fee, and the status and the
    row's own date when they are not the ordinary SUCCESS and the break's day."""
    if row is None:
        return None
    if "raw" in row:
        return {"amount": "", "more": row["raw"]}
    currency = row.get("currency") or None
    amount = _db.as_int(row.get("amount"))
    fee = _db.as_int(row.get("fee"))
    status = str(row.get("status") or "")
    own_date = str(row.get("date") or "")
    more = [f"fee {fmt.money(fee)}" if fee is not None else "",
            status if status != "SUCCESS" else "", own_date if own_date != date else ""]
    return {"amount": fmt.money(amount, currency) if amount is not None else "?",
            "more": " · ".join(m for m in more if m)}


def _class_key(cls: str) -> tuple[int, str]:
    return (CLASSES.index(cls) if cls in CLASSES else len(CLASSES), cls)


def _files(conn, present: set[str]) -> list[dict]:
    out = []
    for f in _db.rows(conn, present, "recon_files"):
        out.append({
            "channel": str(f.get("channel") or ""), "date": str(f.get("date") or ""),
            "status": str(f.get("status") or "?"), "format": str(f.get("format") or ""),
            "rows": _db.as_int(f.get("rows")), "attempts": _db.as_int(f.get("attempts")),
            "first_try": _db.as_int(f.get("first_try_ms")),
            "received": _db.as_int(f.get("received_ms")),
            "reconciled": _db.as_int(f.get("reconciled_ms")),
            "error": str(f.get("error") or ""),
        })
    return sorted(out, key=lambda f: (f["channel"], f["date"]))


def _break(b: dict) -> dict:
    date = str(b.get("date") or "")
    return {
        "id": str(b.get("break_id") or ""), "phase": str(b.get("phase") or "statement"),
        "channel": str(b.get("channel") or ""), "date": date,
        "cls": str(b.get("cls") or "?"), "key": str(b.get("key") or ""),
        "ref": str(b.get("ref") or ""), "channel_ref": str(b.get("channel_ref") or ""),
        "ours": _side(_row(b.get("ours")), date), "theirs": _side(_row(b.get("theirs")), date),
        "found": _db.as_int(b.get("found_ms")), "status": str(b.get("status") or "?"),
        "resolution": str(b.get("resolution") or ""), "reason": str(b.get("reason") or ""),
        "entry_id": b.get("entry_id"), "resolved": _db.as_int(b.get("resolved_ms")),
        "fault": "",
    }


def _by_class(breaks: list[dict]) -> list[dict]:
    table: dict[str, dict] = {}
    for b in breaks:
        row = table.setdefault(b["cls"], {"cls": b["cls"], "count": 0, "other": 0,
                                          **{s: 0 for s in BREAK_STATUSES}})
        row["count"] += 1
        row[b["status"] if b["status"] in BREAK_STATUSES else "other"] += 1
    return sorted(table.values(), key=lambda r: _class_key(r["cls"]))


def _by_resolution(breaks: list[dict]) -> list[dict]:
    counts: dict[str, int] = {}
    for b in breaks:
        name = b["resolution"] or f"({b['status']})"
        counts[name] = counts.get(name, 0) + 1
    return [{"resolution": k, "count": v} for k, v in sorted(counts.items(),
                                                             key=lambda kv: (-kv[1], kv[0]))]


def _detail(value: object) -> str:
    value = _db.loads(value, {})
    if isinstance(value, dict):
        return " ".join(f"{k}={fmt.compact(v, 40)}" for k, v in value.items())
    return fmt.compact(value)


def _governing(item: dict) -> tuple[str, str]:
    """The file that should reveal an injected item: its day's, or the next day's for a row
    `stmt_next_day` moved there."""
    day = item["date"]
    if item["kind"] == "stmt_next_day":
        try:
            day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        except ValueError:
            pass
    return item["channel"], day


def _unfound(item: dict, files: dict[tuple[str, str], str] | None) -> str:
    """Why an injected item has no break: its governing file was never reconciled (the run
    ended first: `not reached`; or it is `missing`, which the missing_file break covers), or
    paysys did not see it (`missed`). Without `recon_files` every unfound item is missed."""
    if files is None or item["key"].startswith("file:"):
        return "missed"
    status = files.get(_governing(item))
    if status == "missing":
        return "file missing"
    return "missed" if status == "reconciled" else "not reached"


def _injected(conn, present: set[str], breaks: list[dict],
              files: dict[tuple[str, str], str] | None) -> tuple[list[dict], dict] | None:
    """Each injected statement fault with its outcome; the tally. None without `stmt_injected`."""
    if "stmt_injected" not in present:
        return None
    by_key: dict[tuple[str, str], list[dict]] = {}
    for b in breaks:
        by_key.setdefault((b["channel"], b["key"]), []).append(b)
    items, seen = [], set()
    for i in _db.rows(conn, present, "stmt_injected"):
        item = {"fault_id": str(i.get("fault_id") or ""), "kind": str(i.get("kind") or ""),
                "channel": str(i.get("channel") or ""), "date": str(i.get("date") or ""),
                "cls": str(i.get("cls") or ""), "key": str(i.get("key") or ""),
                "ref": str(i.get("ref") or ""), "detail": _detail(i.get("detail")),
                "outcome": "", "found_as": "", "break_id": ""}
        item["outcome"] = _unfound(item, files)
        found = by_key.get((item["channel"], item["key"]), [])
        same = [b for b in found if b["cls"] == item["cls"]]
        if same or found:
            hit = (same or found)[0]
            item.update(outcome="found" if same else "other class", break_id=hit["id"],
                        found_as="" if same else hit["cls"])
            seen.add((item["channel"], item["key"]))
            for b in same or found:
                b["fault"] = b["fault"] or item["fault_id"]
        items.append(item)
    items.sort(key=lambda i: (i["channel"], i["date"], _class_key(i["cls"]), i["key"]))
    tally = {"injected": len(items),
             "found": sum(i["outcome"] == "found" for i in items),
             "other": sum(i["outcome"] == "other class" for i in items),
             "missed": sum(i["outcome"] == "missed" for i in items),
             "unreached": sum(i["outcome"] in ("not reached", "file missing") for i in items),
             "unexplained": sum((b["channel"], b["key"]) not in seen for b in breaks)}
    return items, tally


def _scores(conn, present: set[str]) -> list[dict]:
    if "metrics" not in present:
        return []
    values = {r[0]: r[1] for r in conn.execute(
        "SELECT name, value FROM metrics WHERE name IN (?, ?, ?)", [n for n, _ in SCORES])}
    return [{"name": name, "label": label, "value": fmt.number(values[name])}
            for name, label in SCORES if name in values and values[name] is not None]


def build(conn: sqlite3.Connection, present: set[str]) -> dict | None:
    """The section's context, or None when the run has no reconciliation data."""
    if not present_in(conn, present):
        return None
    every = [_break(b) for b in _db.rows(conn, present, "recon_breaks")]
    every.sort(key=lambda b: b["id"])
    statement = [b for b in every if b["phase"] != "stream"]
    stream = [b for b in every if b["phase"] == "stream"]
    files = _files(conn, present)
    status = ({(f["channel"], f["date"]): f["status"] for f in files}
              if "recon_files" in present else None)
    injected = _injected(conn, present, statement, status)
    return {
        "files": files, "has_files": "recon_files" in present,
        "has_breaks": "recon_breaks" in present,
        "breaks": statement, "stream": stream,
        "by_class": _by_class(statement), "by_resolution": _by_resolution(statement),
        "stream_by_class": _by_class(stream),
        "injected": injected[0] if injected else None, "tally": injected[1] if injected else None,
        "scores": _scores(conn, present),
        "open": sum(b["status"] == "open" for b in every),
        "manual": sum(b["status"] == "manual" for b in every),
    }


def refs(recon: dict | None) -> list[str]:
    """Every order/refund id the section names (breaks and injected items), for trace links."""
    if not recon:
        return []
    out = [b["ref"] for b in recon["breaks"] + recon["stream"] if b["ref"]]
    out += [i["ref"] for i in recon["injected"] or [] if i["ref"]]
    return list(dict.fromkeys(out))
