"""Hot accounts (`income:fee`, `asset:channel:*`): their ledger_totals rows are aggregated in
batches, yet every balance and the trial balance stay exact at every step, and the totals are
exact after flush_hot(); the new chart accounts (reserve, capital) and templates."""

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys import ledger
from paysys.ledger import payment_lines, refund_lines


def new_conn():
    db = sqlite_utils.Database(memory=True)
    ledger.create_tables(db)
    return db.conn


def totals_row(conn, account, cur):
    return conn.execute("SELECT debits, credits FROM ledger_totals WHERE account=? AND currency=?",
                        (account, cur)).fetchone()


def by_postings(conn, account, cur) -> int:
    d, c = conn.execute("SELECT COALESCE(SUM(debit),0), COALESCE(SUM(credit),0) FROM postings "
                        "WHERE account=? AND currency=?", (account, cur)).fetchone()
    return d - c if ledger.CHART[ledger.account_type(account)][1] == "debit" else c - d


def test_hot_accounts_wait_for_the_flush_but_their_balance_is_exact():
    conn = new_conn()
    ledger.post(conn, 1, "P1", "payment", payment_lines("bank", "M001", "CNY", 10_000, 60, 20))
    assert totals_row(conn, "income:fee", "CNY") is None          # not written per entry
    assert totals_row(conn, "asset:channel:bank", "CNY") is None
    assert totals_row(conn, "liability:merchant:M001", "CNY") == (0, 9_940)   # not hot
    assert ledger.balance(conn, "income:fee", "CNY") == 60
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 9_980
    assert ledger.trial_balance(conn) == {"CNY": (10_020, 10_020)}
    assert ledger.flush_hot(conn) == 3
    assert totals_row(conn, "income:fee", "CNY") == (0, 60)
    assert totals_row(conn, "asset:channel:bank", "CNY") == (10_000, 20)
    assert ledger.flush_hot(conn) == 0                              # idempotent
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 9_980
    ledger.post(conn, 2, "R1", "refund", refund_lines("bank", "M001", "CNY", 1_000))
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 8_980
    assert totals_row(conn, "asset:channel:bank", "CNY") == (10_000, 20)
    assert ledger.trial_balance(conn) == {"CNY": (11_020, 11_020)}


def test_the_ledger_flushes_by_itself_every_hot_batch_entries(monkeypatch):
    monkeypatch.setattr(ledger, "HOT_BATCH", 3)
    conn = new_conn()
    for i in range(1, 4):
        ledger.post(conn, i, f"P{i}", "payment", payment_lines("bank", "M001", "CNY", 100, 1, 0))
    assert totals_row(conn, "income:fee", "CNY") == (0, 3)   # entry 3 flushed
    ledger.post(conn, 4, "P4", "payment", payment_lines("bank", "M001", "CNY", 100, 1, 0))
    assert totals_row(conn, "income:fee", "CNY") == (0, 3)
    assert ledger.balance(conn, "income:fee", "CNY") == 4


def test_reserve_and_capital_accounts_and_their_templates():
    conn = new_conn()
    ledger.post(conn, 1, "reserve:open", "reserve", ledger.reserve_open_lines("bank", "CNY", 5_000))
    ledger.post(conn, 2, "SB000001", "topup", ledger.topup_lines("bank", "CNY", 2_000))
    assert ledger.balance(conn, "asset:reserve:bank", "CNY") == 3_000
    assert ledger.balance(conn, "equity:capital", "CNY") == 5_000
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 2_000
    ledger.post(conn, 3, "P1", "payment", payment_lines("bank", "M001", "CNY", 1_000, 0, 0))
    ledger.post(conn, 4, "S000001", "settlement", ledger.settlement_lines("bank", "M001", "CNY", 900))
    assert ledger.balance(conn, "liability:merchant:M001", "CNY") == 100
    assert ledger.external_balance(conn, "merchant:M001", "CNY") == 100
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 2_100
    with pytest.raises(ledger.LedgerError) as exc:
        ledger.account_type("asset:reserve")
    assert exc.value.code == "UNKNOWN_ACCOUNT"
    with pytest.raises(ledger.LedgerError, match="amount"):
        ledger.topup_lines("bank", "CNY", 0)


HOT = ["income:fee", "asset:channel:bank", "asset:channel:wechat"]
op = st.one_of(
    st.tuples(st.just("pay"), st.sampled_from(["bank", "wechat"]), st.sampled_from(["CNY", "USD"]),
              st.integers(1, 10**6), st.integers(0, 100)),
    st.tuples(st.just("refund"), st.sampled_from(["bank", "wechat"]),
              st.sampled_from(["CNY", "USD"]), st.integers(1, 10**6), st.just(0)),
    st.tuples(st.just("flush"), st.just(""), st.just(""), st.just(0), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(op, max_size=25), batch=st.integers(1, 5))
def test_hot_balances_equal_the_unbuffered_computation_at_every_step(ops, batch):
    old, ledger.HOT_BATCH = ledger.HOT_BATCH, batch
    conn = new_conn()
    try:
        owed: dict[str, int] = {}
        for i, (kind, channel, cur, amount, fee_pc) in enumerate(ops):
            if kind == "flush":
                ledger.flush_hot(conn)
            elif kind == "pay":
                fee = amount * fee_pc // 100
                ledger.post(conn, i, f"P{i}", "payment",
                            payment_lines(channel, "M001", cur, amount, fee, fee // 2))
                owed[cur] = owed.get(cur, 0) + amount - fee
            elif min(amount, owed.get(cur, 0)):
                amount = min(amount, owed[cur])
                ledger.post(conn, i, f"R{i}", "refund", refund_lines(channel, "M001", cur, amount))
                owed[cur] -= amount
            for cur in ("CNY", "USD"):
                for account in HOT:
                    assert ledger.balance(conn, account, cur) == by_postings(conn, account, cur)
            for debits, credits in ledger.trial_balance(conn).values():
                assert debits == credits
        ledger.flush_hot(conn)
        stored = {(a, c): (d, cr) for a, c, d, cr in conn.execute("SELECT * FROM ledger_totals")}
        computed = {(a, c): (d, cr) for a, c, d, cr in conn.execute(
            "SELECT account, currency, SUM(debit), SUM(credit) FROM postings "
            "GROUP BY account, currency")}
        assert stored == computed
    finally:
        ledger.HOT_BATCH = old
        conn.close()
