"""The configuration of one payment-system node: merchants, channels, routing, risk, schedules.

Plain data, built by whoever starts the node (the simulator from a scenario, a test by hand).
"""

from dataclasses import dataclass, field

from paysys.gateway import Merchant
from paysys.money import FeeRule
from paysys.risk import RiskRules

MINUTE = 60_000
HOUR = 60 * MINUTE

# paysys -> merchant notification intervals: WeChat's real schedule (about 24 h in all).
NOTIFY_SCHEDULE_MS = (15_000, 15_000, 30_000, 3 * MINUTE, 10 * MINUTE, 20 * MINUTE, 30 * MINUTE,
                      30 * MINUTE, 30 * MINUTE, 60 * MINUTE, 3 * HOUR, 3 * HOUR, 3 * HOUR,
                      6 * HOUR, 6 * HOUR)
# Query compensation (查单) for an unknown outcome: delays after the timeout, then the last one
# repeats until the order is final.
QUERY_BACKOFF_MS = (2_000, 5_000, 15_000, 30_000, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE,
                    30 * MINUTE)


@dataclass(frozen=True)
class ChannelConfig:
    id: str
    kind: str                     # "bank" | "wechat"
    products: tuple[str, ...]
    priority: int = 1
    fee: FeeRule = FeeRule()
    min_amount: int = 1
    max_amount: int = 1_000_000_000
    timeout_ms: int = 3_000
    api_key: str = ""


@dataclass(frozen=True)
class PaySysConfig:
    merchants: tuple[Merchant, ...]
    channels: tuple[ChannelConfig, ...]
    risk: RiskRules
    routing_policy: str = "priority"
    notify_schedule_ms: tuple[int, ...] = NOTIFY_SCHEDULE_MS
    notify_reply_wait_ms: int = 30_000     # after the last attempt, how long to wait for its ack
    query_backoff_ms: tuple[int, ...] = QUERY_BACKOFF_MS
    order_ttl_ms: int = 30 * MINUTE        # a pre-order older than this is rejected
    platform_expire_ms: int = 15 * MINUTE  # an unpaid platform order closes after this
    otp_ttl_ms: int = 5 * MINUTE
    replay_window_ms: int = 5 * MINUTE
    self_url: str = "paysys"               # where channels send their notifications
    flaws: frozenset[str] = frozenset()    # deliberate flaws (paysys/flaws.py)
    partial_payment: str = "hold"          # hold | refund | complete
    late_success: str = "refund"           # refund | reopen
    commit_every: int = 500                # units of work per commit (1: every unit is durable)
    extra: dict = field(default_factory=dict)
