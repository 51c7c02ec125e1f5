"""The SimPy world: nodes, the network between them, timers, and the event log.

The adapter between sans-IO participants and SimPy, as small as aioquic's asyncio one: a
message is a SimPy timeout whose callback calls `node.handle(src, body, now)`; the effects it
returns are sent through the network; after every call the node's `next_deadline()` is (re)armed
as one timeout. Simulated time is integer milliseconds of Unix time (`env.now`). Ties are broken
by SimPy's schedule order, which follows from the code, so a run is deterministic.

Actors of the simulator itself (merchants' systems, users, the SMS gateway) are registered by
name prefix (`merchant:`, `user:`, `sms`) with a `receive(dst, src, body, now)` function.
"""

from time import perf_counter
from urllib.parse import urlsplit

import simpy

from sim.eventlog import EventLog
from sim.network import Network


class NodeCrash(Exception):
    """A participant raised while handling a message: a bug in the system under test."""


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

    # -- registration -------------------------------------------------------------------------

    def add(self, node) -> None:
        self.nodes[node.name] = node
        self._arm(node.name)

    def add_actor(self, prefix: str, receive) -> None:
        self.actors[prefix] = receive

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
            self.later(delay_ms, self._transmit, src, dst, body)
        else:
            self._transmit(src, dst, body)

    def _transmit(self, src: str, dst: str, body: dict) -> None:
        now = self.env.now
        target = self.resolve(dst)
        delays, fired = self.network.plan(src, target, now)
        log = self.log
        for f in fired:
            log.message(now, f.kind, src, target, body, fault_id=f.fault_id, extra_ms=f.extra_ms)
        if delays is None:
            self.later(0, self._deliver, target, src,
                       {"type": "net.error", "error": "refused", "request": body}, now)
            return
        for delay in delays:
            self.later(delay, self._deliver, src, target, body, now)

    def _deliver(self, src: str, dst: str, body: dict, sent_ms: int) -> None:
        now = self.env.now
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
        started = perf_counter()
        try:
            effects = node.handle(src, body, now)
        except Exception as exc:
            raise NodeCrash(f"{dst} raised {type(exc).__name__}: {exc} while handling "
                            f"{body.get('type')!r} from {src} at t={now}") from exc
        self._busy(dst, started)
        self.apply(dst, effects, src)

    def _busy(self, name: str, started: float) -> None:
        self.busy_s[name] = self.busy_s.get(name, 0.0) + perf_counter() - started

    def apply(self, name: str, effects: list[tuple], request_src: str | None = None) -> None:
        """Carry out a node's effects, then re-arm its timer."""
        now = self.env.now
        for effect in effects:
            tag = effect[0]
            if tag == "send":
                self.send(name, effect[1], effect[2], effect[3])
            elif tag == "reply":
                self.send(name, request_src, effect[1], effect[2])
            elif tag == "event":
                self.log.add(now, effect[1], effect[2], name, "", effect[3])
            else:
                raise NodeCrash(f"{name} returned an unknown effect {tag!r}")
        self._arm(name)

    # -- timers -------------------------------------------------------------------------------

    def _arm(self, name: str) -> None:
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
        now = self.env.now
        started = perf_counter()
        try:
            effects = self.nodes[name].on_timer(now)
        except Exception as exc:
            raise NodeCrash(f"{name} raised {type(exc).__name__}: {exc} in on_timer at t={now}") from exc
        self._busy(name, started)
        self.apply(name, effects)
