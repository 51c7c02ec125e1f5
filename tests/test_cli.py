"""The `paysim` command end to end: through sim.cli.main, and once through the installed console
script. run (JSON contract, HTML report, exit 1 on a failed expectation, exit 2 with one line
naming the file on bad input), suite (JUnit failures and errors), report, bench, and every
command documented with examples."""

import contextlib
import io
import json
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import sim.runner
from sim import cli
from sim.cli import main
from sim.world import NodeCrash

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.toml"
PAYSIM = Path(sys.executable).parent / "paysim"

TINY = """\
[scenario]
name = "{name}"
seed = {seed}
duration = "10m"
grace = "1h"

[population]
users = 50
merchants = 2

[traffic]
rate_per_min = 3.0

[[channels]]
id = "bank"
kind = "bank"

[[channels]]
id = "wechat"
kind = "wechat"

[expectations]
invariants = "all"
"""
IMPOSSIBLE = "\n[expectations.metrics]\npayments = {min = 100000000}\n"


def tiny(folder: Path, name: str, seed: int = 1, extra: str = "") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(TINY.format(name=name, seed=seed) + extra, encoding="utf-8")
    return path


def paysim(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- run -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """`paysim run scenarios/smoke.toml --json --db … --report …`, once for the module."""
    folder = tmp_path_factory.mktemp("smoke")
    db, report = folder / "smoke.db", folder / "smoke.html"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(SMOKE), "--json", "--db", str(db), "--report", str(report)])
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "db": db,
            "report": report}


def test_run_exits_0_and_prints_one_json_object(smoke):
    assert smoke["code"] == 0, smoke["stderr"]
    summary = json.loads(smoke["stdout"])  # the whole of stdout: one object, nothing else
    assert isinstance(summary, dict)
    assert {"scenario", "seed", "digest", "payments", "invariants", "expectations", "ok"} <= set(summary)
    assert summary["scenario"] == "smoke" and summary["seed"] == 42 and summary["ok"] is True
    assert len(summary["digest"]) == 64 and int(summary["digest"], 16) >= 0
    payments = summary["payments"]
    assert payments["total"] == sum(payments["by_status"].values()) > 0
    assert summary["invariants"], "no invariant reported"
    for name, inv in summary["invariants"].items():
        assert isinstance(name, str) and inv["ok"] is True and inv["violations"] == 0
    assert summary["expectations"]
    for exp in summary["expectations"]:
        assert set(exp) >= {"name", "ok", "detail"} and exp["ok"] is True


def test_run_writes_the_database_and_the_html_report(smoke):
    summary = json.loads(smoke["stdout"])
    html = smoke["report"].read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "</html>" in html and "smoke" in html
    assert summary["report"] == str(smoke["report"])
    with contextlib.closing(sqlite3.connect(smoke["db"])) as conn:
        run = dict(conn.execute("SELECT key, value FROM run"))
        assert run["digest"] == summary["digest"] and run["ok"] == "1"
        total = conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone()[0]
    assert total == summary["payments"]["total"]


def test_console_script_runs_end_to_end(smoke, tmp_path):
    db, report = tmp_path / "smoke.db", tmp_path / "smoke.html"
    done = subprocess.run([str(PAYSIM), "run", str(SMOKE), "--json", "--db", str(db),
                           "--report", str(report)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True and report.is_file() and db.is_file()
    assert summary["digest"] == json.loads(smoke["stdout"])["digest"]  # same seed, same run


def test_unmet_expectation_exits_1_and_the_table_says_failed(tmp_path, capsys):
    path = tiny(tmp_path, "impossible", extra=IMPOSSIBLE)
    code, out, err = paysim(capsys, "run", path, "--db", tmp_path / "i.db", "--report",
                            tmp_path / "i.html")
    assert code == 1, err
    assert "FAIL" in out.splitlines()[0]
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "payments" in failed[0]
    assert (tmp_path / "i.html").is_file()  # a failed run still has its report


def test_unmet_expectation_in_json(tmp_path, capsys):
    path = tiny(tmp_path, "impossible", extra=IMPOSSIBLE)
    code, out, _ = paysim(capsys, "run", path, "--json", "--db", tmp_path / "i.db")
    summary = json.loads(out)
    assert code == 1 and summary["ok"] is False
    assert [e["name"] for e in summary["expectations"] if not e["ok"]] == [
        next(e["name"] for e in summary["expectations"] if "payments" in e["name"])]


def _bad_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.toml"
    if case == "missing":
        return path
    if case == "directory":
        path.mkdir()
    elif case == "syntax":
        path.write_text('[scenario]\nname = "x"\nseed = \n', encoding="utf-8")
    elif case == "unknown-key":
        tiny(tmp_path, case, extra='colour = "red"\n')
    return path


@pytest.mark.parametrize("case", ["missing", "directory", "syntax", "unknown-key"])
def test_bad_scenario_file_exits_2_with_one_line_naming_it(case, tmp_path, capsys):
    path = _bad_file(tmp_path, case)
    code, out, err = paysim(capsys, "run", path, "--db", tmp_path / "x.db")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and lines[0].startswith("paysim: error:")
    if case == "unknown-key":
        assert "colour" in lines[0]
    if case == "syntax":
        assert "line 3" in lines[0]


def test_bad_option_exits_2_naming_the_option(capsys):
    code, out, err = paysim(capsys, "run", SMOKE, "--seed", "abc")
    assert code == 2 and out == ""
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "--seed" in last and "abc" in last


def test_negative_seed_exits_2_with_one_line(tmp_path, capsys):
    code, _, err = paysim(capsys, "run", SMOKE, "--seed", "-1", "--db", tmp_path / "x.db")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "seed" in err


# -- suite ---------------------------------------------------------------------------------------


def _junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root


def test_suite_with_a_failing_scenario_exits_1_and_writes_junit(tmp_path, capsys):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    tiny(folder, "good-a", seed=1)
    tiny(folder, "good-b", seed=2)
    tiny(folder, "bad", seed=3, extra=IMPOSSIBLE)
    junit = tmp_path / "junit" / "suite.xml"
    code, out, err = paysim(capsys, "suite", folder, "--junit", junit, "--out", tmp_path / "out")
    assert code == 1, err
    root = _junit(junit)
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert sorted(suites) == ["bad", "good-a", "good-b"]
    assert root.get("failures") == "1" and root.get("errors") == "0"
    assert suites["bad"].get("failures") == "1"
    assert suites["good-a"].get("failures") == "0" and suites["good-b"].get("failures") == "0"
    failing = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert len(failing) == 1 and "payments" in failing[0]
    tests = sum(int(s.get("tests")) for s in suites.values())
    assert root.get("tests") == str(tests) == str(len(list(root.iter("testcase"))))
    for name in suites:
        assert (tmp_path / "out" / f"{name}.db").is_file()
        assert (tmp_path / "out" / f"{name}.html").is_file()


def test_suite_with_an_invalid_file_exits_2_with_an_error_in_junit(tmp_path, capsys):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    tiny(folder, "good", seed=1)
    tiny(folder, "broken", extra='colour = "red"\n')
    junit = tmp_path / "junit.xml"
    code, _, err = paysim(capsys, "suite", folder, "--junit", junit, "--out", tmp_path / "out")
    assert code == 2, err
    root = _junit(junit)
    assert root.get("errors") == "1" and root.get("failures") == "0"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    errors = suites["broken"].findall("testcase/error")
    assert len(errors) == 1 and "colour" in errors[0].get("message")
    assert suites["good"].get("errors") == "0"


def test_suite_reports_a_crashed_scenario_in_junit(tmp_path, capsys, monkeypatch):
    real_run = sim.runner.run

    def crash_on_b(scenario, db_path, *args, **kwargs):
        if scenario.name == "b-crash":
            raise NodeCrash("paysys raised KeyError: 'x' while handling 'pay.create' from "
                            "merchant:M001 at t=1")
        return real_run(scenario, db_path, *args, **kwargs)

    monkeypatch.setattr(sim.runner, "run", crash_on_b)
    folder = tmp_path / "scenarios"
    folder.mkdir()
    tiny(folder, "a-good", seed=1)
    tiny(folder, "b-crash", seed=2)
    junit = tmp_path / "junit.xml"
    code = main(["suite", str(folder), "--junit", str(junit), "--out", str(tmp_path / "out")])
    capsys.readouterr()
    assert code == 1
    root = _junit(junit)
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert sorted(suites) == ["a-good", "b-crash"]
    assert int(suites["b-crash"].get("errors")) + int(suites["b-crash"].get("failures")) >= 1


def test_suite_of_a_missing_folder_exits_2(tmp_path, capsys):
    code, _, err = paysim(capsys, "suite", tmp_path / "nope")
    assert code == 2 and str(tmp_path / "nope") in err


# -- report, bench -------------------------------------------------------------------------------


def test_report_rerenders_a_run_database(smoke, tmp_path, capsys):
    out_file = tmp_path / "again.html"
    code, out, err = paysim(capsys, "report", smoke["db"], "--out", out_file)
    assert code == 0, err
    assert out.strip() == str(out_file)
    html = out_file.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert json.loads(smoke["stdout"])["digest"] in html


def test_report_traces_the_orders_asked_for(smoke, tmp_path, capsys):
    out_file = tmp_path / "asked.html"
    code, _, err = paysim(capsys, "report", smoke["db"], "--out", out_file, "--traces", "0",
                          "--order", "P0000000042", "--order", "P0000000007")
    assert code == 0, err
    html = out_file.read_text(encoding="utf-8")
    traced = re.findall(r'id="trace-(P\d+)"', html)
    assert traced == ["P0000000042", "P0000000007"]


def test_report_of_a_missing_database_exits_2(tmp_path, capsys):
    code, _, err = paysim(capsys, "report", tmp_path / "none.db")
    assert code == 2 and str(tmp_path / "none.db") in err


def test_report_of_a_file_that_is_not_a_database_exits_2(tmp_path, capsys):
    not_db = tmp_path / "notes.db"
    not_db.write_text("this is not SQLite\n" * 20, encoding="utf-8")
    code, _, err = paysim(capsys, "report", not_db, "--out", tmp_path / "x.html")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(not_db) in err


def test_bench_prints_its_figures_as_json(capsys):
    code, out, err = paysim(capsys, "bench", "--payments", "300", "--json")
    assert code == 0, err
    figures = json.loads(out)
    for key in ("payments_per_s", "skeleton_payments_per_s", "ratio", "speedup_vs_realtime",
                "peak_rss_mb"):
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    assert 200 <= figures["payments"] <= 400
    assert figures["ratio"] == pytest.approx(
        figures["payments_per_s"] / figures["skeleton_payments_per_s"], rel=0.01)


@pytest.mark.parametrize("payments", ["0", "1", "99"])
def test_bench_refuses_too_few_payments_to_measure(payments, capsys):
    code, _, err = paysim(capsys, "bench", "--payments", payments)
    assert code == 2 and "--payments: expected at least 100" in err and payments in err


# -- documentation -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_is_documented_with_examples(command, capsys):
    code, out, _ = paysim(capsys, command, "--help")
    assert code == 0
    assert "examples:" in out
    examples = out.split("examples:", 1)[1]
    assert f"paysim {command}" in examples


def test_top_level_help_lists_every_command(capsys):
    code, out, _ = paysim(capsys, "--help")
    assert code == 0
    for command in cli.COMMANDS:
        assert command in out


def test_validate_reports_every_file_and_exits_2_on_any_invalid(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "x"\nseed = 1\nduration = "1h"\n[traffic]\nrate_per_min = "fast"\n')
    code, out, _ = paysim(capsys, "validate", SMOKE, bad)
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0].startswith("valid") and "smoke" in lines[0]
    assert lines[1] == f'invalid  {bad}: traffic.rate_per_min: expected a number > 0, got "fast"'
    assert paysim(capsys, "validate", SMOKE)[0] == 0


@pytest.mark.parametrize("option, what", [("--db", "run database"), ("--report", "report")])
def test_an_output_that_cannot_be_written_exits_2_before_running(option, what, tmp_path, capsys):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    code, _, err = paysim(capsys, "run", SMOKE, option, folder)
    assert code == 2
    assert err.strip() == f"paysim: error: {folder}: is a folder; expected the {what} file to write"
    assert not list(folder.iterdir())


# -- fuzz ----------------------------------------------------------------------------------------


def _fake_run(fail_on_network_fault: bool):
    """A stand-in for sim.runner.run (no simulation): a network fault fails "invariant planted"."""
    from types import SimpleNamespace

    from sim.faults import FAULTS
    from sim.oracle import Expectation

    def run(scenario, db):
        bad = fail_on_network_fault and any(FAULTS[f.kind].family == "network"
                                            for f in scenario.faults)
        digest = repr((scenario.seed, scenario.faults, scenario.buggify))
        verdict = SimpleNamespace(ok=not bad, expectations=[Expectation("invariant planted",
                                                                        not bad, "")])
        return SimpleNamespace(verdict=verdict, digest=digest)

    return run


def test_fuzz_finds_writes_and_reproduces_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sim.runner, "run", _fake_run(True))
    code, out, err = paysim(capsys, "fuzz", "--budget", "50", "--seed", "2", "--out", tmp_path)
    assert code == 1, err
    files = list(tmp_path.glob("fuzz-2-*.toml"))
    assert len(files) == 1 and str(files[0]) in out
    assert "FOUND" in out and "invariant planted" in out and "reproduces" in out
    assert "paysim fuzz --seed 2 --budget 50" in err            # progress goes to stderr
    assert files[0].read_text().startswith("# Found by `paysim fuzz --seed 2 --budget 50`")


def test_fuzz_nothing_found_exit_0_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sim.runner, "run", _fake_run(False))
    code, out, err = paysim(capsys, "fuzz", "--budget", "3", "--out", tmp_path / "out")
    assert code == 0, err
    assert "nothing found" in out and not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, expected", [
    (["--budget", "0"], "--budget: expected an integer >= 1, got 0"),
    (["--budget", "many"], "--budget"),
    (["--seed", "-1"], "--seed"),
    (["--flaw", "no_such_flaw"], "--flaw: unknown flaw 'no_such_flaw'"),
    (["--base", "{tmp}/missing.toml"], "missing.toml: no such scenario file"),
    (["--base", "{tmp}/bad.toml"], "bad.toml: traffic.rate_per_min"),
    (["--out", "{tmp}/file"], "--out: {tmp}/file: not a folder"),
    (["--out", "{tmp}/file/below"], "--out: {tmp}/file/below: not writable"),
])
def test_fuzz_bad_input_exits_2_with_one_line(argv, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sim.runner, "run", _fake_run(True))
    (tmp_path / "file").write_text("x")
    (tmp_path / "bad.toml").write_text(TINY.format(name="bad", seed=1).replace(
        "rate_per_min = 3.0", 'rate_per_min = "fast"'))
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = paysim(capsys, "fuzz", "--out", tmp_path / "out", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected.format(tmp=tmp_path) in err
    assert not (tmp_path / "out").exists()
