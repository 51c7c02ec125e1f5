"""The books: an immutable double-entry ledger plus the external single-entry balances.

Everything that writes `journal_entries`, `postings`, `ledger_totals` and `ext_balances` lives
here. An entry is a list of `Line(account, currency, debit, credit)`; `post()` checks the whole
entry first (shape, known accounts, balanced per currency, balance limits) and only then writes
the entry, its postings, the running totals and the external mirror, so a rejected entry leaves
nothing behind. The caller (the engine) owns the transaction: nothing here commits or rolls back.

- Entries are immutable (database triggers refuse UPDATE/DELETE); a correction is a new entry,
  `reverse()` posts the mirror of an entry.
- `ledger_totals(account, currency, debits, credits)` keeps every balance O(1). Hot accounts
  (`income:fee` and every `asset:channel:*`: one line of nearly every entry, so one row every
  writer would update) are aggregated in batches instead: their postings after the mark in
  `hot_marks` are added to `ledger_totals` by `flush_hot()` (every HOT_BATCH entries and at each
  day end); `balance()` and `trial_balance()` add the postings after the mark, so they stay
  exact. Postings are durable in the same transaction, so a crash loses nothing.
- Each `liability:merchant:<id>` is mirrored, in the same call, onto the external single-entry
  balance `merchant:<id>` (balance += credit - debit): the two always agree.
- Balance limit: a `liability:merchant:*` account never goes below zero (its debits never exceed
  its credits) -> `INSUFFICIENT_BALANCE`.
- Posting templates (`payment_lines`, `refund_lines`, …) live in `paysys/postings.py` and are
  re-exported here.

Amounts are `int` minor units (never bool nor float), each line at most `money.MAX_AMOUNT`.
"""

import sqlite3

import sqlite_utils

from paysys.money import CURRENCIES, MAX_AMOUNT
from paysys.postings import (  # noqa: F401  (re-exported: callers import them from here)
    CODES,
    SUSPENSE,
    LedgerError,
    Line,
    fee_adjustment_lines,
    from_suspense,
    payment_lines,
    refund_lines,
    reserve_open_lines,
    settlement_lines,
    suspense_lines,
    suspense_refund_lines,
    topup_lines,
)

# Chart of accounts: family -> (type, normal side). See docs/run-database.md.
CHART: dict[str, tuple[str, str]] = {
    "asset:channel": ("asset", "debit"),
    "liability:merchant": ("liability", "credit"),
    "income:fee": ("income", "credit"),
    "expense:channel": ("expense", "debit"),
    "liability:suspense": ("liability", "credit"),
    "asset:reserve": ("asset", "debit"),
    "equity:capital": ("equity", "credit"),
}
# Families whose accounts need a sub-name (`asset:channel:<channel>`); the others are used as is.
SUBACCOUNT: dict[str, str] = {
    "asset:channel": "channel",
    "liability:merchant": "merchant_id",
    "expense:channel": "channel",
    "asset:reserve": "channel",
}
# Single-entry external accounts (账户) mirrored from ledger families, which may never go below
# zero: ledger prefix -> external prefix (`liability:merchant:M001` -> `merchant:M001`).
EXTERNAL: dict[str, str] = {"liability:merchant:": "merchant:"}
HOT = ("income:fee", "asset:channel")   # families whose totals are aggregated in batches
HOT_BATCH = 1_000                       # entries between two automatic flush_hot()
MERCHANT_PREFIX = "liability:merchant:"  # mirrored onto the external balance "merchant:<id>"

_families: dict[str, str] = {}  # account name -> family (a cache: accounts repeat endlessly)


def register_family(family: str, kind: str, normal: str, sub: str | None = None,
                    external: str | None = None) -> None:
    """Add an account family to the chart (a product's: paysys/products/): its type ("asset",
    "liability", "income", "expense", "equity"), normal side ("debit"/"credit"), the name of its
    sub-account if it has one (`liability:user:<user_id>`), and, for a family of single-entry
    external accounts that may never go below zero, the external prefix it is mirrored onto."""
    if family in CHART and CHART[family] != (kind, normal):
        raise ValueError(f"account family {family!r} is already in the chart")
    CHART[family] = (kind, normal)
    if sub:
        SUBACCOUNT[family] = sub
    if external:
        EXTERNAL[family + ":"] = external


def account_type(name: str) -> str:
    """The chart family of account `name` (`asset:channel:bank` -> `asset:channel`), or
    LedgerError UNKNOWN_ACCOUNT. CHART[family] gives its (type, normal side)."""
    family = _families.get(name) if isinstance(name, str) else None
    if family is None and isinstance(name, str):
        head, _, sub = name.rpartition(":")
        if head in SUBACCOUNT and sub:  # one non-empty segment after the family
            family = _families[name] = head
        elif name in CHART and name not in SUBACCOUNT:
            family = _families[name] = name
    if family is not None:
        return family
    expected = ", ".join(
        f"{fam}:<{SUBACCOUNT[fam]}>" if fam in SUBACCOUNT else fam for fam in CHART
    )
    raise LedgerError(
        "UNKNOWN_ACCOUNT", f"account: expected one of {expected}; got {name!r}", "account"
    )


def _check_amount_side(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerError(
            "INVALID_LINE", f"{field}: expected an int of minor units, got {value!r}", field
        )
    if value < 0 or value > MAX_AMOUNT:
        raise LedgerError("INVALID_LINE", f"{field}: expected 0..{MAX_AMOUNT}, got {value}", field)


def _check_line(i: int, line: object) -> None:
    """The slow path: find what is wrong with line `i` and raise INVALID_LINE naming it."""
    where = f"lines[{i}]"
    if not isinstance(line, (tuple, list)) or len(line) != 4:
        raise LedgerError(
            "INVALID_LINE",
            f"{where}: expected (account, currency, debit, credit), got {line!r}",
            where,
        )
    _account, currency, debit, credit = line
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise LedgerError(
            "INVALID_LINE",
            f"{where}.currency: expected one of {sorted(CURRENCIES)}, got {currency!r}",
            f"{where}.currency",
        )
    _check_amount_side(debit, f"{where}.debit")
    _check_amount_side(credit, f"{where}.credit")
    if (debit > 0) == (credit > 0):
        raise LedgerError(
            "INVALID_LINE",
            f"{where}: exactly one of debit/credit must be > 0, got {debit}/{credit}",
            where,
        )


def _check_lines(lines: object) -> list[tuple[str, str, int, int]]:
    """Shape, accounts and balance of an entry's lines; returns them as plain tuples."""
    if isinstance(lines, (str, bytes, dict)) or not hasattr(lines, "__iter__"):
        raise LedgerError(
            "INVALID_LINE", f"lines: expected a list of lines, got {lines!r}", "lines"
        )
    lines = list(lines)
    if len(lines) < 2:
        raise LedgerError(
            "INVALID_LINE", f"lines: an entry needs at least 2 lines, got {len(lines)}", "lines"
        )
    checked = []
    for i, line in enumerate(lines):
        # Fast path (the hot loop): plain ints, a known currency, exactly one side > 0.
        if isinstance(line, (tuple, list)) and len(line) == 4:
            account, currency, debit, credit = line
            if (
                type(debit) is int
                and type(credit) is int
                and type(currency) is str
                and currency in CURRENCIES
                and (0 == debit < credit <= MAX_AMOUNT or 0 == credit < debit <= MAX_AMOUNT)
            ):
                checked.append((account, currency, debit, credit))
                continue
        _check_line(i, line)  # raises, or accepts an exotic but valid line (int/str subclass)
        account, currency, debit, credit = line
        checked.append((account, currency, int(debit), int(credit)))
    for i, (account, *_rest) in enumerate(checked):
        try:
            account_type(account)
        except LedgerError as exc:
            raise LedgerError(
                "UNKNOWN_ACCOUNT", f"lines[{i}].{exc.message}", f"lines[{i}].account"
            ) from None
    net: dict[str, int] = {}
    for _account, currency, debit, credit in checked:
        net[currency] = net.get(currency, 0) + debit - credit
    unbalanced = {cur: diff for cur, diff in net.items() if diff}
    if unbalanced:
        detail = ", ".join(
            f"{cur} debits-credits={diff}" for cur, diff in sorted(unbalanced.items())
        )
        raise LedgerError(
            "UNBALANCED", f"lines: entry does not balance per currency: {detail}", "lines"
        )
    return checked


def post(conn: sqlite3.Connection, at_ms: int, ref: str, memo: str, lines) -> int:
    """Validate and write one journal entry; returns its entry_id. Raises LedgerError (nothing
    written) on a bad line, an unknown account, an unbalanced entry or a merchant account that
    would go below zero. Does not commit."""
    if isinstance(at_ms, bool) or not isinstance(at_ms, int) or at_ms < 0:
        raise LedgerError(
            "INVALID_LINE", f"at_ms: expected an int of ms >= 0, got {at_ms!r}", "at_ms"
        )
    if not isinstance(ref, str):
        raise LedgerError("INVALID_LINE", f"ref: expected a str, got {ref!r}", "ref")
    if not isinstance(memo, str):
        raise LedgerError("INVALID_LINE", f"memo: expected a str, got {memo!r}", "memo")
    checked = _check_lines(lines)

    # Net movement per (account, currency): the totals to add and the limits to check.
    moves: dict[tuple[str, str], list[int]] = {}
    for account, currency, debit, credit in checked:
        move = moves.get((account, currency))
        if move is None:
            moves[(account, currency)] = [debit, credit]
        else:
            move[0] += debit
            move[1] += credit
    merchants = [(key, dc) for key, dc in moves.items() if _external(key[0])]
    for (account, currency), (debit, credit) in merchants:
        if debit > credit:
            row = conn.execute(
                "SELECT credits - debits FROM ledger_totals WHERE account = ? AND currency = ?",
                (account, currency),
            ).fetchone()
            available = row[0] if row else 0
            if debit - credit > available:
                raise LedgerError(
                    "INSUFFICIENT_BALANCE",
                    f"{account} {currency}: balance {available} cannot cover a net debit of "
                    f"{debit - credit}",
                    "lines",
                )

    # Everything is checked: write.
    entry_id = conn.execute(
        "INSERT INTO journal_entries (at_ms, ref, memo) VALUES (?, ?, ?)", (at_ms, ref, memo)
    ).lastrowid
    conn.executemany(
        "INSERT INTO postings (entry_id, account, currency, debit, credit) VALUES (?, ?, ?, ?, ?)",
        [(entry_id, *line) for line in checked],
    )
    _add_totals(
        conn,
        [(account, cur, dc[0], dc[1]) for (account, cur), dc in moves.items() if not is_hot(account)],
    )
    if merchants:
        conn.executemany(
            "INSERT INTO ext_balances (account, currency, balance, updated_ms) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (account, currency) DO UPDATE SET "
            "balance = balance + excluded.balance, updated_ms = excluded.updated_ms",
            [
                (_external(account), currency, credit - debit, at_ms)
                for (account, currency), (debit, credit) in merchants
            ],
        )
    if entry_id % HOT_BATCH == 0:
        flush_hot(conn)
    return entry_id


def _external(account: str) -> str:
    """The external account mirroring ledger `account`, or "" when none does."""
    for prefix, ext in EXTERNAL.items():
        if account.startswith(prefix):
            return ext + account[len(prefix):]
    return ""


def is_hot(account: str) -> bool:
    """Whether `account`'s ledger_totals row is aggregated in batches (see the module doc)."""
    return account_type(account) in HOT


def _add_totals(conn: sqlite3.Connection, rows: list[tuple[str, str, int, int]]) -> None:
    conn.executemany(
        "INSERT INTO ledger_totals (account, currency, debits, credits) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (account, currency) DO UPDATE SET "
        "debits = debits + excluded.debits, credits = credits + excluded.credits",
        rows,
    )


_HOT_SQL = "(account = 'income:fee' OR account LIKE 'asset:channel:%')"


def _hot_mark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT posting_id FROM hot_marks WHERE name = 'hot'").fetchone()
    return row[0] if row else 0


def flush_hot(conn: sqlite3.Connection) -> int:
    """Add the hot accounts' postings after the mark to `ledger_totals` and move the mark to the
    last posting; returns how many postings were aggregated. Idempotent; does not commit."""
    mark = _hot_mark(conn)
    (top,) = conn.execute("SELECT COALESCE(MAX(posting_id), 0) FROM postings").fetchone()
    if top <= mark:
        return 0
    rows = conn.execute(
        f"SELECT account, currency, SUM(debit), SUM(credit), COUNT(*) FROM postings "
        f"WHERE posting_id > ? AND posting_id <= ? AND {_HOT_SQL} GROUP BY account, currency",
        (mark, top),
    ).fetchall()
    _add_totals(conn, [row[:4] for row in rows])
    conn.execute(
        "INSERT INTO hot_marks (name, posting_id) VALUES ('hot', ?) "
        "ON CONFLICT (name) DO UPDATE SET posting_id = excluded.posting_id",
        (top,),
    )
    return sum(row[4] for row in rows)


def reverse(conn: sqlite3.Connection, entry_id: int, at_ms: int, memo: str) -> int:
    """Post the mirror of entry `entry_id` (debits and credits swapped, same ref); returns the new
    entry_id. The mirror goes through post(), so balance limits apply. Reversing twice is not
    prevented here: the caller decides what to correct."""
    head = conn.execute(
        "SELECT ref FROM journal_entries WHERE entry_id = ?", (entry_id,)
    ).fetchone()
    if head is None:
        raise LedgerError("UNKNOWN_ENTRY", f"entry_id: no journal entry {entry_id!r}", "entry_id")
    rows = conn.execute(
        "SELECT account, currency, credit, debit FROM postings WHERE entry_id = ? "
        "ORDER BY posting_id",
        (entry_id,),
    ).fetchall()
    return post(conn, at_ms, head[0], memo, rows)


def balance(conn: sqlite3.Connection, account: str, currency: str) -> int:
    """Balance of `account` in `currency` on its normal side (asset/expense: debits - credits;
    liability/income: credits - debits); 0 for an account never posted."""
    family = account_type(account)
    normal = CHART[family][1]
    row = conn.execute(
        "SELECT debits, credits FROM ledger_totals WHERE account = ? AND currency = ?",
        (account, currency),
    ).fetchone()
    debits, credits = row if row else (0, 0)
    if family in HOT:  # plus the postings not aggregated yet
        more = conn.execute(
            "SELECT COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) FROM postings "
            "WHERE posting_id > ? AND account = ? AND currency = ?",
            (_hot_mark(conn), account, currency),
        ).fetchone()
        debits, credits = debits + more[0], credits + more[1]
    return debits - credits if normal == "debit" else credits - debits


def external_balance(conn: sqlite3.Connection, name: str, currency: str) -> int:
    """The external single-entry balance `name` (e.g. `merchant:M001`); 0 if it has no row."""
    row = conn.execute(
        "SELECT balance FROM ext_balances WHERE account = ? AND currency = ?", (name, currency)
    ).fetchone()
    return row[0] if row else 0


def trial_balance(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """{currency: (total debits, total credits)} over the whole ledger; they are always equal."""
    rows = conn.execute(
        "SELECT currency, SUM(debits), SUM(credits) FROM ledger_totals GROUP BY currency "
        "UNION ALL "
        f"SELECT currency, SUM(debit), SUM(credit) FROM postings WHERE posting_id > ? "
        f"AND {_HOT_SQL} GROUP BY currency",
        (_hot_mark(conn),),
    ).fetchall()
    out: dict[str, tuple[int, int]] = {}
    for currency, debits, credits in rows:
        d, c = out.get(currency, (0, 0))
        out[currency] = (d + debits, c + credits)
    return dict(sorted(out.items()))


# -- schema ---------------------------------------------------------------------------------------

_IMMUTABLE = ("journal_entries", "postings")


def create_tables(db: sqlite_utils.Database) -> None:
    """Create the ledger's tables, indexes and immutability triggers (idempotent)."""
    db.table("journal_entries").create(
        {"entry_id": int, "at_ms": int, "ref": str, "memo": str},
        pk="entry_id",
        not_null={"at_ms", "ref", "memo"},
        if_not_exists=True,
    )
    db.table("postings").create(
        {
            "posting_id": int,
            "entry_id": int,
            "account": str,
            "currency": str,
            "debit": int,
            "credit": int,
        },
        pk="posting_id",
        not_null={"entry_id", "account", "currency", "debit", "credit"},
        foreign_keys=[("entry_id", "journal_entries", "entry_id")],
        if_not_exists=True,
    )
    db.table("postings").create_index(["entry_id"], if_not_exists=True)
    db.table("ledger_totals").create(
        {"account": str, "currency": str, "debits": int, "credits": int},
        pk=("account", "currency"),
        not_null={"debits", "credits"},
        if_not_exists=True,
    )
    db.table("hot_marks").create(
        {"name": str, "posting_id": int}, pk="name", not_null={"posting_id"}, if_not_exists=True
    )
    db.table("journal_entries").create_index(["at_ms"], if_not_exists=True)
    db.table("ext_balances").create(
        {"account": str, "currency": str, "balance": int, "updated_ms": int},
        pk=("account", "currency"),
        not_null={"balance", "updated_ms"},
        if_not_exists=True,
    )
    for table in _IMMUTABLE:
        for op in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} are immutable: post a correcting entry'); END"
            )
