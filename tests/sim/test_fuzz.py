"""sim/fuzz.py and sim/_fuzz_gen.py: generated scenarios are valid and cover the catalogue; a
campaign finds a planted violation, shrinks it, writes a TOML file that loads and reproduces; the
same seed gives the same campaign; with real runs: a deliberate flaw is found and a quiet base
passes."""

import copy
import hashlib
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings

from sim import fuzz as fz
from sim._fuzz_gen import MAX_KINDS, fault_kinds, scenarios
from sim.faults import FAULTS
from sim.oracle import Expectation
from sim.scenario import ScenarioError, from_dict, load

ROOT = Path(__file__).resolve().parents[2]
NETWORK = {k for k, f in FAULTS.items() if f.family == "network"}
# statement faults act on the files a reconciling payment system reads: the fuzzer's base runs a
# few hours without [recon], so they are out of its reach (scenarios/recon/ covers them)
FUZZED = {k for k, f in FAULTS.items() if f.family != "statement"}


# -- generation ---------------------------------------------------------------------------------


@settings(max_examples=60, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(scenarios(fz.BASE, ("no_query",)))
def test_every_generated_scenario_is_valid(data):
    scenario = from_dict(data)
    assert scenario.paysys.flaws == ("no_query",)
    assert set(scenario.expectations.invariants) and data["expectations"]["invariants"] == "all"
    kinds = [f.kind for f in scenario.faults]
    assert len(set(kinds)) <= MAX_KINDS
    assert all(kinds.count(k) <= 2 for k in kinds)
    assert all(f.end_ms <= scenario.duration_ms + scenario.grace_ms for f in scenario.faults)
    assert fz.BASE["scenario"]["seed"] == 0      # the base is never modified in place


def test_generation_covers_every_kind_of_the_catalogue_and_both_buggify_values():
    seen, buggify = set(), set()

    @settings(max_examples=300, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(scenarios(fz.BASE))
    def collect(data):
        seen.update(f["kind"] for f in data["faults"])
        buggify.add(data["scenario"]["buggify"])

    collect()
    assert set(fault_kinds(from_dict(fz.BASE))) == FUZZED
    assert seen == FUZZED and buggify == {True, False}


def test_a_base_keeps_its_own_faults_and_settings():
    base = copy.deepcopy(fz.BASE)
    base["faults"] = [{"kind": "drop", "target": "paysys->bank", "start": "1m", "end": "2m"}]
    base["traffic"]["refund_probability"] = 0.25

    @settings(max_examples=10, database=None, suppress_health_check=list(HealthCheck))
    @given(scenarios(base))
    def check(data):
        assert data["faults"][0] == base["faults"][0]
        assert data["traffic"]["rate_per_min"] == 10.0 and len(data["channels"]) == 3

    check()


def test_kinds_restrict_the_faults_switched_on():
    @settings(max_examples=40, database=None, suppress_health_check=list(HealthCheck))
    @given(scenarios(fz.BASE, kinds=("crash", "drop")))
    def check(data):
        assert {f["kind"] for f in data["faults"]} <= {"crash", "drop"}

    check()
    with pytest.raises(ValueError, match="kinds: unknown fault kind 'nope'"):
        scenarios(fz.BASE, kinds=("nope",))


def test_a_bad_base_is_a_scenario_error():
    bad = copy.deepcopy(fz.BASE)
    bad["traffic"]["rate_per_min"] = "fast"
    with pytest.raises(ScenarioError, match="traffic.rate_per_min"):
        scenarios(bad)


# -- a campaign against a planted bug (no simulation: fast) -------------------------------------


def _planted(scenario, db):
    """A stand-in for sim.runner.run: fails "invariant planted" whenever a network fault is
    declared; the digest hashes what the scenario declares (so a TOML round trip must keep it)."""
    content = repr((scenario.seed, scenario.faults, scenario.traffic, scenario.population,
                    scenario.merchants, scenario.paysys, scenario.buggify))
    bad = any(f.kind in NETWORK for f in scenario.faults)
    expectations = [Expectation("invariant planted", not bad, ""),
                    Expectation("invariant other", True, "")]
    return SimpleNamespace(verdict=SimpleNamespace(expectations=expectations, ok=not bad),
                           digest=hashlib.sha256(content.encode()).hexdigest())


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz")
    seen = []

    def run(scenario, db):
        seen.append(scenario)
        return _planted(scenario, db)

    return fz.fuzz(50, 2, str(out), run=run, shrink_runs=300), out, seen


def test_a_planted_violation_is_found_shrunk_written_and_reproduced(planted):
    campaign, out, _ = planted
    found = campaign.finding
    assert found is not None and found.failed == ("invariant planted",)
    assert found.reproduced and found.replay_digest == found.digest
    path = Path(found.path)
    assert path.parent == out and re.fullmatch(r"fuzz-2-[0-9a-f]{8}\.toml", path.name)
    assert path.name == f"fuzz-2-{fz.digest8(found.scenario)}.toml"
    scenario = load(path)
    assert scenario.name == path.stem and scenario.expectations.invariants
    assert [f.kind in NETWORK for f in scenario.faults] == [True]     # shrunk to one fault
    assert found.faults == 1 < found.first_faults
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Found by `paysim fuzz --seed 2 --budget 50`")
    assert "# Failed: invariant planted" in text and found.digest in text


def test_a_shrunk_scenario_is_simpler_than_the_first_failing_one(planted):
    campaign, _, seen = planted
    fault = campaign.finding.scenario["faults"][0]
    assert fault["probability"] == 1.0 and fault["start"] == "0ms"
    assert campaign.examples >= 1 and campaign.shrink_runs >= 1
    assert len(seen) == campaign.examples + campaign.shrink_runs + 1     # + the replay


def test_the_same_seed_gives_the_same_campaign(tmp_path, planted):
    again = fz.fuzz(50, 2, str(tmp_path), run=_planted, shrink_runs=300)
    assert again.finding.scenario == planted[0].finding.scenario
    assert again.examples == planted[0].examples
    other = fz.fuzz(50, 5, str(tmp_path), run=_planted, shrink_runs=300)
    assert Path(other.finding.path).name.startswith("fuzz-5-")


def test_nothing_found_writes_nothing(tmp_path):
    def never(scenario, db):
        result = _planted(scenario, db)
        result.verdict.expectations = [Expectation("invariant planted", True, "")]
        return result

    campaign = fz.fuzz(5, 1, str(tmp_path / "out"), run=never)
    assert campaign.finding is None and campaign.examples >= 1
    assert not (tmp_path / "out").exists()


def test_shrinking_is_bounded_by_shrink_runs(tmp_path):
    campaign = fz.fuzz(50, 2, str(tmp_path), run=_planted, shrink_runs=2)
    assert campaign.shrink_runs <= 2 and campaign.finding.reproduced
    assert campaign.finding.faults >= 1


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="budget"):
        fz.fuzz(0, 1, str(tmp_path), run=_planted)
    with pytest.raises(ScenarioError, match="paysys.flaws"):
        fz.fuzz(1, 1, str(tmp_path), flaws=("no_such_flaw",), run=_planted)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        fz.check_out_dir(str(tmp_path / "file"))
    fz.check_out_dir(str(tmp_path / "new" / "deeper"))      # created when something is found


def test_to_toml_reads_back_equal():
    import tomllib

    data = copy.deepcopy(fz.BASE)
    data["faults"] = [{"kind": "hang", "target": "paysys<->bank", "start": "1m", "end": "2m",
                       "extra": {"dist": "uniform", "low": 0, "high": 500}}]
    data["population"]["magic_cards"] = {"0119": 0.05}
    data["network"] = {"links": {"paysys->bank": {"latency": 5}}}
    assert tomllib.loads(fz.to_toml(data)) == data


# -- real runs ----------------------------------------------------------------------------------


def _flaw_wired(flaw: str) -> bool:
    return any(f'flawed("{flaw}")' in p.read_text(encoding="utf-8")
               for p in (ROOT / "paysys").rglob("*.py"))


@pytest.mark.skipif(not _flaw_wired("timeout_as_failure"),
                    reason="paysys does not implement the flaw timeout_as_failure yet")
def test_a_deliberate_flaw_is_found_with_real_runs_and_not_without_it(tmp_path):
    lost = ("drop", "hang")     # replies lost or held: timeouts, which the flaw fails
    campaign = fz.fuzz(8, 2, str(tmp_path), flaws=("timeout_as_failure",), shrink_runs=6,
                       kinds=lost)
    found = campaign.finding
    assert found is not None, "the fuzzer missed timeout_as_failure"
    assert found.reproduced, (found.failed, found.replay_failed)
    assert "invariant orders_match_truth" in found.failed
    scenario = load(found.path)
    assert scenario.paysys.flaws == ("timeout_as_failure",)
    assert scenario.faults and {f.kind for f in scenario.faults} <= set(lost)
    assert found.faults <= found.first_faults
    control = fz.fuzz(campaign.examples, 2, str(tmp_path / "control"), kinds=lost)
    assert control.finding is None, control.finding and control.finding.failed


def test_a_quiet_base_passes_with_real_runs(tmp_path):
    quiet = copy.deepcopy(fz.BASE)
    quiet["scenario"]["duration"] = "5m"
    campaign = fz.fuzz(2, 0, str(tmp_path / "out"), base=quiet)
    assert campaign.finding is None, campaign.finding and campaign.finding.failed
    assert campaign.examples == 2 and not (tmp_path / "out").exists()
