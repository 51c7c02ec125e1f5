"""End to end: the pre-authorisation and cancel-versus-refund scenarios pass with their failure
modes happening, the oracle's pre-auth checks catch what they are about, and the
`[products.preauth]` table names its bad keys."""

import sqlite3
from pathlib import Path

import pytest

from sim import runner
from sim.checks import preauth
from sim.scenario import ScenarioError, load, loads

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "products"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    return {name: runner.run(load(str(DIR / f"{name}.toml")),
                             str(tmp_path_factory.mktemp(name) / "run.db"))
            for name in ("preauth", "cancel")}


def _db(runs: dict, name: str) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    sqlite3.connect(runs[name].db_path).backup(conn)
    return conn


@pytest.mark.parametrize("name", ["preauth", "cancel"])
def test_the_scenario_passes_every_expectation(runs, name) -> None:
    summary = runs[name].summary
    failed = [e for e in summary["expectations"] if not e["ok"]]
    assert summary["ok"] and not failed, failed


def test_every_path_of_a_preauth_happened(runs) -> None:
    metrics = runs["preauth"].summary["metrics"]
    for name in ("preauth_captured", "preauth_partial_captures", "preauth_cancelled",
                 "preauth_expired", "preauth_capture_cancels", "preauth_recaptured",
                 "preauth_declined", "preauth_unknown"):
        assert metrics[name] > 0, name


def test_cancels_and_refunds_both_happened(runs) -> None:
    metrics = runs["cancel"].summary["metrics"]
    assert metrics["refunds_cancelled"] > 0 and metrics["refunds_refunded"] > 0
    assert metrics["cancel_fallbacks"] > 0
    conn = _db(runs, "cancel")
    bad = conn.execute(
        "SELECT COUNT(*) FROM refund_orders r JOIN events e ON e.ref = r.refund_id AND "
        "e.kind = 'ledger.post' WHERE r.method = 'cancel' AND r.status = 'SUCCEEDED' "
        "AND json_extract(e.data, '$.memo') <> 'cancel'").fetchone()[0]
    assert bad == 0


def test_a_second_capture_is_caught(runs) -> None:
    conn = _db(runs, "preauth")
    assert preauth.captured_once(conn) == [] and preauth.within_authorised(conn) == []
    (pid, order_id) = conn.execute(
        "SELECT parent_id, order_id FROM pay_orders WHERE product = 'preauth' AND status = "
        "'SUCCEEDED' AND order_id NOT IN (SELECT order_id FROM refund_orders) LIMIT 1").fetchone()
    conn.execute("INSERT INTO truth_txns SELECT node, ref, channel_ref || 'X', kind, amount, fee, "
                 "currency, status, at_ms FROM truth_txns WHERE ref = ? AND kind = 'pay'",
                 (order_id,))
    assert [v["ref"] for v in preauth.captured_once(conn)] == [pid]
    assert [v["ref"] for v in preauth.within_authorised(conn)] == [pid]


def test_a_pending_resolved_twice_or_left_pending_is_caught(runs) -> None:
    conn = _db(runs, "preauth")
    assert preauth.pending_resolved_once(conn) == []
    conn.execute("DROP TRIGGER pending_entries_resolved_once")
    (pending_id, ref) = conn.execute("SELECT pending_id, ref FROM pending_entries WHERE status "
                                     "= 'expired' LIMIT 1").fetchone()
    conn.execute("INSERT INTO events (at_ms, kind, ref, src, dst, data) SELECT at_ms, kind, ref, "
                 "src, dst, data FROM events WHERE kind = 'ledger.pending' AND ref = ? AND "
                 "json_extract(data, '$.status') = 'expired'", (ref,))
    (other,) = conn.execute("SELECT pending_id FROM pending_entries WHERE status = 'voided' "
                            "LIMIT 1").fetchone()
    conn.execute("UPDATE pending_entries SET status = 'pending' WHERE pending_id = ?", (other,))
    found = {v["pending_id"] for v in preauth.pending_resolved_once(conn)}
    assert found == {pending_id, other}


BASE = """
[scenario]
name = "x"
seed = 1
duration = "10m"
[traffic]
products = {preauth = 1.0}
[[channels]]
id = "bank"
kind = "bank"
"""


@pytest.mark.parametrize("table, key", [
    ('hold = "fast"', "products.preauth.hold"),
    ("colour = 1", "products.preauth"),
    ('stay_min = "2h"\nstay_max = "1h"', "products.preauth.stay_max"),
    ("capture = 0.7\ncancel = 0.4", "products.preauth.recapture"),
])
def test_bad_tables_name_their_key(table, key) -> None:
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        loads(BASE + "[products.preauth]\n" + table + "\n", "x.toml")
