"""The resilience scenarios (scenarios/resilience/*.toml): each loads, runs and passes.

This is the slow end-to-end layer: every scenario is simulated whole (paysys, mocks, network,
faults) and verified by the oracle, about half a second each. The files are kept short (20-40
minutes of traffic, a few hours of grace) so the module stays under ~40 s.

Besides the verdict, each file must be a useful, self-explaining test: a header comment saying
what it shows, `name` equal to its file name, at least one fault (or BUGGIFY), every invariant
checked, and at least one metric lower bound that proves the fault really acted or that the
compensation really happened (a scenario whose fault never fires would pass vacuously).
"""

import tomllib
from pathlib import Path

import pytest

from sim import runner
from sim.catalogue import INVARIANTS
from sim.scenario import load

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "resilience"
FILES = sorted(DIR.glob("*.toml"))
MAX_TRAFFIC_MS = 40 * 60_000


def test_there_are_at_least_22_resilience_scenarios():
    assert len(FILES) >= 22, [f.name for f in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_file_is_self_explaining_and_proves_its_fault(path: Path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), f"{path.name}: no header comment saying what it shows"
    raw = tomllib.loads(text)
    scenario = load(str(path))
    assert scenario.name == path.stem
    assert "seed" in raw["scenario"], f"{path.name}: the seed must be fixed in the file"
    assert scenario.faults or scenario.buggify, f"{path.name}: no fault"
    assert raw["expectations"]["invariants"] == "all"
    assert set(scenario.expectations.invariants) == set(INVARIANTS)
    floors = {name for name, (low, _high) in scenario.expectations.metrics.items()
              if low is not None and low > 0}
    assert floors, f"{path.name}: no metric lower bound proving the fault acted"
    assert scenario.duration_ms <= MAX_TRAFFIC_MS, f"{path.name}: keep the traffic short"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_passes(path: Path, tmp_path: Path):
    result = runner.run(load(str(path)), str(tmp_path / "run.db"))
    failed = [f"{e.name}: {e.detail}" for e in result.verdict.expectations if not e.ok]
    assert result.verdict.ok, f"{path.name}: " + "; ".join(failed)
    assert not failed
    assert result.verdict.metrics["faults_acted"] >= 1
