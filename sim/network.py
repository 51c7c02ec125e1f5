"""The simulated network: per-direction latency and faults between nodes.

Every message crosses one directed link `src->dst`. Its delay is the link's latency (the
scenario's distribution), and the faults whose window covers the moment it leaves may act on it,
each with its probability, in Toxiproxy's vocabulary:

| kind | what happens to the message |
|---|---|
| `latency` | delivered `extra` later |
| `drop` | lost: a lost request was never seen; a lost reply leaves the sender not knowing |
| `hang` | held `extra` then delivered (no `extra`: held forever) |
| `duplicate` | delivered twice, each copy with its own latency |
| `down` | refused at once: the sender learns it could not connect |
| `merchant_down` | `down` on every link into the merchant's endpoint |

Each link and each fault draws from its own random stream, derived from the seed by name, so
adding a fault never changes the latencies of the others.
"""

from dataclasses import dataclass

from sim.rng import stream
from sim.scenario import Scenario

NETWORK_KINDS = ("latency", "drop", "hang", "duplicate", "down")


@dataclass(frozen=True, slots=True)
class Fired:
    kind: str        # event kind: msg.delay, msg.drop, msg.hang, msg.duplicate, msg.refused
    fault_id: int
    extra_ms: int = 0


@dataclass(slots=True)
class _ActiveFault:
    fault_id: int
    kind: str
    start_ms: int
    end_ms: int
    probability: float
    extra: object
    rng: object


class Network:
    def __init__(self, scenario: Scenario):
        self.seed = scenario.seed
        self.default = scenario.network.latency
        self.latency = dict(scenario.network.links)
        self._rngs: dict[str, object] = {}
        self._faults: dict[str, list[_ActiveFault]] = {}
        self._merchant_faults: list[tuple[str, _ActiveFault]] = []
        for f in scenario.faults:
            active = _ActiveFault(f.index, f.kind, scenario.start_ms + f.start_ms,
                                  scenario.start_ms + f.end_ms, f.probability, f.extra,
                                  stream(scenario.seed, f"fault:{f.index}"))
            if f.kind in NETWORK_KINDS:
                for link in f.links:
                    self._faults.setdefault(link, []).append(active)
            else:
                self._merchant_faults.append((f.target, active))

    def _rng(self, link: str):
        rng = self._rngs.get(link)
        if rng is None:
            rng = self._rngs[link] = stream(self.seed, f"latency:{link}")
        return rng

    def plan(self, src: str, dst: str, now_ms: int) -> tuple[list[int] | None, list[Fired]]:
        """Delivery delays of one message (`[]` lost, None refused) and the faults that acted."""
        link = f"{src}->{dst}"
        rng = self._rng(link)
        dist = self.latency.get(link, self.default)
        delays = [dist.sample(rng)]
        fired: list[Fired] = []
        faults = self._faults.get(link, ())
        if dst.startswith("merchant:"):
            faults = [*faults, *self.merchant_faults("merchant_down", dst, now_ms, draw=False)]
        for f in faults:
            if not (f.start_ms <= now_ms < f.end_ms) or f.rng.random() >= f.probability:
                continue
            if f.kind in ("down", "merchant_down"):
                return None, [*fired, Fired("msg.refused", f.fault_id)]
            if f.kind == "drop":
                return [], [*fired, Fired("msg.drop", f.fault_id)]
            if f.kind == "hang":
                if f.extra is None:
                    return [], [*fired, Fired("msg.hang", f.fault_id)]
                extra = f.extra.sample(f.rng)
                delays = [d + extra for d in delays]
                fired.append(Fired("msg.hang", f.fault_id, extra))
            elif f.kind == "latency":
                extra = f.extra.sample(f.rng) if f.extra is not None else 0
                delays = [d + extra for d in delays]
                fired.append(Fired("msg.delay", f.fault_id, extra))
            elif f.kind == "duplicate":
                delays.append(dist.sample(rng))
                fired.append(Fired("msg.duplicate", f.fault_id))
        return delays, fired

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
