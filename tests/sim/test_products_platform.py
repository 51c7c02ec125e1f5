"""End to end: the platform-pay product scenarios (scenarios/products/wechat.toml, alipay.toml)
run through sim.runner.run and pass, and their failure modes really happened.
"""

import sqlite3
from pathlib import Path

from sim.runner import run
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ROOT / "scenarios" / "products"


def _one(result, sql: str, *args) -> int:
    conn = sqlite3.connect(result.db_path)
    try:
        return conn.execute(sql, args).fetchone()[0] or 0
    finally:
        conn.close()


def _run(name: str, tmp_path):
    result = run(load(PRODUCTS / f"{name}.toml"), str(tmp_path / f"{name}.db"))
    failed = [e for e in result.verdict.expectations if not e.ok]
    assert result.verdict.ok, failed
    assert result.wall_s < 10, result.wall_s      # about 1 s alone; the machine is shared
    return result


def _failure_modes(result, channel: str) -> None:
    """Happy path and failure modes of platform pay, at `channel` itself."""
    assert _one(result, "SELECT COUNT(*) FROM pay_orders WHERE channel=? AND status='SUCCEEDED'",
                channel) >= 100
    # users walked away: paysys closed those orders at the platform, which confirmed it
    assert _one(result, """SELECT COUNT(*) FROM pay_orders p JOIN channel_requests r
                           ON r.ref = p.order_id AND r.kind = 'close' AND r.result = 'closed'
                           WHERE p.channel=? AND p.status='CLOSED'""", channel) >= 5
    # notifications sent twice by the platform; each order credited once (invariants)
    assert _one(result, """SELECT COUNT(*) FROM events WHERE kind='channel.notify'
                           AND json_extract(data, '$.channel')=?
                           AND json_extract(data, '$.duplicate')=1""", channel) >= 5
    # forged notifications in the channel's name: refused
    assert _one(result, """SELECT COUNT(*) FROM events WHERE kind='channel.notify'
                           AND json_extract(data, '$.channel')=?
                           AND json_extract(data, '$.valid')=0""", channel) >= 5
    # full and partial refunds paid back by the platform
    full, partial = (_one(result, f"""SELECT COUNT(*) FROM refund_orders r JOIN pay_orders p
                                      USING (order_id) WHERE p.channel=?
                                      AND r.status='SUCCEEDED' AND r.amount {op} p.amount""",
                          channel) for op in ("=", "<"))
    assert full >= 5 and partial >= 5
    # the maintenance window refused requests (nothing done) and payments failed over
    assert _one(result, """SELECT COUNT(*) FROM events WHERE kind='fault.fired'
                           AND json_extract(data, '$.kind')='maintenance'""") >= 3
    assert result.verdict.metrics["failovers"] >= 3
    assert _one(result, "SELECT COUNT(*) FROM recon_files WHERE channel=? "
                        "AND status='reconciled'", channel) >= 1


def test_the_wechat_platform_scenario_passes(tmp_path) -> None:
    result = _run("wechat", tmp_path)
    _failure_modes(result, "wechat")


def test_the_alipay_platform_scenario_passes(tmp_path) -> None:
    result = _run("alipay", tmp_path)
    _failure_modes(result, "alipay")
    # Alipay's own protocol: RSA2 notifications, every one acknowledged with "success"
    assert _one(result, "SELECT COUNT(*) FROM events WHERE kind='ali.notify.attempt'") >= 100
    assert _one(result, "SELECT COUNT(*) FROM events WHERE kind='ali.notify.refused'") == 0
