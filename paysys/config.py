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
    options: dict = field(default_factory=dict)   # the kind's own settings (its adapter reads them)
    daily_limit: int = 0          # the most its payments of one local day may total (0: no limit)
    maintenance: tuple[tuple[int, int], ...] = ()   # announced windows [start_ms, end_ms)


@dataclass(frozen=True)
class SettlementRule:
    """How one merchant is settled: the cycle ("D+0" the same day, "T+1" the next day, "T+<n>"
    n days later: a risk hold), the minimum amount paid out (less is carried to the next batch),
    and its profit sharing (分账): receiver merchant id -> basis points of each payment."""

    cycle: str = "T+1"
    min_amount: int = 0
    splits: tuple[tuple[str, int], ...] = ()

    @property
    def days(self) -> int:
        """0 for D+0, n for T+n."""
        return 0 if self.cycle == "D+0" else int(self.cycle[2:])


@dataclass(frozen=True)
class BackOffice:
    """The calendar jobs (paysys/backoffice.py): statement reconciliation, settlement, positions
    and the accounting day. Times of day are local (UTC+8) offsets from midnight, in ms."""

    recon: bool = False                      # download and reconcile the channels' statements
    settlement: bool = False                 # settle merchants (implies the accounting day)
    recon_time_ms: int = 10 * HOUR           # first download try of D's file, on D+1
    recon_retry_ms: int = HOUR               # then every hour while the file is not ready
    late_after_ms: int = 12 * HOUR           # a file received after this (on D+1) is late
    give_up_ms: int = 24 * HOUR              # no file this long after the first try: missing
    carry: int = 1                           # files a row of ours may wait for in the buffer
    fees: str = "dispute"                    # a fee break: dispute it, or "adjust" the books (调账)
    settle_time_ms: int = 11 * HOUR          # the T+n settlement batch
    same_day_time_ms: int = 23 * HOUR + 30 * MINUTE   # the D+0 settlement batch
    payout_channel: str = ""                 # the bank that pays merchants out (代付)
    reserve: int = 0                         # the platform's reserve (备付金) at that bank
    position_floor: int = 0                  # keep the payout position at least this high
    rules: dict[str, SettlementRule] = field(default_factory=dict)   # per merchant
    default_rule: SettlementRule = SettlementRule()

    @property
    def enabled(self) -> bool:
        return self.recon or self.settlement

    def rule(self, merchant_id: str) -> SettlementRule:
        return self.rules.get(merchant_id, self.default_rule)


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
    backoffice: BackOffice = BackOffice()
    products: dict = field(default_factory=dict)   # product name -> its family's settings object
    extra: dict = field(default_factory=dict)
