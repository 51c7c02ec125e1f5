"""The SimPy world: nodes, the network between them, timers, and the event log.

The adapter between sans-IO participants and SimPy, as small as aioquic's asyncio one: a
message is a SimPy timeout whose callback calls `node.handle(src, body, now)`; the effects it
returns are sent through the network; after every call the node's `next_deadline()` is (re)armed
as one timeout. Simulated time is integer milliseconds of Unix time (`env.now`). Ties are broken
by SimPy's schedule order, which follows from the code, so a run is deterministic.

Actors of the simulator itself (merchants' systems, users, the SMS gateway) are registered by
name prefix (`merchant:`, `user:`, `sms`) with a `receive(dst, src, body, now)` function.

Network faults are planned by `sim/network.py` and carried out here: a refusal or a reset answers
the sender with a net.error at once; the reply a node gives to a reset message is lost.

Crash and restart (`crash` faults, `add_crash_faults`): each unit of work of the node (one
`handle` or `on_timer` call) inside a crash window crashes it with the fault's probability, at
the point the fault names ("any": one of the two, drawn from the fault's stream):
- `before_commit`: the world calls `node.abort_next_unit()`, then the unit; the node rolls it back
  and returns only the effects that had already escaped, which are carried out;
- `after_commit`: the unit runs and commits; all its effects are lost with the process.
Then the node is down (event `<name>.crash`, data fault_id, point, lost_effects: the effects the
world discarded): messages to it are refused (msg.refused with the crash's fault_id), its timers
and its delayed sends that had not left are gone. After the downtime (`extra`, default
`sim.faults.CRASH_DOWNTIME_MS`) the world calls `restart(now) -> (new_node, effects)`, puts the
new node under the same name, logs `<name>.restart` and carries out the effects (the recovered
outbox), which arms the new node's timer.
"""

import random
from collections.abc import Iterable
from dataclasses import dataclass
from time import perf_counter
from urllib.parse import urlsplit

import simpy

from sim.eventlog import EventLog
from sim.faults import CRASH_DOWNTIME_MS
from sim.network import Network, Plan
from sim.rng import stream
from sim.scenario import Fault

CRASH_POINTS = ("before_commit", "after_commit")


class NodeCrash(Exception):
    """A participant raised while handling a message: a bug in the system under test."""


@dataclass(slots=True)
class _Crash:
    fault_id: int
    start_ms: int            # absolute
    end_ms: int
    probability: float
    extra: object            # Dist | None: the downtime
    point: str               # before_commit | after_commit | any
    rng: random.Random


class World:
    def __init__(self, env: simpy.Environment, network: Network, log: EventLog):
        self.env = env
        self.network = network
        self.log = log
        self.nodes: dict[str, object] = {}
        self.actors: dict[str, object] = {}     # name prefix -> receive(dst, src, body, now)
        self.hosts: dict[str, str] = {}         # URL host -> node name
        self._armed: dict[str, tuple[int, int]] = {}
        self._token = 0
        self.timeouts = 0                        # SimPy timeouts scheduled (for the benchmark)
        self.busy_s: dict[str, float] = {}       # wall seconds spent inside each node / actor kind
        self._restart: dict[str, object] = {}    # node name -> restart(now) -> (node, effects)
        self._crashes: dict[str, list[_Crash]] = {}
        self.down: dict[str, int] = {}           # node name -> fault id of the crash it is down by
        self._lives: dict[str, int] = {}         # node name -> crashes so far
        self._last_crash: dict[str, int] = {}    # node name -> fault id of its last crash

    # -- registration -------------------------------------------------------------------------

    def add(self, node, restart=None) -> None:
        """Register `node`; `restart(now_ms) -> (new_node, effects)` brings it back after a
        crash (required for a node given crash faults)."""
        self.nodes[node.name] = node
        if restart is not None:
            self._restart[node.name] = restart
        self._arm(node.name)

    def add_actor(self, prefix: str, receive) -> None:
        self.actors[prefix] = receive

    def add_crash_faults(self, name: str, faults: Iterable[Fault], start_ms: int) -> None:
        """Let the `crash` faults among `faults` (Fault windows are offsets from `start_ms`, the
        scenario start) crash node `name`; each draws from the stream `fault:<index>`."""
        crashes = [_Crash(f.index, start_ms + f.start_ms, start_ms + f.end_ms, f.probability,
                          f.extra, f.params.get("point", "any"),
                          stream(self.network.seed, f"fault:{f.index}"))
                   for f in faults if f.kind == "crash"]
        if not crashes:
            return
        if name not in self.nodes:
            raise ValueError(f"crash faults: no node named {name!r}; add it first")
        if name not in self._restart:
            raise ValueError(f"crash faults: node {name!r} was added without restart=")
        for c in crashes:
            if c.point not in (*CRASH_POINTS, "any"):
                raise ValueError(f"faults[{c.fault_id}].point: expected before_commit, "
                                 f"after_commit or any, got {c.point!r}")
        self._crashes.setdefault(name, []).extend(crashes)

    # -- time ---------------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.env.now

    def later(self, delay_ms: int, fn, *args) -> None:
        """Call `fn(*args)` after `delay_ms` of simulated time."""
        self.timeouts += 1
        self.env.timeout(delay_ms).callbacks.append(lambda _event: fn(*args))

    # -- messages -----------------------------------------------------------------------------

    def resolve(self, dst: str) -> str:
        if dst.startswith(("http://", "https://")):
            host = urlsplit(dst).hostname or ""
            return self.hosts.get(host, f"unknown:{host}")
        return dst

    def send(self, src: str, dst: str, body: dict, delay_ms: int = 0) -> None:
        if delay_ms > 0:
            if src in self._crashes:   # a crash before it leaves loses it
                self.later(delay_ms, self._transmit_from, self._lives.get(src, 0), src, dst, body)
            else:
                self.later(delay_ms, self._transmit, src, dst, body)
        else:
            self._transmit(src, dst, body)

    def _transmit_from(self, life: int, src: str, dst: str, body: dict) -> None:
        if self._lives.get(src, 0) != life:
            self.log.message(self.env.now, "msg.drop", src, self.resolve(dst), body,
                             fault_id=self._last_crash[src], extra_ms=0)
            return
        self._transmit(src, dst, body)

    def _transmit(self, src: str, dst: str, body: dict) -> None:
        now = self.env.now
        target = self.resolve(dst)
        log = self.log
        down = self.down.get(target)
        if down is not None:
            log.message(now, "msg.refused", src, target, body, fault_id=down, extra_ms=0)
            self._net_error(target, src, "refused", body, now)
            return
        plan: Plan = self.network.plan(src, target, now, body)
        for f in plan.fired:
            if f.fault_id is None:
                log.message(now, f.kind, src, target, body, buggify=f.point, extra_ms=f.extra_ms)
            else:
                log.message(now, f.kind, src, target, body, fault_id=f.fault_id,
                            extra_ms=f.extra_ms)
        if plan.error is not None:
            self._net_error(target, src, plan.error, body, now)
        for delay in plan.delays:
            self.later(delay, self._deliver, src, target, body, now, plan.reset)

    def _net_error(self, dst: str, sender: str, error: str, body: dict, now: int) -> None:
        """The sender learns at once that its message to `dst` was refused or reset."""
        self.later(0, self._deliver, dst, sender,
                   {"type": "net.error", "error": error, "request": body}, now)

    def _deliver(self, src: str, dst: str, body: dict, sent_ms: int,
                 reset: int | None = None) -> None:
        now = self.env.now
        down = self.down.get(dst)
        if down is not None:   # arrived at a crashed process: the connection is refused
            if body.get("type") == "net.error":   # no one to tell: it is lost
                self.log.message(now, "msg.drop", src, dst, body, fault_id=down, extra_ms=0)
                return
            self.log.message(now, "msg.refused", src, dst, body, fault_id=down, extra_ms=0)
            self._net_error(dst, src, "refused", body, now)
            return
        self.log.message(now, "msg.deliver", src, dst, body, sent_ms=sent_ms)
        node = self.nodes.get(dst)
        if node is None:
            prefix = dst.split(":", 1)[0]
            receive = self.actors.get(prefix)
            if receive is not None:
                started = perf_counter()
                receive(dst, src, body, now)
                self._busy(prefix, started)
            return
        self._unit(dst, src, body, reset)

    def _busy(self, name: str, started: float) -> None:
        self.busy_s[name] = self.busy_s.get(name, 0.0) + perf_counter() - started

    def _unit(self, name: str, src: str | None, body: dict | None, reset: int | None = None):
        """One unit of work of node `name`: a message from `src` (body None: its timer)."""
        now = self.env.now
        crash = self._crash_draw(name, now) if name in self._crashes else None
        node = self.nodes[name]
        if crash is not None and crash[1] == "before_commit":
            node.abort_next_unit()
        started = perf_counter()
        try:
            effects = node.handle(src, body, now) if body is not None else node.on_timer(now)
        except Exception as exc:
            where = (f"while handling {body.get('type')!r} from {src}" if body is not None
                     else "in on_timer")
            raise NodeCrash(f"{name} raised {type(exc).__name__}: {exc} {where} "
                            f"at t={now}") from exc
        self._busy(name, started)
        if crash is None:
            self.apply(name, effects, src, reset)
            return
        fault, point, downtime = crash
        lost = 0
        if point == "after_commit":
            lost, effects = len(effects), []
        self._carry_out(name, effects, src, reset)
        self._crash(name, fault, point, lost, downtime)

    def apply(self, name: str, effects: list[tuple], request_src: str | None = None,
              reset: int | None = None) -> None:
        """Carry out a node's effects, then re-arm its timer. With `reset` (a fault id) the
        message being handled was reset: its replies are lost (msg.drop)."""
        self._carry_out(name, effects, request_src, reset)
        self._arm(name)

    def _carry_out(self, name: str, effects: list[tuple], request_src: str | None,
                   reset: int | None) -> None:
        now = self.env.now
        for effect in effects:
            tag = effect[0]
            if tag == "send":
                self.send(name, effect[1], effect[2], effect[3])
            elif tag == "reply":
                if reset is not None:
                    self.log.message(now, "msg.drop", name, request_src, effect[1],
                                     fault_id=reset, extra_ms=0)
                else:
                    self.send(name, request_src, effect[1], effect[2])
            elif tag == "event":
                self.log.add(now, effect[1], effect[2], name, "", effect[3])
            else:
                raise NodeCrash(f"{name} returned an unknown effect {tag!r}")

    # -- crash and restart ----------------------------------------------------------------------

    def _crash_draw(self, name: str, now: int) -> tuple[int, str, int] | None:
        """(fault id, point, downtime) when this unit of work crashes the node, else None."""
        for c in self._crashes[name]:
            if not (c.start_ms <= now < c.end_ms) or c.rng.random() >= c.probability:
                continue
            point = c.point
            if point == "any":
                point = CRASH_POINTS[c.rng.random() < 0.5]
            downtime = c.extra.sample(c.rng) if c.extra is not None else CRASH_DOWNTIME_MS
            return c.fault_id, point, downtime
        return None

    def _crash(self, name: str, fault_id: int, point: str, lost: int, downtime: int) -> None:
        now = self.env.now
        self.down[name] = fault_id
        self._lives[name] = self._lives.get(name, 0) + 1
        self._last_crash[name] = fault_id
        self._armed.pop(name, None)      # its timers die with it
        self.log.add(now, f"{name}.crash", "", name, "",
                     {"fault_id": fault_id, "point": point, "lost_effects": lost,
                      "downtime_ms": downtime})
        self.later(downtime, self._restart_node, name, fault_id, now)

    def _restart_node(self, name: str, fault_id: int, crashed_ms: int) -> None:
        now = self.env.now
        node, effects = self._restart[name](now)
        if node.name != name:
            raise NodeCrash(f"{name}: restart returned a node named {node.name!r}")
        self.nodes[name] = node
        del self.down[name]
        self.log.add(now, f"{name}.restart", "", name, "",
                     {"fault_id": fault_id, "down_ms": now - crashed_ms,
                      "effects": len(effects)})
        self.apply(name, effects)

    # -- timers -------------------------------------------------------------------------------

    def _arm(self, name: str) -> None:
        if name in self.down:
            return
        due = self.nodes[name].next_deadline()
        if due is None:
            return
        armed = self._armed.get(name)
        if armed is not None and armed[0] <= due:
            return
        self._token += 1
        self._armed[name] = (due, self._token)
        self.later(max(0, due - self.env.now), self._fire, name, self._token)

    def _fire(self, name: str, token: int) -> None:
        armed = self._armed.get(name)
        if armed is None or armed[1] != token:
            return
        del self._armed[name]
        self._unit(name, None, None)
