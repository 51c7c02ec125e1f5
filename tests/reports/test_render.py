"""reports.render: the HTML report of a hand-built run database (tests/reports/_rundb.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sqlite3
from pathlib import Path

import pytest

from reports import _format as fmt
from reports import _timeline
from reports.render import render

_spec = importlib.util.spec_from_file_location("reports_test_rundb",
                                               Path(__file__).with_name("_rundb.py"))
rundb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rundb)

_html_spec = importlib.util.spec_from_file_location("reports_test_html",
                                                    Path(__file__).with_name("_html.py"))
_html = importlib.util.module_from_spec(_html_spec)
_html_spec.loader.exec_module(_html)
Doc = _html.Doc


@pytest.fixture
def report(tmp_path):
    count = iter(range(100))

    def make(skip=(), ok=False, **kw):
        db = rundb.build(str(tmp_path / f"run{next(count)}.db"), skip=skip, ok=ok)
        out = render(db, str(tmp_path / "out" / "report.html"), **kw)
        html = Path(out).read_text(encoding="utf-8")
        return html, Doc(html)
    return make


def test_returns_out_path_and_is_well_formed_html(report, tmp_path):
    html, doc = report()
    assert doc.errors == []
    assert (tmp_path / "out" / "report.html").is_file()
    assert html.startswith("<!DOCTYPE html>")
    for section in ("summary", "invariants", "timeline", "channels", "metrics", "traces"):
        assert section in doc.ids


def test_verdict_is_shown_big_and_follows_the_run(report):
    _, doc = report(ok=False)
    assert doc.text_of("verdict") == "FAIL"
    _, doc = report(ok=True)
    assert doc.text_of("verdict") == "PASS"


def test_summary_has_run_facts_and_orders_by_status(report):
    _, doc = report()
    summary = doc.text_of("summary")
    assert "bank-outage" in summary and "9f" * 32 in summary
    assert "2024-06-18 10:00:00" in summary and "10 m" in summary  # period in UTC+8
    assert "1.25 s" in summary
    assert re.search(r"SUCCEEDED 3 311\.45 CNY", summary)  # 100.00 + 88.00 + 123.45
    assert re.search(r"BLOCKED 1 9,900\.00 CNY", summary)
    assert "1 failed of 2 checked" in summary


def test_invariants_link_the_flagged_order_to_its_trace(report):
    html, doc = report()
    inv = doc.text_of("invariants")
    assert "orders_match_truth" in inv and "has no successful payment" in inv
    assert f'href="#trace-{rundb.FLAGGED}"' in html
    assert "invariant entries_balanced" in inv


def test_user_text_is_escaped(report):
    html, _ = report()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_timeline_draws_buckets_the_fault_band_and_utc8_axis(report):
    html, doc = report()
    timeline = doc.text_of("timeline")
    assert re.search(r"\((\d+) buckets, 6 payments\)", timeline)
    buckets = int(re.search(r"\((\d+) buckets", timeline).group(1))
    assert 60 <= buckets <= 120
    assert 'class="band"' in html and "drop bank-&gt;paysys" in html
    assert "10:00" in timeline and "10:05" in timeline  # 02:00 UTC shown as 10:00 UTC+8
    bars = re.findall(r'<rect class="bar (\w+)"', html)
    assert sorted(bars) == ["blocked", "failed", "other", "succeeded", "succeeded", "succeeded"]
    assert "not final" in timeline and "fault window" in timeline


def test_bucket_width_gives_60_to_120_buckets_across_scales():
    for span in (61_000, 10 * 60_000, 3_600_000, 86_400_000, 7 * 86_400_000, 37_123_457):
        n = -(-span // _timeline.bucket_width(span))
        assert 60 <= n <= 120, (span, n)


def test_channels_latency_fees_and_costs(report):
    _, doc = report()
    channels = doc.text_of("channels")
    # bank: 4 orders, 2 succeeded; pay latencies 120 ms (reply) and 10 s (timeout); 1 timeout
    assert re.search(r"bank 4 2 50\.0 % 2 1 120 ms 10\.0 s 1\.34 CNY 0\.67 CNY", channels)
    assert re.search(r"wechat 1 1 100\.0 % 1 0 300 ms 300 ms", channels)
    assert "(no route) 1 0 0.0 %" in channels


def test_metrics_table(report):
    _, doc = report()
    assert re.search(r"success_rate 0\.6 unknown 2", doc.text_of("metrics"))


def test_flagged_trace_comes_first_open_with_its_story_and_postings(report):
    html, doc = report()
    traces = re.findall(r'<details class="trace[^"]*" id="trace-(P\d+)"', html)
    assert traces[0] == rundb.FLAGGED
    assert re.search(rf'id="trace-{rundb.FLAGGED}" open', html)
    story = doc.text_of(f"trace-{rundb.FLAGGED}")
    assert "orders_match_truth" in story
    # the merchant's request, matched by merchant order number (it has no order id yet)
    assert ("10:03:20.003 msg.deliver merchant:M001 → paysys pay.create amount=12345 "
            "currency=CNY merchant_id=M001 merchant_order_no=MO-004") in story
    assert "merchant_id=M002" not in story
    assert "10:03:20.180 msg.drop bank → paysys bank.pay.reply lost" in story
    assert "PROCESSING → UNKNOWN (bank.pay timeout)" in story
    assert "UNKNOWN → SUCCEEDED (bank.query success)" in story
    assert story.index("CREATED → PROCESSING") < story.index("UNKNOWN → SUCCEEDED")
    # the ledger posting as a Dr/Cr table
    assert "pay succeeded" in story
    assert "asset:channel:bank 123.45 CNY" in story
    assert "liability:merchant:M001 122.71 CNY" in story
    assert "income:fee 0.74 CNY" in story
    assert "faults active during this trace: drop bank->paysys" in story


def test_every_status_is_sampled_and_refund_events_join_their_order(report):
    html, doc = report()
    ids = set(re.findall(r'id="trace-(P\d+)"', html))
    assert ids == {oid for oid, *_ in rundb.ORDERS}
    story = doc.text_of("trace-P0000000003")
    assert "refund R0000000001" in story
    assert "refund: PROCESSING → SUCCEEDED (wx.refund success)" in story


def test_sampling_is_bounded_and_covers_every_status(tmp_path):
    db = rundb.build(str(tmp_path / "run.db"))
    rundb.many_orders(db, 3000)
    out = render(db, str(tmp_path / "r.html"), max_traces=12)
    html = Path(out).read_text(encoding="utf-8")
    traces = re.findall(r'id="trace-(P\d+)"', html)
    assert len(traces) == 12 and traces[0] == rundb.FLAGGED
    statuses = set(re.findall(r'<summary>\s*<span class="oid mono">P\d+</span>\s*'
                              r'<span class="st st-(\w+)"', html))
    assert statuses == {"succeeded", "failed", "closed", "blocked", "unknown"}
    assert len(html) < 200_000
    assert Doc(html).errors == []


def test_max_traces_zero_renders_no_trace(report):
    html, doc = report(max_traces=0)
    assert "trace-P" not in " ".join(doc.ids)
    assert doc.errors == []


def test_report_is_self_contained(report):
    html, doc = report()
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"url\(|@import", html)
    resource_attrs = {"src", "href", "xlink:href", "action", "data", "poster", "srcset"}
    for tag, name, value in doc.attrs:
        assert "http://" not in value and "https://" not in value, (tag, name, value)
        if name in resource_attrs:
            assert value.startswith("#"), (tag, name, value)
    for container in ("style", "script"):
        code = "".join(doc.raw_text.get(container, []))
        assert code and "http://" not in code and "https://" not in code


def test_database_without_invariants_still_renders(report):
    html, doc = report(skip=("invariants",))
    assert doc.errors == []
    assert "invariants" in doc.text_of("missing-tables")
    assert "Table invariants is missing" in doc.text_of("invariants")
    assert doc.text_of("verdict") == "FAIL"  # from run.ok
    assert f"trace-{rundb.FLAGGED}" in doc.ids


def test_crashed_run_renders_what_exists_and_rebuilds_traces(report):
    crashed = ("run", "events", "faults", "invariants", "expectations", "metrics")
    html, doc = report(skip=crashed)
    assert doc.errors == []
    assert doc.text_of("verdict") == "INCOMPLETE"
    missing = doc.text_of("missing-tables")
    assert all(t in missing for t in crashed)
    assert "Payments created per" in doc.text_of("timeline")  # period taken from the orders
    story = doc.text_of(f"trace-{rundb.FLAGGED}")
    assert "PROCESSING → UNKNOWN (bank.pay timeout)" in story
    assert "liability:merchant:M001 122.71 CNY" in story
    assert "rebuilt from the payment system's tables" in doc.text_of("traces")


def test_nearly_empty_database_renders(tmp_path):
    db = str(tmp_path / "empty.db")
    sqlite3.connect(db).close()
    html = Path(render(db, str(tmp_path / "e.html"))).read_text(encoding="utf-8")
    doc = Doc(html)
    assert doc.errors == []
    assert "pay_orders" in doc.text_of("missing-tables")


def test_database_is_not_modified(tmp_path):
    db = rundb.build(str(tmp_path / "run.db"))
    before = hashlib.sha256(Path(db).read_bytes()).hexdigest()
    render(db, str(tmp_path / "r.html"))
    assert hashlib.sha256(Path(db).read_bytes()).hexdigest() == before


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.db"):
        render(str(tmp_path / "nope.db"), str(tmp_path / "r.html"))


def test_money_and_time_formatting():
    assert fmt.money(123_456, "CNY") == "1,234.56 CNY"
    assert fmt.money(-5, "USD") == "-0.05 USD"
    assert fmt.money(1500, "JPY") == "1,500 JPY"
    assert fmt.money(1, "KWD") == "0.001 KWD"
    assert fmt.clock(rundb.START + 1_234) == "10:00:01.234"
    assert fmt.duration(10_000) == "10.0 s" and fmt.duration(3_720_000) == "1 h 2 m"


def test_latency_sql_and_python_fallback_agree(tmp_path):
    from reports import render as render_module

    conn = sqlite3.connect(rundb.build(str(tmp_path / "run.db")))
    try:
        fast = render_module._pay_latencies(conn)
        slow = render_module._pay_latencies_py(conn)
    finally:
        conn.close()
    for stats in (*fast.values(), *slow.values()):
        stats["lat"].sort()
    assert fast == slow == {"bank": {"lat": [120, 10_000], "timeouts": 1},
                            "wechat": {"lat": [300], "timeouts": 0}}


def test_simulator_extras_worst_violation_and_message_bodies(tmp_path):
    """The simulator also writes `invariants.worst` and message bodies with `sent_ms`."""
    db = rundb.build(str(tmp_path / "run.db"))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("ALTER TABLE invariants ADD COLUMN worst TEXT")
        conn.execute("UPDATE invariants SET worst = ? WHERE name = 'orders_match_truth'",
                     ('{"ref": "P0000000004", "message": "worst one: 123.45 CNY"}',))
        body = {"type": "bank.pay", "req_id": "P0000000004.1", "amount": 12345,
                "route": [["wechat", "not offered"]]}
        conn.execute("INSERT INTO events (at_ms, kind, ref, src, dst, data) VALUES (?,?,?,?,?,?)",
                     (rundb.START + 200_033, "msg.deliver", rundb.FLAGGED, "paysys", "bank",
                      json.dumps({"type": "bank.pay", "body": body,
                                  "sent_ms": rundb.START + 200_004})))
    conn.close()
    html = Path(render(db, str(tmp_path / "r.html"))).read_text(encoding="utf-8")
    doc = Doc(html)
    assert doc.errors == []
    assert "first worst last" in doc.text_of("invariants").lower()
    assert "worst one: 123.45 CNY" in doc.text_of("invariants")
    story = doc.text_of(f"trace-{rundb.FLAGGED}")
    assert ("bank.pay after 29 ms req_id=P0000000004.1 amount=12345 route=wechat: not offered"
            in story)


def test_timeline_skips_the_settling_grace_period(tmp_path):
    db = rundb.build(str(tmp_path / "run.db"))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE run SET value = ? WHERE key = 'end_ms'", (str(rundb.START + 26 * 3_600_000),))
    conn.close()
    doc = Doc(Path(render(db, str(tmp_path / "r.html"))).read_text(encoding="utf-8"))
    caption = doc.text_of("timeline")
    # chart ends with the traffic (08:00 into the run), not 26 h later
    assert "per 5.0 s (96 buckets, 6 payments)" in caption
    assert "covers 2024-06-18 10:00:00 – 2024-06-18 10:08:00" in caption
    assert "until 2024-06-19 12:00:00" in caption


def test_y_axis_steps_are_round():
    for value in (0, 1, 6, 11, 99, 101, 830, 12_345):
        top, step = _timeline._y_scale(value)
        assert top >= value and top % step == 0 and top // step <= 5
        assert str(step).strip("0") in ("1", "2", "5")
