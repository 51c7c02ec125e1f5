"""JUnit XML for a suite of scenario runs, for CI (Jenkins, GitLab, GitHub test reporters).

Owns the mapping from the CLI's `--json` summary dicts to JUnit: one <testsuite> per scenario
run, one <testcase classname="paysim.<scenario>" name="<expectation>"> per expectation, a
<failure message="<detail>"> when it did not hold, and for a scenario that could not run at all
(bad file) a single testcase with an <error>. Seed, digest and report path travel as suite
properties so a failure can be reproduced and inspected. Built with xml.etree.ElementTree, so the
output is well-formed and escaped; characters XML 1.0 cannot carry are dropped.

    write_junit(results, "out/junit.xml")   # -> "out/junit.xml"
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# Characters outside the XML 1.0 Char production (control characters, lone surrogates, ...).
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_RUN_CASE = "run"  # the testcase name for a run without expectations, or one that errored


def _clean(value: object) -> str:
    return _INVALID_XML.sub("", "" if value is None else str(value))


def _seconds(value: object) -> float:
    try:
        return max(float(value), 0.0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _case(suite: ET.Element, scenario: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=_clean(f"paysim.{scenario}"),
                         name=_clean(name), time="0.000")


def _failure_text(exp: dict, invariants: dict) -> str:
    """The detail, plus the first violation when the expectation is about an invariant."""
    text = _clean(exp.get("detail"))
    name = str(exp.get("name", ""))
    inv = invariants.get(name.removeprefix("invariant ").strip()) if invariants else None
    if isinstance(inv, dict) and inv.get("first"):
        first = json.dumps(inv["first"], sort_keys=True, ensure_ascii=False, default=str)
        text += f"\nviolations: {inv.get('violations')}\nfirst: {_clean(first)}"
    return text


def _suite(root: ET.Element, result: dict, index: int) -> tuple[int, int, int, float]:
    scenario = str(result.get("scenario") or f"scenario-{index}")
    wall = _seconds(result.get("wall_s"))
    suite = ET.SubElement(root, "testsuite", name=_clean(scenario), id=str(index))
    props = ET.SubElement(suite, "properties")
    for key in ("seed", "digest", "report"):
        if result.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=_clean(result[key]))
    tests = failures = errors = 0
    if result.get("error"):
        case = _case(suite, scenario, _RUN_CASE)
        error = _clean(result["error"])
        ET.SubElement(case, "error", message=error.splitlines()[0] if error else "error",
                      type="ScenarioError").text = error
        tests, errors = 1, 1
    else:
        expectations = result.get("expectations") or []
        invariants = result.get("invariants") or {}
        for exp in expectations:
            case = _case(suite, scenario, str(exp.get("name", "")))
            tests += 1
            if not exp.get("ok"):
                failures += 1
                ET.SubElement(case, "failure", message=_clean(exp.get("detail")),
                              type="ExpectationFailed").text = _failure_text(exp, invariants)
        if not expectations:  # still one testcase, so CI sees the run and its verdict
            case = _case(suite, scenario, _RUN_CASE)
            tests += 1
            if not result.get("ok", False):
                failures += 1
                ET.SubElement(case, "failure", message="run failed", type="RunFailed")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", f"{wall:.3f}")
    # <properties> first, then testcases: the order the JUnit schema requires.
    return tests, failures, errors, wall


def junit_xml(results: list[dict]) -> str:
    """The JUnit XML document (a string with an XML declaration) for `results`."""
    root = ET.Element("testsuites", name="paysim")
    totals = [0, 0, 0, 0.0]
    for index, result in enumerate(results):
        for i, value in enumerate(_suite(root, result, index)):
            totals[i] += value
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    root.set("time", f"{totals[3]:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(results: list[dict], path: str) -> str:
    """Write `junit_xml(results)` to `path` (UTF-8, parent folders created); return `path`."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(junit_xml(results), encoding="utf-8")
    return path
