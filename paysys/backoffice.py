"""The back office: the jobs that run on the calendar rather than on a message.

Statement reconciliation (paysys/recon/flow.py), settlement and payouts (settlement.py), the
positions at the payout bank (positions.py) and the accounting day (dayend.py) each expose the
same small surface, and the engine only knows this module:

- `TIMERS` {timer kind: fn(node, key, arg, now_ms)}, `FLOWS` {channel op: fn(node, channel, ref,
  req_id, outcome, now_ms)}, `TIMEOUTS` and `REFUSED` {channel op: fn(node, channel, ref, req_id,
  now_ms)}: merged into the engine's tables;
- `arm(node, now_ms)`: schedules the job's next calendar timers; called once when the node
  starts working and again after a restart (it must be idempotent with respect to the database:
  everything it needs to remember is in tables).

Nothing runs unless the scenario asks for it (`PaySysConfig.backoffice.enabled`).
"""

from paysys import dayend, positions, settlement
from paysys.recon import flow as recon

JOBS: tuple = (recon, settlement, positions, dayend)


def _merged(name: str) -> dict:
    table: dict = {}
    for job in JOBS:
        for key, fn in getattr(job, name, {}).items():
            assert key not in table, f"{job.__name__}.{name}: {key!r} is already registered"
            table[key] = fn
    return table


TIMERS, FLOWS = _merged("TIMERS"), _merged("FLOWS")
TIMEOUTS, REFUSED = _merged("TIMEOUTS"), _merged("REFUSED")


def arm(node, now_ms: int) -> None:
    """Schedule every job's calendar timers (at start, and after a restart)."""
    if node.cfg.backoffice.enabled:
        for job in JOBS:
            job.arm(node, now_ms)
