"""The accounting day (日切): at each local midnight (UTC+8) the day that just ended is closed.

What this module owns: the business calendar (`day_of`, `day_start`, `iso`), the tables
`accounting_days` and `trial_balances`, and the `day_end` timer. Closing day D:
1. the hot accounts are aggregated (`ledger.flush_hot`);
2. D's entries are those with cut-off of the previous closed day <= at_ms < cutoff_ms of D (the
   local midnight ending D; the first day's previous cut-off is 0);
3. one `accounting_days` row: entry count and id range, the cumulative debits and credits per
   currency and whether they balance, the day's fee income (credits - debits of `income:fee`),
   channel costs (debits - credits of `expense:channel:*`), profit = income - costs, and the
   digest that seals the archive (contract §7);
4. one `trial_balances` row per account and currency: cumulative debits, credits and the balance
   on the account's normal side, up to the cut-off (the previous day's rows plus D's postings,
   so it never depends on entries posted after the midnight);
5. event `day.closed` with the figures.
A day is closed once: a second timer, a restart or a second `arm` finds the row and does nothing.
`arm` closes, at once and in order, every day that ended while the node was down.
"""

import hashlib
import json

import sqlite_utils

from paysys import ledger
from paysys.days import day_of, day_start, from_iso, iso


def create_tables(db: sqlite_utils.Database) -> None:
    db["accounting_days"].create(
        {"date": str, "cutoff_ms": int, "closed_ms": int, "entries": int, "first_entry": int,
         "last_entry": int, "balanced": int, "debits": str, "credits": str, "income": str,
         "costs": str, "profit": str, "digest": str},
        pk="date", if_not_exists=True,
    )
    db["trial_balances"].create(
        {"date": str, "account": str, "currency": str, "debits": int, "credits": int,
         "balance": int},
        pk=("date", "account", "currency"), if_not_exists=True,
    )


def _armed(node) -> set:
    return vars(node).setdefault("_dayend_timers", set())


def _arm(node, due_ms: int, day: int) -> None:
    if day not in _armed(node):
        _armed(node).add(day)
        node.at(due_ms, "day_end", "", day)


def arm(node, now_ms: int) -> None:
    """Schedule the close of today at the next local midnight, and at once the close of every
    day that ended without being closed (after a restart)."""
    if not node.cfg.backoffice.settlement:
        return
    conn = node.conn
    today = day_of(now_ms)
    (last,) = conn.execute("SELECT MAX(date) FROM accounting_days").fetchone()
    if last is not None:
        first = from_iso(last) + 1
    else:
        (oldest,) = conn.execute("SELECT MIN(at_ms) FROM journal_entries").fetchone()
        first = today if oldest is None else min(today, day_of(oldest))
    for day in range(first, today):
        _arm(node, now_ms, day)
    _arm(node, day_start(today + 1), today)


def on_day_end(node, key: str, day: int, now_ms: int) -> None:
    _armed(node).discard(day)
    _arm(node, day_start(day + 2), day + 1)
    row = close(node.conn, day, now_ms)
    if row is not None:
        node.event("day.closed", row["date"], row)


def _json(per_currency: dict[str, int]) -> str:
    return json.dumps(dict(sorted(per_currency.items())), separators=(",", ":"))


def close(conn, day: int, now_ms: int) -> dict | None:
    """Close business day `day`: write its `accounting_days` and `trial_balances` rows and return
    the day's row (JSON columns as dicts); None if it (or a later day) is already closed."""
    when = iso(day)
    prev = conn.execute(
        "SELECT date, cutoff_ms FROM accounting_days ORDER BY date DESC LIMIT 1").fetchone()
    if prev is not None and prev[0] >= when:
        return None
    ledger.flush_hot(conn)
    low, cutoff = (prev[1] if prev else 0), day_start(day + 1)
    entries = conn.execute(
        "SELECT entry_id, at_ms, ref, memo FROM journal_entries WHERE at_ms >= ? AND at_ms < ? "
        "ORDER BY entry_id", (low, cutoff)).fetchall()
    postings = conn.execute(
        "SELECT p.posting_id, p.entry_id, p.account, p.currency, p.debit, p.credit FROM postings p "
        "JOIN journal_entries e ON e.entry_id = p.entry_id WHERE e.at_ms >= ? AND e.at_ms < ? "
        "ORDER BY p.posting_id", (low, cutoff)).fetchall()
    seal = hashlib.sha256()
    for entry in entries:
        seal.update(("|".join(map(str, entry)) + "\n").encode())
    for posting in postings:
        seal.update(("|".join(map(str, posting)) + "\n").encode())

    trial: dict[tuple[str, str], list[int]] = {}
    if prev is not None:
        for account, currency, debits, credits in conn.execute(
                "SELECT account, currency, debits, credits FROM trial_balances WHERE date = ?",
                (prev[0],)):
            trial[(account, currency)] = [debits, credits]
    income: dict[str, int] = {}
    costs: dict[str, int] = {}
    for _pid, _eid, account, currency, debit, credit in postings:
        total = trial.setdefault((account, currency), [0, 0])
        total[0] += debit
        total[1] += credit
        if account == "income:fee":
            income[currency] = income.get(currency, 0) + credit - debit
        elif account.startswith("expense:channel:"):
            costs[currency] = costs.get(currency, 0) + debit - credit
    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    rows = []
    for (account, currency), (d, c) in sorted(trial.items()):
        debits[currency] = debits.get(currency, 0) + d
        credits[currency] = credits.get(currency, 0) + c
        normal = ledger.CHART[ledger.account_type(account)][1]
        rows.append((when, account, currency, d, c, d - c if normal == "debit" else c - d))
    profit = {cur: income.get(cur, 0) - costs.get(cur, 0) for cur in set(income) | set(costs)}
    row = {"date": when, "cutoff_ms": cutoff, "closed_ms": now_ms, "entries": len(entries),
           "first_entry": entries[0][0] if entries else None,
           "last_entry": entries[-1][0] if entries else None,
           "balanced": int(debits == credits), "debits": _json(debits), "credits": _json(credits),
           "income": _json(income), "costs": _json(costs), "profit": _json(profit),
           "digest": seal.hexdigest()}
    conn.execute(f"INSERT INTO accounting_days ({','.join(row)}) VALUES "
                 f"({','.join('?' * len(row))})", tuple(row.values()))
    conn.executemany("INSERT INTO trial_balances (date, account, currency, debits, credits, "
                     "balance) VALUES (?, ?, ?, ?, ?, ?)", rows)
    return dict(row, debits=debits, credits=credits, income=income, costs=costs, profit=profit)


TIMERS = {"day_end": on_day_end}
FLOWS: dict = {}
TIMEOUTS: dict = {}
REFUSED: dict = {}
