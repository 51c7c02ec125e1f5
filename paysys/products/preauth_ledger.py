"""Two-phase ledger entries (TigerBeetle's pending transfers): a pending entry is opened when a
pre-authorisation is granted and moves no balance; it is resolved exactly once, by
compare-and-set, as `posted` (a capture: the captured amount, at most the pending one, is posted
as a real journal entry), `voided` (a cancel) or `expired` (the hold lapsed).

Owns table `pending_entries`: `pending_id` PK, `ref` (the pre-authorisation), `debit` / `credit`
(the accounts the transfer would move: asset:channel:<channel> / liability:merchant:<id>),
`currency`, `amount`, `status` (`pending` / `posted` / `voided` / `expired`), `created_ms`,
`resolved_ms`, `resolved_by` (the operation that resolved it), `posted` (the amount posted),
`entry_id` (the journal entry of a posted one). A database trigger refuses any change of a row
that is no longer pending, and every delete: a second resolution cannot happen, even by a bug.
Each opening and resolution is published (`ledger.pending` event, ref = the pre-authorisation).
"""

import sqlite3

STATUSES = ("pending", "posted", "voided", "expired")
RESOLUTIONS = STATUSES[1:]

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pending_entries (pending_id INTEGER PRIMARY KEY, "
    "ref TEXT NOT NULL, debit TEXT NOT NULL, credit TEXT NOT NULL, currency TEXT NOT NULL, "
    "amount INTEGER NOT NULL CHECK (amount > 0), status TEXT NOT NULL CHECK (status IN "
    "('pending', 'posted', 'voided', 'expired')), created_ms INTEGER NOT NULL, "
    "resolved_ms INTEGER, resolved_by TEXT NOT NULL DEFAULT '', "
    "posted INTEGER NOT NULL DEFAULT 0 CHECK (posted >= 0 AND posted <= amount), "
    "entry_id INTEGER)",
    "CREATE INDEX IF NOT EXISTS pending_entries_ref ON pending_entries (ref, status)",
    "CREATE TRIGGER IF NOT EXISTS pending_entries_resolved_once BEFORE UPDATE ON "
    "pending_entries WHEN OLD.status <> 'pending' BEGIN SELECT RAISE(ABORT, "
    "'pending_entries: a resolved entry is immutable (resolved exactly once)'); END",
    "CREATE TRIGGER IF NOT EXISTS pending_entries_no_delete BEFORE DELETE ON pending_entries "
    "BEGIN SELECT RAISE(ABORT, 'pending_entries are never deleted'); END",
)


class PendingError(Exception):
    """A pending entry that is not pending any more (or does not exist) was asked to resolve."""


def open_pending(node, ref: str, debit: str, credit: str, currency: str, amount: int,
                 now_ms: int) -> int:
    """Open a pending entry of `amount` for `ref`; returns its id. No balance moves."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount: expected a positive integer of minor units, got {amount!r}")
    pending_id = node.conn.execute(
        "INSERT INTO pending_entries (ref, debit, credit, currency, amount, status, created_ms) "
        "VALUES (?,?,?,?,?,?,?)", (ref, debit, credit, currency, amount, "pending", now_ms),
    ).lastrowid
    node.event("ledger.pending", ref, {"pending_id": pending_id, "status": "pending",
                                       "amount": amount, "currency": currency,
                                       "debit": debit, "credit": credit})
    return pending_id


def resolve(node, pending_id: int, status: str, now_ms: int, by: str, posted: int = 0,
            entry_id: int | None = None) -> None:
    """Resolve a pending entry once (compare-and-set on `status = 'pending'`): `posted` with the
    amount posted (<= its amount) and its entry, `voided` or `expired`. PendingError if it was
    resolved already."""
    if status not in RESOLUTIONS:
        raise ValueError(f"status: expected one of {', '.join(RESOLUTIONS)}, got {status!r}")
    if (status == "posted") != (posted > 0):
        raise ValueError(f"posted: expected > 0 exactly when posting, got {posted} ({status})")
    row = get(node.conn, pending_id)
    if row is None or row["status"] != "pending":
        raise PendingError(f"pending entry {pending_id} is "
                           f"{'unknown' if row is None else row['status']}, not pending")
    if posted > row["amount"]:
        raise PendingError(f"posted: {posted} exceeds the pending amount {row['amount']}")
    cur = node.conn.execute(
        "UPDATE pending_entries SET status=?, resolved_ms=?, resolved_by=?, posted=?, entry_id=? "
        "WHERE pending_id=? AND status='pending'",
        (status, now_ms, by, posted, entry_id, pending_id))
    if cur.rowcount != 1:
        raise PendingError(f"pending entry {pending_id} was resolved meanwhile")
    node.event("ledger.pending", row["ref"], {"pending_id": pending_id, "status": status,
                                              "amount": row["amount"], "posted": posted,
                                              "entry_id": entry_id, "by": by})


_COLUMNS = ("pending_id", "ref", "debit", "credit", "currency", "amount", "status", "created_ms",
            "resolved_ms", "resolved_by", "posted", "entry_id")


def get(conn: sqlite3.Connection, pending_id: int) -> dict | None:
    row = conn.execute(f"SELECT {','.join(_COLUMNS)} FROM pending_entries WHERE pending_id=?",
                       (pending_id,)).fetchone()
    return dict(zip(_COLUMNS, row, strict=True)) if row else None


def open_of(conn: sqlite3.Connection, ref: str) -> dict | None:
    """The pending entry of `ref` still pending (at most one), or None."""
    row = conn.execute(f"SELECT {','.join(_COLUMNS)} FROM pending_entries WHERE ref=? AND "
                       "status='pending' ORDER BY pending_id DESC LIMIT 1", (ref,)).fetchone()
    return dict(zip(_COLUMNS, row, strict=True)) if row else None
