"""The oracle's checks of each product family, merged into the catalogue.

Each module of `FAMILIES` exposes `INVARIANTS = {name: Invariant(...)}` and `METRICS = {name:
Metric(...)}`. `sim/catalogue.py` adds their descriptions to its tables, `sim/invariants.py`
their checks and `sim/metrics.py` their values, so a scenario's expectations name them like the
core ones. A check reads the run database with set-based SQL and passes vacuously on a run
without the product (its tables absent or empty).
"""

from sim.checks import (
    accounts,
    cards,
    combined,
    foreign,
    mandates,
    movements,
    netbank,
    preauth,
    quick,
)
from sim.checks.base import Invariant, Metric

FAMILIES = (quick, netbank, mandates, preauth, cards, foreign, accounts, movements, combined)


def merged(name: str) -> dict:
    out: dict = {}
    for module in FAMILIES:
        table = getattr(module, name, None) or {}
        clash = set(out) & set(table)
        if clash:
            raise RuntimeError(f"sim.checks: {name} {sorted(clash)} defined twice")
        out.update(table)
    return out


INVARIANTS: dict[str, Invariant] = merged("INVARIANTS")
METRICS: dict[str, Metric] = merged("METRICS")

__all__ = ["FAMILIES", "INVARIANTS", "METRICS", "Invariant", "Metric"]
