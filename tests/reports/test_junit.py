"""reports.junit: JUnit XML for a suite of scenario results, parsed back and checked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from reports.junit import junit_xml, write_junit

PASSING = {
    "scenario": "happy-path", "seed": 7, "digest": "ab" * 32, "ok": True, "wall_s": 1.5,
    "invariants": {"entries_balanced": {"ok": True, "violations": 0, "first": None}},
    "expectations": [
        {"name": "invariant entries_balanced", "ok": True, "detail": "holds"},
        {"name": "metric success_rate >= 0.9", "ok": True, "detail": "success_rate = 0.97"},
    ],
    "report": "out/happy-path.html", "error": None,
}
FIRST = {"ref": "P0000000004", "message": "order P0000000004 is SUCCEEDED but the bank has no "
                                          "successful payment for it", "amount": 12345}
FAILING = {
    "scenario": "bank-outage", "seed": 42, "digest": "cd" * 32, "ok": False, "wall_s": 2.25,
    "invariants": {"orders_match_truth": {"ok": False, "violations": 3, "first": FIRST}},
    "expectations": [
        {"name": "invariant orders_match_truth", "ok": False,
         "detail": "3 violations; first: order <P0000000004> & \"quoted\"\x07"},
        {"name": "metric unknown <= 0", "ok": False, "detail": "unknown = 2"},
        {"name": "metric payments >= 1", "ok": True, "detail": "payments = 600"},
    ],
    "report": "out/bank-outage.html", "error": None,
}
ERRORED = {"scenario": "broken", "seed": 0, "digest": "", "ok": False, "wall_s": 0.0,
           "invariants": {}, "expectations": [], "report": None,
           "error": "scenarios/broken.toml: line 3, column 1: expected '='\nmore detail"}


def parse(results):
    text = junit_xml(results)
    assert text.startswith("<?xml")
    return ET.fromstring(text)


def suite(root, name):
    (found,) = [s for s in root.findall("testsuite") if s.get("name") == name]
    return found


def test_totals_and_per_suite_counts():
    root = parse([PASSING, FAILING, ERRORED])
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "2", "1")
    assert root.get("time") == "3.750"
    counts = {s.get("name"): (s.get("tests"), s.get("failures"), s.get("errors"), s.get("time"))
              for s in root.findall("testsuite")}
    assert counts == {"happy-path": ("2", "0", "0", "1.500"), "bank-outage": ("3", "2", "0", "2.250"),
                      "broken": ("1", "0", "1", "0.000")}
    for s in root.findall("testsuite"):  # the counts match the testcases actually present
        cases = s.findall("testcase")
        assert int(s.get("tests")) == len(cases)
        assert int(s.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(s.get("errors")) == sum(c.find("error") is not None for c in cases)


def test_testcases_are_named_after_expectations_with_failure_messages():
    s = suite(parse([FAILING]), "bank-outage")
    cases = {c.get("name"): c for c in s.findall("testcase")}
    assert list(cases) == ["invariant orders_match_truth", "metric unknown <= 0",
                           "metric payments >= 1"]
    assert {c.get("classname") for c in cases.values()} == {"paysim.bank-outage"}
    failure = cases["invariant orders_match_truth"].find("failure")
    # escaped on the way out, intact on the way back; the control character is dropped
    assert failure.get("message") == "3 violations; first: order <P0000000004> & \"quoted\""
    assert "P0000000004" in failure.text and "bank has no successful payment" in failure.text
    assert cases["metric unknown <= 0"].find("failure").get("message") == "unknown = 2"
    assert cases["metric payments >= 1"].find("failure") is None


def test_properties_carry_seed_digest_and_report():
    s = suite(parse([PASSING]), "happy-path")
    props = {p.get("name"): p.get("value") for p in s.find("properties")}
    assert props == {"seed": "7", "digest": "ab" * 32, "report": "out/happy-path.html"}
    assert list(s)[0].tag == "properties"


def test_errored_scenario_is_one_testcase_with_an_error():
    s = suite(parse([ERRORED]), "broken")
    (case,) = s.findall("testcase")
    error = case.find("error")
    assert error is not None and case.find("failure") is None
    assert error.get("message") == "scenarios/broken.toml: line 3, column 1: expected '='"
    assert error.text.endswith("more detail")
    props = {p.get("name") for p in s.find("properties")}
    assert "report" not in props  # None is left out, not written as "None"


def test_run_without_expectations_is_still_a_testcase():
    failing = dict(PASSING, scenario="no-exp", ok=False, expectations=[])
    passing = dict(PASSING, scenario="no-exp-ok", expectations=[])
    root = parse([failing, passing])
    assert suite(root, "no-exp").find("testcase/failure") is not None
    assert suite(root, "no-exp-ok").find("testcase/failure") is None
    assert root.get("tests") == "2" and root.get("failures") == "1"


def test_empty_suite_is_valid():
    root = parse([])
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("0", "0", "0")


def test_write_junit_writes_the_same_document(tmp_path):
    path = str(tmp_path / "ci" / "junit.xml")
    assert write_junit([PASSING, FAILING, ERRORED], path) == path
    assert Path(path).read_text(encoding="utf-8") == junit_xml([PASSING, FAILING, ERRORED])
    assert ET.parse(path).getroot().get("tests") == "6"
