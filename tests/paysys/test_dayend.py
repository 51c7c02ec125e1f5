"""The accounting day: the calendar (UTC+8), one row per day closed at its local midnight with
the cumulative trial balance, income, costs, profit and the archive digest (contract §7,
recomputed here independently), never closed twice (a second arm, a restart), the days missed
while down closed at the restart in order, hot accounts flushed."""

import hashlib
import json

from _books import book_node, pay, refund, rows, run_until, start, t, unit
from _node import events

from paysys import backoffice, dayend, days, ledger


def test_the_calendar_is_local_utc_plus_8():
    start_ms = 1_793_577_600_000 - 8 * 3_600_000     # 2026-11-02 00:00 local = 11-01 16:00 UTC
    day = days.day_of(start_ms)
    assert days.iso(day) == "2026-11-02" and days.from_iso("2026-11-02") == day
    assert days.day_start(day) == start_ms
    assert days.day_of(start_ms - 1) == day - 1


def recipe(conn, low: int, cutoff: int) -> str:
    h = hashlib.sha256()
    ids = [r[0] for r in conn.execute("SELECT entry_id FROM journal_entries WHERE at_ms >= ? "
                                      "AND at_ms < ? ORDER BY entry_id", (low, cutoff))]
    for e in ids:
        h.update("{}|{}|{}|{}\n".format(*conn.execute(
            "SELECT entry_id, at_ms, ref, memo FROM journal_entries WHERE entry_id = ?",
            (e,)).fetchone()).encode())
    for e in ids:
        for p in conn.execute("SELECT posting_id, entry_id, account, currency, debit, credit "
                              "FROM postings WHERE entry_id = ? ORDER BY posting_id", (e,)):
            h.update(("|".join(map(str, p)) + "\n").encode())
    return h.hexdigest()


def test_a_day_closes_at_its_local_midnight_with_its_figures_and_digest():
    d = start(book_node(), t(0, 8))
    pay(d, "M001", 10_000)                     # fee 60, cost 20
    d.now = t(0, 9)
    refund(d, "M001", 1_000)
    fx = run_until(d, t(0, 23.9))
    assert rows(d.conn, "accounting_days") == []
    d.now = t(0, 23.95)
    pay(d, "M002", 20_000, channel="wechat")   # fee 60, cost 40
    fx = run_until(d, t(1))
    (day,) = rows(d.conn, "accounting_days")
    assert day["date"] == "2023-11-15" and day["cutoff_ms"] == t(1) and day["closed_ms"] == t(1)
    assert (day["entries"], day["first_entry"], day["last_entry"], day["balanced"]) == (3, 1, 3, 1)
    assert json.loads(day["income"]) == {"CNY": 120}
    assert json.loads(day["costs"]) == {"CNY": 60}
    assert json.loads(day["profit"]) == {"CNY": 60}
    total = 10_000 + 20 + 1_000 + 20_000 + 40
    assert json.loads(day["debits"]) == json.loads(day["credits"]) == {"CNY": total}
    assert day["digest"] == recipe(d.conn, 0, t(1))
    trial = {(r["account"], r["currency"]): r for r in rows(d.conn, "trial_balances")}
    assert trial[("liability:merchant:M001", "CNY")]["balance"] == 9_940 - 1_000
    assert trial[("asset:channel:bank", "CNY")]["balance"] == 10_000 - 20 - 1_000
    assert trial[("income:fee", "CNY")]["credits"] == 120
    (closed,) = events(fx, "day.closed", "2023-11-15")
    assert closed["digest"] == day["digest"] and closed["profit"] == {"CNY": 60}
    # hot accounts were aggregated: their ledger_totals rows are exact
    assert d.conn.execute("SELECT debits, credits FROM ledger_totals WHERE account = "
                          "'asset:channel:bank'").fetchone() == (10_000, 1_020)


def test_the_next_day_is_cumulative_and_holds_only_its_own_entries():
    d = start(book_node(), t(0, 8))
    pay(d, "M001", 10_000)
    run_until(d, t(1, 8))
    pay(d, "M001", 5_000)                     # fee 30, cost 10
    d.now = t(1) - 1 + 86_400_000
    pay(d, "M001", 1_000)                     # the last ms of day 1
    d.now = t(2)
    pay(d, "M001", 3_000)                     # at the cut-off: day 2
    run_until(d, t(2) + 1)
    d0, d1 = rows(d.conn, "accounting_days")
    assert d1["entries"] == 2 and d1["first_entry"] == 2 and d1["last_entry"] == 3
    assert json.loads(d1["income"]) == {"CNY": 36}
    assert json.loads(d1["debits"]) == {"CNY": 10_020 + 5_010 + 1_002}
    assert d1["digest"] == recipe(d.conn, t(1), t(2))
    m = rows(d.conn, "trial_balances", "date = ? AND account = 'liability:merchant:M001'",
             ("2023-11-16",))[0]
    assert m["balance"] == 9_940 + 4_970 + 994        # the payment at the cut-off is not in


def test_a_day_is_never_closed_twice():
    node = book_node()
    d = start(node, t(0, 8))
    pay(d, "M001", 10_000)
    unit(d, backoffice.arm)                    # armed twice
    fx = run_until(d, t(1, 1))
    assert len(events(fx, "day.closed")) == 1
    node.flush()
    d2 = start(book_node(node.conn), t(1, 2))   # a restart the same night
    unit(d2, backoffice.arm)
    run_until(d2, t(1, 23))
    assert [r["date"] for r in rows(d2.conn, "accounting_days")] == ["2023-11-15"]
    assert dayend.close(d2.conn, days.day_of(t(0, 1)), t(1, 23)) is None
    run_until(d2, t(2, 1))
    assert [r["date"] for r in rows(d2.conn, "accounting_days")] == ["2023-11-15", "2023-11-16"]


def test_days_that_ended_while_down_are_closed_at_the_restart_in_order():
    node = book_node()
    d = start(node, t(0, 8))
    pay(d, "M001", 10_000)
    node.flush()
    d2 = start(book_node(node.conn), t(2, 3))   # down from day 0 to day 2
    run_until(d2, t(2, 3))
    days = rows(d2.conn, "accounting_days")
    assert [r["date"] for r in days] == ["2023-11-15", "2023-11-16"]
    assert days[1]["entries"] == 0 and days[1]["first_entry"] is None
    assert days[1]["digest"] == hashlib.sha256(b"").hexdigest()
    assert days[1]["debits"] == days[0]["debits"] and days[1]["balanced"] == 1


def test_nothing_closes_without_settlement():
    d = start(book_node(settlement=False), t(0, 8))
    pay(d, "M001", 10_000)
    run_until(d, t(2))
    assert rows(d.conn, "accounting_days") == [] and rows(d.conn, "settlement_batches") == []
    assert ledger.balance(d.conn, "income:fee", "CNY") == 60
