"""The suite index page: verdicts, counts, first failure, relative links, offline."""

import re
from html.parser import HTMLParser

from reports.suite import render_suite


def _result(name, ok, report, failures=()):
    expectations = [{"name": "invariant conservation", "ok": True, "detail": "holds"}]
    expectations += [{"name": n, "ok": False, "detail": d} for n, d in failures]
    return {"scenario": name, "file": f"scenarios/{name}.toml", "seed": 7, "digest": "ab" * 32,
            "ok": ok, "payments": {"total": 12, "by_status": {"SUCCEEDED": 10}},
            "expectations": expectations, "wall_s": 0.5, "report": report}


def test_suite_page_links_each_report_and_shows_first_failure(tmp_path):
    results = [
        _result("smoke", True, str(tmp_path / "smoke.html")),
        _result("broken", False, str(tmp_path / "broken.html"),
                [("metric payments >= 100", "measured 12")]),
        {"scenario": "bad", "file": "scenarios/bad.toml", "ok": False, "error": "bad.toml: x: nope",
         "expectations": [], "report": None},
    ]
    out = render_suite(results, str(tmp_path / "index.html"))
    html = (tmp_path / "index.html").read_text()
    assert out == str(tmp_path / "index.html")
    assert 'href="smoke.html"' in html and 'href="broken.html"' in html
    assert "metric payments &gt;= 100: measured 12" in html
    assert "bad.toml: x: nope" in html and ">ERROR<" in html
    assert "v-fail" in html and "1/2" in html
    assert "http://" not in html and "https://" not in html
    HTMLParser().feed(html)


def test_all_passing_suite_is_a_pass(tmp_path):
    render_suite([_result("smoke", True, str(tmp_path / "r" / "smoke.html"))], str(tmp_path / "index.html"))
    html = (tmp_path / "index.html").read_text()
    assert "v-pass" in html and 'href="r/smoke.html"' in html


def test_recon_precision_and_recall_column_only_when_measured(tmp_path):
    plain = _result("smoke", True, None)
    measured = dict(_result("recon", True, None),
                    metrics={"recon_precision": 0.9524, "recon_recall": 1.0, "payments": 12})
    recall_only = dict(_result("half", True, None), metrics={"recon_recall": 0.5})
    render_suite([plain], str(tmp_path / "a.html"))
    html = (tmp_path / "a.html").read_text()
    assert "recon precision" not in html and 'class="num recon"' not in html
    render_suite([plain, measured, recall_only], str(tmp_path / "b.html"))
    html = (tmp_path / "b.html").read_text()
    assert "recon precision / recall" in html
    cells = re.findall(r'<td class="num recon">([^<]*)</td>', html)
    assert cells == ["", "0.9524 / 1", "— / 0.5"]
