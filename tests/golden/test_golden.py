"""Golden runs, as the SimPy docs test their examples: every shipped scenario (scenarios/*.toml)
has a file tests/golden/<name>.out holding a short, stable summary of its run (digest, payments
and refunds by status, every expectation and whether it held). The test runs the scenario again
and diffs the new summary against the file; a mismatch prints a unified diff.

When a change of behaviour is intended (a new event, a fixed bug), regenerate the files and
review the diff before committing them:

    PAYSIM_REGOLD=1 .venv/bin/pytest tests/golden
    git diff tests/golden

Also here: the same seed twice gives the same digest (once in another process with another
PYTHONHASHSEED, so no set or dict order of the interpreter leaks into a run), another seed
gives another digest.
"""

import difflib
import json
import os
import pathlib
import subprocess
import sys

import pytest

from sim.runner import run
from sim.scenario import from_dict, load

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
REGOLD = os.environ.get("PAYSIM_REGOLD") == "1"


def golden_text(summary: dict) -> str:
    """The stable part of a run summary, one fact per line."""
    lines = [f"scenario {summary['scenario']}", f"seed {summary['seed']}",
             f"digest {summary['digest']}", f"ok {summary['ok']}"]
    for table in ("payments", "refunds"):
        counts = summary[table]
        lines.append(f"{table} total {counts['total']}")
        lines += [f"{table} {status} {n}" for status, n in sorted(counts["by_status"].items())]
    lines += [f"expectation {e['name']}: {'ok' if e['ok'] else 'FAILED'}"
              for e in summary["expectations"]]
    return "\n".join(lines) + "\n"


def test_every_scenario_has_a_golden_file_and_every_golden_file_a_scenario():
    if REGOLD:
        pytest.skip("regenerating")
    assert SCENARIOS, "no shipped scenarios"
    assert sorted(p.stem for p in HERE.glob("*.out")) == sorted(p.stem for p in SCENARIOS)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_run(path, tmp_path):
    result = run(load(path), str(tmp_path / f"{path.stem}.db"))
    text = golden_text(result.summary)
    golden = HERE / f"{path.stem}.out"
    if REGOLD:
        golden.write_text(text, encoding="utf-8")
        return
    assert golden.exists(), f"{golden} is missing; write it with PAYSIM_REGOLD=1 pytest tests/golden"
    expected = golden.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True),
            f"tests/golden/{golden.name} (golden)", f"{path.name} (this run)"))
        print(diff)
        pytest.fail(f"{path.name} no longer reproduces tests/golden/{golden.name} (unified diff in "
                    "the captured stdout; PAYSIM_REGOLD=1 accepts an intended change)", pytrace=False)


# -- determinism ---------------------------------------------------------------------------------

SMALL = {  # a quarter of an hour with every network fault and a merchant one: every stream used
    "scenario": {"name": "determinism", "seed": 21, "duration": "15m", "grace": "1h",
                 "start": "2026-11-02T23:30:00+08:00"},
    "population": {"users": 60, "merchants": 2, "magic_cards": {"0002": 0.05, "3220": 0.05}},
    "traffic": {"rate_per_min": 4.0, "refund_probability": 0.3, "refund_delay": 60_000},
    "channels": [{"id": "bank", "kind": "bank", "fee": {"rate_bp": 25}},
                 {"id": "wechat", "kind": "wechat", "duplicate_notify_probability": 0.2}],
    "faults": [
        {"kind": "drop", "target": "bank->paysys", "start": "2m", "end": "10m", "probability": 0.3},
        {"kind": "hang", "target": "paysys->bank", "start": "2m", "end": "10m", "probability": 0.1,
         "extra": {"dist": "uniform", "low": 4000, "high": 9000}},
        {"kind": "duplicate", "target": "wechat->paysys", "start": "0s", "end": "15m",
         "probability": 0.3},
        {"kind": "latency", "target": "paysys<->wechat", "start": "5m", "end": "12m",
         "probability": 0.5, "extra": {"dist": "exponential", "mean": 2000}},
        {"kind": "merchant_error", "target": "merchant:*", "start": "0s", "end": "20m",
         "probability": 0.2},
    ],
}
IN_ANOTHER_PROCESS = (
    "import json, sys\n"
    "from sim.runner import run\n"
    "from sim.scenario import from_dict\n"
    "print(run(from_dict(json.loads(sys.argv[1])), sys.argv[2]).digest)\n"
)


def _with_seed(seed: int) -> dict:
    return {**SMALL, "scenario": {**SMALL["scenario"], "seed": seed}}


@pytest.fixture(scope="module")
def small_digest(tmp_path_factory) -> str:
    result = run(from_dict(SMALL), str(tmp_path_factory.mktemp("small") / "a.db"))
    assert result.payments > 20  # enough traffic for the digest to mean something
    return result.digest


def test_same_seed_twice_same_digest(small_digest, tmp_path):
    assert run(from_dict(SMALL), str(tmp_path / "b.db")).digest == small_digest


def test_same_seed_in_another_process_same_digest(small_digest, tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", IN_ANOTHER_PROCESS, json.dumps(SMALL),
                           str(tmp_path / "c.db")], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == small_digest


def test_another_seed_another_digest(small_digest, tmp_path):
    assert run(from_dict(_with_seed(22)), str(tmp_path / "d.db")).digest != small_digest
