"""Channel routing (支付路由): which channel executes a payment, and which channels are healthy.

- `ChannelInfo`: what routing knows of a channel (products, currencies, limits, fee, priority).
- `ChannelHealth`: a circuit breaker per channel, as a transition table (`BREAKER`):
  closed --failure_threshold consecutive failures--> open --cooldown_ms--> half_open;
  half_open lets ONE trial request through: success -> closed, failure -> open again.
  Results arriving while open (late replies to requests sent before it opened) are ignored.
  A trial whose result never comes is given up after another cooldown, and a new trial allowed.
- `Policy`: ranks the eligible candidates; `POLICIES` maps a scenario's policy name to a factory,
  so success-rate or bandit policies are added there without touching callers. A policy also
  receives each channel outcome through `observe` (no-op for the static ones).
- `Router.route(product, amount, currency, now_ms)` filters by product, currency, amount limits,
  maintenance windows known in advance, the daily limit and availability, ranks with the policy,
  takes the first, and reports every rejected channel with the reason.
  `Router.record(channel_id, ok, now_ms)` feeds the breaker and the policy.
- Management data (the channel contract): `ChannelInfo.daily_limit` (0: none) caps the total of
  the channel's payments of one local day (UTC+8) that succeeded or may still succeed, as the
  router's `usage(channel_id, since_ms)` reports it (the store's `routed_since`: durable, so a
  restarted node agrees); `ChannelInfo.windows` are the maintenance windows `[start, end)` the
  channel announced: no payment is routed there during one. `ChannelInfo.of(config)` builds one
  from a `config.ChannelConfig`.

Priority: a LOWER number is preferred (1 before 2). Ties are broken by channel id.
What counts as a failure for the breaker is the caller's decision: technical failures (timeout,
refused, SYSTEM_BUSY, PROCESSING_ERROR), not business declines such as INSUFFICIENT_FUNDS.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from paysys.days import day_of, day_start
from paysys.money import FeeRule


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel as routing sees it. `max_amount` 0 means no upper limit; an empty
    `currencies` means any currency."""

    id: str
    kind: str
    products: tuple[str, ...]
    priority: int
    fee: FeeRule
    min_amount: int = 1
    max_amount: int = 0
    currencies: tuple[str, ...] = ()
    daily_limit: int = 0                         # 0: no daily limit
    windows: tuple[tuple[int, int], ...] = ()    # announced maintenance [start_ms, end_ms)

    def __post_init__(self) -> None:
        if not isinstance(self.products, tuple) or not isinstance(self.currencies, tuple):
            raise ValueError(f"channel {self.id}: products and currencies must be tuples")
        if self.min_amount < 0 or self.max_amount < 0:
            raise ValueError(f"channel {self.id}: min_amount/max_amount must be >= 0")
        if self.max_amount and self.max_amount < self.min_amount:
            raise ValueError(
                f"channel {self.id}: max_amount {self.max_amount} < min_amount {self.min_amount}"
            )
        if self.daily_limit < 0:
            raise ValueError(f"channel {self.id}: daily_limit must be >= 0, got {self.daily_limit}")
        for start, end in self.windows:
            if end <= start:
                raise ValueError(f"channel {self.id}: maintenance window ends ({end}) before it "
                                 f"starts ({start})")

    @classmethod
    def of(cls, c) -> "ChannelInfo":
        """The routing view of a `config.ChannelConfig`."""
        return cls(c.id, c.kind, tuple(c.products), c.priority, c.fee, c.min_amount, c.max_amount,
                   daily_limit=getattr(c, "daily_limit", 0),
                   windows=tuple(tuple(w) for w in getattr(c, "maintenance", ())))

    def in_maintenance(self, now_ms: int) -> tuple[int, int] | None:
        """The announced maintenance window `now_ms` falls in, or None."""
        for start, end in self.windows:
            if start <= now_ms < end:
                return start, end
        return None

    def why_not(self, product: str, amount: int, currency: str) -> str | None:
        """Why this channel cannot take the payment (static reasons), or None."""
        if product not in self.products:
            return f"product {product} not offered"
        if self.currencies and currency not in self.currencies:
            return f"currency {currency} not accepted"
        if amount < self.min_amount:
            return f"amount {amount} < min_amount {self.min_amount}"
        if self.max_amount and amount > self.max_amount:
            return f"amount {amount} > max_amount {self.max_amount}"
        return None


# ---------------------------------------------------------------- circuit breaker

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# state -> event -> new state. "trip": a failure that reaches failure_threshold.
BREAKER: dict[str, dict[str, str]] = {
    CLOSED: {"success": CLOSED, "failure": CLOSED, "trip": OPEN},
    OPEN: {"success": OPEN, "failure": OPEN, "cooldown_over": HALF_OPEN},
    HALF_OPEN: {"success": CLOSED, "failure": OPEN, "trip": OPEN},
}


@dataclass(slots=True)
class _Breaker:
    state: str = CLOSED
    failures: int = 0
    opened_ms: int = 0
    trial_ms: int | None = None


class ChannelHealth:
    """Circuit breaker per channel id; unknown channels are healthy (closed)."""

    def __init__(self, failure_threshold: int = 5, cooldown_ms: int = 60_000) -> None:
        if failure_threshold < 1 or cooldown_ms < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_ms >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown_ms = cooldown_ms
        self._breakers: dict[str, _Breaker] = {}

    def _fire(self, breaker: _Breaker, event: str, now_ms: int) -> None:
        new = BREAKER[breaker.state][event]
        if new == OPEN and breaker.state != OPEN:
            breaker.opened_ms = now_ms
        if new != HALF_OPEN:
            breaker.trial_ms = None
        if new == CLOSED and event == "success":
            breaker.failures = 0
        breaker.state = new

    def _breaker(self, channel_id: str, now_ms: int) -> _Breaker:
        breaker = self._breakers.setdefault(channel_id, _Breaker())
        if breaker.state == OPEN and now_ms >= breaker.opened_ms + self.cooldown_ms:
            self._fire(breaker, "cooldown_over", now_ms)
        return breaker

    def state(self, channel_id: str, now_ms: int) -> str:
        return self._breaker(channel_id, now_ms).state

    def available(self, channel_id: str, now_ms: int) -> bool:
        """May a request be sent now? Closed: yes; open: no; half-open: only if no trial is
        in flight (or the last trial got no result within a cooldown). Does not change state."""
        breaker = self._breaker(channel_id, now_ms)
        if breaker.state == CLOSED:
            return True
        if breaker.state == OPEN:
            return False
        return breaker.trial_ms is None or now_ms >= breaker.trial_ms + self.cooldown_ms

    def acquire(self, channel_id: str, now_ms: int) -> None:
        """A request is being sent to the channel: in half-open it is the one trial."""
        breaker = self._breaker(channel_id, now_ms)
        if breaker.state == HALF_OPEN:
            breaker.trial_ms = now_ms

    def record(self, channel_id: str, ok: bool, now_ms: int) -> None:
        """The outcome of one request to the channel."""
        breaker = self._breaker(channel_id, now_ms)
        if ok:
            self._fire(breaker, "success", now_ms)
            return
        if breaker.state == OPEN:
            return  # late failure of a request sent before the breaker opened
        breaker.failures += 1
        trip = breaker.state == HALF_OPEN or breaker.failures >= self.failure_threshold
        self._fire(breaker, "trip" if trip else "failure", now_ms)


# ---------------------------------------------------------------- policies


class Policy(Protocol):
    name: str

    def rank(self, candidates: list[ChannelInfo], amount: int, now_ms: int) -> list[ChannelInfo]:
        """The candidates, best first."""
        ...

    def observe(self, channel_id: str, ok: bool, now_ms: int) -> None:
        """One outcome of a request to `channel_id` (for learning policies)."""
        ...


class PriorityPolicy:
    """The configured priority (lower first), then channel id."""

    name = "priority"

    def rank(self, candidates: list[ChannelInfo], amount: int, now_ms: int) -> list[ChannelInfo]:
        return sorted(candidates, key=lambda c: (c.priority, c.id))

    def observe(self, channel_id: str, ok: bool, now_ms: int) -> None:
        pass


class LowestCostPolicy:
    """The lowest channel fee for this amount, then priority, then channel id."""

    name = "lowest_cost"

    def rank(self, candidates: list[ChannelInfo], amount: int, now_ms: int) -> list[ChannelInfo]:
        return sorted(candidates, key=lambda c: (c.fee.fee(amount), c.priority, c.id))

    def observe(self, channel_id: str, ok: bool, now_ms: int) -> None:
        pass


POLICIES: dict[str, Callable[..., Policy]] = {
    "priority": PriorityPolicy,
    "lowest_cost": LowestCostPolicy,
}


# ---------------------------------------------------------------- router


@dataclass(frozen=True, slots=True)
class RouteDecision:
    channel_id: str | None
    reason: str
    rejected: tuple[tuple[str, str], ...] = ()

    def event_data(self) -> dict:
        """The data of the `route.decision` event (docs/run-database.md)."""
        return {
            "channel": self.channel_id,
            "reason": self.reason,
            "rejected": [list(item) for item in self.rejected],
        }


class Router:
    def __init__(
        self,
        channels: list[ChannelInfo],
        policy_name: str,
        health: ChannelHealth,
        usage: Callable[[str, int], int] | None = None,
        **policy_options: object,
    ) -> None:
        factory = POLICIES.get(policy_name)
        if factory is None:
            raise ValueError(f"policy: expected one of {sorted(POLICIES)}, got {policy_name!r}")
        ids = [channel.id for channel in channels]
        if len(set(ids)) != len(ids):
            raise ValueError(f"channels: duplicate channel ids in {ids}")
        self.channels = list(channels)
        self.policy_name = policy_name
        self.policy: Policy = factory(**policy_options)
        self.health = health
        self.usage = usage    # (channel_id, since_ms) -> amount routed there since, still alive

    def _why_not_now(self, channel: ChannelInfo, amount: int, now_ms: int) -> str | None:
        """Management reasons of the moment: a maintenance window, the daily limit."""
        window = channel.in_maintenance(now_ms)
        if window is not None:
            return f"maintenance window until {window[1]}"
        if channel.daily_limit:
            if self.usage is None:
                raise ValueError(f"channel {channel.id}: a daily_limit needs the router's usage")
            used = self.usage(channel.id, day_start(day_of(now_ms)))
            if used + amount > channel.daily_limit:
                return f"daily limit {channel.daily_limit} reached ({used} used today)"
        return None

    def route(self, product: str, amount: int, currency: str, now_ms: int,
              exclude: tuple[str, ...] = ()) -> RouteDecision:
        """Choose a channel (and take the breaker's trial if it is half-open) or NO_ROUTE;
        channels in `exclude` are not considered (a failover away from them)."""
        candidates: list[ChannelInfo] = []
        rejected: list[tuple[str, str]] = []
        for channel in self.channels:
            why = "excluded" if channel.id in exclude else channel.why_not(product, amount, currency)
            if why is None:
                why = self._why_not_now(channel, amount, now_ms)
            if why is None and not self.health.available(channel.id, now_ms):
                why = f"unavailable (circuit {self.health.state(channel.id, now_ms)})"
            if why is None:
                candidates.append(channel)
            else:
                rejected.append((channel.id, why))
        if not candidates:
            return RouteDecision(None, "NO_ROUTE", tuple(rejected))
        chosen = self.policy.rank(candidates, amount, now_ms)[0]
        self.health.acquire(chosen.id, now_ms)
        return RouteDecision(chosen.id, self.policy_name, tuple(rejected))

    def record(self, channel_id: str, ok: bool, now_ms: int) -> None:
        """One outcome of a request to a channel: feeds the breaker and the policy."""
        self.health.record(channel_id, ok, now_ms)
        self.policy.observe(channel_id, ok, now_ms)
