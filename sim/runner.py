"""One run of a scenario: build the world, simulate it, write the run database, verify it.

    result = run(scenario, db_path)          # -> RunResult (its .summary is the --json object)

The run database (docs/run-database.md) receives the payment system's tables as it runs, then
the event log, the fault windows, the mocks' ground truth and the oracle's verdict.
"""

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import simpy

from mockbanks.faults import ChannelFault
from mockbanks.fees import Fee
from paysys.config import BackOffice, ChannelConfig, PaySysConfig, SettlementRule
from paysys.engine import PaySys
from paysys.gateway import App, Merchant
from paysys.money import FeeRule
from paysys.risk import RiskRules
from paysys.store import open_store
from sim import metrics, oracle, population
from sim.actors import Actors
from sim.buggify import Buggify
from sim.eventlog import EventLog
from sim.journeys import JOURNEYS
from sim.kinds import KINDS
from sim.kinds.base import Build
from sim.network import Network
from sim.rng import stream
from sim.scenario import Scenario
from sim.traffic import Traffic
from sim.world import World

PROGRESS_STEPS = 200
DRAIN_EVENTS = 200_000    # events kept in memory before they are written to the run database


@dataclass
class RunResult:
    scenario: Scenario
    db_path: str
    digest: str
    verdict: oracle.Verdict
    wall_s: float
    payments: int
    timeouts: int
    summary: dict


def paysys_config(scenario: Scenario, merchants: list[population.MerchantKeys]) -> PaySysConfig:
    """The payment system's configuration, as the scenario declares it."""
    return PaySysConfig(
        merchants=tuple(
            Merchant(m.merchant_id, m.secret, m.sign_type, scenario.merchants.fee_rate_bp, "active",
                     tuple(App(a.app_id, a.secret, a.sign_type, a.fee_rate_bp, a.name)
                           for a in m.apps))
            for m in merchants
        ),
        channels=tuple(
            ChannelConfig(c.id, c.kind, c.products, c.priority,
                          FeeRule(*_fee_fields(c.booked_fee or c.fee)),
                          c.min_amount, c.max_amount, c.timeout_ms, c.api_key, dict(c.options),
                          c.daily_limit, c.maintenance)
            for c in scenario.channels
        ),
        risk=RiskRules(scenario.risk.max_amount, scenario.risk.challenge_amount,
                       scenario.risk.velocity_window_ms, scenario.risk.velocity_max),
        routing_policy=scenario.routing.policy,
        notify_schedule_ms=scenario.notifications.schedule_ms,
        flaws=frozenset(scenario.paysys.flaws),
        partial_payment=scenario.paysys.partial_payment,
        late_success=scenario.paysys.late_success,
        # a crash loses what is not committed: with crashes, every unit of work commits
        commit_every=1 if any(f.kind == "crash" for f in scenario.faults) else 500,
        backoffice=backoffice(scenario),
        products=product_settings(scenario),
    )


def product_settings(scenario: Scenario) -> dict:
    """The settings of each product family of the traffic, as its journey builds them from the
    scenario's `[products.<name>]` table (or from nothing, when it has none)."""
    out = {}
    for name, journey in JOURNEYS.items():
        if journey.paysys is not None and (name in scenario.traffic.products
                                           or name in scenario.products):
            out[name] = journey.paysys(scenario.products.get(name))
    return out


def _fee_fields(fee) -> tuple[int, int, int, int]:
    return fee.rate_bp, fee.fixed, fee.minimum, fee.maximum


def backoffice(scenario: Scenario) -> BackOffice:
    """The payment system's calendar jobs, as the scenario's [recon] and [settlement] say."""
    r, s = scenario.recon, scenario.settlement
    options: dict = {}
    if r is not None:
        options.update(recon=True, recon_time_ms=r.time_ms, recon_retry_ms=r.retry_ms,
                       late_after_ms=r.late_after_ms, give_up_ms=r.give_up_ms, carry=r.carry,
                       fees=r.fees)
    if s is not None:
        def rule(m) -> SettlementRule:
            return SettlementRule(m.cycle, m.min_amount, m.splits)
        options.update(settlement=True, settle_time_ms=s.time_ms,
                       same_day_time_ms=s.same_day_time_ms, payout_channel=s.payout_channel,
                       reserve=s.reserve, position_floor=s.position_floor,
                       default_rule=rule(s.default),
                       rules={m: rule(x) for m, x in s.merchants.items()})
    return BackOffice(**options)


def _channel_faults(scenario: Scenario, channel_id: str) -> list[ChannelFault]:
    """The scenario's channel faults aimed at `channel_id`, as the mock takes them."""
    return [ChannelFault(f.index, f.kind, scenario.start_ms + f.start_ms,
                         scenario.start_ms + f.end_ms, f.probability, f.params,
                         f.extra.sample if f.extra is not None else None)
            for f in scenario.faults
            if f.family in ("channel", "statement") and f.target == channel_id]


def _channel_node(scenario: Scenario, channel, users: list[population.User], buggify):
    """The mock of `channel`, as its kind (sim/kinds/) builds it."""
    return KINDS[channel.kind].build(Build(
        scenario=scenario, channel=channel, users=users,
        rng=stream(scenario.seed, f"node:{channel.id}"), fee=Fee(*_fee_fields(channel.fee)),
        faults=_channel_faults(scenario, channel.id), buggify=buggify,
        currency=scenario.traffic.currency))


class Simulation:
    """A built world, ready to run: the nodes, the actors, the traffic."""

    def __init__(self, scenario: Scenario, conn: sqlite3.Connection, log: EventLog | None = None):
        self.scenario = scenario
        self.conn = conn
        self.log = log or EventLog()
        self.env = simpy.Environment(initial_time=scenario.start_ms)
        self.buggify = Buggify(scenario.seed) if scenario.buggify else None
        self.world = World(self.env, Network(scenario, buggify=self.buggify), self.log)
        users = population.users(scenario)
        merchants = population.merchants(scenario)
        self.config = paysys_config(scenario, merchants)
        self.restarts = 0
        self.paysys = PaySys(conn, self.config, stream(scenario.seed, "node:paysys"))
        self.world.add(self.paysys, restart=self._restart)
        self.world.add_crash_faults("paysys", scenario.faults, scenario.start_ms)
        self.channels = [_channel_node(scenario, c, users, self.buggify)
                         for c in scenario.channels]
        for node in self.channels:
            self.world.add(node)
        self.actors = Actors(self.world, scenario, users, merchants)
        self.traffic = Traffic(self.world, scenario, self.actors.start_payment)
        for f in scenario.faults:
            start, end = scenario.start_ms + f.start_ms, scenario.start_ms + f.end_ms
            data = {"kind": f.kind, "target": f.target, "probability": f.probability}
            self.world.later(f.start_ms, self.log.add, start, "fault.start", str(f.index), "", f.target, data)
            self.world.later(f.end_ms, self.log.add, end, "fault.end", str(f.index), "", f.target, data)

    def _restart(self, now_ms: int):
        """A new payment-system process on the same database, after a crash: its memory is
        rebuilt from what was committed."""
        self.restarts += 1
        rng = stream(self.scenario.seed, f"node:paysys:restart:{self.restarts}")
        self.paysys = PaySys(self.conn, self.config, rng)
        return self.paysys, self.paysys.recover(now_ms)

    def run(self, progress=None) -> None:
        start, end = self.scenario.start_ms, self.scenario.end_ms
        step = max(1, (end - start) // PROGRESS_STEPS)
        t = start
        while t < end:
            t = min(end, t + step)
            self.env.run(until=t)
            if len(self.log.rows) >= DRAIN_EVENTS:
                self.paysys.flush()
                self.log.drain(self.conn)
            if progress:
                progress(t - start, end - start)


def _write_world(sim: Simulation, conn: sqlite3.Connection) -> str:
    sc = sim.scenario
    digest = sim.log.write(conn)
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE IF NOT EXISTS faults (fault_id INTEGER PRIMARY KEY, kind TEXT, "
                 "target TEXT, start_ms INTEGER, end_ms INTEGER, probability REAL, params TEXT)")
    conn.executemany("INSERT INTO faults VALUES (?,?,?,?,?,?,?)", [
        (f.index, f.kind, f.target, sc.start_ms + f.start_ms, sc.start_ms + f.end_ms, f.probability,
         json.dumps({"extra": f.extra.as_toml()} if f.extra else {}))
        for f in sc.faults
    ])
    conn.execute("CREATE TABLE IF NOT EXISTS truth_accounts (node TEXT, account TEXT, currency TEXT, "
                 "initial INTEGER, balance INTEGER, PRIMARY KEY (node, account, currency))")
    conn.execute("CREATE TABLE IF NOT EXISTS truth_txns (node TEXT, ref TEXT, channel_ref TEXT, "
                 "kind TEXT, amount INTEGER, fee INTEGER, currency TEXT, status TEXT, at_ms INTEGER)")
    for node in sim.channels:
        conn.executemany("INSERT INTO truth_accounts VALUES (?,?,?,?,?)", [
            (node.name, a["account"], a["currency"], a["initial"], a["balance"])
            for a in node.truth.accounts()
        ])
        conn.executemany("INSERT INTO truth_txns VALUES (?,?,?,?,?,?,?,?,?)", [
            (node.name, t["ref"], t["channel_ref"], t["kind"], t["amount"], t["fee"], t["currency"],
             t["status"], t["at_ms"])
            for t in node.truth.txns()
        ])
    conn.execute("CREATE INDEX IF NOT EXISTS truth_txns_ref ON truth_txns(ref)")
    conn.execute("CREATE TABLE IF NOT EXISTS stmt_injected (node TEXT, fault_id INTEGER, kind TEXT, "
                 "channel TEXT, date TEXT, cls TEXT, key TEXT, ref TEXT, detail TEXT)")
    conn.executemany("INSERT INTO stmt_injected VALUES (?,?,?,?,?,?,?,?,?)", [
        (node.name, x["fault_id"], x["kind"], x["channel"], x["date"], x["cls"], x["key"], x["ref"],
         json.dumps(x["detail"], sort_keys=True))
        for node in sim.channels for x in node.statement_log
    ])
    conn.execute("COMMIT")
    return digest


def _write_run_table(conn: sqlite3.Connection, values: dict) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("BEGIN")
    conn.executemany("INSERT OR REPLACE INTO run VALUES (?,?)", [(k, str(v)) for k, v in values.items()])
    conn.execute("COMMIT")


def _counts(conn: sqlite3.Connection, table: str) -> dict:
    rows = conn.execute(f"SELECT status, COUNT(*) FROM {table} GROUP BY status ORDER BY status").fetchall()
    return {"total": sum(n for _, n in rows), "by_status": dict(rows)}


def paysim_version() -> str:
    try:
        return version("paysim")
    except PackageNotFoundError:
        return "unknown"


def run(scenario: Scenario, db_path: str, progress=None, log: EventLog | None = None) -> RunResult:
    """Simulate `scenario` into a fresh run database at `db_path` and verify it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    wall = time.perf_counter()
    conn = open_store(db_path)
    try:
        sim = Simulation(scenario, conn, log)
        built = time.perf_counter()
        sim.run(progress)
        sim.paysys.flush()
        simulated = time.perf_counter()
        digest = _write_world(sim, conn)
        written = time.perf_counter()
        verdict = oracle.verify(conn, scenario)
        oracle.write(conn, verdict)
        wall_s = time.perf_counter() - wall
        timing = {
            "build_s": round(built - wall, 3), "simulate_s": round(simulated - built, 3),
            "write_s": round(written - simulated, 3),
            "verify_s": round(wall - written + wall_s, 3),
            "inside_nodes_s": {name: round(s, 3) for name, s in sorted(sim.world.busy_s.items())},
        }
        _write_run_table(conn, {
            "scenario": scenario.name, "scenario_file": scenario.path, "seed": scenario.seed,
            "digest": digest, "start_ms": scenario.start_ms, "traffic_end_ms": scenario.traffic_end_ms,
            "faults_end_ms": scenario.faults_end_ms, "end_ms": scenario.end_ms,
            "ok": int(verdict.ok), "wall_s": round(wall_s, 3), "paysim_version": paysim_version(),
            "description": scenario.description,
        })
        payments = _counts(conn, "pay_orders")
        summary = {
            "scenario": scenario.name,
            "file": scenario.path,
            "seed": scenario.seed,
            "digest": digest,
            "ok": verdict.ok,
            "payments": payments,
            "refunds": _counts(conn, "refund_orders"),
            "invariants": {
                name: {"ok": r.ok, "violations": r.violations, "first": r.first, "last": r.last,
                       "worst": r.worst, "refs": r.refs}
                for name, r in verdict.invariants.items()
            },
            "expectations": [{"name": e.name, "ok": e.ok, "detail": e.detail} for e in verdict.expectations],
            "metrics": verdict.metrics,
            "recon": metrics.recon_summary(conn),
            "db": db_path,
            "wall_s": round(wall_s, 3),
            "simulated_s": (scenario.end_ms - scenario.start_ms) // 1000,
            "timing": timing,
        }
        return RunResult(scenario, db_path, digest, verdict, wall_s, payments["total"],
                         sim.world.timeouts, summary)
    finally:
        conn.close()
