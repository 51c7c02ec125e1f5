"""The internal products and the money movements end to end: the four scenarios
(scenarios/products/balance, virtual-currency, credit, movements) pass with their failure modes
proven by metrics; the products' options parse with errors naming their key path; the oracle's
account and movement checks catch what they must."""

import sqlite3
from pathlib import Path

import pytest

from sim import runner
from sim.checks.accounts import balances_never_negative, coins_conserved, credit_within_limit
from sim.checks.movements import frozen_released, movements_match_truth
from sim.scenario import ScenarioError, load, loads

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "products"
FILES = [DIR / f"{name}.toml" for name in ("balance", "virtual-currency", "credit", "movements")]
PROOF = {   # per scenario: the metrics that prove its happy path and its failure modes
    "balance": ("topups", "balance_payments", "balance_declines", "refunds"),
    "virtual-currency": ("coins_bought", "coins_spent", "coin_declines", "refunds"),
    "credit": ("credit_payments", "credit_declines", "credit_repaid", "refunds"),
    "movements": ("topups", "withdrawals", "withdrawals_failed", "transfers", "payouts",
                  "movements_refused", "movements_unknown"),
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_product_scenario_passes_and_proves_its_failure_modes(path, tmp_path):
    assert path.read_text(encoding="utf-8").startswith("# ")
    scenario = load(str(path))
    assert scenario.name == path.stem and scenario.duration_ms <= 86_400_000
    result = runner.run(scenario, str(tmp_path / "run.db"))
    failed = [f"{e.name}: {e.detail}" for e in result.verdict.expectations if not e.ok]
    assert result.verdict.ok, "; ".join(failed)
    metrics = result.verdict.metrics
    for name in PROOF[path.stem]:
        assert metrics[name] >= 1, name
        assert name in scenario.expectations.metrics, name


BASE = """
[scenario]
name = "t"
seed = 1
start = "2026-11-02T09:00:00+08:00"
duration = "10m"
[traffic]
products = {credit = 1.0}
[[channels]]
id = "bank"
kind = "bank"
"""


@pytest.mark.parametrize("table, key", [
    ('[products.credit]\nlimit = 0', "products.credit.limit"),
    ('[products.credit]\nbig_share = 2.0', "products.credit.big_share"),
    ('[products.credit]\nceiling = 5', "products.credit.ceiling"),
    ('[products.coins]\nprice = "ten"', "products.coins.price"),
    ('[products.withdraw]\nwrong_card_share = -1', "products.withdraw.wrong_card_share"),
])
def test_a_bad_product_setting_names_its_key(table, key):
    with pytest.raises(ScenarioError) as err:
        loads(BASE + table, "t.toml")
    assert key in str(err.value)


def test_product_settings_reach_the_payment_system():
    scenario = loads(BASE + "[products.credit]\nlimit = 5000\noverdraft_bp = 2000\n", "t.toml")
    settings = runner.product_settings(scenario)["credit"]
    assert (settings.limit, settings.ceiling) == (5000, 6000)


def _db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript("""
        CREATE TABLE journal_entries (entry_id INTEGER PRIMARY KEY, at_ms INT, ref TEXT, memo TEXT);
        CREATE TABLE postings (posting_id INTEGER PRIMARY KEY, entry_id INT, account TEXT,
                               currency TEXT, debit INT, credit INT);
        CREATE TABLE account_settings (name TEXT PRIMARY KEY, value INT);
        CREATE TABLE movements (movement_id TEXT, kind TEXT, status TEXT, amount INT,
                                currency TEXT, credited INT, child_id TEXT, created_ms INT);
        CREATE TABLE pay_orders (order_id TEXT, product TEXT, status TEXT, amount INT,
                                 currency TEXT, merchant_fee INT);
        CREATE TABLE refund_orders (refund_id TEXT, order_id TEXT, status TEXT, amount INT,
                                    currency TEXT);
        CREATE TABLE truth_txns (node TEXT, ref TEXT, channel_ref TEXT, kind TEXT, amount INT,
                                 fee INT, currency TEXT, status TEXT, at_ms INT);
        INSERT INTO account_settings VALUES ('coin_price', 10), ('credit_ceiling', 1000);
    """)
    return conn


def _entry(conn, entry_id: int, ref: str, *lines) -> None:
    conn.execute("INSERT INTO journal_entries VALUES (?, 0, ?, 'm')", (entry_id, ref))
    for account, debit, credit in lines:
        conn.execute("INSERT INTO postings (entry_id, account, currency, debit, credit) "
                     "VALUES (?, ?, 'CNY', ?, ?)", (entry_id, account, debit, credit))


def test_the_checks_pass_on_clean_books_and_catch_a_dip_an_overdraw_and_lost_coins():
    conn = _db()
    _entry(conn, 1, "V1", ("liability:merchant:M1", 100, 0), ("liability:user:U1", 0, 60),
           ("liability:coins:U1", 0, 40))
    conn.execute("INSERT INTO movements VALUES ('V1', 'coins', 'SUCCEEDED', 100, 'CNY', 40, "
                 "'P1', 0)")
    _entry(conn, 2, "P2", ("asset:credit:U1", 900, 0), ("liability:merchant:M1", 0, 900))
    assert balances_never_negative(conn) == credit_within_limit(conn) == []
    assert coins_conserved(conn) == []
    _entry(conn, 3, "X", ("liability:user:U1", 70, 0), ("liability:merchant:M1", 0, 70))
    _entry(conn, 4, "Y", ("liability:merchant:M1", 70, 0), ("liability:user:U1", 0, 70))
    _entry(conn, 5, "P5", ("asset:credit:U1", 200, 0), ("liability:merchant:M1", 0, 200))
    _entry(conn, 6, "Z", ("liability:coins:U1", 10, 0), ("liability:merchant:M1", 0, 10))
    dip = balances_never_negative(conn)
    assert [(v["ref"], v["lowest"]) for v in dip] == [("X", -10)]
    assert [v["owed"] for v in credit_within_limit(conn)] == [1100]
    assert [v["diff"] for v in coins_conserved(conn)] == [-10]


def test_the_movement_checks_catch_a_double_payout_a_failed_one_paid_and_frozen_money():
    conn = _db()
    conn.executemany("INSERT INTO movements VALUES (?, ?, ?, 500, 'CNY', 500, '', 0)",
                     [("V1", "withdraw", "SUCCEEDED"), ("V2", "payout", "FAILED"),
                      ("V3", "withdraw", "SUCCEEDED")])
    conn.executemany("INSERT INTO truth_txns VALUES ('bank', ?, ?, 'payout', 500, 0, 'CNY', "
                     "'SUCCESS', 0)", [("V1", "a"), ("V3", "b"), ("V3", "c"), ("V2", "d")])
    found = {v["ref"]: v for v in movements_match_truth(conn)}
    assert set(found) == {"V2", "V3"} and found["V3"]["payouts"] == 2
    assert frozen_released(conn) == []
    _entry(conn, 1, "V1", ("liability:user:U1", 500, 0), ("liability:frozen:U1", 0, 500))
    assert [v["held"] for v in frozen_released(conn)] == [500]
