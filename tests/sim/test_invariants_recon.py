"""recon_exact and recon_resolved on hand-built run databases: a correct reconciliation passes,
each kind of mistake (missed, spurious, misclassified break; open break, wrong resolution,
resolution without its entry) is named; faults on files the run never reconciled are not due;
the recon metrics and the `recon` object of --json count the same things."""

from _rundb import START_MS, World

from paysys.days import DAY_MS, day_bounds, local_date, next_date
from sim._invariants_recon import recon_exact, recon_resolved, stats
from sim.invariants import CHECKS
from sim.metrics import compute, recon_summary

D = local_date(START_MS)
D1 = next_date(D)
D2 = next_date(D1)


def world() -> tuple[World, str, str, str]:
    """A correct little run with statements: two pays and a refund on day D, files reconciled."""
    w = World().backoffice()
    p1 = w.pay(10_000)
    p2 = w.pay(20_000, channel="wechat", merchant="M002")
    r1 = w.refund(p1, 4_000)
    key1 = w.charge(p1)
    w.charge(p2)
    w.recon_file("bank", D)
    w.recon_file("wechat", D)
    return w, key1, p1, r1


def fired(w: World) -> dict[str, list[dict]]:
    return {name: v for name, check in CHECKS.items() if (v := check(w.conn))}


def test_dates_are_local_days():
    assert local_date(day_bounds("2026-11-02")[0]) == "2026-11-02"
    assert local_date(day_bounds("2026-11-02")[0] - 1) == "2026-11-01"
    assert day_bounds("1970-01-02")[0] == 86_400_000 - 8 * 3_600_000
    assert next_date("2026-12-31") == "2027-01-01"


def test_vacuous_without_and_with_empty_backoffice_tables():
    w = World()
    w.pay(1_000)
    assert recon_exact(w.conn) == [] and recon_resolved(w.conn) == []
    w.backoffice()
    assert recon_exact(w.conn) == [] and recon_resolved(w.conn) == []
    assert stats(w.conn)["precision"] == 1.0 and stats(w.conn)["recall"] == 1.0


def test_correct_reconciliation_passes_every_invariant():
    w, key, p1, _ = world()
    w.injected("bank", D, "stmt_amount", "amount_over", key, p1)
    w.recon_break("bank", D, "amount_over", key, p1)
    assert fired(w) == {}
    s = stats(w.conn)
    assert (s["injected"], s["expected"], s["found"], s["true_positive"]) == (1, 1, 1, 1)
    assert s["by_class"] == {"amount_over": 1}


def test_missed_injected_break():
    w, key, p1, _ = world()
    w.injected("bank", D, "stmt_fee", "fee", key, p1)
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "missed" and v["expected"] == "fee" and v["ref"] == p1
    assert v["key"] == key and "missed" in v["message"]
    assert stats(w.conn)["recall"] == 0.0 and stats(w.conn)["precision"] == 1.0


def test_misclassified_break():
    w, key, p1, _ = world()
    w.injected("bank", D, "stmt_fee", "fee", key, p1)
    w.recon_break("bank", D, "amount_under", key, p1)
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "misclassified" and v["expected"] == "fee"
    assert v["found"] == ["amount_under"] and "classed it amount_under" in v["message"]
    s = stats(w.conn)
    assert (s["precision"], s["recall"]) == (0.0, 0.0)


def test_spurious_break():
    w, key, p1, _ = world()
    b = w.recon_break("bank", D, "cross_day", key, p1)
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "spurious" and v["break_id"] == b and v["ref"] == p1
    assert stats(w.conn)["precision"] == 0.0 and stats(w.conn)["recall"] == 1.0


def test_row_fault_on_a_row_paysys_did_not_have_yet_is_channel_only():
    w, key, p1, _ = world()
    late = day_bounds(D1)[0] + 11 * 3_600_000  # after the file was reconciled at 10:00
    w.conn.execute("UPDATE charges SET at_ms = ? WHERE order_id = ?", (late, p1))
    w.injected("bank", D, "stmt_amount", "amount_over", key, p1)
    w.recon_break("bank", D, "amount_over", key, p1)
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "misclassified" and v["expected"] == "channel_only"
    w.conn.execute("UPDATE recon_breaks SET cls = 'channel_only'")
    assert recon_exact(w.conn) == []


def test_row_fault_on_a_row_paysys_booked_on_another_day_is_cross_day():
    w, key, p1, _ = world()
    w.conn.execute("UPDATE charges SET at_ms = ? WHERE order_id = ?", (day_bounds(D)[0] - 5, p1))
    w.injected("bank", D, "stmt_status", "status", key, p1)
    w.recon_break("bank", D, "cross_day", key, p1)
    assert recon_exact(w.conn) == []


def test_missing_row_is_platform_only_after_one_more_file():
    w, key, p1, _ = world()
    w.injected("bank", D, "stmt_missing_row", "platform_only", key, p1)
    assert recon_exact(w.conn) == []  # the buffer waits for the next file
    assert stats(w.conn)["not_reached"] == 1
    w.recon_break("bank", D, "platform_only", key, p1)
    assert recon_exact(w.conn) == []  # found early: tolerated, not spurious
    w.conn.execute("DELETE FROM recon_breaks")
    w.recon_file("bank", D1)
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "missed" and v["expected"] == "platform_only"
    assert stats(w.conn)["not_reached"] == 0


def test_missing_row_paysys_never_had_expects_nothing():
    w, key, p1, _ = world()
    w.conn.execute("DELETE FROM charges WHERE order_id = ?", (p1,))
    w.injected("bank", D, "stmt_missing_row", "platform_only", key, p1)
    w.recon_file("bank", D1)
    assert recon_exact(w.conn) == []  # no natural channel_only either: the row is not listed
    w.recon_break("bank", D, "platform_only", key, p1)
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "spurious"


def test_next_day_is_judged_on_the_next_file():
    w, key, p1, _ = world()
    w.injected("bank", D, "stmt_next_day", "cross_day", key, p1)
    assert recon_exact(w.conn) == [] and stats(w.conn)["not_reached"] == 1
    w.recon_file("bank", D1)
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "missed" and v["expected"] == "cross_day"
    w.recon_break("bank", D, "cross_day", key, p1)
    assert recon_exact(w.conn) == []


def test_extra_row_is_channel_only():
    w, _, _, _ = world()
    w.injected("bank", D, "stmt_extra_row", "channel_only", "pay:XT0000000001", "X0000000001")
    (v,) = recon_exact(w.conn)
    assert v["expected"] == "channel_only" and v["ref"] == "X0000000001"


def test_natural_channel_only_when_paysys_has_no_row():
    w, key, p1, _ = world()
    w.conn.execute("DELETE FROM charges WHERE order_id = ?", (p1,))
    (v,) = recon_exact(w.conn)
    assert v["problem"] == "missed" and v["expected"] == "channel_only" and v["key"] == key
    w.recon_break("bank", D, "channel_only", key, p1)
    assert recon_exact(w.conn) == []


def test_natural_refund_paysys_learned_after_the_file_is_channel_only():
    w, _, _, r1 = world()
    w.conn.execute("UPDATE refund_orders SET updated_ms = ? WHERE refund_id = ?",
                   (day_bounds(D1)[0] + 11 * 3_600_000, r1))
    (v,) = recon_exact(w.conn)
    assert v["key"] == f"refund:{r1}" and v["expected"] == "channel_only"


def test_natural_cross_day_around_midnight():
    w, _, _, _ = world()
    w.now = day_bounds(D1)[0] - 10_000  # the truth pay lands at 23:59:54 local: day D
    p3 = w.pay(3_000)
    key = w.charge(p3, at_ms=day_bounds(D1)[0] + 200)  # paysys books it on D+1
    (v,) = recon_exact(w.conn)
    assert v["expected"] == "cross_day" and v["key"] == key and v["date"] == D
    w.recon_break("bank", D, "cross_day", key, p3)
    assert recon_exact(w.conn) == []


def test_missing_file_expects_one_break_and_nothing_for_its_rows():
    w, key, p1, _ = world()
    w.conn.execute("DELETE FROM charges WHERE order_id = ?", (p1,))  # would be channel_only
    w.recon_file("bank", D, status="missing")
    w.injected("bank", D, "stmt_amount", "amount_over", key, p1)
    (v,) = recon_exact(w.conn)
    assert v["expected"] == "missing_file" and v["key"] == f"file:{D}"
    w.recon_break("bank", D, "missing_file", f"file:{D}")
    assert recon_exact(w.conn) == [] and recon_resolved(w.conn) == []


def test_late_file_only_when_received_after_noon_of_the_next_date():
    w, _, _, _ = world()
    w.injected("bank", D, "stmt_late", "late_file", f"file:{D}", fault_id=2)
    assert recon_exact(w.conn) == []  # received at 10:00: the delay did not make it late
    noon = day_bounds(D)[0] + DAY_MS + 12 * 3_600_000
    w.recon_file("bank", D, received_ms=noon + 1, reconciled_ms=noon + 1)
    (v,) = recon_exact(w.conn)
    assert v["expected"] == "late_file"
    w.recon_break("bank", D, "late_file", f"file:{D}")
    assert recon_exact(w.conn) == []


def test_malformed_file():
    w, _, _, _ = world()
    w.injected("bank", D, "stmt_malformed", "malformed_file", f"file:{D}")
    (v,) = recon_exact(w.conn)
    assert v["expected"] == "malformed_file"
    w.recon_break("bank", D, "malformed_file", f"file:{D}")
    assert recon_exact(w.conn) == [] and recon_resolved(w.conn) == []


def test_faults_on_files_not_reconciled_are_not_reached():
    w, key, p1, _ = world()
    w.recon_file("bank", D, status="waiting")
    w.injected("bank", D, "stmt_malformed", "malformed_file", f"file:{D}")
    w.injected("bank", D, "stmt_fee", "fee", key, p1, fault_id=2)
    w.injected("bank", D1, "stmt_fee", "fee", "pay:Tnone", fault_id=3)  # never even tried
    w.recon_break("bank", D, "malformed_file", f"file:{D}", status="open", resolution="")
    assert recon_exact(w.conn) == []
    m = compute(w.conn)
    assert (m["recon_injected"], m["recon_not_reached"], m["recon_expected"],
            m["recon_found"]) == (3, 3, 0, 0)


def test_metrics_and_json_summary_count_the_same():
    w, key, p1, r1 = world()
    w.injected("bank", D, "stmt_amount", "amount_over", key, p1)
    w.injected("bank", D, "stmt_fee", "fee", f"refund:{r1}", r1, fault_id=2)
    w.recon_break("bank", D, "amount_over", key, p1)
    w.recon_break("bank", D, "status", f"refund:{r1}", r1)  # misclassified
    w.recon_break("wechat", D, "channel_only", "pay:XT1", "X1", status="open", resolution="")
    w.recon_break("bank", D, "channel_only", "pay:S1", phase="stream", status="open",
                  resolution="")
    w.recon_file("bank", D1, status="missing")
    w.recon_break("bank", D1, "missing_file", f"file:{D1}")
    m = compute(w.conn)
    # expected: amount_over, fee, missing_file; found: amount_over, status, channel_only, missing
    assert (m["recon_injected"], m["recon_expected"], m["recon_found"],
            m["recon_true_positive"]) == (2, 3, 4, 2)
    assert m["recon_precision"] == 0.5 and m["recon_recall"] == 2 / 3
    assert (m["recon_unresolved"], m["recon_manual"], m["stream_breaks"]) == (2, 3, 1)
    assert (m["recon_files"], m["recon_files_missing"]) == (2, 1)
    assert recon_summary(w.conn) == {
        "injected": 2, "expected": 3, "found": 4, "precision": 0.5, "recall": 2 / 3,
        "unresolved": 2, "manual": 3,
        "by_class": {"amount_over": 1, "channel_only": 1, "missing_file": 1, "status": 1}}


# --- recon_resolved -----------------------------------------------------------------------------


def test_open_statement_break():
    w, key, p1, _ = world()
    b = w.recon_break("bank", D, "fee", key, p1, status="open", resolution="")
    (v,) = recon_resolved(w.conn)
    assert v["problem"] == "open" and v["break_id"] == b and v["ref"] == p1


def test_open_stream_break_is_not_a_statement_break():
    w, key, p1, _ = world()
    w.recon_break("bank", D, "channel_only", key, p1, status="open", resolution="",
                  phase="stream")
    assert recon_resolved(w.conn) == []


def test_resolution_against_the_policy():
    w, key, p1, _ = world()
    w.recon_break("bank", D, "cross_day", key, p1, status="manual", resolution="statement_error")
    w.recon_break("bank", D, "amount_over", key, p1, status="resolved", resolution="complete",
                  entry_id=1)
    found = recon_resolved(w.conn)
    assert [v["problem"] for v in found] == ["wrong_resolution"] * 2
    assert "matched_next_file" in found[0]["message"]


def test_money_moving_resolution_names_an_existing_entry():
    w, key, p1, _ = world()
    entry = w.post(p1, "compensation", [("asset:channel:bank", 0, 0)])
    ok = w.recon_break("bank", D, "channel_only", key, p1, status="resolved",
                       resolution="refund", entry_id=entry)
    bad = w.recon_break("bank", D, "channel_only", "pay:T2", status="resolved",
                        resolution="complete", entry_id=999)
    none = w.recon_break("bank", D, "channel_only", "pay:T3", status="resolved",
                         resolution="refund")
    found = recon_resolved(w.conn)
    assert [v["break_id"] for v in found] == [bad, none] and ok not in str(found)
    assert all(v["problem"] == "no_entry" for v in found)
