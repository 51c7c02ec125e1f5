"""The oracle's verdict: expectations from invariants and metric bounds, worst/first/last, storage."""

import json
import sqlite3
from dataclasses import dataclass, field

import pytest
from _rundb import World, standard_world

from sim import oracle
from sim.catalogue import INVARIANTS, METRICS


@dataclass
class Expectations:
    invariants: tuple[str, ...] = tuple(INVARIANTS)
    metrics: dict = field(default_factory=dict)


@dataclass
class Scenario:
    expectations: Expectations = field(default_factory=Expectations)
    end_ms: int = 1_700_000_000_000 + 3_600_000


def test_correct_run_passes_every_expectation():
    v = oracle.verify(standard_world().conn, Scenario())
    assert v.ok
    assert set(v.invariants) == set(INVARIANTS) and set(v.metrics) == set(METRICS)
    assert [e.name for e in v.expectations] == [f"invariant {n}" for n in INVARIANTS]
    assert all(e.ok and e.detail == "holds" for e in v.expectations)
    r = v.invariants["conservation"]
    assert (r.ok, r.violations, r.first, r.last, r.worst, r.refs) == (True, 0, None, None, None, [])


def test_violated_named_invariant_fails_the_run_with_its_first_message():
    w = standard_world()
    oid = w.pay(1_000, status="UNKNOWN", path=["CREATED", "PROCESSING", "UNKNOWN"])
    v = oracle.verify(w.conn, Scenario())
    assert not v.ok
    (bad,) = [e for e in v.expectations if not e.ok]
    assert bad.name == "invariant orders_final"
    assert bad.detail == f"1 violations; first: order {oid} is still UNKNOWN at the end of the " \
                         f"run (last change at {v.invariants['orders_final'].first['updated_ms']} ms)"
    first = v.invariants["orders_final"].first
    assert first["ref"] == oid and first["stuck_ms"] == Scenario().end_ms - first["updated_ms"]
    assert v.invariants["orders_final"].refs == [oid]


def test_unnamed_invariant_is_reported_but_does_not_decide():
    w = standard_world()
    w.pay(1_000, status="UNKNOWN", path=["CREATED", "PROCESSING", "UNKNOWN"])
    v = oracle.verify(w.conn, Scenario(Expectations(invariants=("conservation",))))
    assert v.ok and [e.name for e in v.expectations] == ["invariant conservation"]
    assert not v.invariants["orders_final"].ok


def test_first_last_worst_and_refs():
    w = standard_world()
    ids = [w.pay(amount) for amount in (100, 9_000, 300)]
    w.conn.execute("DELETE FROM truth_txns WHERE ref IN (?, ?, ?)", ids)
    r = oracle.verify(w.conn, Scenario()).invariants["orders_match_truth"]
    assert r.violations == 3 and r.refs == ids
    assert (r.first["ref"], r.last["ref"], r.worst["ref"]) == (ids[0], ids[2], ids[1])
    assert r.worst["diff"] == 9_000


def test_refs_are_order_ids_capped_at_fifty():
    w = World()
    ids = [w.pay(10, status="UNKNOWN") for _ in range(60)]
    r = oracle.verify(w.conn, Scenario()).invariants["orders_final"]
    assert r.violations == 60 and r.refs == ids[:50]


def test_account_violations_have_no_order_refs_and_no_worst_without_money():
    w = standard_world()
    w.conn.execute("UPDATE ext_balances SET balance = balance - 3 WHERE account = 'merchant:M001'")
    w.notification("P0000000001", status="pending")
    v = oracle.verify(w.conn, Scenario())
    ext = v.invariants["external_matches_ledger"]
    assert ext.refs == [] and ext.worst["diff"] == -3
    notif = v.invariants["notifications_settled"]
    assert notif.worst is None and notif.refs == ["P0000000001"]


def test_metric_bounds():
    w = standard_world()
    scenario = Scenario(Expectations(invariants=(), metrics={
        "payments": (5.0, 5.0), "success_rate": (0.9, None), "notifications_dead": (None, 0)}))
    v = oracle.verify(w.conn, scenario)
    got = [(e.name, e.ok, e.detail) for e in v.expectations]
    assert got == [
        ("metric payments >= 5", True, "measured 5"),
        ("metric payments <= 5", True, "measured 5"),
        ("metric success_rate >= 0.9", False, "measured 0.5"),
        ("metric notifications_dead <= 0", False, "measured 1"),
    ]
    assert not v.ok


def test_unknown_names_are_errors():
    conn = standard_world().conn
    with pytest.raises(ValueError, match="unknown invariant 'nope'"):
        oracle.verify(conn, Scenario(Expectations(invariants=("nope",))))
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        oracle.verify(conn, Scenario(Expectations(invariants=(), metrics={"nope": (1, None)})))


def test_missing_table_is_named():
    w = standard_world()
    w.conn.execute("DROP TABLE notifications")
    with pytest.raises(ValueError, match="missing table.*notifications"):
        oracle.verify(w.conn, Scenario())


def test_write_creates_and_replaces_rows(tmp_path):
    path = tmp_path / "run.db"
    w = standard_world()
    w.conn.commit()
    disk = sqlite3.connect(path)
    w.conn.backup(disk)
    bad = Scenario(Expectations(metrics={"payments": (None, 1)}))
    oracle.write(disk, oracle.verify(disk, bad))
    oracle.write(disk, oracle.verify(disk, Scenario()))
    disk.close()
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT name, ok, violations, first, last, worst, refs FROM invariants "
                        "ORDER BY name").fetchall()
    assert [r[0] for r in rows] == sorted(INVARIANTS)
    assert all(r[1:] == (1, 0, None, None, None, "[]") for r in rows)
    exps = conn.execute("SELECT name, ok, detail FROM expectations").fetchall()
    assert len(exps) == len(INVARIANTS) and all(ok == 1 for _, ok, _ in exps)
    metrics = dict(conn.execute("SELECT name, value FROM metrics"))
    assert metrics["payments"] == 5 and metrics["success_rate"] == 0.5
    assert type(metrics["payments"]) is int


def test_write_stores_violations_as_json_and_adds_worst_to_an_old_table():
    w = standard_world()
    w.conn.execute("CREATE TABLE invariants (name TEXT PRIMARY KEY, ok INTEGER, "
                   "violations INTEGER, first TEXT, last TEXT, refs TEXT)")
    oid = w.pay(700)
    w.conn.execute("DELETE FROM truth_txns WHERE ref = ?", (oid,))
    oracle.write(w.conn, oracle.verify(w.conn, Scenario()))
    ok, n, first, worst, refs = w.conn.execute(
        "SELECT ok, violations, first, worst, refs FROM invariants "
        "WHERE name = 'orders_match_truth'").fetchone()
    assert (ok, n) == (0, 1)
    assert json.loads(first)["ref"] == oid and json.loads(worst)["diff"] == 700
    assert json.loads(refs) == [oid]
    ok, detail = w.conn.execute("SELECT ok, detail FROM expectations "
                                "WHERE name = 'invariant orders_match_truth'").fetchone()
    assert ok == 0 and detail.startswith("1 violations; first: order ")


def test_outbox_not_drained_is_liveness_with_stuck_ms():
    w = standard_world()
    w.conn.execute("INSERT INTO outbox (topic, ref, payload, created_ms, delivered_ms) "
                   "VALUES ('order.final', 'P0000000001', '{}', ?, NULL)", (w.tick(),))
    v = oracle.verify(w.conn, Scenario())
    r = v.invariants["outbox_drained"]
    assert not r.ok and r.refs == ["P0000000001"] and r.worst is None
    assert r.first["stuck_ms"] == Scenario().end_ms - r.first["created_ms"]
    assert [e.name for e in v.expectations if not e.ok] == ["invariant outbox_drained"]


def test_new_invariants_name_their_orders():
    w = standard_world()
    oid = w.pay(2_000)
    w.truth_txn("bank", oid, "pay", 2_000)  # a second charge nobody refunded
    first = w.pay(1_000)
    second = w.pay(1_000)
    w.conn.execute("UPDATE pay_orders SET idempotency_key = 'k' WHERE order_id IN (?, ?)",
                   (first, second))
    v = oracle.verify(w.conn, Scenario())
    dup = v.invariants["duplicates_refunded"]
    assert dup.refs == [oid] and dup.worst["diff"] == 2_000
    assert v.invariants["idempotency"].refs == [second]
    assert v.invariants["no_double_charge"].refs == [oid]
