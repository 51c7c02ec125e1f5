"""The issue's property, end to end: whatever set of statement faults a scenario injects (kinds,
channels, days, how many rows), the payment system's reconciliation finds exactly the injected
discrepancies and those the ground truth implies, each with its class, and resolves every one
(precision = recall = 1.0, nothing open), with every invariant holding.

Each example is a whole simulated run (two days of traffic, files reconciled to the end), so the
examples are few and derandomized: the same ones run in CI every time. The matcher's own property
over thousands of generated rows is in tests/paysys/test_recon_match.py.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import runner
from sim.faults import FAULTS
from sim.scenario import from_dict

STATEMENT = sorted(k for k, f in FAULTS.items() if f.family == "statement")
COUNTED = {k for k in STATEMENT if "count" in FAULTS[k].params}


@st.composite
def statement_faults(draw) -> list[dict]:
    faults = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(STATEMENT))
        target = draw(st.sampled_from(("bank", "wechat")))
        day = draw(st.integers(0, 1))
        fault = {"kind": kind, "target": target, "start": f"{day}d", "end": f"{day + 1}d"}
        if kind in COUNTED:
            fault["count"] = draw(st.integers(1, 3))
        if kind == "stmt_late":
            fault["delay"] = draw(st.sampled_from(("1h", "4h", "10h")))
        faults.append(fault)
    return faults


@settings(max_examples=6, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(statement_faults(), st.sampled_from(("wechat", "alipay")))
def test_any_set_of_statement_faults_is_found_exactly(tmp_path_factory, faults, platform):
    faults = [f for f in faults if not (f["kind"] == "stmt_currency" and platform == "alipay")]
    scenario = from_dict({
        "scenario": {"name": "recon-property", "seed": 3, "start": "2026-11-02T00:00:00+08:00",
                     "duration": "2d", "grace": "2d 12h"},
        "population": {"users": 80, "merchants": 2},
        "traffic": {"rate_per_min": 0.15, "refund_probability": 0.1},
        "channels": [{"id": "bank", "kind": "bank", "fee": {"rate_bp": 25}},
                     {"id": "wechat", "kind": "wechat", "fee": {"rate_bp": 38},
                      "statement": platform}],
        "recon": {},
        "faults": faults,
    })
    db = tmp_path_factory.mktemp("run") / "run.db"
    result = runner.run(scenario, str(db))
    m = result.verdict.metrics
    failed = {n: r.first for n, r in result.verdict.invariants.items() if not r.ok}
    assert failed == {}, (faults, failed)
    assert (m["recon_precision"], m["recon_recall"], m["recon_unresolved"]) == (1.0, 1.0, 0)
    assert m["recon_not_reached"] == 0, faults
