"""The reconciliation job's bookkeeping queries (paysys/recon/flow.py): which files are due,
which breaks wait for a channel's answer.

The tables themselves (recon_files, recon_breaks, recon_buffer) are defined in tables.py.
"""

import sqlite3

from paysys.recon import next_date


def schedule_days(conn: sqlite3.Connection, channels: tuple[str, ...], today: str) -> None:
    """A `waiting` row for every channel and every business day from the job's first day (the
    earliest row, or today) up to today; rows already there are left alone."""
    (first,) = conn.execute("SELECT MIN(date) FROM recon_files").fetchone()
    date = first or today
    while date <= today:
        for channel in channels:
            conn.execute("INSERT OR IGNORE INTO recon_files (channel, date, status, attempts, "
                         "error) VALUES (?,?,'waiting',0,'')", (channel, date))
        date = next_date(date)


def waiting(conn: sqlite3.Connection, today: str) -> list[tuple[str, str, int | None]]:
    """(channel, date, first_try_ms) of every file still awaited for a day before `today`."""
    return conn.execute("SELECT channel, date, first_try_ms FROM recon_files WHERE "
                        "status='waiting' AND date < ? ORDER BY date, channel", (today,)).fetchall()


def tried(conn: sqlite3.Connection, channel: str, date: str, now_ms: int) -> None:
    conn.execute("UPDATE recon_files SET attempts = attempts + 1, first_try_ms = "
                 "COALESCE(first_try_ms, ?) WHERE channel=? AND date=?", (now_ms, channel, date))


def open_break(conn: sqlite3.Connection, channel: str, key: str, cls: str) -> str | None:
    """The id of the open break of `cls` for `key` at `channel`, if any."""
    row = conn.execute("SELECT break_id FROM recon_breaks WHERE channel=? AND key=? AND cls=? "
                       "AND status='open'", (channel, key, cls)).fetchone()
    return row[0] if row else None


def open_breaks(conn: sqlite3.Connection, cls: str) -> list[dict]:
    cur = conn.execute("SELECT break_id, channel, theirs, found_ms FROM recon_breaks WHERE "
                       "status='open' AND cls=? AND phase='statement' ORDER BY break_id", (cls,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def listed_before(conn: sqlite3.Connection, channel: str) -> set[str]:
    """Keys an earlier file already listed in a break (channel-only, cross-day): when paysys
    learns of such a charge later (the query a channel-only row triggered), its row of that later
    day must not wait for a file again."""
    return {k for (k,) in conn.execute(
        "SELECT key FROM recon_breaks WHERE channel=? AND phase='statement' AND theirs IS NOT NULL",
        (channel,))}
