"""The scenario parser: defaults, the rules of every key, and the error messages.

Every default lives in the table `DEFAULTS` (in TOML spelling, parsed by the same code as a user's
values); `REQUIRED` lists the keys without a default. Durations are parsed by `sim.durations`,
distributions by `sim.distributions`. The dataclasses it builds are in `sim.scenario`.
"""

import datetime as dt
import math
import re

from faker.config import AVAILABLE_LOCALES

from paysys.flaws import FLAWS
from paysys.money import CURRENCIES
from sim import _scenario_backoffice as backoffice
from sim.catalogue import INVARIANTS, METRICS
from sim.distributions import Dist
from sim.durations import FieldError, format_duration, parse_duration, show
from sim.faults import FAULTS, Param
from sim.faults import REQUIRED as REQUIRED_PARAM
from sim.journeys import JOURNEYS
from sim.kinds import KINDS
from sim.scenario import (
    Channel,
    Expectations,
    Fault,
    Fee,
    Merchants,
    Network,
    Notifications,
    PaySysOptions,
    Population,
    Risk,
    Routing,
    Scenario,
    ScenarioError,
    Traffic,
)

# what the traffic may draw: every product a channel kind serves, and every journey
PRODUCTS = tuple(dict.fromkeys([*(p for k in KINDS.values() for p in k.products), *JOURNEYS]))
ROUTING_POLICIES = ("priority", "lowest_cost")
MAGIC_CARDS = ("4242", "0002", "9995", "0119", "3220")
SIGN_TYPES = ("MD5", "HMAC-SHA256")
PARTIAL_PAYMENT = ("hold", "refund", "complete")
LATE_SUCCESS = ("refund", "reopen")
RESERVED_IDS = ("paysys", "sms")
SECTIONS = ("scenario", "population", "traffic", "channels", "network", "routing", "risk",
            "merchants", "notifications", "paysys", "faults", "expectations", "recon",
            "settlement", "products")

_LOGNORMAL = "lognormal"
DEFAULTS: dict[str, dict] = {
    "scenario": {"description": "", "start": "2026-11-02T09:00:00+08:00", "grace": "26h",
                 "buggify": False},
    "population": {
        "users": 100, "merchants": 2, "locale": "zh_CN",
        "bank_balance": {"dist": "uniform", "low": 50000, "high": 2000000},
        "wallet_balance": {"dist": "uniform", "low": 0, "high": 500000},
        "daily_limit": 1000000, "magic_cards": {}, "frozen_share": 0.0,
    },
    "traffic": {
        "rate_per_min": 5.0, "curve": [], "currency": "CNY",
        "amount": {"dist": _LOGNORMAL, "median": 5000, "p99": 300000},
        "products": {"quick": 0.5, "platform": 0.5},
        "refund_probability": 0.1, "partial_refund_probability": 0.5,
        "refund_delay": {"dist": "exponential", "mean": 600000},
        "abandon_probability": 0.05,
        "pay_delay": {"dist": _LOGNORMAL, "median": 20000, "p99": 120000},
        "otp_fail_probability": 0.2, "unsign_probability": 0.01,
        "double_submit_probability": 0.02,
    },
    "channels": {  # None: derived from the channel's id or kind
        "products": None, "priority": 1, "fee": {}, "limits": {}, "timeout": "3s",
        "capacity": 50, "max_queue": "2s",
        "service_time": {"dist": _LOGNORMAL, "median": 80, "p99": 500},
        "duplicate_notify_probability": None, "api_key": None, "statement": None, "booked_fee": None,
        "statement_ready": "9h", "options": None, "maintenance": [],
    },
    "fee": {"rate_bp": 0, "fixed": 0, "min": 0, "max": 0},
    "limits": {"min": 1, "max": 1000000000, "daily": 0},
    "network": {"latency": {"dist": _LOGNORMAL, "median": 15, "p99": 80}, "links": {}},
    "link": {},
    "routing": {"policy": "priority"},
    "risk": {"max_amount": 5000000, "challenge_amount": 200000, "velocity_window": "10m",
             "velocity_max": 5},
    "merchants": {"fee_rate_bp": 60, "sign_types": list(SIGN_TYPES),
                  "endpoint_latency": {"dist": _LOGNORMAL, "median": 30, "p99": 300},
                  "endpoint_error_probability": 0.0, "apps": 0, "app_fee_rates_bp": []},
    "notifications": {"schedule": ["15s", "15s", "30s", "3m", "10m", "20m", "30m", "30m", "30m",
                                   "60m", "3h", "3h", "3h", "6h", "6h"]},
    "paysys": {"flaws": [], "partial_payment": "hold", "late_success": "refund"},
    "faults": {"probability": 1.0, "extra": None},
    "recon": {"time": "10h", "retry": "1h", "late_after": "12h", "give_up": "24h", "carry": 1,
              "fees": "dispute"},
    "settlement": {"cycle": "T+1", "min_amount": 0, "splits": {}, "reserve": 0, "position_floor": 0, "time": "11h", "same_day_time": "23h30m",
                   "merchants": {}},
    "merchant_settlement": {"cycle": None, "min_amount": None, "splits": None},
    "expectations": {"invariants": "all", "metrics": {}},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "scenario": ("name", "seed", "duration"),
    "channels": ("id", "kind"),
    "link": ("latency",),
    "faults": ("kind", "target", "start", "end"),
    "settlement": ("payout_channel",),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CHANNEL_ID = re.compile(r"[a-z][a-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MISSING = object()



# -- the parser ---------------------------------------------------------------------------------
def _sub(key: str, name: str) -> str:
    name = name if _BARE_KEY.fullmatch(name) else show(name, limit=1000)
    return f"{key}.{name}" if key else name


class Parser:
    """Turns the dict tomllib read into a Scenario; every check raises one ScenarioError."""

    def __init__(self, path: str):
        self.path = path

    # value parsers: each takes (value, key path) and raises naming both
    def fail(self, key: str, expected: str, value: object = _MISSING) -> ScenarioError:
        got = "missing; " + expected if value is _MISSING else f"{expected}, got {show(value)}"
        return ScenarioError(self.path, key, got)

    def table(self, value, key: str, section: str) -> dict:
        """`value` as a table with only the keys of `section` (its DEFAULTS and REQUIRED),
        defaults filled in and required keys absent as _MISSING."""
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table", value)
        defaults, required = DEFAULTS[section], REQUIRED.get(section, ())
        self.known(value, key, (*required, *defaults))
        return {**dict.fromkeys(required, _MISSING), **defaults, **value}

    def known(self, value: dict, key: str, allowed) -> None:
        """An error for the first key of `value` not in `allowed`, listing those."""
        for name in value:
            if name not in allowed:
                expected = f"unknown key; expected one of: {', '.join(allowed)}"
                raise ScenarioError(self.path, _sub(key, name), expected)

    def integer(self, value, key: str, lo: int, hi: int | None = None) -> int:
        expected = f"expected an integer >= {lo}" if hi is None else (
            f"expected an integer between {lo} and {hi}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, expected, value)
        if value < lo or (hi is not None and value > hi):
            raise self.fail(key, expected, value)
        return value

    def money(self, value, key: str, lo: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self.fail(key, f"expected an integer number of minor units (>= {lo})", value)
        return value

    def number(self, value, key: str, lo: float | None = 0.0, *, above: bool = False) -> float:
        """A finite number (int or float) >= lo (> lo when `above`; any when lo is None)."""
        expected = "expected a number"
        if lo is not None:
            expected += f" {'>' if above else '>='} {lo:g}"
        ok = (not isinstance(value, bool) and isinstance(value, int | float)
              and math.isfinite(value)
              and (lo is None or (value > lo if above else value >= lo)))
        if not ok:
            raise self.fail(key, expected, value)
        return float(value)

    def boolean(self, value, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false", value)
        return value

    def prob(self, value, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(key, "expected a number between 0 and 1", value)
        return float(value)

    def string(self, value, key: str, choices=None, pattern=None, what="a string") -> str:
        if choices is not None:
            expected = "expected one of " + ", ".join(show(c) for c in choices)
            if value not in choices:
                raise self.fail(key, expected, value)
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            raise self.fail(key, f"expected {what}", value)
        return value

    def strings(self, value, key: str, choices) -> tuple[str, ...]:
        """A non-empty list of distinct strings from `choices`."""
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"expected a non-empty list from {', '.join(choices)}", value)
        for i, item in enumerate(value):
            self.string(item, f"{key}[{i}]", choices)
            if item in value[:i]:
                raise self.fail(f"{key}[{i}]", "expected each name once, got a repeat", item)
        return tuple(value)

    def duration(self, value, key: str, *, positive: bool = False) -> int:
        if value is _MISSING:
            raise self.fail(key, 'expected a duration like "90s" or "1h30m"')
        ms = self.field(parse_duration, value, key)
        if positive and ms == 0:
            raise self.fail(key, "expected a duration > 0", value)
        return ms

    def dist(self, value, key: str, *, money: bool = False) -> Dist:
        return self.field(lambda v, where: Dist.parse(v, where, money=money), value, key)

    def field(self, parse, value, key: str):
        """parse(value, "file: key") with its FieldError turned into a ScenarioError."""
        prefix = f"{self.path}: "
        try:
            return parse(value, prefix + key)
        except FieldError as e:
            where = e.where[len(prefix):] if e.where.startswith(prefix) else key
            raise ScenarioError(self.path, where, e.message) from None

    def shares(self, value, key: str, choices, total: str) -> dict[str, float]:
        """A table name -> probability with names from `choices`; `total` "<=1" or "=1"."""
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table of shares like {{{choices[0]} = 0.5}}", value)
        out = {}
        for name, share in value.items():
            self.string(name, _sub(key, name), choices)
            out[name] = self.prob(share, _sub(key, name))
        s = sum(out.values())
        if total == "=1" and abs(s - 1) > 1e-9:
            raise ScenarioError(self.path, key, f"expected shares summing to 1, got a sum of {s:g}")
        if total == "<=1" and s > 1 + 1e-9:
            raise ScenarioError(self.path, key,
                                f"expected shares summing to at most 1, got a sum of {s:g}")
        return out

    def link(self, value, key: str, nodes: tuple[str, ...], both: bool) -> str:
        """"A->B" (or "A<->B" when `both`) between paysys and another known node. The wildcard
        "merchant:*" is refused: a link names one direction between two real nodes."""
        arrows = ("<->", "->") if both else ("->",)
        form = '"A->B" or "A<->B"' if both else '"A->B"'
        arrow = next((a for a in arrows if isinstance(value, str) and a in value), None)
        if arrow is None or value.count(arrow) != 1 or (not both and "<->" in value):
            raise self.fail(key, f"expected a link {form}", value)
        ends = [end.strip() for end in value.split(arrow)]
        if "merchant:*" in ends:
            raise self.fail(key, 'expected one merchant per link ("merchant:*" is for the '
                            "merchant_* faults)", value)
        for end in ends:
            if end not in nodes:
                known = _nodes_text(tuple(n for n in nodes if n != "merchant:*"))
                raise self.fail(key, f"unknown node {show(end)}; expected nodes among {known}",
                                value)
        if "paysys" not in ends or ends[0] == ends[1]:
            raise self.fail(key, "expected a link between paysys and another node (the others "
                            "talk only to paysys)", value)
        return arrow.join(ends)

    # sections --------------------------------------------------------------------------------
    def scenario(self, data: dict) -> Scenario:
        self.known(data, "", SECTIONS)
        if "scenario" not in data:
            raise self.fail("scenario", "expected a [scenario] table with name, seed and duration")
        t = self.table(data["scenario"], "scenario", "scenario")
        name = self.string(t["name"], "scenario.name", pattern=_NAME,
                           what="a name of letters, digits, _ . - (no spaces)")
        seed = self.integer(t["seed"], "scenario.seed", 0)
        start_ms = self.start(t["start"], "scenario.start")
        duration_ms = self.duration(t["duration"], "scenario.duration", positive=True)
        grace_ms = self.duration(t["grace"], "scenario.grace")
        population = self.population(data.get("population", {}))
        traffic = self.traffic(data.get("traffic", {}))
        channels = self.channels(data.get("channels", _MISSING))
        self._channel_kinds = {c.id: c.kind for c in channels}
        self._formats = {c.id: c.statement for c in channels}
        for product, share in traffic.products.items():
            needs = JOURNEYS[product].needs if product in JOURNEYS else (product,)
            for need in needs if share > 0 else ():
                if not any(need in c.products for c in channels):
                    what = "a product" if need == product else f"{need!r}, which this product needs:"
                    raise self.fail(f"traffic.products.{product}",
                                    f"expected {what} some [[channels]] entry serves", share)
        nodes = ("paysys", *(c.id for c in channels),
                 *(f"merchant:M{i:03d}" for i in range(1, population.merchants + 1)), "merchant:*")
        faults = self.faults(data.get("faults", []), nodes, duration_ms + grace_ms)
        for f in faults:
            if f.family == "statement" and "recon" not in data:
                raise self.fail(f"faults[{f.index}].kind", "expected a [recon] section: a "
                                f"{f.kind} fault acts on statement files, which only a "
                                "reconciling payment system reads", f.kind)
        merchants = self.merchants(data.get("merchants", {}))
        return Scenario(
            name=name, description=self.string(t["description"], "scenario.description"),
            path=self.path, seed=seed, start_ms=start_ms, duration_ms=duration_ms,
            grace_ms=grace_ms, population=population, traffic=traffic, channels=channels,
            network=self.network(data.get("network", {}), nodes),
            routing=self.routing(data.get("routing", {})), risk=self.risk(data.get("risk", {})),
            merchants=merchants,
            notifications=self.notifications(data.get("notifications", {})),
            faults=faults,
            expectations=self.expectations(data.get("expectations", {})),
            paysys=self.paysys(data.get("paysys", {})),
            buggify=self.boolean(t["buggify"], "scenario.buggify"),
            recon=backoffice.recon(self, data["recon"]) if "recon" in data else None,
            settlement=backoffice.settlement(self, data["settlement"], channels, population,
                                             merchants.fee_rate_bp)
            if "settlement" in data else None,
            products=self.products(data.get("products", {})),
        )

    def products(self, value) -> dict:
        """`[products.<name>]`: each product's own table, parsed by its journey."""
        if not isinstance(value, dict):
            raise self.fail("products", "expected a table of [products.<name>] tables", value)
        takes = tuple(p for p, j in JOURNEYS.items() if j.options is not None)
        out = {}
        for name, table in value.items():
            key = _sub("products", name)
            if name not in takes:
                raise self.fail(key, f"expected a product with settings among "
                                f"{', '.join(takes) or '(none)'}", name)
            out[name] = JOURNEYS[name].options(self, table, key)
        return out

    def start(self, value, key: str) -> int:
        expected = "expected a date-time with a UTC offset, like 2026-11-02T09:00:00+08:00"
        when = value
        if isinstance(value, str):
            try:
                when = dt.datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(key, expected, value) from None
        if not isinstance(when, dt.datetime) or when.utcoffset() is None:
            raise self.fail(key, expected, value)
        return (when - _EPOCH) // dt.timedelta(milliseconds=1)

    def locale(self, value, key: str) -> str:
        if not isinstance(value, str) or value not in AVAILABLE_LOCALES:
            raise self.fail(key, 'expected a Faker locale such as "zh_CN" or "en_US"', value)
        return value

    def population(self, value) -> Population:
        t = self.table(value, "population", "population")
        return Population(
            users=self.integer(t["users"], "population.users", 1),
            merchants=self.integer(t["merchants"], "population.merchants", 1, 999),
            locale=self.locale(t["locale"], "population.locale"),
            bank_balance=self.dist(t["bank_balance"], "population.bank_balance", money=True),
            wallet_balance=self.dist(t["wallet_balance"], "population.wallet_balance", money=True),
            daily_limit=self.money(t["daily_limit"], "population.daily_limit", 1),
            magic_cards=self.shares(t["magic_cards"], "population.magic_cards", MAGIC_CARDS,
                                    "<=1"),
            frozen_share=self.prob(t["frozen_share"], "population.frozen_share"),
        )

    def traffic(self, value) -> Traffic:
        t = self.table(value, "traffic", "traffic")
        curve = t["curve"]
        if not isinstance(curve, list) or len(curve) not in (0, 24):
            raise self.fail("traffic.curve", "expected a list of exactly 24 hourly multipliers",
                            curve)
        curve = tuple(self.number(x, f"traffic.curve[{i}]") for i, x in enumerate(curve))
        if curve and not any(curve):
            raise self.fail("traffic.curve", "expected at least one multiplier > 0", list(curve))
        p = {k: self.prob(t[k], f"traffic.{k}") for k in DEFAULTS["traffic"] if "probab" in k}
        return Traffic(
            rate_per_min=self.number(t["rate_per_min"], "traffic.rate_per_min", above=True),
            curve=curve,
            currency=self.string(t["currency"], "traffic.currency", choices=tuple(CURRENCIES)),
            amount=self.dist(t["amount"], "traffic.amount", money=True),
            products=self.shares(t["products"], "traffic.products", PRODUCTS, "=1"),
            refund_delay=self.dist(t["refund_delay"], "traffic.refund_delay"),
            pay_delay=self.dist(t["pay_delay"], "traffic.pay_delay"),
            **p,
        )

    def channels(self, value) -> tuple[Channel, ...]:
        if value is _MISSING:
            raise self.fail("channels", "expected at least one [[channels]] table")
        if not isinstance(value, list) or not value:
            raise self.fail("channels", "expected at least one [[channels]] table", value)
        out: list[Channel] = []
        for i, raw in enumerate(value):
            key = f"channels[{i}]"
            channel = self.channel(raw, key)
            if any(c.id == channel.id for c in out):
                raise self.fail(f"{key}.id", "expected an id no other channel uses", channel.id)
            out.append(channel)
        return tuple(out)

    def channel(self, value, key: str) -> Channel:
        t = self.table(value, key, "channels")
        cid = self.string(t["id"], f"{key}.id", pattern=_CHANNEL_ID,
                          what="an id matching [a-z][a-z0-9_]*")
        if cid in RESERVED_IDS:
            raise self.fail(f"{key}.id", f"expected an id other than {', '.join(RESERVED_IDS)}",
                            cid)
        kind = self.string(t["kind"], f"{key}.kind", choices=tuple(KINDS))
        spec = KINDS[kind]
        served = spec.products
        products = served if t["products"] is None else self.strings(
            t["products"], f"{key}.products", served)
        dup = t["duplicate_notify_probability"]
        if dup is not None and not spec.notifies:
            raise self.fail(f"{key}.duplicate_notify_probability",
                            f'expected no such key for a channel of kind "{kind}", which never '
                            "notifies", dup)
        options = {}
        if t["options"] is not None:
            if spec.options is None:
                raise self.fail(f"{key}.options", f'expected no options for a channel of kind '
                                f'"{kind}"', t["options"])
            options = spec.options(self, t["options"], f"{key}.options")
        fee = self.fee(t["fee"], f"{key}.fee")
        booked = None if t["booked_fee"] is None else self.fee(t["booked_fee"], f"{key}.booked_fee")
        limits = self.table(t["limits"], f"{key}.limits", "limits")
        low = self.money(limits["min"], f"{key}.limits.min", 1)
        high = self.money(limits["max"], f"{key}.limits.max", low)
        daily = self.money(limits["daily"], f"{key}.limits.daily")
        if daily and daily < low:
            raise self.fail(f"{key}.limits.daily", f"expected 0 (no daily limit) or at least "
                            f"limits.min ({low})", daily)
        api_key = f"key-{cid}" if t["api_key"] is None else self.string(
            t["api_key"], f"{key}.api_key", pattern=re.compile(r".+"), what="a non-empty string")
        formats = spec.formats
        statement = formats[0] if t["statement"] is None else self.string(
            t["statement"], f"{key}.statement", choices=formats)
        return Channel(
            id=cid, kind=kind, products=products, statement=statement, booked_fee=booked,
            options=options,
            statement_ready_ms=self.duration(t["statement_ready"], f"{key}.statement_ready"),
            priority=self.integer(t["priority"], f"{key}.priority", 0),
            fee=fee, min_amount=low, max_amount=high,
            timeout_ms=self.duration(t["timeout"], f"{key}.timeout", positive=True),
            capacity=self.integer(t["capacity"], f"{key}.capacity", 1),
            max_queue_ms=self.duration(t["max_queue"], f"{key}.max_queue"),
            service_time=self.dist(t["service_time"], f"{key}.service_time"),
            duplicate_notify_probability=0.0 if dup is None else self.prob(
                dup, f"{key}.duplicate_notify_probability"),
            api_key=api_key, daily_limit=daily,
            maintenance=self.windows(t["maintenance"], f"{key}.maintenance"),
        )

    def windows(self, value, key: str) -> tuple[tuple[int, int], ...]:
        """Maintenance windows the channel announces: [[start, end], ...] date-times with a UTC
        offset, each ending after it starts, in time order, not overlapping."""
        form = 'expected a list of [start, end] pairs like [["2026-11-02T10:00:00+08:00", ' \
               '"2026-11-02T10:30:00+08:00"]]'
        if not isinstance(value, list):
            raise self.fail(key, form, value)
        out: list[tuple[int, int]] = []
        for i, pair in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(where, form, pair)
            start, end = self.start(pair[0], f"{where}[0]"), self.start(pair[1], f"{where}[1]")
            if end <= start:
                raise self.fail(f"{where}[1]", "expected an end after the window's start", pair[1])
            if out and start < out[-1][1]:
                raise self.fail(f"{where}[0]", "expected windows in time order, each starting "
                                "after the previous one ends", pair[0])
            out.append((start, end))
        return tuple(out)

    def fee(self, value, key: str) -> Fee:
        t = self.table(value, key, "fee")
        fee = Fee(self.integer(t["rate_bp"], f"{key}.rate_bp", 0, 10000),
                  *(self.money(t[k], f"{key}.{k}") for k in ("fixed", "min", "max")))
        if fee.maximum and fee.minimum > fee.maximum:
            raise self.fail(f"{key}.max", f"expected 0 (no max) or >= min ({fee.minimum})",
                            fee.maximum)
        return fee

    def network(self, value, nodes: tuple[str, ...]) -> Network:
        t = self.table(value, "network", "network")
        if not isinstance(t["links"], dict):
            raise self.fail("network.links",
                            'expected a table of links like [network.links."paysys->bank"]',
                            t["links"])
        links = {}
        for name, raw in t["links"].items():
            key = _sub("network.links", name)
            link = self.link(name, key, nodes, both=False)
            if link in links:
                raise self.fail(key, "expected each link once, got a repeat", name)
            links[link] = self.dist(self.table(raw, key, "link")["latency"], f"{key}.latency")
        return Network(latency=self.dist(t["latency"], "network.latency"), links=links)

    def routing(self, value) -> Routing:
        t = self.table(value, "routing", "routing")
        return Routing(self.string(t["policy"], "routing.policy", choices=ROUTING_POLICIES))

    def risk(self, value) -> Risk:
        t = self.table(value, "risk", "risk")
        return Risk(
            max_amount=self.money(t["max_amount"], "risk.max_amount", 1),
            challenge_amount=self.money(t["challenge_amount"], "risk.challenge_amount", 1),
            velocity_window_ms=self.duration(t["velocity_window"], "risk.velocity_window",
                                             positive=True),
            velocity_max=self.integer(t["velocity_max"], "risk.velocity_max", 1),
        )

    def merchants(self, value) -> Merchants:
        t = self.table(value, "merchants", "merchants")
        return Merchants(
            fee_rate_bp=self.integer(t["fee_rate_bp"], "merchants.fee_rate_bp", 0, 10000),
            sign_types=self.strings(t["sign_types"], "merchants.sign_types", SIGN_TYPES),
            endpoint_latency=self.dist(t["endpoint_latency"], "merchants.endpoint_latency"),
            endpoint_error_probability=self.prob(t["endpoint_error_probability"],
                                                 "merchants.endpoint_error_probability"),
            **self.apps(t),
        )

    def apps(self, t: dict) -> dict:
        """`apps` (business applications per merchant, A1..An) and their fee rates
        `app_fee_rates_bp` (one per app; none given: each app pays the merchants' rate)."""
        apps = self.integer(t["apps"], "merchants.apps", 0, 26)
        rates = t["app_fee_rates_bp"]
        if not isinstance(rates, list):
            raise self.fail("merchants.app_fee_rates_bp", "expected a list of basis points, one "
                            "per app", rates)
        if rates and len(rates) != apps:
            raise self.fail("merchants.app_fee_rates_bp", f"expected {apps} rates (one per app "
                            f"of merchants.apps = {apps}), got {len(rates)}", rates)
        rates = [self.integer(r, f"merchants.app_fee_rates_bp[{i}]", 0, 10000)
                 for i, r in enumerate(rates)]
        return {"apps": apps, "app_fee_rates_bp": tuple(rates)}

    def notifications(self, value) -> Notifications:
        t = self.table(value, "notifications", "notifications")
        schedule = t["schedule"]
        if not isinstance(schedule, list):
            raise self.fail("notifications.schedule",
                            'expected a list of durations like ["15s", "3m"]', schedule)
        return Notifications(tuple(self.duration(d, f"notifications.schedule[{i}]", positive=True)
                                   for i, d in enumerate(schedule)))

    def faults(self, value, nodes: tuple[str, ...], horizon_ms: int) -> tuple[Fault, ...]:
        if not isinstance(value, list):
            raise self.fail("faults", "expected an array of tables [[faults]]", value)
        return tuple(self.fault(raw, i, nodes, horizon_ms) for i, raw in enumerate(value))

    def fault(self, value, index: int, nodes: tuple[str, ...], horizon_ms: int) -> Fault:
        key = f"faults[{index}]"
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table", value)
        if "kind" not in value:
            raise self.fail(f"{key}.kind", "expected one of " + ", ".join(FAULTS))
        kind = self.string(value["kind"], f"{key}.kind", choices=tuple(FAULTS))
        spec = FAULTS[kind]
        self.known(value, key, (*REQUIRED["faults"], *DEFAULTS["faults"], *spec.params))
        t = {**dict.fromkeys(REQUIRED["faults"], _MISSING), **DEFAULTS["faults"], **value}
        target = self.target(t["target"], f"{key}.target", kind, nodes)
        start = self.duration(t["start"], f"{key}.start")
        end = self.duration(t["end"], f"{key}.end")
        if end <= start:
            raise self.fail(f"{key}.end",
                            f"expected a duration after start ({format_duration(start)})", t["end"])
        if end > horizon_ms:
            raise self.fail(f"{key}.end", "expected a duration at most duration + grace "
                            f"({format_duration(horizon_ms)})", t["end"])
        extra = t["extra"]
        if extra is None and spec.extra == "required":
            raise self.fail(f"{key}.extra", f"expected the extra delay of a {kind} fault, "
                            'like {dist = "uniform", low = 1000, high = 5000}')
        if extra is not None and spec.extra is None:
            takers = ", ".join(k for k, f in FAULTS.items() if f.extra)
            raise self.fail(f"{key}.extra", f"expected no extra for a {kind} fault "
                            f"(only {takers} take one)", extra)
        params = {name: self.param(t.get(name, p.default), f"{key}.{name}", p)
                  for name, p in spec.params.items()}
        return Fault(
            index=index, kind=kind, target=target, start_ms=start, end_ms=end,
            probability=self.prob(t["probability"], f"{key}.probability"),
            extra=None if extra is None else self.dist(extra, f"{key}.extra"), params=params,
        )

    def param(self, value, key: str, p: Param):
        if value is REQUIRED_PARAM:
            raise self.fail(key, f"expected {p.doc}")
        if p.type == "int":
            return self.integer(value, key, p.low)
        if p.type == "duration":
            return self.duration(value, key, positive=True)
        if p.type == "choice":
            return self.string(value, key, choices=p.choices)
        if isinstance(value, bool) or not isinstance(value, int) or value == 0:
            raise self.fail(key, "expected a signed integer number of minor units, not 0", value)
        return value

    def target(self, value, key: str, kind: str, nodes: tuple[str, ...]) -> str:
        """The `target` of a fault of `kind`, as its catalogue entry says it must look."""
        spec = FAULTS[kind]
        if value is _MISSING:
            raise self.fail(key, f"expected the target of a {kind} fault")
        if spec.target == "link":
            return self.link(value, key, nodes, both=True)
        if spec.target == "groups":
            return self.groups(value, key, nodes)
        if spec.target == "merchant":
            merchants = tuple(n for n in nodes if n.startswith("merchant:"))
            if not isinstance(value, str) or value not in merchants:
                raise self.fail(key, f"expected a merchant among {_nodes_text(merchants)}", value)
            return value
        if spec.target == "channel":
            channels = self._channel_kinds
            allowed = tuple(c for c, k in channels.items() if k in spec.channel_kinds
                            and self._formats[c] in spec.formats)
            if value not in allowed:
                what = " or ".join(spec.channel_kinds) + " channel"
                if spec.family == "statement":
                    what = "channel whose statements are " + " or ".join(spec.formats)
                raise self.fail(key, f"expected the id of a {what} among "
                                f"{', '.join(allowed) or '(none declared)'}", value)
            return value
        literal = "users" if spec.target == "users" else "paysys"
        if value != literal:
            raise self.fail(key, f"expected {show(literal)} for a {kind} fault", value)
        return value

    def groups(self, value, key: str, nodes: tuple[str, ...]) -> str:
        """Two groups of nodes "A, B | C": paysys on one side, each node once."""
        form = 'expected two groups of nodes like "paysys | bank, wechat"'
        if not isinstance(value, str) or value.count("|") != 1:
            raise self.fail(key, form, value)
        sides = [[n.strip() for n in side.split(",")] for side in value.split("|")]
        seen: list[str] = []
        for side in sides:
            for node in side:
                if node not in nodes or node == "merchant:*":
                    known = _nodes_text(tuple(n for n in nodes if n != "merchant:*"))
                    raise self.fail(key, f"unknown node {show(node)}; expected nodes among "
                                    f"{known}", value)
                if node in seen:
                    raise self.fail(key, f"expected each node once, got {show(node)} twice", value)
                seen.append(node)
        if "paysys" not in seen:
            raise self.fail(key, "expected paysys in one of the groups (the others talk only "
                            "to paysys)", value)
        return "|".join(",".join(side) for side in sides)

    def paysys(self, value) -> PaySysOptions:
        t = self.table(value, "paysys", "paysys")
        flaws = t["flaws"]
        if not isinstance(flaws, list):
            raise self.fail("paysys.flaws", "expected a list of flaw names (may be empty)", flaws)
        flaws = self.strings(flaws, "paysys.flaws", tuple(FLAWS)) if flaws else ()
        return PaySysOptions(
            flaws=flaws,
            partial_payment=self.string(t["partial_payment"], "paysys.partial_payment",
                                        choices=PARTIAL_PAYMENT),
            late_success=self.string(t["late_success"], "paysys.late_success",
                                     choices=LATE_SUCCESS),
        )

    def expectations(self, value) -> Expectations:
        t = self.table(value, "expectations", "expectations")
        invariants = t["invariants"]
        if invariants == "all":
            invariants = tuple(INVARIANTS)
        elif isinstance(invariants, list):
            invariants = self.strings(invariants, "expectations.invariants", tuple(INVARIANTS)) \
                if invariants else ()
        else:
            raise self.fail("expectations.invariants",
                            'expected "all" or a list of invariant names', invariants)
        if not isinstance(t["metrics"], dict):
            raise self.fail("expectations.metrics", "expected a table name -> {min, max}",
                            t["metrics"])
        metrics = {}
        for name, bounds in t["metrics"].items():
            key = _sub("expectations.metrics", name)
            self.string(name, key, choices=tuple(METRICS))
            if not isinstance(bounds, dict) or not bounds:
                raise self.fail(key, "expected a table with min and/or max, like {min = 1}", bounds)
            self.known(bounds, key, ("min", "max"))
            low, high = (None if b not in bounds else
                         self.number(bounds[b], f"{key}.{b}", None) for b in ("min", "max"))
            if low is not None and high is not None and low > high:
                raise self.fail(f"{key}.max", f"expected a number >= min ({low:g})", bounds["max"])
            metrics[name] = (low, high)
        return Expectations(invariants, metrics)


def _nodes_text(nodes: tuple[str, ...]) -> str:
    """Node names for a message, merchants shortened to "merchant:M001..merchant:M012"."""
    merchants = [n for n in nodes if n.startswith("merchant:M")]
    others = [n for n in nodes if not n.startswith("merchant:M")]
    if len(merchants) > 2:
        merchants = [f"{merchants[0]}..{merchants[-1]}"]
    ordered = [n for n in others if n != "merchant:*"] + merchants
    ordered += ["merchant:*"] if "merchant:*" in others else []
    return ", ".join(ordered)
