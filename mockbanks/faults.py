"""Channel faults inside the mocks: when a bank's or platform's own fault window is on.

Owns `ChannelFault` (one fault window in absolute ms, as the runner hands it to a mock) and
`ChannelFaults`, the small helper a mock asks "does fault kind K act on this request now?".
The catalogue of kinds and their meaning is `sim/faults.py` (families "channel" and "statement");
this module does not import it (mocks never import `sim`): each mock names the kinds it supports
and refuses others.

Determinism. Each fault draws from its own `random.Random`, seeded from the node's stream once at
construction, in the order the faults are given; so adding a fault never shifts the draws of the
others, and a mock built without faults draws nothing at all (golden runs unchanged). A fault acts
when its window covers `now` (`start_ms <= now < end_ms`) and a draw from its stream is below its
`probability` (the draw is made only inside the window).

`fired(fault, ref, **data)` builds the `("event", "fault.fired", ref, {...})` effect every acting
fault publishes (ref = the paysys order/refund id of the request) so the run proves the fault
really happened.
"""

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# the kinds a mock may be given (sim/faults.py, family "channel"), and which need a delay
# (family "statement": the stmt_* kinds act on statement files, see mockbanks/statements.py)
STMT_KINDS = ("stmt_missing_row", "stmt_extra_row", "stmt_amount", "stmt_status", "stmt_fee",
              "stmt_currency", "stmt_next_day", "stmt_late", "stmt_none", "stmt_malformed")
KINDS = ("maintenance", "rate_limit", "cutoff", "notify_late", "notify_lost", "notify_duplicate",
         "amount_mismatch", "double_charge", "pay_after_close", *STMT_KINDS)
NEEDS_DELAY = ("notify_late",)


@dataclass(frozen=True)
class ChannelFault:
    """One channel fault window; `start_ms`/`end_ms` are absolute ms (end excluded)."""

    fault_id: int
    kind: str
    start_ms: int
    end_ms: int
    probability: float
    params: dict = field(default_factory=dict)
    delay: Callable[[random.Random], int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("fault_id", "start_ms", "end_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: expected an integer, got {value!r}")
        if self.end_ms < self.start_ms:
            raise ValueError(f"end_ms: {self.end_ms} is before start_ms {self.start_ms}")
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"probability: expected a number in [0, 1], got {p!r}")
        if self.kind in NEEDS_DELAY and self.delay is None:
            raise ValueError(f"delay: fault {self.fault_id} ({self.kind}) needs a delay")

    def covers(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms < self.end_ms


class ChannelFaults:
    """The faults of one mock, each with its own random stream."""

    def __init__(self, faults: Iterable[ChannelFault], rng: random.Random,
                 supported: Sequence[str] = KINDS, owner: str = "channel") -> None:
        self.faults = tuple(faults)
        for f in self.faults:
            if not isinstance(f, ChannelFault):
                raise ValueError(f"faults: expected ChannelFault items, got {type(f).__name__}")
            if f.kind not in supported:
                raise ValueError(f"faults: {owner} does not support fault kind {f.kind!r} "
                                 f"(fault {f.fault_id}); it supports {', '.join(supported)}")
        # one stream per fault, seeded in order (nothing is drawn when there is no fault)
        self._rngs = {f.fault_id: random.Random(rng.getrandbits(64)) for f in self.faults}
        self._kinds = frozenset(f.kind for f in self.faults)
        self._counts: dict[int, tuple[int, int]] = {}    # rate_limit: fault_id -> (second, accepted)

    def __bool__(self) -> bool:
        return bool(self.faults)

    def has(self, kind: str) -> bool:
        """Whether any fault of `kind` was given (cheap: no draw)."""
        return kind in self._kinds

    def rng(self, fault: ChannelFault) -> random.Random:
        """The fault's own stream (for its delays and choices)."""
        return self._rngs[fault.fault_id]

    def acting(self, kind: str, now_ms: int) -> ChannelFault | None:
        """The first fault of `kind` whose window covers `now_ms` and whose draw succeeds."""
        if kind not in self._kinds:
            return None
        for f in self.faults:
            if f.kind == kind and f.covers(now_ms) and self._draw(f):
                return f
        return None

    def limited(self, now_ms: int) -> ChannelFault | None:
        """rate_limit: the fault refusing a request arriving at `now_ms`, or None (then the request
        counts against every rate_limit window that covers it). At most `max_per_s` requests are
        accepted within one wall second [k*1000, (k+1)*1000); a request beyond is refused with the
        fault's probability (a request let through counts as accepted)."""
        if "rate_limit" not in self._kinds:
            return None
        second = now_ms // 1000
        covering = [f for f in self.faults if f.kind == "rate_limit" and f.covers(now_ms)]
        for f in covering:
            at, accepted = self._counts.get(f.fault_id, (second, 0))
            if at == second and accepted >= int(f.params.get("max_per_s", 5)) and self._draw(f):
                return f
        for f in covering:
            at, accepted = self._counts.get(f.fault_id, (second, 0))
            self._counts[f.fault_id] = (second, accepted + 1 if at == second else 1)
        return None

    def delay(self, fault: ChannelFault) -> int:
        """A draw of the fault's delay (ms, >= 0) from its own stream; 0 without a delay."""
        if fault.delay is None:
            return 0
        return max(0, int(fault.delay(self._rngs[fault.fault_id])))

    def randint(self, fault: ChannelFault, low: int, high: int) -> int:
        return self._rngs[fault.fault_id].randint(low, high)

    def _draw(self, fault: ChannelFault) -> bool:
        return self._rngs[fault.fault_id].random() < fault.probability

    @staticmethod
    def fired(fault: ChannelFault, ref: str, **data) -> tuple:
        """The event effect of `fault` acting on the request of paysys id `ref`."""
        return ("event", "fault.fired", ref, {"fault_id": fault.fault_id, "kind": fault.kind,
                                              **data})


def buggify_never(point: str) -> bool:
    """The BUGGIFY callable of a run without BUGGIFY."""
    return False
