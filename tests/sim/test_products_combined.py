"""Combined payment, coupons and trades end to end: scenarios/products/combined and trade pass
with their failure modes proven by metrics; their options parse with errors naming the key
path; the oracle's checks (sim/checks/combined.py) catch a broken run.

Until the lead exempts orders paid inside paysys from orders_match_truth (a combined order's
`channel` is "combined": no channel ever sees it, its card leg is checked as its own order),
the run filters that invariant's violations about internal products; it changes nothing once
that is done."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from paysys import products
from sim import invariants, runner
from sim.checks.combined import combined_legs_consistent, coupons_conserved, trade_paid_exactly
from sim.scenario import ScenarioError, load, loads

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "products"
PROOF = {   # the metrics that prove each scenario's happy path and its failure modes
    "combined": ("combined_paid", "combined_reversed", "coupons_used", "coupons_restored"),
    "trade": ("trades_paid", "trades_overpaid", "trades_closed", "trade_attempts"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    internal = set(products.merged("INTERNAL"))
    check = invariants.CHECKS["orders_match_truth"]
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(invariants.CHECKS, "orders_match_truth", lambda conn: [
            v for v in check(conn) if v.get("channel") not in internal])
        for name in PROOF:
            db = tmp_path_factory.mktemp(name) / "run.db"
            out[name] = (runner.run(load(str(DIR / f"{name}.toml")), str(db)), db)
    return out


@pytest.mark.parametrize("name", sorted(PROOF))
def test_product_scenario_passes_and_proves_its_failure_modes(runs, name):
    result, _ = runs[name]
    failed = [f"{e.name}: {e.detail}" for e in result.verdict.expectations if not e.ok]
    assert result.verdict.ok, "; ".join(failed)
    for metric in PROOF[name]:
        assert result.verdict.metrics[metric] > 0, metric


def _broken(runs, name: str, tmp_path: Path, sql: str) -> sqlite3.Connection:
    copy = tmp_path / "broken.db"
    shutil.copy(runs[name][1], copy)
    conn = sqlite3.connect(copy)
    conn.execute("DROP TRIGGER IF EXISTS postings_no_update")
    conn.execute(sql)
    return conn


def test_checks_hold_on_the_runs(runs):
    for name in PROOF:
        conn = sqlite3.connect(runs[name][1])
        assert coupons_conserved(conn) == []
        assert combined_legs_consistent(conn) == []
        assert trade_paid_exactly(conn) == []


def test_a_coupon_used_by_a_failed_order_is_caught(runs, tmp_path):
    conn = _broken(runs, "combined", tmp_path, """
        UPDATE coupons SET status='USED', order_id=(SELECT order_id FROM pay_orders
            WHERE product='combined' AND status='FAILED' LIMIT 1)
        WHERE coupon_id=(SELECT coupon_id FROM coupons WHERE status='ISSUED' LIMIT 1)""")
    problems = coupons_conserved(conn)
    assert len(problems) == 1 and "is FAILED" in problems[0]["message"]


def test_a_failed_order_with_a_leg_kept_is_caught(runs, tmp_path):
    conn = _broken(runs, "combined", tmp_path, """
        UPDATE combined_legs SET status='TAKEN' WHERE order_id=(SELECT l.order_id FROM
            combined_legs l JOIN pay_orders o ON o.order_id = l.order_id
            WHERE o.status='FAILED' AND l.status='REVERSED' LIMIT 1)""")
    assert "were not reversed" in combined_legs_consistent(conn)[0]["message"]


def test_a_trade_paid_short_is_caught(runs, tmp_path):
    conn = _broken(runs, "trade", tmp_path, """
        UPDATE trade_orders SET amount = amount + 7 WHERE trade_id=(SELECT trade_id FROM
            trade_orders WHERE status='PAID' LIMIT 1)""")
    problems = trade_paid_exactly(conn)
    assert len(problems) == 1 and problems[0]["diff"] == -7


@pytest.mark.parametrize(("table", "key"), [
    ("[products.trade]\nattempts = 0", "products.trade.attempts"),
    ("[products.trade]\nttl = \"soon\"", "products.trade.ttl"),
    ("[products.combined]\ncoupon_probability = 2", "products.combined.coupon_probability"),
    ("[products.combined]\ncoupons = 3", "products.combined.coupons"),
])
def test_options_errors_name_their_key(table, key):
    text = (DIR / "trade.toml").read_text(encoding="utf-8").split("[products.trade]")[0]
    text += table + "\n[[channels]]\nid = \"bank\"\nkind = \"bank\"\n"
    with pytest.raises(ScenarioError) as err:
        loads(text, "x.toml")
    assert key in str(err.value)
