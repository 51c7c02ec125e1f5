"""settlement_exact, books_closed_daily, profit_matches and reserve_matches_truth on hand-built
run databases: a correct back office passes every invariant, each corruption (a wrong
settlement, a truth mismatch, a statement that does not add up, an unbalanced or missing day,
a changed archive, a profit off by one, a reserve off by one) is named; a run without back
office passes vacuously."""

import json

from _rundb import CUR, START_MS, World, bp, day_digest

from paysys.days import day_bounds, local_date, next_date
from sim._invariants_books import (
    books_closed_daily,
    digest,
    profit_matches,
    reserve_matches_truth,
    settlement_exact,
)
from sim.invariants import CHECKS
from sim.metrics import compute

D = local_date(START_MS)
D1 = next_date(D)
D2 = next_date(D1)
BOOKS = (settlement_exact, books_closed_daily, profit_matches, reserve_matches_truth)


def fired(w: World) -> dict[str, list[dict]]:
    return {name: v for name, check in CHECKS.items() if (v := check(w.conn))}


def split(w: World, order_id: str, receiver: str, amount: int) -> None:
    """Add a split to a payment's entry: Dr the payer's account / Cr the receiver's."""
    entry, payer = w.conn.execute(
        "SELECT e.entry_id, o.merchant_id FROM journal_entries e JOIN pay_orders o "
        "ON o.order_id = e.ref WHERE e.ref = ?", (order_id,)).fetchone()
    for merchant, debit, credit in ((payer, amount, 0), (receiver, 0, amount)):
        w.conn.execute("INSERT INTO postings (entry_id, account, currency, debit, credit) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (entry, f"liability:merchant:{merchant}", CUR, debit, credit))
        w.conn.execute("INSERT INTO ext_balances VALUES (?, ?, ?, 0) ON CONFLICT (account, "
                       "currency) DO UPDATE SET balance = balance + excluded.balance",
                       (f"merchant:{merchant}", CUR, credit - debit))


def settled() -> World:
    """M001 paid twice, refunded once, split 10% of a payment to M002; settled twice."""
    w = World().backoffice()
    for m in ("M001", "M002"):
        w.conn.execute("INSERT INTO settlement_rules VALUES (?, 'T+1', 0, ?)",
                       (m, json.dumps({"M002": 1000} if m == "M001" else {})))
    p1 = w.pay(10_000)
    w.pay(20_000)
    w.refund(p1, 4_000)
    split(w, p1, "M002", 1_000)
    fees = bp(10_000, 60) + bp(20_000, 60)
    net = 30_000 - 4_000 - fees - 1_000
    w.settle("M001", net, payments=30_000, refunds=4_000, fees=fees, splits_out=1_000)
    w.pay(5_000)
    w.settle("M001", 5_000 - bp(5_000, 60), payments=5_000, fees=bp(5_000, 60))
    return w


def test_vacuous_without_back_office():
    w = World()
    w.pay(1_000)
    assert [check(w.conn) for check in BOOKS] == [[], [], [], []]
    w.backoffice()
    assert [check(w.conn) for check in BOOKS] == [[], [], [], []]


# --- settlement_exact ---------------------------------------------------------------------------


def test_correct_settlements_pass_every_invariant():
    w = settled()
    assert fired(w) == {}
    m = compute(w.conn)
    assert (m["settlements_paid"], m["settled_amount"]) == (2, 24_820 + 4_970)


def test_merchant_balance_off_by_one():
    w = settled()
    w.post("X1", "bad", [("liability:merchant:M001", 0, 1), ("income:fee", 1, 0)])
    (v,) = settlement_exact(w.conn)
    assert v["problem"] == "balance" and v["merchant_id"] == "M001" and v["diff"] == 1
    assert v["owed"] == 1 and v["earned"] == 24_820 + 4_970


def test_split_receiver_with_a_rule_but_no_settlement_is_checked():
    w = settled()
    w.post("X2", "bad", [("liability:merchant:M002", 0, 1), ("income:fee", 1, 0)])
    (v,) = settlement_exact(w.conn)
    assert v["merchant_id"] == "M002" and v["splits_in"] == 1_000 and v["paid"] == 0
    assert v["owed"] == 1_001 and v["diff"] == 1


def test_settlement_recorded_with_another_amount_than_it_paid():
    w = World().backoffice()
    w.pay(10_000)
    w.settle("M001", 9_940, payments=10_000, fees=60)
    w.conn.execute("UPDATE settlements SET amount = amount + 1")
    found = settlement_exact(w.conn)
    assert sorted(v["problem"] for v in found) == ["balance", "net_not_paid", "truth"]
    assert all(abs(v["diff"]) == 1 for v in found)


def test_statement_net_is_not_what_was_paid():
    w = World().backoffice()
    w.pay(10_000)
    w.settle("M001", 9_940, payments=10_000, fees=60, net=9_939)
    (v,) = settlement_exact(w.conn)
    assert v["problem"] == "net_not_paid" and v["diff"] == -1 and v["settlement_id"] == "S000001"


def test_truth_account_mismatch():
    w = settled()
    w.conn.execute("UPDATE truth_accounts SET balance = balance - 1 "
                   "WHERE account = 'merchant:M001'")
    (v,) = settlement_exact(w.conn)
    assert v["problem"] == "truth" and v["paid"] == v["received"] + 1 and v["diff"] == 1


def test_statements_chain_up():
    w = settled()
    w.conn.execute("UPDATE settlements SET carried_in = 7 WHERE settlement_id = 'S000002'")
    (v,) = settlement_exact(w.conn)
    assert v["problem"] == "carry" and v["settlement_id"] == "S000001"
    assert v["next"] == "S000002" and v["diff"] == 7


def test_failed_settlement_pays_nothing():
    w = World().backoffice()
    w.pay(10_000)
    w.settle("M001", 9_940, status="failed", payments=10_000, fees=60)
    assert settlement_exact(w.conn) == []
    assert compute(w.conn)["settlements_paid"] == 0


# --- books_closed_daily -------------------------------------------------------------------------


def two_days() -> World:
    w = World().backoffice()
    p1 = w.pay(10_000)
    w.pay(3_000, channel="wechat", merchant="M002")
    w.close_day(D, day_bounds(D1)[0])
    w.now = day_bounds(D1)[0] + 3_600_000
    w.refund(p1, 1_000)
    w.pay(7_000)
    w.close_day(D1, day_bounds(D2)[0])
    w.now = day_bounds(D2)[0] + 60_000
    w.pay(2_000)  # after the last cut-off: in no closed day
    return w


def test_closed_days_pass_every_invariant():
    w = two_days()
    assert fired(w) == {}
    assert compute(w.conn)["days_closed"] == 2
    # cumulative: day two's debits include day one's
    d1, d2 = (json.loads(r[0])[CUR] for r in w.conn.execute(
        "SELECT debits FROM accounting_days ORDER BY date"))
    assert d2 > d1 > 0


def test_digest_follows_the_recipe():
    w = two_days()
    for day, since, cutoff in ((D, None, day_bounds(D1)[0]), (D1, day_bounds(D1)[0],
                                                                day_bounds(D2)[0])):
        assert digest(w.conn, day) == day_digest(w.conn, since, cutoff)


def test_unbalanced_day():
    w = two_days()
    w.conn.execute("UPDATE accounting_days SET balanced = 0 WHERE date = ?", (D1,))
    (v,) = books_closed_daily(w.conn)
    assert v["problem"] == "unbalanced" and v["ref"] == D1


def test_gap_between_days():
    w = World().backoffice()
    w.pay(1_000)
    w.close_day(D, day_bounds(D1)[0])
    w.close_day(D2, day_bounds(D2)[1])
    (v,) = books_closed_daily(w.conn)
    assert v["problem"] == "gap" and v["date"] == D1


def test_recorded_debits_off_by_one():
    w = two_days()
    debits = json.loads(w.conn.execute("SELECT debits FROM accounting_days WHERE date = ?",
                                       (D,)).fetchone()[0])
    w.conn.execute("UPDATE accounting_days SET debits = ? WHERE date = ?",
                   (json.dumps({CUR: debits[CUR] + 1}), D))
    (v,) = books_closed_daily(w.conn)
    assert v["problem"] == "debits" and v["date"] == D and v["diff"] == 1


def test_posting_before_a_closed_cut_off_breaks_the_books():
    w = two_days()
    w.conn.execute("UPDATE journal_entries SET at_ms = ? WHERE entry_id = "
                   "(SELECT MAX(entry_id) FROM journal_entries)", (day_bounds(D1)[0] - 1,))
    problems = {(v["date"], v["problem"]) for v in books_closed_daily(w.conn)}
    assert problems == {(D, "debits"), (D, "credits"), (D, "digest"), (D1, "debits"),
                        (D1, "credits")}


def test_archive_changed_after_closing():
    w = two_days()
    w.conn.execute("UPDATE journal_entries SET memo = 'edited' WHERE entry_id = 1")
    (v,) = books_closed_daily(w.conn)
    assert v["problem"] == "digest" and v["date"] == D and v["recomputed"] != v["recorded"]


# --- profit_matches -----------------------------------------------------------------------------


def test_profit_off_by_one_against_the_channels_fees():
    w = two_days()
    w.conn.execute("UPDATE truth_txns SET fee = fee + 1 WHERE rowid = 1")
    (v,) = profit_matches(w.conn)
    assert v["problem"] == "ledger" and v["ref"] == CUR and v["diff"] == 1


def test_days_profit_off_by_one():
    w = two_days()
    profit = json.loads(w.conn.execute("SELECT profit FROM accounting_days WHERE date = ?",
                                       (D1,)).fetchone()[0])
    w.conn.execute("UPDATE accounting_days SET profit = ? WHERE date = ?",
                   (json.dumps({CUR: profit[CUR] - 1}), D1))
    (v,) = profit_matches(w.conn)
    assert v["problem"] == "days" and v["diff"] == -1


def test_profit_ignores_orders_without_closed_days():
    w = World().backoffice()
    w.pay(1_000)
    w.conn.execute("UPDATE pay_orders SET merchant_fee = merchant_fee + 1")
    assert profit_matches(w.conn) == []  # no accounting day: no back office to check


# --- reserve_matches_truth ----------------------------------------------------------------------


def reserve(opening: int = 50_000) -> World:
    w = World().backoffice()
    w.conn.execute("INSERT INTO truth_accounts VALUES ('bank', 'reserve', ?, ?, ?)",
                   (CUR, opening, opening))
    w.post("reserve", "opening", [("asset:reserve:bank", opening, 0),
                                  ("equity:capital", 0, opening)])
    return w


def test_reserve_top_up_passes_every_invariant():
    w = reserve()
    w.move("bank", "reserve", "platform", 10_000)
    w.post("topup", "reserve transfer", [("asset:channel:bank", 10_000, 0),
                                         ("asset:reserve:bank", 0, 10_000)])
    w.conn.execute("INSERT INTO positions VALUES (?, 'bank', 0, 10000, 10000)", (D,))
    assert fired(w) == {}
    assert compute(w.conn)["reserve_topups"] == 1


def test_reserve_off_by_one():
    w = reserve()
    w.conn.execute("UPDATE truth_accounts SET balance = balance - 1 WHERE account = 'reserve'")
    (v,) = reserve_matches_truth(w.conn)
    assert v["ref"] == "asset:reserve:bank" and v["diff"] == 1 and v["truth"] == 49_999


def test_ledger_reserve_without_a_truth_account():
    w = World().backoffice()
    w.post("reserve", "opening", [("asset:reserve:wechat", 5, 0), ("equity:capital", 0, 5)])
    (v,) = reserve_matches_truth(w.conn)
    assert v["node"] == "wechat" and "no reserve account" in v["message"]


def test_empty_reserve_matches():
    assert reserve_matches_truth(reserve(0).conn) == []
