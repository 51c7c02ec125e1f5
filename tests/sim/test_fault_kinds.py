"""Every fault kind of the catalogue is really injected: a small run with only that fault shows
it acting in the event log, under its fault id (network faults as msg.* events, channel, user,
attacker and merchant faults as fault.fired or merchant.error, crashes as paysys.crash), and the run still holds every
invariant (the payment system copes with each fault alone)."""

import json
import sqlite3

import pytest

from sim import runner
from sim.faults import FAULTS
from sim.scenario import from_dict

TARGET = {"link": "paysys<->bank", "groups": "paysys | bank", "merchant": "merchant:*",
          "users": "users", "paysys": "paysys"}
EXTRA = {"dist": "uniform", "low": 500, "high": 6000}


def statement_scenario(kind: str):
    """A statement fault acts on a day's file: traffic across a local midnight, files fetched the
    next morning (a missing one is given up on a day later)."""
    fault = {"kind": kind, "target": "bank" if kind != "stmt_extra_row" else "wechat",
             "start": "2h", "end": "3h"}
    return from_dict({
        "scenario": {"name": f"only-{kind}", "seed": 5, "start": "2026-11-02T21:30:00+08:00",
                     "duration": "6h", "grace": "2d 8h"},
        "population": {"users": 40},
        "traffic": {"rate_per_min": 1.0, "abandon_probability": 0.0},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
        "notifications": {"schedule": ["15s", "1m", "5m", "20m"]},
        "recon": {},
        "faults": [fault],
    }, f"only-{kind}")


def scenario(kind: str):
    spec = FAULTS[kind]
    if spec.family == "statement":
        return statement_scenario(kind)
    channel = "wechat" if "bank" not in spec.channel_kinds or kind in (
        "amount_mismatch", "double_charge") else "bank"
    fault = {"kind": kind, "target": TARGET.get(spec.target, channel), "start": "0m",
             "end": "20m", "probability": 1.0 if kind != "crash" else 0.05}
    if spec.extra == "required":
        fault["extra"] = EXTRA
    if kind == "pay_after_close":
        fault["target"] = "bank"
    return from_dict({
        "scenario": {"name": f"only-{kind}", "seed": 5, "duration": "20m", "grace": "3h"},
        "population": {"users": 40},
        "traffic": {"rate_per_min": 6.0, "abandon_probability": 0.0},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "bank_b", "kind": "bank", "priority": 2},
                     {"id": "wechat", "kind": "wechat"}],
        "notifications": {"schedule": ["15s", "1m", "5m", "20m"]},
        "faults": [fault] + ([{"kind": "hang", "target": "paysys->bank", "messages": "requests",
                               "start": "0m", "end": "20m", "probability": 0.3,
                               "extra": {"dist": "fixed", "value": 12000}}]
                             if kind == "pay_after_close" else []),
    }, f"only-{kind}")


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_the_fault_acts_and_the_books_still_hold(kind, tmp_path):
    db = str(tmp_path / "run.db")
    result = runner.run(scenario(kind), db)
    conn = sqlite3.connect(db)
    acted = [json.loads(d) for k, d in conn.execute(
        "SELECT kind, data FROM events WHERE kind LIKE 'msg.%' OR kind IN "
        "('fault.fired', 'paysys.crash', 'merchant.error')") if json.loads(d).get("fault_id") == 0]
    conn.close()
    assert acted, f"{kind}: no event shows the fault acting"
    failed = sorted(n for n, r in result.verdict.invariants.items() if not r.ok)
    assert failed == [], failed
