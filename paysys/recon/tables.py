"""The reconciliation tables and paysys's own rows of a business day (contract issue 5, §4).

Tables (created idempotently by `create_tables`, sqlite-utils like paysys/store.py):
- `recon_files`: one row per (channel, date) statement: `status` (`waiting` / `reconciled` /
  `missing`), `attempts`, `first_try_ms`, `received_ms`, `format`, `rows`, `error` (the last
  parse error, or ""), `reconciled_ms`.
- `recon_breaks`: every break found, `break_id` "B000001", "B000002"… in the order found.
- `recon_buffer`: paysys's rows waiting for a file to list them (see match.py), per channel.

Helpers take the sqlite3 connection and never commit: the engine owns the transaction.
Paysys's rows of a day: every charge in `charges` whose `at_ms` falls in the day (key
`pay:<channel_ref>`, fee = the channel's contract fee on it, status SUCCESS) and every SUCCEEDED
refund in `refund_orders` whose `updated_ms` falls in it (key `refund:<refund_id>`, fee 0;
paysys keeps no channel id of its own refunds, so their `channel_ref` is ""). A row's `date` is
the local day of that instant.
"""

import json
import sqlite3

import sqlite_utils

from paysys.money import FeeRule
from paysys.recon import local_date
from paysys.recon.formats import Row
from paysys.recon.match import Break, Buffered
from paysys.recon.policy import Decision

FILE_COLUMNS = ("channel", "date", "status", "attempts", "first_try_ms", "received_ms", "format",
                "rows", "error", "reconciled_ms")
FILE_DEFAULTS = {"status": "waiting", "attempts": 0, "first_try_ms": None, "received_ms": None,
                 "format": "", "rows": 0, "error": "", "reconciled_ms": None}
BREAK_COLUMNS = ("break_id", "phase", "channel", "date", "cls", "key", "ref", "channel_ref",
                 "ours", "theirs", "found_ms", "status", "resolution", "reason", "entry_id",
                 "resolved_ms")


def create_tables(db: sqlite_utils.Database) -> None:
    db["recon_files"].create(
        {"channel": str, "date": str, "status": str, "attempts": int, "first_try_ms": int,
         "received_ms": int, "format": str, "rows": int, "error": str, "reconciled_ms": int},
        pk=("channel", "date"), if_not_exists=True,
    )
    db["recon_breaks"].create(
        {"break_id": str, "phase": str, "channel": str, "date": str, "cls": str, "key": str,
         "ref": str, "channel_ref": str, "ours": str, "theirs": str, "found_ms": int,
         "status": str, "resolution": str, "reason": str, "entry_id": int, "resolved_ms": int},
        pk="break_id", if_not_exists=True,
    )
    db["recon_breaks"].create_index(["channel", "date"], if_not_exists=True)
    db["recon_breaks"].create_index(["status"], if_not_exists=True)
    db["recon_buffer"].create(
        {"channel": str, "key": str, "date": str, "row": str, "since_ms": int,
         "files_seen": int},
        pk=("channel", "key"), if_not_exists=True,
    )


# -- paysys's own rows ----------------------------------------------------------------------------

_CHARGES = ("SELECT c.order_id, c.channel_ref, c.amount, p.currency, c.at_ms FROM charges c "
            "JOIN pay_orders p ON p.order_id = c.order_id WHERE c.channel=? ")
_REFUNDS = ("SELECT refund_id, amount, currency, updated_ms FROM refund_orders "
            "WHERE channel=? AND status='SUCCEEDED' ")


def _pay(order_id, channel_ref, amount, currency, at_ms, fee_rule: FeeRule | None) -> Row:
    fee = fee_rule.fee(amount) if fee_rule is not None else 0
    return Row(f"pay:{channel_ref}", "pay", order_id, channel_ref, amount, fee, currency,
               "SUCCESS", local_date(at_ms))


def _refund(refund_id, amount, currency, updated_ms) -> Row:
    return Row(f"refund:{refund_id}", "refund", refund_id, "", amount, 0, currency, "SUCCESS",
               local_date(updated_ms))


def ours(conn: sqlite3.Connection, channel: str, day_start_ms: int, day_end_ms: int,
         fee_rule: FeeRule) -> dict[str, Row]:
    """Paysys's rows of `channel` in [day_start_ms, day_end_ms), by key, sorted by key."""
    rows = [_pay(*r, fee_rule) for r in conn.execute(
        _CHARGES + "AND c.at_ms >= ? AND c.at_ms < ?", (channel, day_start_ms, day_end_ms))]
    rows += [_refund(*r) for r in conn.execute(
        _REFUNDS + "AND updated_ms >= ? AND updated_ms < ?", (channel, day_start_ms, day_end_ms))]
    return {row.key: row for row in sorted(rows)}


def known(conn: sqlite3.Connection, channel: str, keys, fee_rule: FeeRule | None = None
          ) -> dict[str, Row]:
    """Paysys's rows of `channel` for `keys` ("pay:<channel_ref>" / "refund:<refund_id>"), any
    day, each with its own date; keys paysys has no row for are left out. Without `fee_rule` the
    fee of a pay row is 0 (matching compares fees only for rows of the file's own day)."""
    found: dict[str, Row] = {}
    for key in sorted(set(keys)):
        kind, _, ident = key.partition(":")
        if kind == "pay":
            for r in conn.execute(_CHARGES + "AND c.channel_ref=? ORDER BY c.at_ms LIMIT 1",
                                  (channel, ident)):
                found[key] = _pay(*r, fee_rule)
        elif kind == "refund":
            for r in conn.execute(_REFUNDS + "AND refund_id=?", (channel, ident)):
                found[key] = _refund(*r)
    return found


def ref_known(conn: sqlite3.Connection, row: Row) -> bool:
    """Paysys has the order (pay) or refund order (refund) the file row names, in any status."""
    table, column = ("pay_orders", "order_id") if row.kind == "pay" else ("refund_orders",
                                                                          "refund_id")
    return conn.execute(f"SELECT 1 FROM {table} WHERE {column}=?", (row.ref,)).fetchone() is not None


# -- the buffer -----------------------------------------------------------------------------------

def _row_json(row: Row | None) -> str | None:
    return None if row is None else json.dumps(row._asdict(), ensure_ascii=False)


def row_of(text: str | None) -> Row | None:
    return None if text is None else Row(**json.loads(text))


def load_buffer(conn: sqlite3.Connection, channel: str) -> dict[str, Buffered]:
    return {key: Buffered(row_of(row), files_seen) for key, row, files_seen in conn.execute(
        "SELECT key, row, files_seen FROM recon_buffer WHERE channel=? ORDER BY key", (channel,))}


def save_buffer(conn: sqlite3.Connection, channel: str, buffer: dict[str, Buffered],
                now_ms: int) -> None:
    """Make `channel`'s buffer `buffer`: rows already held keep their `since_ms`, new ones get
    `now_ms`, rows no longer in `buffer` leave."""
    since = dict(conn.execute("SELECT key, since_ms FROM recon_buffer WHERE channel=?",
                              (channel,)))
    conn.execute("DELETE FROM recon_buffer WHERE channel=?", (channel,))
    conn.executemany(
        "INSERT INTO recon_buffer (channel, key, date, row, since_ms, files_seen) "
        "VALUES (?,?,?,?,?,?)",
        [(channel, key, held.row.date, _row_json(held.row), since.get(key, now_ms),
          held.files_seen) for key, held in sorted(buffer.items())])


# -- breaks ---------------------------------------------------------------------------------------

def add_break(conn: sqlite3.Connection, phase: str, channel: str, date: str, brk: Break,
              decision: Decision, now_ms: int, entry_id: int | None = None) -> str:
    """Record break `brk` of business day `date` with `decision` (and the ledger entry of a
    resolution that already moved money); returns its id ("B000001").

    `date` is the day the item belongs to: for a row break, the row's own date is the natural
    choice (`item_date(brk, file_date)`)."""
    (last,) = conn.execute("SELECT MAX(break_id) FROM recon_breaks").fetchone()
    break_id = f"B{(int(last[1:]) if last else 0) + 1:06d}"
    row = brk.theirs or brk.ours
    conn.execute(
        f"INSERT INTO recon_breaks ({','.join(BREAK_COLUMNS)}) "
        f"VALUES ({','.join('?' * len(BREAK_COLUMNS))})",
        (break_id, phase, channel, date, brk.cls, brk.key, row.ref if row else None,
         row.channel_ref if row else None, _row_json(brk.ours), _row_json(brk.theirs), now_ms,
         decision.status, decision.resolution, decision.reason, entry_id,
         now_ms if decision.status == "resolved" else None))
    return break_id


def item_date(brk: Break, file_date: str) -> str:
    """The business day a break belongs to: paysys's row's date, else the file row's, else the
    file's own day (file-level breaks)."""
    row = brk.ours or brk.theirs
    return row.date if row is not None else file_date


def resolve_break(conn: sqlite3.Connection, break_id: str, status: str, resolution: str,
                  reason: str, entry_id: int | None, now_ms: int) -> None:
    cur = conn.execute(
        "UPDATE recon_breaks SET status=?, resolution=?, reason=?, entry_id=?, resolved_ms=? "
        "WHERE break_id=?", (status, resolution, reason, entry_id, now_ms, break_id))
    if cur.rowcount != 1:
        raise KeyError(f"break_id: no break {break_id!r}")


def get_break(conn: sqlite3.Connection, break_id: str) -> dict | None:
    row = conn.execute(f"SELECT {','.join(BREAK_COLUMNS)} FROM recon_breaks WHERE break_id=?",
                       (break_id,)).fetchone()
    if row is None:
        return None
    found = dict(zip(BREAK_COLUMNS, row, strict=True))
    found["ours"], found["theirs"] = row_of(found["ours"]), row_of(found["theirs"])
    return found


# -- files ----------------------------------------------------------------------------------------

def file_row(conn: sqlite3.Connection, channel: str, date: str) -> dict | None:
    row = conn.execute(f"SELECT {','.join(FILE_COLUMNS)} FROM recon_files "
                       "WHERE channel=? AND date=?", (channel, date)).fetchone()
    return dict(zip(FILE_COLUMNS, row, strict=True)) if row else None


def upsert_file(conn: sqlite3.Connection, channel: str, date: str, **fields) -> dict:
    """Create the file row of (channel, date) with FILE_DEFAULTS if new, set `fields`; returns
    the row as it now is."""
    unknown = sorted(set(fields) - set(FILE_DEFAULTS))
    if unknown:
        raise KeyError(f"{unknown[0]}: not a column of recon_files ({', '.join(FILE_DEFAULTS)})")
    row = file_row(conn, channel, date)
    if row is None:
        row = {"channel": channel, "date": date, **FILE_DEFAULTS, **fields}
        conn.execute(f"INSERT INTO recon_files ({','.join(FILE_COLUMNS)}) "
                     f"VALUES ({','.join('?' * len(FILE_COLUMNS))})",
                     tuple(row[c] for c in FILE_COLUMNS))
    elif fields:
        row.update(fields)
        conn.execute(f"UPDATE recon_files SET {','.join(f'{c}=?' for c in fields)} "
                     "WHERE channel=? AND date=?", (*fields.values(), channel, date))
    return row
