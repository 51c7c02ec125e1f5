"""Foreign card payments end to end: scenarios/products/foreign-card.toml runs and passes (every
invariant, its failure modes really happened), and the product's scenario keys parse or fail
naming the key."""

import sqlite3
import time
from pathlib import Path

import pytest

from paysys.products.foreign import ForeignSettings
from sim import runner
from sim.checks.foreign import fx_both_amounts, fx_matches_platform
from sim.scenario import ScenarioError, load, loads

FILE = Path(__file__).resolve().parents[2] / "scenarios" / "products" / "foreign-card.toml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("foreign") / "run.db")
    started = time.perf_counter()
    result = runner.run(load(str(FILE)), db)
    return result.summary, db, time.perf_counter() - started


def test_the_scenario_passes_every_invariant_and_expectation(run):
    summary, _, seconds = run
    failed = {k: v["first"] for k, v in summary["invariants"].items() if not v["ok"]}
    assert failed == {}
    assert [e for e in summary["expectations"] if not e["ok"]] == []
    assert summary["ok"] and seconds < 5


def test_its_failure_modes_happened(run):
    m = run[0]["metrics"]
    assert m["foreign_payments"] > 0 and m["fx_volume_settle"] > 0
    assert m["foreign_abandoned"] > 0 and m["foreign_refunds"] > 0
    assert m["foreign_webhooks_repeated"] > 0 and m["rejected"] > 0
    assert m["unknown_resolved"] > 0


def test_every_paid_order_records_both_amounts_at_its_rate(run):
    conn = sqlite3.connect(run[1])
    rows = conn.execute("SELECT amount, currency, settle_amount, settle_currency, fx_rate_ppm "
                        "FROM pay_orders WHERE status = 'SUCCEEDED'").fetchall()
    assert rows and all(r[1] == "CNY" and r[3] == "USD" and r[4] == 138_900 for r in rows)
    assert all(r[2] == (2 * r[0] * 138_900 + 10**6) // (2 * 10**6) for r in rows)
    # the books: each currency balances, the channel holds USD only
    per = dict(conn.execute("SELECT currency, SUM(debit) - SUM(credit) FROM postings "
                            "GROUP BY currency").fetchall())
    assert per == {"CNY": 0, "USD": 0}
    held = dict(conn.execute("SELECT currency, SUM(debit) - SUM(credit) FROM postings WHERE "
                             "account = 'asset:channel:paypal' GROUP BY currency").fetchall())
    assert set(held) == {"USD"} and held["USD"] > 0


def test_the_fx_checks_catch_a_wrong_settle_amount(run):
    conn = sqlite3.connect(run[1])
    assert fx_both_amounts(conn) == [] and fx_matches_platform(conn) == []
    (oid,) = conn.execute("SELECT MIN(order_id) FROM pay_orders WHERE status = 'SUCCEEDED' "
                          "AND order_id IN (SELECT json_extract(data, '$.out_trade_no') FROM "
                          "events WHERE kind = 'pp.txn')").fetchone()
    conn.execute("UPDATE pay_orders SET settle_amount = settle_amount + 1 WHERE order_id = ?",
                 (oid,))
    (both,) = fx_both_amounts(conn)
    assert both["ref"] == oid and both["diff"] == 1
    assert [v["order_id"] for v in fx_matches_platform(conn)] == [oid]
    conn.execute("UPDATE pay_orders SET fx_rate_ppm = 0 WHERE order_id = ?", (oid,))
    assert "records no settlement" in fx_both_amounts(conn)[0]["message"]
    conn.rollback()


BASE = """
[scenario]
name = "f"
seed = 1
duration = "10m"
[traffic]
products = {foreign = 1.0}
[[channels]]
id = "paypal"
kind = "paypal"
"""


def test_products_foreign_parses_rates_from_decimal_strings():
    sc = loads(BASE + '[products.foreign]\nrates = {"CNY/USD" = "0.1389", "JPY/USD" = "0.0067"}\n')
    assert sc.products["foreign"] == {"settle_currency": "USD",
                                      "rates": {"CNY/USD": 138_900, "JPY/USD": 6_700}}
    settings = runner.product_settings(sc)["foreign"]
    assert isinstance(settings, ForeignSettings) and settings.rate("CNY") == 138_900
    assert runner.product_settings(loads(BASE))["foreign"].rate("CNY") == 138_900   # defaults


@pytest.mark.parametrize("table, key, words", [
    ('rates = {"CNY/USD" = 0.1389}', 'products.foreign.rates."CNY/USD"', "never a float"),
    ('rates = {"CNY/USD" = "0.12345678"}', 'products.foreign.rates."CNY/USD"', "6 decimals"),
    ('rates = {"CNY/EUR" = "0.13"}', 'products.foreign.rates."CNY/EUR"', '"<currency>/USD"'),
    ('settle_currency = "XYZ"', "products.foreign.settle_currency", "one of"),
    ("rates = {}", "products.foreign.rates", "table of rates"),
    ("spread = 1", "products.foreign.spread", "unknown key"),
])
def test_bad_products_foreign_keys_name_the_key(table, key, words):
    with pytest.raises(ScenarioError) as err:
        loads(BASE + "[products.foreign]\n" + table + "\n")
    assert key in str(err.value) and words in str(err.value)


def test_channel_options_take_the_platform_currency_only():
    sc = loads(BASE + 'options = {currency = "EUR"}\n')
    assert sc.channels[0].options == {"currency": "EUR"}
    with pytest.raises(ScenarioError, match=r"channels\[0\]\.options\.rate"):
        loads(BASE + 'options = {rate = "1"}\n')
