"""The simulated network: per-direction latency and faults between nodes.

Every message crosses one directed link `src->dst`. Its delay is the link's latency (the
scenario's distribution), and the faults whose window covers the moment it leaves may act on it,
each with its probability, in Toxiproxy's vocabulary (catalogue: `sim.faults.FAULTS`):

| kind | what happens to the message | event |
|---|---|---|
| `latency` | delivered `extra` later | `msg.delay` |
| `jitter` | its latency moves by a random amount in [-x, +x], x drawn from `extra`, never below 1 ms: messages overtake each other | `msg.jitter` |
| `reorder` | held back by `extra`, so that later messages overtake it | `msg.reorder` |
| `drop` | lost: a lost request was never seen; a lost reply leaves the sender not knowing | `msg.drop` |
| `hang` | held `extra` then delivered (no `extra`: held forever) | `msg.hang` |
| `duplicate` | delivered twice, each copy with its own latency | `msg.duplicate` |
| `down` | refused at once: the sender learns it could not connect (net.error "refused") | `msg.refused` |
| `reset` | delivered, but the sender gets net.error "reset" at once and the receiver's reply to it is lost (`sim/world.py` drops it) | `msg.reset` |
| `partition` | lost, both ways between the two groups (`Fault.links`) | `msg.partition` |
| `merchant_down` | `down` on every link into the merchant's endpoint | `msg.refused` |

Every kind but `partition` takes `messages`: "all", "requests" or "replies" (a reply is a body
whose "type" ends in ".reply"); a fault never draws for a message it does not act on. Faults act
in the order the scenario declares them; a message that is refused or lost goes no further.

Each link and each fault draws from its own random stream, derived from the seed by name, so
adding a fault never changes the latencies of the other links, nor the draws of the other faults
on messages it lets through. (One exception kept for reproducing earlier runs: the second copy of
a `duplicate` takes its latency from the link's stream.)

BUGGIFY (`buggify(point) -> bool`, None = never), called once per message and point, each point
with its own stream `buggify:<point>`:
- `net.extra_delay`: the message is delivered 1 to 5 s later (event `msg.delay`, `buggify` set).
- `net.duplicate`: a second copy arrives one more latency after the first (event
  `msg.duplicate`, `buggify` set).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from sim.faults import FAULTS
from sim.rng import stream
from sim.scenario import Scenario

NETWORK_KINDS = tuple(k for k, f in FAULTS.items() if f.family == "network")
BUGGIFY_DELAY_MS = (1_000, 5_000)


@dataclass(frozen=True, slots=True)
class Fired:
    """One fault (or BUGGIFY point) that acted on a message. `kind` is the event kind
    (msg.delay, msg.jitter, msg.reorder, msg.drop, msg.hang, msg.duplicate, msg.refused,
    msg.reset, msg.partition); `extra_ms` the delay it added (signed for jitter)."""

    kind: str
    fault_id: int | None          # None: a BUGGIFY point acted (`point` names it)
    extra_ms: int = 0
    point: str = ""


@dataclass(slots=True)
class Plan:
    """What the network does with one message: deliver it after each of `delays` ([] = never
    delivered), and when `error` is set ("refused" | "reset") answer the sender at once with a
    net.error of that kind; `reset` is the id of the reset fault whose receiver's reply is lost."""

    delays: list[int]
    fired: list[Fired] = field(default_factory=list)
    error: str | None = None
    reset: int | None = None


@dataclass(slots=True)
class _ActiveFault:
    fault_id: int
    kind: str
    start_ms: int
    end_ms: int
    probability: float
    extra: object
    rng: object
    messages: str = "all"


def is_reply(body: dict) -> bool:
    return str(body.get("type", "")).endswith(".reply")


class Network:
    def __init__(self, scenario: Scenario, buggify: Callable[[str], bool] | None = None):
        self.seed = scenario.seed
        self.default = scenario.network.latency
        self.latency = dict(scenario.network.links)
        self.buggify = buggify
        self._rngs: dict[str, object] = {}
        self._faults: dict[str, list[_ActiveFault]] = {}
        self._merchant_faults: list[tuple[str, _ActiveFault]] = []
        for f in scenario.faults:
            if f.family not in ("network", "merchant"):
                continue
            active = _ActiveFault(f.index, f.kind, scenario.start_ms + f.start_ms,
                                  scenario.start_ms + f.end_ms, f.probability, f.extra,
                                  stream(scenario.seed, f"fault:{f.index}"),
                                  f.params.get("messages", "all"))
            if f.family == "network":
                for link in f.links:
                    self._faults.setdefault(link, []).append(active)
            else:
                self._merchant_faults.append((f.target, active))
        self._bug_rngs = {p: stream(self.seed, f"buggify:{p}")
                          for p in ("net.extra_delay", "net.duplicate")}

    def _rng(self, link: str):
        rng = self._rngs.get(link)
        if rng is None:
            rng = self._rngs[link] = stream(self.seed, f"latency:{link}")
        return rng

    def plan(self, src: str, dst: str, now_ms: int, body: dict | None = None) -> Plan:
        """What happens to one message from `src` to `dst` leaving at `now_ms` (`body` tells a
        reply from a request; None: a request)."""
        link = f"{src}->{dst}"
        rng = self._rng(link)
        dist = self.latency.get(link, self.default)
        plan = Plan([dist.sample(rng)])
        fired = plan.fired
        faults = self._faults.get(link, ())
        if dst.startswith("merchant:"):
            faults = [*faults, *self.merchant_faults("merchant_down", dst, now_ms, draw=False)]
        reply = body is not None and is_reply(body)
        for f in faults:
            if not (f.start_ms <= now_ms < f.end_ms):
                continue
            if f.messages != "all" and (f.messages == "replies") != reply:
                continue
            if f.rng.random() >= f.probability:
                continue
            kind = f.kind
            if kind in ("down", "merchant_down"):
                fired.append(Fired("msg.refused", f.fault_id))
                return Plan([], fired, "refused")
            if kind in ("drop", "partition"):
                fired.append(Fired(f"msg.{kind}", f.fault_id))
                plan.delays = []
                return plan
            if kind == "hang":
                if f.extra is None:
                    fired.append(Fired("msg.hang", f.fault_id))
                    plan.delays = []
                    return plan
                self._add(plan, "msg.hang", f.fault_id, f.extra.sample(f.rng))
            elif kind == "latency":
                self._add(plan, "msg.delay", f.fault_id,
                          f.extra.sample(f.rng) if f.extra is not None else 0)
            elif kind == "reorder":
                self._add(plan, "msg.reorder", f.fault_id, f.extra.sample(f.rng))
            elif kind == "jitter":
                x = f.extra.sample(f.rng)
                shift = f.rng.randint(-x, x)
                plan.delays = [max(1, d + shift) for d in plan.delays]
                fired.append(Fired("msg.jitter", f.fault_id, shift))
            elif kind == "duplicate":
                plan.delays.append(dist.sample(rng))
                fired.append(Fired("msg.duplicate", f.fault_id))
            elif kind == "reset":
                if plan.error is None:
                    plan.error, plan.reset = "reset", f.fault_id
                fired.append(Fired("msg.reset", f.fault_id))
        if self.buggify is not None:
            self._buggify(plan, dist)
        return plan

    @staticmethod
    def _add(plan: Plan, kind: str, fault_id: int | None, extra: int, point: str = "") -> None:
        plan.delays = [d + extra for d in plan.delays]
        plan.fired.append(Fired(kind, fault_id, extra, point))

    def _buggify(self, plan: Plan, dist) -> None:
        if self.buggify("net.extra_delay"):
            extra = self._bug_rngs["net.extra_delay"].randint(*BUGGIFY_DELAY_MS)
            self._add(plan, "msg.delay", None, extra, "net.extra_delay")
        if self.buggify("net.duplicate") and plan.delays:
            plan.delays.append(plan.delays[0] + dist.sample(self._bug_rngs["net.duplicate"]))
            plan.fired.append(Fired("msg.duplicate", None, 0, "net.duplicate"))

    def merchant_faults(self, kind: str, merchant: str, now_ms: int, draw: bool = True) -> list:
        """The faults of `kind` acting now on `merchant`'s endpoint (drawn when `draw`)."""
        hits = []
        for target, f in self._merchant_faults:
            if f.kind != kind or target not in (merchant, "merchant:*"):
                continue
            if not f.start_ms <= now_ms < f.end_ms:
                continue
            if draw and f.rng.random() >= f.probability:
                continue
            hits.append(f)
        return hits
