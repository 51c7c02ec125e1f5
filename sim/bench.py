"""The benchmark: the full flow against a bare SimPy skeleton of the same shape.

The full run simulates N payments (quick pay and platform pay, refunds, OTP challenges) through
the whole system with a standard fault mix, writes the run database and verifies it. The
skeleton, in the same process, replays the same arrival times with a bare SimPy process per
payment that waits on as many timeouts as the full run scheduled per payment: the engine's own
limit. Their ratio says how much of SimPy's speed the testbed keeps.
"""

import resource
import tempfile
import time
from pathlib import Path

import simpy

from sim.rng import stream
from sim.runner import run
from sim.scenario import Scenario, from_dict

PAYMENTS_PER_MIN = 3_000
FAULT_WINDOW = {"start": "5m", "end": "25m"}


def bench_scenario(payments: int, seed: int) -> Scenario:
    """The benchmark's scenario: `payments` arrivals at 50 per second with a standard fault mix."""
    minutes = max(1, round(payments / PAYMENTS_PER_MIN))
    faults = [
        {"kind": "drop", "target": "bank->paysys", "probability": 0.02},
        {"kind": "hang", "target": "paysys->bank", "probability": 0.01,
         "extra": {"dist": "uniform", "low": 4000, "high": 8000}},
        {"kind": "duplicate", "target": "wechat->paysys", "probability": 0.05},
        {"kind": "latency", "target": "paysys->wechat", "probability": 0.05,
         "extra": {"dist": "uniform", "low": 100, "high": 2000}},
        {"kind": "merchant_error", "target": "merchant:*", "probability": 0.02},
    ]
    return from_dict({
        "scenario": {"name": "bench", "seed": seed, "start": "2026-11-02T09:00:00+08:00",
                     "duration": payments * 60_000 // PAYMENTS_PER_MIN, "grace": "1h",
                     "description": f"{payments} payments with the standard fault mix"},
        "population": {"users": min(20_000, max(100, payments // 5)), "merchants": 20},
        "traffic": {"rate_per_min": float(PAYMENTS_PER_MIN), "refund_probability": 0.05},
        "risk": {"velocity_max": 1000},
        "channels": [
            {"id": "bank", "kind": "bank", "fee": {"rate_bp": 25}, "capacity": 500},
            {"id": "wechat", "kind": "wechat", "fee": {"rate_bp": 38}},
        ],
        "faults": [dict(f, **FAULT_WINDOW) for f in faults] if minutes >= 25 else
                  [dict(f, start=0, end=payments * 60_000 // PAYMENTS_PER_MIN) for f in faults],
        "expectations": {"invariants": "all"},
    }, "<bench>")


def skeleton(scenario: Scenario, payments: int, timeouts_per_payment: int) -> float:
    """Wall seconds of a bare SimPy run with the same arrivals and timeouts per payment."""
    env = simpy.Environment(initial_time=scenario.start_ms)
    arrivals = stream(scenario.seed, "traffic.arrivals")   # the same stream as sim.traffic
    rate = scenario.traffic.rate_per_min / 60_000
    delays = stream(scenario.seed, "skeleton")

    def payment(env):
        for _ in range(timeouts_per_payment):
            yield env.timeout(delays.randint(1, 50))

    def arrive(env):
        for _ in range(payments):
            yield env.timeout(max(1, round(arrivals.expovariate(rate))))
            env.process(payment(env))

    env.process(arrive(env))
    wall = time.perf_counter()
    env.run()
    return time.perf_counter() - wall


def bench(payments: int = 100_000, seed: int = 1, progress: bool = False) -> dict:
    scenario = bench_scenario(payments, seed)
    with tempfile.TemporaryDirectory(prefix="paysim-bench-") as tmp:
        db = str(Path(tmp) / "bench.db")
        bar = _progress_bar() if progress else None
        wall = time.perf_counter()
        if bar:
            with bar:
                task = bar.add_task("full flow", total=1)
                result = run(scenario, db, lambda done, total: bar.update(task, completed=done / total))
        else:
            result = run(scenario, db)
        full_s = time.perf_counter() - wall
    per_payment = max(1, round(result.timeouts / max(1, result.payments)))
    skeleton_s = skeleton(scenario, result.payments, per_payment)
    simulated_s = (scenario.end_ms - scenario.start_ms) / 1000
    full_rate = result.payments / full_s
    timing = result.summary["timing"]
    inside = timing["inside_nodes_s"]
    mocks = sum(inside.get(c.id, 0.0) for c in scenario.channels)
    actors = sum(inside.get(a, 0.0) for a in ("merchant", "user", "sms"))
    skeleton_rate = result.payments / skeleton_s
    return {
        "payments": result.payments,
        "ok": result.verdict.ok,
        "digest": result.digest,
        "wall_s": round(full_s, 3),
        "payments_per_s": round(full_rate, 1),
        "skeleton_payments_per_s": round(skeleton_rate, 1),
        "ratio": round(full_rate / skeleton_rate, 4),
        "timeouts_per_payment": per_payment,
        "simulated_s": simulated_s,
        "speedup_vs_realtime": round(simulated_s / full_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "breakdown_s": {  # where the full run's wall time went
            "paysys": round(inside.get("paysys", 0.0), 2),
            "mock_channels": round(mocks, 2),
            "merchants_and_users": round(actors, 2),
            "simpy_network_log": round(timing["simulate_s"] - sum(inside.values()), 2),
            "write_run_database": timing["write_s"],
            "verify": timing["verify_s"],
        },
    }


def _progress_bar():
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]bench"), BarColumn(), TextColumn("{task.description}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def print_bench(console, figures: dict) -> None:
    from rich.table import Table

    table = Table(title=f"paysim bench: {figures['payments']} payments", header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("full flow, payments per wall second", f"{figures['payments_per_s']:,.0f}"),
        ("bare SimPy skeleton, payments per wall second", f"{figures['skeleton_payments_per_s']:,.0f}"),
        ("ratio (full / skeleton)", f"{figures['ratio']:.3f}"),
        ("SimPy timeouts per payment", str(figures["timeouts_per_payment"])),
        ("simulated seconds per wall second", f"{figures['speedup_vs_realtime']:,.0f}"),
        ("wall time of the full run (s)", f"{figures['wall_s']:.1f}"),
        ("peak memory (MB)", f"{figures['peak_rss_mb']:,.0f}"),
        ("verdict of the run", "PASS" if figures["ok"] else "FAIL"),
    ]
    rows += [(f"  of which {name.replace('_', ' ')} (s)", f"{seconds:,.1f}")
             for name, seconds in figures["breakdown_s"].items()]
    for row in rows:
        table.add_row(*row)
    console.print(table)
