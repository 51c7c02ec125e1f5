"""Risk assessment of a payment (风控): PASS, CHALLENGE (SMS OTP) or BLOCK, and the OTP itself.

The rules are an ordered table `RULES` of (name, outcome, predicate); the first predicate that
holds decides, otherwise PASS (rule "none"):
  blocked_user, blocked_device          -> BLOCK  (lists)
  max_amount                            -> BLOCK  (amount > max_amount)
  velocity_user, velocity_device        -> BLOCK  (velocity_max payments already in the window)
  challenge_amount                      -> CHALLENGE (amount >= challenge_amount)
A limit of 0 disables its rule. Velocity is a sliding window in memory per user and per device:
it counts the assessed payments that were not blocked (PASS or CHALLENGE) whose time is within
(now - velocity_window_ms, now]. A blocked attempt does not count, so a user who keeps being
blocked is not locked out for longer than the window. The memory is not persisted: after a
restart the window starts empty.
"""

import hmac
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RiskRules:
    max_amount: int
    challenge_amount: int
    velocity_window_ms: int
    velocity_max: int
    blocked_users: tuple[str, ...] = ()
    blocked_devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_amount", "challenge_amount", "velocity_window_ms", "velocity_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an integer >= 0 (0 = off), got {value!r}")


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # "PASS" | "CHALLENGE" | "BLOCK"
    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class Payment:
    """What a rule sees: the payment and the recent non-blocked counts of its user and device."""

    user_id: str
    device_id: str | None
    amount: int
    user_recent: int
    device_recent: int


Predicate = Callable[[RiskRules, Payment], str | None]  # a detail when the rule fires, else None


def _blocked_user(rules: RiskRules, p: Payment) -> str | None:
    return f"user {p.user_id} is blocklisted" if p.user_id in rules.blocked_users else None


def _blocked_device(rules: RiskRules, p: Payment) -> str | None:
    if p.device_id is not None and p.device_id in rules.blocked_devices:
        return f"device {p.device_id} is blocklisted"
    return None


def _max_amount(rules: RiskRules, p: Payment) -> str | None:
    if rules.max_amount and p.amount > rules.max_amount:
        return f"amount {p.amount} > max_amount {rules.max_amount}"
    return None


def _velocity(count: int, who: str, rules: RiskRules) -> str | None:
    if rules.velocity_max and count >= rules.velocity_max:
        return (
            f"{who} has {count} payments within {rules.velocity_window_ms} ms "
            f"(velocity_max {rules.velocity_max})"
        )
    return None


def _velocity_user(rules: RiskRules, p: Payment) -> str | None:
    return _velocity(p.user_recent, f"user {p.user_id}", rules)


def _velocity_device(rules: RiskRules, p: Payment) -> str | None:
    if p.device_id is None:
        return None
    return _velocity(p.device_recent, f"device {p.device_id}", rules)


def _challenge_amount(rules: RiskRules, p: Payment) -> str | None:
    if rules.challenge_amount and p.amount >= rules.challenge_amount:
        return f"amount {p.amount} >= challenge_amount {rules.challenge_amount}"
    return None


RULES: tuple[tuple[str, str, Predicate], ...] = (
    ("blocked_user", "BLOCK", _blocked_user),
    ("blocked_device", "BLOCK", _blocked_device),
    ("max_amount", "BLOCK", _max_amount),
    ("velocity_user", "BLOCK", _velocity_user),
    ("velocity_device", "BLOCK", _velocity_device),
    ("challenge_amount", "CHALLENGE", _challenge_amount),
)

PASS = Decision("PASS", "none", "no rule matched")


def check_otp(expected: str, given: object) -> bool:
    """True if `given` is exactly `expected`, compared in constant time."""
    if not isinstance(expected, str) or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class Risk:
    def __init__(self, rules: RiskRules, rng: random.Random) -> None:
        self.rules = rules
        self.rng = rng
        self._by_user: dict[str, deque[int]] = {}
        self._by_device: dict[str, deque[int]] = {}

    check_otp = staticmethod(check_otp)

    def _recent(self, table: dict[str, deque[int]], key: str | None, now_ms: int) -> int:
        if key is None or key not in table:
            return 0
        times = table[key]
        horizon = now_ms - self.rules.velocity_window_ms
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del table[key]
            return 0
        return len(times)

    def assess(self, user_id: str, device_id: str | None, amount: int, now_ms: int) -> Decision:
        """Decide on one payment attempt and, unless blocked, count it for velocity.
        A missing device (None or "") skips the device rules."""
        device_id = device_id or None
        payment = Payment(
            user_id,
            device_id,
            amount,
            self._recent(self._by_user, user_id, now_ms),
            self._recent(self._by_device, device_id, now_ms),
        )
        decision = PASS
        for name, outcome, predicate in RULES:
            detail = predicate(self.rules, payment)
            if detail is not None:
                decision = Decision(outcome, name, detail)
                break
        if decision.outcome != "BLOCK":
            self._by_user.setdefault(user_id, deque()).append(now_ms)
            if device_id is not None:
                self._by_device.setdefault(device_id, deque()).append(now_ms)
        return decision

    def prune(self, now_ms: int) -> None:
        """Forget velocity entries that left the window (bounds memory; optional)."""
        for table in (self._by_user, self._by_device):
            for key in list(table):
                self._recent(table, key, now_ms)

    def new_otp(self) -> str:
        """A 6-digit one-time code drawn from this node's random generator."""
        return f"{self.rng.randrange(1_000_000):06d}"
