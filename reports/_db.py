"""Read-only access to a run database (docs/run-database.md) for the report.

Owns opening the file without ever writing to it, knowing which tables exist (a crashed run may
lack some), and the small decoding rules shared by the sections (the `run` key/value table,
booleans stored as text or ints, JSON columns that may be malformed).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

# The tables the report reads, in the order a reader would miss them.
EXPECTED_TABLES = (
    "run", "pay_orders", "refund_orders", "events", "faults",
    "invariants", "expectations", "metrics",
)


def connect(db_path: str) -> sqlite3.Connection:
    """Open `db_path` read-only; a missing file is an error naming the path."""
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"run database not found: {db_path}")
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        # a WAL database whose -shm file cannot be created (read-only folder): read it as is
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {r[0] for r in rows}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}


def has_rows(conn: sqlite3.Connection, present: set[str], table: str) -> bool:
    """The table exists and holds at least one row (a section with nothing to show is left out)."""
    return table in present and conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None


def rows(conn: sqlite3.Connection, present: set[str], table: str) -> list[dict]:
    """Every row of `table` as dicts, in rowid order (`SELECT *`: columns a writer added or left
    out are tolerated; callers sort with `.get`); [] when the table is absent."""
    if table not in present:
        return []
    return [dict(r) for r in conn.execute(f'SELECT * FROM "{table}"')]


def run_info(conn: sqlite3.Connection, present: set[str]) -> dict[str, str]:
    if "run" not in present:
        return {}
    return {str(r[0]): "" if r[1] is None else str(r[1])
            for r in conn.execute("SELECT key, value FROM run")}


def as_int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def as_float(value: object) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def as_bool(value: object) -> bool | None:
    """1/0, "1"/"0", "true"/"false" (any case), "pass"/"fail"; anything else -> None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower() if value is not None else ""
    if text in ("1", "true", "yes", "ok", "pass"):
        return True
    if text in ("0", "false", "no", "fail"):
        return False
    return None


def loads(text: object, default: object = None) -> object:
    """Decode a JSON column; a non-JSON value is returned as-is (shown raw rather than lost)."""
    if text is None or text == "":
        return default
    if not isinstance(text, str | bytes):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]
