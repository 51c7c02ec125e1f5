"""Proof that the oracle has teeth: every deliberate flaw of paysys/flaws.py has a scenario under
scenarios/flaws/ that fails on exactly the invariant its mechanism protects, and the very same
scenario passes once the flaw is switched off (so it is the flaw, not the faults, that the oracle
catches). End-to-end runs: the slow layer of the suite (about 1 s a scenario)."""

import dataclasses
import pathlib

import pytest

from paysys.flaws import FLAWS
from sim import runner
from sim.scenario import PaySysOptions, load

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLAW_DIR = ROOT / "scenarios" / "flaws"

# flaw -> the invariant that must catch it (the scenario's header says why)
CAUGHT_BY = {
    "no_idempotency": "idempotency",
    "no_cas": "orders_match_truth",
    "timeout_as_failure": "orders_match_truth",
    "no_notify_dedupe": "duplicates_refunded",
    "trust_notified_amount": "orders_match_truth",
    "no_query": "orders_final",
    "no_outbox": "events_published",
    "no_signature_check": "orders_match_truth",
}


def test_every_flaw_has_a_scenario_and_an_invariant():
    assert set(CAUGHT_BY) == set(FLAWS)
    assert {p.stem for p in FLAW_DIR.glob("*.toml")} == set(FLAWS)


@pytest.mark.parametrize("flaw", sorted(FLAWS))
def test_the_flaw_is_caught_and_the_same_run_passes_without_it(flaw, tmp_path):
    scenario = load(FLAW_DIR / f"{flaw}.toml")
    assert scenario.paysys.flaws == (flaw,)
    flawed = runner.run(scenario, str(tmp_path / "flawed.db"))
    failed = {name for name, r in flawed.verdict.invariants.items() if not r.ok}
    assert not flawed.verdict.ok
    assert CAUGHT_BY[flaw] in failed, failed
    caught = flawed.verdict.invariants[CAUGHT_BY[flaw]]
    assert caught.violations > 0 and caught.first["message"]
    sound = runner.run(dataclasses.replace(scenario, paysys=PaySysOptions()),
                       str(tmp_path / "sound.db"))
    still = sorted(name for name, r in sound.verdict.invariants.items() if not r.ok)
    assert sound.verdict.ok, still
