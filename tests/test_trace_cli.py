"""`paysim trace RUN_DB ORDER_ID`: one order's story in the terminal, the same the HTML report's
trace tells. scenarios/smoke.toml is run once; then the traces of a succeeded, a refunded and a
failed order (text and --json), a refund id standing for its order, and the bad inputs (exit 2,
one line naming what was wrong)."""

import json
import sqlite3
from pathlib import Path

import pytest

from reports import _db, _traces
from sim.cli import main
from sim.runner import run
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("trace") / "smoke.db")
    run(load(ROOT / "scenarios" / "smoke.toml"), path)
    return path


def _one(db: str, sql: str) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute(sql).fetchone()
    assert row, sql
    return row[0]


def _trace(capsys, *argv) -> tuple[int, str, str]:
    code = main(["trace", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, db: str, order: str) -> dict:
    code, out, _ = _trace(capsys, db, order, "--json")
    assert code == 0
    return json.loads(out)


def test_succeeded_order_tells_every_step_with_its_ledger_lines(db, capsys):
    order = _one(db, "SELECT order_id FROM pay_orders WHERE status='SUCCEEDED' AND product='quick' "
                     "AND refunded=0 ORDER BY order_id")
    code, out, err = _trace(capsys, db, order)
    assert code == 0 and err == ""
    assert "\x1b[" not in out                     # not a terminal: plain text
    first = out.splitlines()[0]
    assert first.startswith(f"{order}  SUCCEEDED")
    for needle in ("pay.create", "route.decision", "risk.decision", "CREATED → PROCESSING (submit)",
                   "PROCESSING → SUCCEEDED (success)", f"pay request {order}.p1 → bank",
                   "ledger.post", "Dr  asset:channel:bank", "Cr  liability:merchant:",
                   "Cr  income:fee", "notify.attempt", "acked"):
        assert needle in out, needle
    # time order: each event line starts with HH:MM:SS.mmm, never decreasing within the day
    times = [line[:12] for line in out.splitlines() if line[:2].isdigit() and line[2] == ":"]
    assert times and times == sorted(times)
    data = _json(capsys, db, order)
    ats = [e["at_ms"] for e in data["events"]]
    assert ats == sorted(ats)
    entry = next(e for e in data["events"] if e["kind"] == "ledger.post")
    assert entry["summary"] == "payment" and entry["postings"]
    assert {p["account"] for p in entry["postings"]} >= {"asset:channel:bank", "income:fee"}


def test_the_terminal_story_is_the_reports_story(db, capsys):
    order = _one(db, "SELECT order_id FROM pay_orders WHERE status='SUCCEEDED' ORDER BY order_id")
    data = _json(capsys, db, order)
    conn = _db.connect(db)
    try:
        present = _db.tables(conn)
        report = _traces.load(conn, present, [(order, "x")], {}, _traces.refund_map(conn, present))
    finally:
        conn.close()
    shown = report["traces"][0]["events"]
    assert [(e["kind"], e["summary"]) for e in data["events"]][:len(shown)] == \
        [(e["kind"], e["summary"]) for e in shown]


def test_refunded_order_includes_its_refunds_story(db, capsys):
    refund = _one(db, "SELECT refund_id FROM refund_orders WHERE status='SUCCEEDED' "
                      "AND method='refund' ORDER BY refund_id")   # (not a same-day cancel)
    order = _one(db, f"SELECT order_id FROM refund_orders WHERE refund_id='{refund}'")
    code, out, _ = _trace(capsys, db, order)
    assert code == 0
    assert f"refund {refund}" in out and f"[{refund}] refund: PROCESSING → SUCCEEDED" in out
    assert f"[{refund}] refund  entry=" in out
    data = _json(capsys, db, order)
    assert refund in [r["refund_id"] for r in data["refunds"]]
    refund_events = [e for e in data["events"] if e["ref"] == refund]
    kinds = {e["kind"] for e in refund_events}
    assert {"order.state", "channel.request", "channel.reply", "ledger.post"} <= kinds
    # a refund id stands for its order
    assert _json(capsys, db, refund)["order_id"] == order


def test_failed_order_shows_the_decline_and_no_ledger_entry(db, capsys):
    order = _one(db, "SELECT order_id FROM pay_orders WHERE status='FAILED' ORDER BY order_id")
    code, out, _ = _trace(capsys, db, order)
    assert code == 0
    assert out.splitlines()[0].startswith(f"{order}  FAILED")
    assert "→ FAILED (decline)" in out and "failure" in out
    data = _json(capsys, db, order)
    assert data["order"]["error_code"]
    assert not [e for e in data["events"] if e["kind"] == "ledger.post"]


def test_child_and_product_orders_join_the_story(db, tmp_path, capsys):
    """A leg (pay_orders.parent_id) and an order of a product kind naming the order (any table
    whose rows have transitions) are listed, and their events told."""
    order = _one(db, "SELECT order_id FROM pay_orders WHERE status='SUCCEEDED' ORDER BY order_id")
    copy = str(tmp_path / "copy.db")
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(pay_orders)")]
        row = dict(zip(cols, conn.execute("SELECT * FROM pay_orders WHERE order_id=?",
                                          (order,)).fetchone(), strict=True))
        row.update(order_id="P8000000001", parent_id=order, merchant_order_no="leg-1")
        conn.execute(f"INSERT INTO pay_orders ({','.join(row)}) VALUES "
                     f"({','.join('?' * len(row))})", tuple(row.values()))
        conn.execute("CREATE TABLE coupon_orders (coupon_id TEXT PRIMARY KEY, order_id TEXT, "
                     "status TEXT, amount INTEGER, currency TEXT)")
        conn.execute("INSERT INTO coupon_orders VALUES ('C01', ?, 'USED', 100, 'CNY')", (order,))
        conn.execute("INSERT INTO transitions (kind, ref, from_status, to_status, event, at_ms) "
                     "VALUES ('coupon', 'C01', NULL, 'USED', 'create', 1)")
        at = row["created_ms"] + 1
        conn.execute("INSERT INTO events (at_ms, kind, ref, src, dst, data) VALUES "
                     "(?, 'order.state', 'P8000000001', 'paysys', '', ?)",
                     (at, json.dumps({"kind": "pay", "from": None, "to": "CREATED"})))
        conn.execute("INSERT INTO events (at_ms, kind, ref, src, dst, data) VALUES "
                     "(?, 'order.state', 'C01', 'paysys', '', ?)",
                     (at, json.dumps({"kind": "coupon", "from": None, "to": "USED"})))
    code, out, _ = _trace(capsys, copy, order)
    assert code == 0
    assert "related pay order P8000000001" in out and "related coupon order C01" in out
    assert "[P8000000001] ∅ → CREATED" in out and "[C01] ∅ → USED" in out
    data = _json(capsys, copy, order)
    assert {(r["kind"], r["id"]) for r in data["related"]} == {("pay", "P8000000001"),
                                                                ("coupon", "C01")}


def test_unknown_order_missing_file_and_other_files_exit_2_with_one_line(db, tmp_path, capsys):
    code, out, err = _trace(capsys, db, "P9999999999")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "P9999999999: no such order" in err
    code, _, err = _trace(capsys, str(tmp_path / "missing.db"), "P1")
    assert code == 2 and "missing.db: no such run database" in err and err.count("\n") == 1
    text = tmp_path / "scenario.toml"
    text.write_text("[scenario]\nname = 'x'\n")
    code, _, err = _trace(capsys, str(text), "P1")
    assert code == 2 and "not a run database" in err and "Traceback" not in err
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (a)")
    code, _, err = _trace(capsys, str(other), "P1")
    assert code == 2 and "other.db: not a run database" in err


def test_help_has_examples(capsys):
    assert main(["trace", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "paysim trace out/smoke.db P0000000042" in out
    assert "--json" in out
    assert main(["trace"]) == 2
