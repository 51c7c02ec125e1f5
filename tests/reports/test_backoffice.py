"""reports.render: the reconciliation, settlement and accounting-day sections (issue 5).

The run databases are hand-built (tests/reports/_rundb.py `backoffice`): four statement files,
six statement breaks and one stream break, eight injected statement faults (one missed, one found
under another class, two whose files were never reconciled), two settlements, one batch, one position, two accounting days (one not
balanced) with a trial balance.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
from html import unescape
from pathlib import Path

import pytest

from reports import _recon
from reports.render import render

_here = Path(__file__).parent


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, _here / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rundb = _load("reports_test_rundb_bo", "_rundb.py")
Doc = _load("reports_test_html_bo", "_html.py").Doc


def _db(tmp_path, name="run.db", **kw) -> str:
    folder = tmp_path / name.replace(".", "_")
    folder.mkdir()
    db = rundb.build(str(folder / "run.db"))
    if kw.get("backoffice", True):
        rundb.backoffice(db, empty=kw.get("empty", False), skip=kw.get("skip", ()))
    return db


def _render(db: str, **kw) -> tuple[str, Doc]:
    html = Path(render(db, str(Path(db).with_suffix(".html")), **kw)).read_text(encoding="utf-8")
    doc = Doc(html)
    assert doc.errors == []
    return html, doc


@pytest.fixture
def full(tmp_path):
    return _render(_db(tmp_path))


def _row_html(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, row_id
    return match.group(1)


def _text(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_sections_and_nav_links_appear_with_back_office_data(full):
    html, doc = full
    for section in ("reconciliation", "settlement", "accounting"):
        assert section in doc.ids
        assert f'href="#{section}"' in html
    order = [doc.ids.index(s) for s in ("channels", "reconciliation", "settlement", "accounting",
                                        "metrics", "traces")]
    assert order == sorted(order)


def test_statement_files_per_channel_and_day(full):
    _, doc = full
    files = doc.text_of("recon-files")
    assert "bank 2024-06-18 reconciled mt940 3 1 2024-06-19 10:00:00 2024-06-19 10:00:00" in files
    assert "bank 2024-06-19 missing 0 25 2024-06-20 10:00:00" in files
    assert "wechat 2024-06-19 waiting" in files
    assert "line 7: 应结订单金额: expected a decimal amount, got 'x'" in files
    assert files.index("bank 2024-06-19") < files.index("wechat 2024-06-18")  # channel, then day


def test_breaks_counted_by_class_and_by_resolution(full):
    _, doc = full
    by_class = doc.text_of("recon-by-class")
    # class, breaks, open, resolved, manual; in the contract's class order
    assert "channel_only 2 0 1 1 amount_over 1 0 0 1 fee 1 0 0 1 cross_day 1 0 1 0 " \
           "missing_file 1 0 0 1" in by_class
    assert "platform_only" not in by_class  # the stream break is counted apart
    by_resolution = doc.text_of("recon-by-resolution")
    assert "statement_error 2" in by_resolution and "matched_next_file 1" in by_resolution
    assert "refund 1" in by_resolution and "no_file 1" in by_resolution
    recon = doc.text_of("reconciliation")
    assert "Statement breaks 6 1 stream breaks apart" in recon
    assert "Still open / manual 1 / 4" in recon


def test_every_break_shows_ours_versus_theirs_and_its_resolution(full):
    html, doc = full
    assert doc.text_of("recon-breaks").startswith("Every statement break (6)")
    b1 = _text(_row_html(html, "break-" + rundb.LINKED_BREAK))
    assert re.search(r"B000001 fault F7 2024-06-18 bank amount_over pay:BT0000000004 P0000000004 "
                     r"123\.45 CNY fee 0\.37 124\.45 CNY fee 0\.37 manual statement_error "
                     r"the bank's own reply says 123\.45", b1)
    b2 = _text(_row_html(html, "break-B000002"))
    assert "channel_only" in b2 and "— 50.00 CNY" in b2  # no side of ours
    b7 = _text(_row_html(html, "break-B000007"))
    assert "resolved refund entry 9 a second charge, refunded" in b7
    assert "fault" not in b7  # not injected


def test_a_break_links_to_its_orders_trace(full):
    html, doc = full
    assert f'href="#trace-{rundb.FLAGGED}"' in _row_html(html, "break-" + rundb.LINKED_BREAK)
    assert f"trace-{rundb.FLAGGED}" in doc.ids
    # a refund id links to its order's trace
    assert 'href="#trace-P0000000003"' in _row_html(html, "break-B000003")
    # a fabricated ref has no trace: shown, not linked
    b2 = _row_html(html, "break-B000002")
    assert "X0000000001" in b2 and "href" not in b2


def test_stream_breaks_are_apart(full):
    html, doc = full
    assert "B000005" not in doc.text_of("recon-breaks")
    stream = doc.text_of("recon-stream")
    assert stream.startswith("Every stream break (1)")
    assert "B000005 2024-06-18 bank platform_only pay:BT0000000001 P0000000001" in stream
    assert "platform_only 1 1 0 0" in doc.text_of("recon-stream-by-class")


def test_injected_faults_marked_found_missed_or_other_class(full):
    html, doc = full
    rows = {m.group(2): (m.group(1), _text(m.group(3))) for m in re.finditer(
        r'<tr class="inj-([\w-]+)[^"]*">\s*<td>.*?</td>\s*<td class="mono">(F\d+)</td>(.*?)</tr>',
        html, re.S)}
    assert set(rows) == {"F7", "F8", rundb.MISSED_FAULT, "F10", "F11", "F12", "F13", "F14"}
    assert rows[rundb.MISSED_FAULT][0] == "missed"
    assert "stmt_fee wechat 2024-06-18 fee pay:4200000003" in rows[rundb.MISSED_FAULT][1]
    assert rows["F12"][0] == "other-class" and "found as fee" in rows["F12"][1]
    assert all(rows[f][0] == "found" for f in ("F7", "F8", "F10", "F11"))
    assert rows["F13"][0] == "not-reached"  # its file is still waiting
    assert rows["F14"][0] == "file-missing"  # its file never came
    assert rows["F7"][1].endswith("B000001")
    assert 'href="#break-B000001"' in html
    recon = doc.text_of("reconciliation")
    assert ("Injected faults found 4 of 8 1 missed · 1 under another class · 2 not reached"
            in recon)
    assert "1 statement break matches no injected fault" in recon  # B000007


def test_precision_recall_and_unresolved_from_metrics(full):
    _, doc = full
    assert doc.text_of("recon-precision") == "Recon precision 0.8333 recon_precision"
    assert doc.text_of("recon-recall") == "Recon recall 0.6667 recon_recall"
    assert doc.text_of("recon-unresolved") == "Recon unresolved 3 recon_unresolved"


def test_missing_recon_metrics_are_tolerated(tmp_path):
    db = _db(tmp_path)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM metrics WHERE name LIKE 'recon_%'")
    conn.close()
    _, doc = _render(db)
    assert "reconciliation" in doc.ids
    assert not [i for i in doc.ids if i.startswith("recon-precision")]


def test_settlement_statements_batches_and_positions(full):
    _, doc = full
    m1 = doc.text_of("settle-M001")
    assert "M001 1 settlement · paid 160.94 cycle T+1 · minimum 100.00 · splits M002 500 bp" in m1
    # id, batch, period end, carried in, payments, refunds, fees, splits out, splits in, net
    assert ("S000001 SB000001 2024-06-19 00:00:00 0.00 223.45 50.00 1.34 11.17 0.00 160.94 "
            "paid 2024-06-19 10:00:00") in m1
    m2 = doc.text_of("settle-M002")
    assert "1 failed" in m2 and "0.00 11.17 11.17 failed" in m2
    assert "SB000001 2024-06-19 2024-06-19 10:00:00 2 172.11" in doc.text_of("settle-batches")
    assert "2024-06-19 bank 100.00 172.11 72.11" in doc.text_of("settle-positions")


def test_accounting_days_with_balance_profit_digest_and_trial_balance(full):
    html, doc = full
    day = _text(_row_html(html, f"day-{rundb.DAY}"))
    assert ("2024-06-18 2024-06-19 00:00:00 1 4 – 4 yes 123.82 CNY 123.82 CNY 0.74 CNY "
            "0.37 CNY 0.37 CNY abababababab") == day
    assert f'title="{"ab" * 32}"' in html
    bad = _text(_row_html(html, f"day-{rundb.NEXT_DAY}"))
    assert " NO 1.00 CNY 0.99 CNY" in bad
    assert "1 not balanced" in doc.text_of("accounting")
    trial = doc.text_of(f"trial-{rundb.DAY}")
    assert trial.startswith("Trial balance of 2024-06-18 (4 accounts)")
    assert "asset:channel:bank 123.45 CNY 0.37 CNY 123.08 CNY" in trial
    assert "liability:merchant:M001 0.00 CNY 122.71 CNY -122.71 CNY" in trial
    assert f"trial-{rundb.NEXT_DAY}" not in doc.ids  # no rows for that day: nothing to expand


def test_empty_back_office_tables_render_exactly_as_without_them(tmp_path):
    plain, doc = _render(_db(tmp_path, "plain.db", backoffice=False))
    empty, _ = _render(_db(tmp_path, "empty.db", empty=True))
    assert plain == empty
    for section in ("reconciliation", "settlement", "accounting"):
        assert section not in doc.ids and f'href="#{section}"' not in plain
    assert "Reconciliation" not in plain and "Settlement" not in plain


def test_only_the_sections_with_data_appear(tmp_path):
    skip = tuple(t for t in rundb.BACKOFFICE_SCHEMA if t not in ("accounting_days",))
    _, doc = _render(_db(tmp_path, skip=skip))
    assert "accounting" in doc.ids
    assert "reconciliation" not in doc.ids and "settlement" not in doc.ids
    assert "Table trial_balances is missing" in doc.text_of("accounting")


def test_breaks_without_a_files_table_still_render(tmp_path):
    _, doc = _render(_db(tmp_path, skip=("recon_files", "stmt_injected")))
    recon = doc.text_of("reconciliation")
    assert "Table recon_files is missing" in recon
    assert "Every statement break (6)" in recon
    assert "Injected" not in recon  # no stmt_injected table: nothing to compare


def test_break_orders_join_the_trace_sample(tmp_path):
    bulk = "P0000001150"  # a plain order the spread sample of 10 does not pick by itself
    plain = _db(tmp_path, "plain.db", backoffice=False)
    rundb.many_orders(plain, 300)
    html, _ = _render(plain, max_traces=10)
    assert f'id="trace-{bulk}"' not in html
    db = _db(tmp_path)
    rundb.many_orders(db, 300)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO recon_breaks (break_id, phase, channel, date, cls, key, ref, "
                     "status) VALUES ('B000008', 'statement', 'bank', ?, 'platform_only', "
                     "'pay:BT1150', ?, 'manual')", (rundb.DAY, bulk))
    conn.close()
    html, _ = _render(db, max_traces=10)
    assert len(re.findall(r'<details class="trace[^"]*" id="trace-', html)) == 10
    assert re.search(rf'id="trace-{bulk}".*?sample: reconciliation break', html, re.S)
    assert f'href="#trace-{bulk}"' in _row_html(html, "break-B000008")


def test_rows_stored_as_json_arrays_are_read():
    row = ["pay:BT1", "pay", "P1", "BT1", 1_234, 5, "CNY", "REVERSED", "2026-11-01"]
    side = _recon._side(_recon._row(json.dumps(row)), "2026-11-02")
    assert side == {"amount": "12.34 CNY", "more": "fee 0.05 · REVERSED · 2026-11-01"}
    assert _recon._side(_recon._row(None), "2026-11-02") is None
    assert _recon._side(_recon._row("garbled"), "x") == {"amount": "", "more": "garbled"}


def test_an_unfound_item_is_judged_by_its_governing_file():
    files = {("bank", "2026-11-02"): "reconciled", ("bank", "2026-11-03"): "waiting",
             ("bank", "2026-11-04"): "missing"}
    item = {"channel": "bank", "date": "2026-11-02", "kind": "stmt_fee", "key": "pay:BT1"}
    assert _recon._unfound(item, files) == "missed"
    # a row moved to the next day's file is revealed by that file, still waiting
    assert _recon._unfound(dict(item, kind="stmt_next_day"), files) == "not reached"
    assert _recon._unfound(dict(item, date="2026-11-04"), files) == "file missing"
    assert _recon._unfound(dict(item, date="2026-11-09"), files) == "not reached"  # never tried
    assert _recon._unfound(dict(item, key="file:2026-11-03"), files) == "missed"
    assert _recon._unfound(item, None) == "missed"  # no recon_files: nothing to judge by
