"""Metrics computed on a hand-built run with known counts."""

import json

from _rundb import World

from sim import checks
from sim.catalogue import METRICS
from sim.metrics import compute


def known_world() -> World:
    w = World()
    p1 = w.pay(1_000)
    w.pay(2_000, path=["CREATED", "PROCESSING", "UNKNOWN", "SUCCEEDED"])
    w.pay(3_000, status="FAILED", path=["CREATED", "PROCESSING", "UNKNOWN", "FAILED"])
    w.pay(4_000, status="UNKNOWN", path=["CREATED", "PROCESSING", "UNKNOWN"])
    w.pay(5_000, path=["CREATED", "CHALLENGE", "PROCESSING", "SUCCEEDED"])
    w.pay(6_000, status="FAILED", path=["CREATED", "CHALLENGE", "FAILED"])
    w.pay(7_000, status="CLOSED")
    w.pay(8_000, status="BLOCKED")
    w.pay(9_000, status="FAILED", error_code="NO_ROUTE")
    w.refund(p1, 500)
    w.refund(p1, 100, status="FAILED")
    w.notification(p1, "acked", attempts=1)
    w.notification("P0000000002", "acked", attempts=3)
    w.notification("P0000000005", "dead", attempts=16)
    w.notification("P0000000003", "pending", attempts=0)
    w.request("P0000000002", "pay", 1)
    w.request("P0000000002", "query", 2)
    w.request("P0000000002", "query", 3)
    w.request("P0000000004", "query", 2)
    for kind in ("msg.drop", "msg.drop", "msg.duplicate", "msg.hang", "msg.delay", "msg.refused",
                 "merchant.error", "msg.send", "msg.deliver", "fault.start"):
        w.event(kind, "P0000000002")
    w.event("channel.late_reply", "P0000000002", channel="bank", req_id="P0000000002.1")
    w.event("channel.notify", "P0000000005", channel="wechat", valid=True, duplicate=False)
    w.event("channel.notify", "P0000000005", channel="wechat", valid=True, duplicate=True)
    w.event("channel.notify", "P0000000005", channel="wechat", valid=False, duplicate=True)
    w.event("gateway.reject", "M001", type="pay.create", code="BAD_SIGNATURE", field=None)
    w.event("gateway.replay", "M001", type="pay.create", key="k1")
    w.event("gateway.replay", "M001", type="refund.create", key="k2")
    w.event("route.decision", "P0000000002", channel="bank_b", reason="failover from bank_a: priority",
            rejected=[])
    w.event("route.decision", "P0000000003", channel="bank_a", reason="priority", rejected=[])
    return w


RATES = ("success_rate", "recon_precision", "recon_recall")   # 1.0 when nothing was measured
# a run without back office: nothing reconciled (precision and recall are vacuously perfect)
BACK_OFFICE_IDLE = {
    "recon_injected": 0, "recon_expected": 0, "recon_found": 0, "recon_true_positive": 0,
    "recon_precision": 1.0, "recon_recall": 1.0, "recon_unresolved": 0, "recon_manual": 0,
    "recon_files": 0, "recon_files_missing": 0, "recon_not_reached": 0, "stream_breaks": 0,
    "settlements_paid": 0, "settled_amount": 0, "settlement_batches": 0, "days_closed": 0,
    "reserve_topups": 0,
}


def test_every_catalogue_metric_on_a_known_run():
    m = compute(known_world().conn)
    assert list(m) == list(METRICS)
    for name in checks.METRICS:   # the product families' (tests/sim/test_products_*)
        m.pop(name)
    assert m == {
        "payments": 9, "succeeded": 3,
        # reached a channel: all but BLOCKED and NO_ROUTE -> 7
        "success_rate": 3 / 7,
        "failed": 3, "closed": 1, "blocked": 1, "challenged": 2, "rejected": 1,
        "refunds": 2, "refunds_succeeded": 1, "unknown": 3, "unknown_resolved": 2,
        "queries": 3, "late_replies": 1, "channel_notifications": 3,
        "duplicate_channel_notifications": 2, "notifications_acked": 2, "notifications_dead": 1,
        "notification_retries": 2 + 15, "failovers": 1, "faults_fired": 7, "idempotent_replays": 2,
        "crashes": 0, "recoveries": 0, "compensation_refunds": 0, "held": 0, "duplicates": 0,
        "amount_mismatches": 0, "forged_rejected": 1, "late_charges": 0, "attempts": 0,
        "faults_acted": 0, "cas_conflicts": 0,
        **BACK_OFFICE_IDLE,
    }


def test_counts_are_ints_and_rates_are_floats():
    m = compute(known_world().conn)
    assert all(type(v) is int for k, v in m.items() if k not in RATES)
    assert all(type(m[k]) is float for k in RATES)


def test_empty_run():
    m = compute(World().conn)
    assert all(m[k] == 1.0 for k in RATES)
    assert all(v == 0 for k, v in m.items() if k not in RATES)


def test_only_blocked_orders_give_rate_one():
    w = World()
    w.pay(100, status="BLOCKED")
    assert compute(w.conn)["success_rate"] == 1.0
    w.pay(100, status="FAILED")
    assert compute(w.conn)["success_rate"] == 0.0


def issue4_world() -> World:
    """Crashes, compensation, HELD and DUPLICATE orders, attempts and fault events."""
    w = World()
    p1 = w.pay(1_000)
    held = w.pay(2_000, status="HELD", path=["CREATED", "PROCESSING", "HELD"])
    dup = w.pay(3_000, status="DUPLICATE", path=["CREATED", "PROCESSING", "DUPLICATE"])
    w.pay(4_000, status="FAILED")
    w.conn.execute("UPDATE pay_orders SET attempt = 2 WHERE order_id IN (?, ?)", (held, dup))
    w.refund(p1, 100)
    r2 = w.refund(dup, 3_000)
    r3 = w.refund(p1, 1_000, status="FAILED")
    w.conn.execute("UPDATE refund_orders SET reason = 'duplicate', charge_ref = 'T1' "
                   "WHERE refund_id = ?", (r2,))
    w.conn.execute("UPDATE refund_orders SET reason = 'double_charge', charge_ref = 'T2' "
                   "WHERE refund_id = ?", (r3,))
    w.event("paysys.crash", fault_id=3, point="after_commit", lost_effects=2)
    w.event("paysys.restart")
    w.event("paysys.recovered", inflight=1)
    w.event("paysys.crash", fault_id=3, point="before_commit", lost_effects=0)
    w.event("channel.amount_mismatch", held, expected=2_000, reported=1_999)
    w.event("channel.late_charge", p1, channel="bank", charge_ref="T9", amount=1_000,
            status="SUCCEEDED")
    w.event("channel.notify", p1, channel="wechat", valid=False, duplicate=False)
    w.event("channel.notify", p1, channel="wechat", valid=True, duplicate=False)
    w.event("order.cas_conflict", p1)
    w.event("order.cas_conflict", dup)
    for ref, data in ((p1, {"fault_id": 1, "kind": "double_charge"}),
                      ("", {"fault_id": 2, "kind": "pay_twice"})):
        w.conn.execute("INSERT INTO events (at_ms, kind, ref, src, dst, data) "
                       "VALUES (?, 'fault.fired', ?, 'bank', '', ?)",
                       (w.tick(), ref, json.dumps(data)))
    w.event("msg.drop", p1, fault_id=4)
    w.event("msg.reorder", p1, fault_id=5)
    w.event("msg.partition", p1, fault_id=6)
    w.event("msg.drop", p1)  # no fault id: not a fault acting
    w.event("msg.deliver", p1, type="bank.pay.reply", body={}, sent_ms=1)
    w.event("merchant.error", p1)
    return w


def test_issue4_metrics():
    m = compute(issue4_world().conn)
    assert {k: m[k] for k in ("crashes", "recoveries", "compensation_refunds", "held",
                              "duplicates", "amount_mismatches", "forged_rejected",
                              "late_charges", "attempts", "faults_acted", "cas_conflicts")} == {
        "crashes": 2, "recoveries": 1, "compensation_refunds": 2, "held": 1, "duplicates": 1,
        "amount_mismatches": 1, "forged_rejected": 1, "late_charges": 1, "attempts": 2,
        # 2 fault.fired + 3 msg.* with a fault id + 2 crashes
        "faults_acted": 7, "cas_conflicts": 2,
    }
    # the older count: msg fault kinds (new ones included) and merchant errors, ids or not
    assert m["faults_fired"] == 5
    # HELD and DUPLICATE count as final
    assert m["refunds"] == 3 and m["refunds_succeeded"] == 2


def test_held_and_duplicate_resolve_unknown():
    w = World()
    w.pay(1_000, status="HELD", path=["CREATED", "PROCESSING", "UNKNOWN", "HELD"])
    w.pay(1_000, status="DUPLICATE", path=["CREATED", "PROCESSING", "UNKNOWN", "DUPLICATE"])
    w.pay(1_000, status="UNKNOWN", path=["CREATED", "PROCESSING", "UNKNOWN"])
    m = compute(w.conn)
    assert (m["unknown"], m["unknown_resolved"]) == (3, 2)
