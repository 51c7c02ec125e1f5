"""The reconciliation scenarios (scenarios/recon/*.toml): one per statement fault kind and a
mixed one, each at least three simulated days; each loads, runs and passes with reconciliation
precision and recall both 1.0 and nothing left open.

Like the resilience suite, each file must explain itself (a header comment, `name` = file name,
a fixed seed, every invariant checked) and prove that it measured something: a lower bound on
what was injected or expected, and the bounds precision = recall = 1.0.
"""

import tomllib
from pathlib import Path

import pytest

from sim import runner
from sim.faults import FAULTS
from sim.scenario import load

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "recon"
FILES = sorted(DIR.glob("*.toml"))
DAY_MS = 86_400_000
STATEMENT = sorted(k for k, f in FAULTS.items() if f.family == "statement")
FILE_OF = {kind: kind.removeprefix("stmt_").replace("_", "-") for kind in STATEMENT}
FILE_OF.update({"stmt_none": "no-file", "stmt_late": "late-file"})


def test_one_scenario_per_statement_fault_kind_and_a_mixed_one():
    names = {f.stem for f in FILES}
    assert {FILE_OF[k] for k in STATEMENT} <= names
    for kind in STATEMENT:
        faults = {f.kind for f in load(str(DIR / f"{FILE_OF[kind]}.toml")).faults}
        assert faults == {kind}, f"{FILE_OF[kind]}.toml should inject only {kind}: {faults}"
    mixed = {f.kind for f in load(str(DIR / "mixed.toml")).faults}
    assert set(STATEMENT) <= mixed


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_file_is_self_explaining_and_measures_reconciliation(path: Path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), f"{path.name}: no header comment saying what it shows"
    raw = tomllib.loads(text)
    scenario = load(str(path))
    assert scenario.name == path.stem and "seed" in raw["scenario"]
    assert scenario.recon is not None
    assert scenario.duration_ms >= 3 * DAY_MS
    assert raw["expectations"]["invariants"] == "all"
    metrics = raw["expectations"]["metrics"]
    assert metrics["recon_precision"] == {"min": 1.0}
    assert metrics["recon_recall"] == {"min": 1.0}
    assert metrics["recon_unresolved"] == {"max": 0}
    assert metrics.get("recon_injected", metrics.get("recon_expected", {})).get("min", 0) >= 1


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_passes_with_perfect_reconciliation(path: Path, tmp_path):
    result = runner.run(load(str(path)), str(tmp_path / "run.db"))
    failed = [e.name + ": " + e.detail for e in result.verdict.expectations if not e.ok]
    assert failed == []
    m = result.verdict.metrics
    assert m["recon_precision"] == 1.0 and m["recon_recall"] == 1.0
    assert m["recon_found"] == m["recon_expected"] >= 1
    assert m["recon_not_reached"] == 0
    assert result.summary["recon"]["precision"] == 1.0
