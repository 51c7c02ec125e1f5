"""What a user does for each product of the traffic mix (`[traffic] products`).

An arrival of product `p` starts `JOURNEYS[p].start(actors, arrival)` when the product has a
journey here; otherwise the default journey of sim/actors.py runs (a `pay.create` of product `p`
through whatever channel serves it, then the user pays the QR code or bank page if one comes
back). A journey also owns its `[products.<name>]` table in scenarios: `options(parser, value,
key)` parses it, and `paysys(options)` turns it into the settings object the payment system's
family reads (`PaySysConfig.products[name]`). Each module of `FAMILIES` exposes `JOURNEYS`.
"""

from sim.journeys import accounts, combined, foreign, mandates, movements, preauth, quick
from sim.journeys.base import Arrival, Journey

FAMILIES = (quick, mandates, preauth, foreign, accounts, movements, combined)
JOURNEYS: dict[str, Journey] = {}
for _family in FAMILIES:
    if set(JOURNEYS) & set(_family.JOURNEYS):
        raise RuntimeError(f"sim.journeys: {sorted(set(JOURNEYS) & set(_family.JOURNEYS))} "
                           "defined twice")
    JOURNEYS.update(_family.JOURNEYS)

__all__ = ["FAMILIES", "JOURNEYS", "Arrival", "Journey"]
