"""Scenario files: the TOML format that declares one run, and its dataclasses.

This module owns the format (docs/scenarios.md is its reference). `load(path)`, `loads(text)`
and `from_dict(data)` return a frozen `Scenario` or raise ONE `ScenarioError` whose text names the
file, the key path and what was expected, e.g. `x.toml: traffic.products.quick: expected a number
between 0 and 1, got "abc"` -- never another exception. The parser and the table of defaults
live in `sim/_scenario_parser.py`. Key paths index arrays of tables from 0: `channels[0].id`,
`faults[2].end`. Money is always an int of minor units; a float there is an error.
"""

import re
import tomllib
from dataclasses import dataclass, field, replace

from sim.distributions import Dist
from sim.durations import FieldError, show
from sim.faults import FAULTS

_TOML_AT = re.compile(r"^(.*?)\s*\(at (line \d+, column \d+|end of document)\)$", re.S)


class ScenarioError(FieldError):
    """A bad scenario file: `path`, `key` (dotted path, "" for the whole file) and `message`
    (what was expected, and what was found). str: "<path>: <key>: <message>"."""

    def __init__(self, path: str, key: str, message: str):
        super().__init__(f"{path}: {key}" if key else path, message)
        self.path, self.key = path, key

    def __reduce__(self):
        return (ScenarioError, (self.path, self.key, self.message))


@dataclass(frozen=True)
class Population:
    users: int
    merchants: int
    locale: str
    bank_balance: Dist
    wallet_balance: Dist
    daily_limit: int
    magic_cards: dict[str, float]
    frozen_share: float


@dataclass(frozen=True)
class Traffic:
    rate_per_min: float
    curve: tuple[float, ...]
    currency: str
    amount: Dist
    products: dict[str, float]
    refund_probability: float
    partial_refund_probability: float
    refund_delay: Dist
    abandon_probability: float
    pay_delay: Dist
    otp_fail_probability: float
    unsign_probability: float
    double_submit_probability: float


@dataclass(frozen=True)
class Fee:
    rate_bp: int
    fixed: int
    minimum: int
    maximum: int  # 0 = no maximum


@dataclass(frozen=True)
class Channel:
    id: str
    kind: str
    products: tuple[str, ...]
    priority: int
    fee: Fee
    min_amount: int
    max_amount: int
    timeout_ms: int
    capacity: int
    max_queue_ms: int
    service_time: Dist
    duplicate_notify_probability: float
    api_key: str
    statement: str = "mt940"          # the format of its statement files: mt940 | wechat | alipay
    statement_ready_ms: int = 9 * 3_600_000   # after the local midnight ending the day
    booked_fee: Fee | None = None     # the fee rule paysys books, when not `fee` (rates changed)
    options: dict = field(default_factory=dict)   # the kind's own settings (sim/kinds/)
    daily_limit: int = 0              # limits.daily: its payments of one local day (0: no limit)
    maintenance: tuple[tuple[int, int], ...] = ()   # announced windows, absolute [start, end) ms


@dataclass(frozen=True)
class Network:
    latency: Dist
    links: dict[str, Dist]  # "A->B" -> latency of that direction


@dataclass(frozen=True)
class Routing:
    policy: str


@dataclass(frozen=True)
class Risk:
    max_amount: int
    challenge_amount: int
    velocity_window_ms: int
    velocity_max: int


@dataclass(frozen=True)
class Merchants:
    fee_rate_bp: int
    sign_types: tuple[str, ...]
    endpoint_latency: Dist
    endpoint_error_probability: float
    apps: int = 0                                  # business applications per merchant (A1..An)
    app_fee_rates_bp: tuple[int, ...] = ()         # per app; () = the merchants' fee_rate_bp


@dataclass(frozen=True)
class Notifications:
    schedule_ms: tuple[int, ...]


@dataclass(frozen=True)
class Fault:
    """One fault window; `start_ms`/`end_ms` are offsets from the scenario start. The kinds, their
    targets and parameters are the catalogue `sim.faults.FAULTS`."""

    index: int
    kind: str
    target: str  # "A->B", "A<->B", "A,B|C", "merchant:M001", "merchant:*", a channel id, "users", "paysys"
    start_ms: int
    end_ms: int
    probability: float
    extra: Dist | None
    params: dict = field(default_factory=dict)  # the kind's own parameters, parsed

    @property
    def family(self) -> str:
        return FAULTS[self.kind].family

    @property
    def groups(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The two sides of a partition ("A,B|C")."""
        left, right = self.target.split("|")
        return tuple(left.split(",")), tuple(right.split(","))

    @property
    def links(self) -> tuple[str, ...]:
        """The directed links a network fault acts on ("A<->B" gives both; a partition every link
        between its groups, both ways); () for the other families."""
        if self.kind == "partition":
            left, right = self.groups
            return tuple(f"{a}->{b}" for x, y in ((left, right), (right, left))
                         for a in x for b in y)
        if "<->" in self.target:
            a, b = self.target.split("<->")
            return (f"{a}->{b}", f"{b}->{a}")
        return (self.target,) if "->" in self.target else ()


@dataclass(frozen=True)
class PaySysOptions:
    """How the payment system under test is started: deliberate flaws and compensation policies."""

    flaws: tuple[str, ...] = ()
    partial_payment: str = "hold"     # hold | refund | complete
    late_success: str = "refund"      # refund | reopen


@dataclass(frozen=True)
class Recon:
    """Statement reconciliation (`[recon]`): when paysys downloads each day's files (local times
    of day on the next day, in ms), when a file counts as late or missing, and how many more files
    a row of ours may wait for in the buffer pool."""

    time_ms: int
    retry_ms: int
    late_after_ms: int
    give_up_ms: int
    carry: int
    fees: str = "dispute"             # fee breaks: "dispute" with the channel, or "adjust" the books


@dataclass(frozen=True)
class MerchantSettlement:
    cycle: str                              # "D+0" | "T+1" | "T+<n>"
    min_amount: int
    splits: tuple[tuple[str, int], ...]     # (receiver merchant id, basis points)


@dataclass(frozen=True)
class Settlement:
    """Settlement (`[settlement]`): the default rule, per-merchant rules, the payout bank, the
    platform's reserve there and the batch times (local times of day, in ms)."""

    default: MerchantSettlement
    merchants: dict[str, MerchantSettlement]
    payout_channel: str
    reserve: int
    position_floor: int
    time_ms: int
    same_day_time_ms: int


@dataclass(frozen=True)
class Expectations:
    invariants: tuple[str, ...]
    metrics: dict[str, tuple[float | None, float | None]]  # name -> (min, max)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: str
    seed: int
    start_ms: int
    duration_ms: int
    grace_ms: int
    population: Population
    traffic: Traffic
    channels: tuple[Channel, ...]
    network: Network
    routing: Routing
    risk: Risk
    merchants: Merchants
    notifications: Notifications
    faults: tuple[Fault, ...]
    expectations: Expectations
    paysys: PaySysOptions = PaySysOptions()
    buggify: bool = False
    recon: Recon | None = None
    settlement: Settlement | None = None
    products: dict = field(default_factory=dict)  # [products.<name>]: name -> its parsed options

    def with_seed(self, seed: int) -> "Scenario":
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
        return replace(self, seed=seed)

    @property
    def traffic_end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    @property
    def faults_end_ms(self) -> int:
        """Absolute end of the last fault window, or of the traffic when there is no fault."""
        if not self.faults:
            return self.traffic_end_ms
        return self.start_ms + max(f.end_ms for f in self.faults)

    @property
    def end_ms(self) -> int:
        last_fault = max((f.end_ms for f in self.faults), default=0)
        return self.start_ms + max(self.duration_ms, last_fault) + self.grace_ms

    @property
    def merchant_ids(self) -> tuple[str, ...]:
        return tuple(f"M{i:03d}" for i in range(1, self.population.merchants + 1))


# -- entry points -------------------------------------------------------------------------------
def load(path) -> Scenario:
    """The scenario in the TOML file at `path`, or ScenarioError (never another exception)."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ScenarioError(path, "", "no such file; expected a TOML scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(path, "", "is a directory; expected a TOML scenario file") from None
    except OSError as e:
        raise ScenarioError(path, "", f"cannot read the file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        message = f"expected UTF-8 text, got a bad byte at offset {e.start}"
        raise ScenarioError(path, "", message) from None
    return loads(text, path)


def loads(text: str, path: str = "<string>") -> Scenario:
    """The scenario in TOML `text`; `path` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        match = _TOML_AT.match(str(e))
        where, what = (match.group(2), match.group(1)) if match else ("", str(e))
        raise ScenarioError(path, where, f"TOML syntax error: {what}") from None
    return from_dict(data, path)


def from_dict(data: dict, path: str = "<dict>") -> Scenario:
    """The scenario in `data`, a dict shaped as tomllib reads a scenario file (for generated
    scenarios and tests); `path` names it in errors."""
    if not isinstance(data, dict):
        raise ScenarioError(path, "", f"expected a table of sections, got {show(data)}")
    from sim._scenario_parser import Parser  # the parser builds these dataclasses

    return Parser(path).scenario(data)


