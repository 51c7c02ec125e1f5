"""End to end: the bank's product scenarios (quick pay, netbank, withholding) pass, their failure
modes happen, the oracle's product checks catch what they are about, and the journeys' tables
are parsed with errors that name their key."""

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from paysys import validation
from sim import runner
from sim.checks import mandates, netbank
from sim.scenario import ScenarioError, load, loads

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "products"
FILES = {name: DIR / f"{name}.toml" for name in ("quick", "netbank", "withhold")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Each scenario run once (pay.create takes netbank and withhold meanwhile, until
    paysys/validation.py lists them)."""
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        rule = validation.FIELDS["pay.create"]["product"]
        missing = tuple(p for p in ("netbank", "withhold") if p not in (rule.allowed or ()))
        if rule.allowed is not None and missing:
            patch.setitem(validation.FIELDS["pay.create"], "product",
                          dataclasses.replace(rule, allowed=(*rule.allowed, *missing)))
        for name, path in FILES.items():
            out[name] = runner.run(load(str(path)), str(tmp_path_factory.mktemp(name) / "run.db"))
    return out


def _db(runs: dict, name: str) -> sqlite3.Connection:
    """A connection to a copy of the run's database (the checks below change it)."""
    conn = sqlite3.connect(":memory:")
    sqlite3.connect(runs[name].db_path).backup(conn)
    return conn


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_product_scenario_passes(name, runs) -> None:
    result = runs[name]
    failed = [f"{e.name}: {e.detail}" for e in result.verdict.expectations if not e.ok]
    assert result.verdict.ok, "; ".join(failed)
    assert result.wall_s < 5.0
    assert all(r.ok for r in result.verdict.invariants.values())


def test_netbank_late_successes_are_refunded_and_traced(runs) -> None:
    conn = _db(runs, "netbank")
    late = [r for (r,) in conn.execute("SELECT DISTINCT ref FROM events WHERE kind = "
                                       "'channel.late_charge'")]
    assert late
    for order_id in late:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE ref = ? ORDER BY seq",
                                            (order_id,))]
        assert kinds.index("bank.netbank.closed_paying") < kinds.index("channel.late_charge")
        assert "compensation.refund" in kinds
        (status,) = conn.execute("SELECT status FROM pay_orders WHERE order_id = ?",
                                 (order_id,)).fetchone()
        assert status == "CLOSED"
    # the check is not vacuous: forget one compensation refund and it names the order
    conn.execute("UPDATE refund_orders SET status = 'FAILED' WHERE order_id = ?", (late[0],))
    assert [v["ref"] for v in netbank.late_refunded(conn)] == [late[0]]


def test_withhold_debits_stop_at_the_revocation(runs) -> None:
    conn = _db(runs, "withhold")
    assert mandates.no_debit_without_mandate(conn) == []
    # a debit that the bank made after revoking its mandate is caught
    txn = conn.execute("SELECT seq, data FROM events WHERE kind = 'bank.txn' AND "
                       "json_extract(data, '$.mandate_ref') IS NOT NULL ORDER BY seq "
                       "LIMIT 1").fetchone()
    ref = json.loads(txn[1])["mandate_ref"]
    conn.execute("INSERT INTO events (seq, at_ms, kind, ref, src, dst, data) VALUES "
                 "(-1, 0, 'bank.mandate', ?, 'bank', '', ?)",
                 (ref, json.dumps({"status": "REVOKED"})))   # revoked before anything happened
    assert any(v["mandate_no"] == ref for v in mandates.no_debit_without_mandate(conn))


def test_withhold_orders_without_a_signed_mandate_are_caught(runs) -> None:
    conn = _db(runs, "withhold")
    order_id = conn.execute("SELECT order_id FROM pay_orders WHERE status = 'SUCCEEDED' "
                            "LIMIT 1").fetchone()[0]
    conn.execute("UPDATE pay_orders SET mandate_no = 'W9999999999' WHERE order_id = ?",
                 (order_id,))
    assert [v["ref"] for v in mandates.no_debit_without_mandate(conn)
            if "no such mandate" in v["message"]] == [order_id]


BASE = """
[scenario]
name = "t"
seed = 1
duration = "10m"
[[channels]]
id = "bank"
kind = "bank"
[traffic]
products = {withhold = 0.5, netbank = 0.5}
"""


@pytest.mark.parametrize(("table", "key"), [
    ("[products.withhold]\nbills = 0", "products.withhold.bills"),
    ("[products.withhold]\ninterval = 0", "products.withhold.interval"),
    ("[products.withhold]\nevery = 1", "products.withhold.every"),
    ("[products.netbank]\nlate_probability = 2", "products.netbank.late_probability"),
    ("[products.netbank]\nlate_delay = {dist = \"nope\"}", "products.netbank.late_delay"),
])
def test_product_tables_name_the_bad_key(table, key) -> None:
    with pytest.raises(ScenarioError) as error:
        loads(BASE + table)
    assert error.value.key.startswith(key)


def test_product_tables_parse() -> None:
    sc = loads(BASE + "[products.withhold]\ninterval = \"30m\"\nbills = 2\n"
               "[products.netbank]\nlate_probability = 0.5\n")
    assert sc.products["withhold"].interval_ms == 1_800_000
    assert sc.products["withhold"].bills == 2
    assert sc.products["netbank"].late_probability == 0.5
