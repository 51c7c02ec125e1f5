"""sim.scenario: one test per kind of bad scenario file (exact file, key and expectation in the
message), the shipped scenarios, the defaults, the derived times, and "never a traceback"."""

import copy
import datetime as dt
import pathlib
import pickle
import re
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paysys.flaws import FLAWS
from sim._scenario_parser import DEFAULTS, REQUIRED
from sim.catalogue import INVARIANTS, METRICS
from sim.distributions import Dist
from sim.faults import FAULTS
from sim.scenario import Fee, ScenarioError, from_dict, load, loads

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))

HEAD = '[scenario]\nname = "t"\nseed = 1\nduration = "1h"\n'
BANK = '[[channels]]\nid = "bank"\nkind = "bank"\n'
WECHAT = '[[channels]]\nid = "wechat"\nkind = "wechat"\n'
BASE = HEAD + BANK + WECHAT


def fault(kind="drop", target='"bank->paysys"', start='"10m"', end='"40m"', more=""):
    return f"[[faults]]\nkind = {kind!r}\ntarget = {target}\nstart = {start}\nend = {end}\n{more}"


def fail(tmp_path, text: str, name: str = "x.toml") -> ScenarioError:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path)
    return info.value


# (text of the file, key, message): each a different mistake a QA engineer can make
BAD = {
    "wrong type": (
        BASE + "[population]\nusers = \"many\"\n",
        "population.users", 'expected an integer >= 1, got "many"'),
    "out of range": (
        BASE + "[population]\nmerchants = 1000\n",
        "population.merchants", "expected an integer between 1 and 999, got 1000"),
    "probability not a number": (
        BASE + '[traffic]\nproducts = {quick = "abc", platform = 0.5}\n',
        "traffic.products.quick", 'expected a number between 0 and 1, got "abc"'),
    "probability above 1": (
        BASE + "[traffic]\nrefund_probability = 1.5\n",
        "traffic.refund_probability", "expected a number between 0 and 1, got 1.5"),
    "probability below 0": (
        BASE + '[[faults]]\nkind = "drop"\ntarget = "bank->paysys"\nstart = "1m"\nend = "2m"\n'
        "probability = -0.1\n",
        "faults[0].probability", "expected a number between 0 and 1, got -0.1"),
    "product mix not summing to 1": (
        BASE + "[traffic]\nproducts = {quick = 0.5, platform = 0.4}\n",
        "traffic.products", "expected shares summing to 1, got a sum of 0.9"),
    "unknown product": (
        BASE + "[traffic]\nproducts = {quick = 0.5, netbonk = 0.5}\n",
        "traffic.products.netbonk", 'expected one of "quick", "netbank", "withhold", "platform", '
        '"unionpay", "carrier", "foreign", "preauth", "balance", "coins", "credit", "topup", '
        '"withdraw", "transfer", "payout", "combined", "trade", got "netbonk"'),
    "product no channel serves": (
        HEAD + BANK,
        "traffic.products.platform", "expected a product some [[channels]] entry serves, got 0.5"),
    "fault target naming an unknown node": (
        BASE + fault(target='"bnak->paysys"'),
        "faults[0].target", 'unknown node "bnak"; expected nodes among paysys, bank, wechat, '
        'merchant:M001, merchant:M002, got "bnak->paysys"'),
    "network fault on every merchant": (
        BASE + fault(target='"paysys->merchant:*"'),
        "faults[0].target", 'expected one merchant per link ("merchant:*" is for the merchant_* '
        'faults), got "paysys->merchant:*"'),
    "link from a node to itself": (
        BASE + fault(target='"paysys<->paysys"'),
        "faults[0].target", "expected a link between paysys and another node (the others talk "
        'only to paysys), got "paysys<->paysys"'),
    "fault target not a link": (
        BASE + fault(target='"bank"'),
        "faults[0].target", 'expected a link "A->B" or "A<->B", got "bank"'),
    "fault link not through paysys": (
        BASE + fault(target='"bank<->wechat"'),
        "faults[0].target", "expected a link between paysys and another node (the others talk "
        'only to paysys), got "bank<->wechat"'),
    "merchant fault on an unknown merchant": (
        BASE + fault("merchant_down", '"merchant:M009"'),
        "faults[0].target", "expected a merchant among merchant:M001, merchant:M002, merchant:*, "
        'got "merchant:M009"'),
    "unknown fault kind": (
        BASE + fault("explode"),
        "faults[0].kind", "expected one of " + ", ".join(f'"{k}"' for k in FAULTS)
        + ', got "explode"'),
    "fault start after end": (
        BASE + fault(start='"40m"', end='"10m"'),
        "faults[0].end", 'expected a duration after start (40m), got "10m"'),
    "fault end past duration + grace": (
        BASE + fault(end='"30h"'),
        "faults[0].end", 'expected a duration at most duration + grace (1d3h), got "30h"'),
    "fault without its start": (
        BASE + '[[faults]]\nkind = "drop"\ntarget = "bank->paysys"\nend = "2m"\n',
        "faults[0].start", 'missing; expected a duration like "90s" or "1h30m"'),
    "latency fault without extra": (
        BASE + fault("latency"),
        "faults[0].extra", 'missing; expected the extra delay of a latency fault, like '
        '{dist = "uniform", low = 1000, high = 5000}'),
    "extra on a fault that takes none": (
        BASE + fault(more="extra = 500\n"),
        "faults[0].extra", "expected no extra for a drop fault (only latency, jitter, hang, "
        "reorder, merchant_slow, notify_late, crash take one), got 500"),
    "unknown channel kind": (
        HEAD + '[[channels]]\nid = "ali"\nkind = "alipey"\n',
        "channels[0].kind", 'expected one of "bank", "wechat", "alipay", "unionpay", "carrier", '
        '"paypal", got "alipey"'),
    "duplicate channel ids": (
        BASE + BANK,
        "channels[2].id", 'expected an id no other channel uses, got "bank"'),
    "bad channel id": (
        HEAD + '[[channels]]\nid = "Bank 1"\nkind = "bank"\n',
        "channels[0].id", 'expected an id matching [a-z][a-z0-9_]*, got "Bank 1"'),
    "reserved channel id": (
        HEAD + '[[channels]]\nid = "paysys"\nkind = "bank"\n',
        "channels[0].id", 'expected an id other than paysys, sms, got "paysys"'),
    "channel product its kind does not serve": (
        BASE + '[[channels]]\nid = "bank2"\nkind = "bank"\nproducts = ["platform"]\n',
        "channels[2].products[0]", 'expected one of "quick", "netbank", "withhold", got "platform"'),
    "duplicate_notify_probability on a bank": (
        HEAD + BANK + "duplicate_notify_probability = 0.5\n" + WECHAT,
        "channels[0].duplicate_notify_probability",
        'expected no such key for a channel of kind "bank", which never notifies, got 0.5'),
    "no channels": (
        HEAD,
        "channels", "missing; expected at least one [[channels]] table"),
    "channels as a table": (
        HEAD + '[channels]\nid = "bank"\nkind = "bank"\n',
        "channels", 'expected at least one [[channels]] table, got {id = "bank", kind = "bank"}'),
    "float money": (
        HEAD + BANK + "limits = {min = 1, max = 5000000.0}\n" + WECHAT,
        "channels[0].limits.max",
        "expected an integer number of minor units (>= 1), got 5000000.0"),
    "float money in a distribution": (
        BASE + '[traffic]\namount = {dist = "uniform", low = 100, high = 999.5}\n',
        "traffic.amount.high", "expected an integer number of minor units, got 999.5"),
    "fee rate out of range": (
        HEAD + BANK + "fee = {rate_bp = 20000}\n" + WECHAT,
        "channels[0].fee.rate_bp", "expected an integer between 0 and 10000, got 20000"),
    "partition without paysys": (
        BASE + fault("partition", '"bank | wechat"'),
        "faults[0].target", "expected paysys in one of the groups (the others talk only to "
        'paysys), got "bank | wechat"'),
    "partition naming a node twice": (
        BASE + fault("partition", '"paysys, bank | bank"'),
        "faults[0].target", 'expected each node once, got "bank" twice, got "paysys, bank | bank"'),
    "platform fault on a bank": (
        BASE + fault("notify_lost", '"bank"'),
        "faults[0].target", 'expected the id of a wechat or paypal channel among wechat, got "bank"'),
    "fault parameter of another kind": (
        BASE + fault("drop", more="retries = 3\n"),
        "faults[0].retries", "unknown key; expected one of: kind, target, start, end, "
        "probability, extra, messages"),
    "zero amount delta": (
        BASE + fault("amount_mismatch", '"wechat"', more="delta = 0\n"),
        "faults[0].delta", "expected a signed integer number of minor units, not 0, got 0"),
    "crash point unknown": (
        BASE + fault("crash", '"paysys"', more='point = "later"\n'),
        "faults[0].point", 'expected one of "before_commit", "after_commit", "any", got "later"'),
    "user fault with a link": (
        BASE + fault("pay_twice"),
        "faults[0].target", 'expected "users" for a pay_twice fault, got "bank->paysys"'),
    "unknown flaw": (
        BASE + '[paysys]\nflaws = ["no_brakes"]\n',
        "paysys.flaws[0]", "expected one of " + ", ".join(f'"{f}"' for f in FLAWS)
        + ', got "no_brakes"'),
    "buggify not a boolean": (
        BASE.replace('duration = "1h"', 'duration = "1h"\nbuggify = "yes"'),
        "scenario.buggify", 'expected true or false, got "yes"'),
    "unknown key at the top": (
        BASE + "[trafic]\nrate_per_min = 3\n",
        "trafic", "unknown key; expected one of: scenario, population, traffic, channels, "
        "network, routing, risk, merchants, notifications, paysys, faults, expectations, recon, settlement, "
        "products"),
    "unknown key in a section": (
        BASE + "[risk]\nmax = 5\n",
        "risk.max", "unknown key; expected one of: max_amount, challenge_amount, "
        "velocity_window, velocity_max"),
    "unknown key in a channel": (
        HEAD + BANK + "latency = 5\n" + WECHAT,
        "channels[0].latency", "unknown key; expected one of: id, kind, products, priority, fee, "
        "limits, timeout, capacity, max_queue, service_time, duplicate_notify_probability, "
        "api_key, statement, booked_fee, statement_ready, options, maintenance"),
    "unknown invariant": (
        BASE + '[expectations]\ninvariants = ["conservation", "no_lost_money"]\n',
        "expectations.invariants[1]", "expected one of " + ", ".join(
            f'"{n}"' for n in INVARIANTS) + ', got "no_lost_money"'),
    "unknown metric": (
        BASE + "[expectations.metrics]\nsucess_rate = {min = 0.9}\n",
        "expectations.metrics.sucess_rate", "expected one of " + ", ".join(
            f'"{m}"' for m in METRICS) + ', got "sucess_rate"'),
    "metric min above max": (
        BASE + "[expectations.metrics]\nsuccess_rate = {min = 0.9, max = 0.5}\n",
        "expectations.metrics.success_rate.max", "expected a number >= min (0.9), got 0.5"),
    "metric bound misnamed": (
        BASE + "[expectations.metrics]\nunknown = {at_least = 1}\n",
        "expectations.metrics.unknown.at_least", "unknown key; expected one of: min, max"),
    "missing required key": (
        '[scenario]\nname = "t"\nduration = "1h"\n' + BANK + WECHAT,
        "scenario.seed", "missing; expected an integer >= 0"),
    "missing [scenario]": (
        BANK + WECHAT,
        "scenario", "missing; expected a [scenario] table with name, seed and duration"),
    "bad duration": (
        '[scenario]\nname = "t"\nseed = 1\nduration = "soon"\n' + BANK + WECHAT,
        "scenario.duration", 'expected a duration like "250ms", "90s", "15m", "2h", "1d" or '
        '"1h30m" (or integer ms), got "soon"'),
    "zero duration": (
        '[scenario]\nname = "t"\nseed = 1\nduration = "0s"\n' + BANK + WECHAT,
        "scenario.duration", 'expected a duration > 0, got "0s"'),
    "start without an offset": (
        HEAD + "start = 2026-11-02T09:00:00\n" + BANK + WECHAT,
        "scenario.start", "expected a date-time with a UTC offset, like "
        "2026-11-02T09:00:00+08:00, got 2026-11-02T09:00:00"),
    "start not a date-time": (
        HEAD + 'start = "next monday"\n' + BANK + WECHAT,
        "scenario.start", "expected a date-time with a UTC offset, like "
        '2026-11-02T09:00:00+08:00, got "next monday"'),
    "negative seed": (
        '[scenario]\nname = "t"\nseed = -4\nduration = "1h"\n' + BANK + WECHAT,
        "scenario.seed", "expected an integer >= 0, got -4"),
    "name with spaces": (
        '[scenario]\nname = "my test"\nseed = 1\nduration = "1h"\n' + BANK + WECHAT,
        "scenario.name", 'expected a name of letters, digits, _ . - (no spaces), got "my test"'),
    "bad distribution": (
        BASE + '[network]\nlatency = {dist = "gauss", mean = 5}\n',
        "network.latency.dist", 'expected one of "fixed", "uniform", "normal", "lognormal", '
        '"exponential", got "gauss"'),
    "link override to an unknown node": (
        BASE + '[network.links."paysys->bnak"]\nlatency = 5\n',
        'network.links."paysys->bnak"', 'unknown node "bnak"; expected nodes among paysys, bank, '
        'wechat, merchant:M001, merchant:M002, got "paysys->bnak"'),
    "unknown magic card": (
        BASE + '[population]\nmagic_cards = {"1234" = 0.1}\n',
        "population.magic_cards.1234", 'expected one of "4242", "0002", "9995", "0119", "3220", '
        'got "1234"'),
    "magic card shares above 1": (
        BASE + '[population]\nmagic_cards = {"4242" = 0.7, "0002" = 0.6}\n',
        "population.magic_cards", "expected shares summing to at most 1, got a sum of 1.3"),
    "curve of the wrong length": (
        BASE + "[traffic]\ncurve = [1.0, 2.0]\n",
        "traffic.curve", "expected a list of exactly 24 hourly multipliers, got [1.0, 2.0]"),
    "rate not finite": (
        BASE + "[traffic]\nrate_per_min = inf\n",
        "traffic.rate_per_min", "expected a number > 0, got inf"),
    "unknown currency": (
        BASE + '[traffic]\ncurrency = "XBT"\n',
        "traffic.currency", 'expected one of "CNY", "USD", "EUR", "HKD", "JPY", got "XBT"'),
    "unknown locale": (
        BASE + '[population]\nlocale = "xx_XX"\n',
        "population.locale", 'expected a Faker locale such as "zh_CN" or "en_US", got "xx_XX"'),
    "unknown routing policy": (
        BASE + '[routing]\npolicy = "cheapest"\n',
        "routing.policy", 'expected one of "priority", "lowest_cost", got "cheapest"'),
    "unknown sign type": (
        BASE + '[merchants]\nsign_types = ["MD5", "RSA"]\n',
        "merchants.sign_types[1]", 'expected one of "MD5", "HMAC-SHA256", got "RSA"'),
    "notification schedule entry": (
        BASE + '[notifications]\nschedule = ["15s", "0s"]\n',
        "notifications.schedule[1]", 'expected a duration > 0, got "0s"'),
    "TOML syntax error": (
        BASE + "[risk]\nvelocity_max = = 5\n",
        "line 12, column 16", "TOML syntax error: Invalid value"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_file_gives_one_line_naming_file_key_and_expectation(tmp_path, case):
    text, key, message = BAD[case]
    err = fail(tmp_path, text)
    path = str(tmp_path / "x.toml")
    assert (err.path, err.key, err.message) == (path, key, message)
    assert str(err) == f"{path}: {key}: {message}"
    assert "\n" not in str(err)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert str(info.value) == f"{path}: no such file; expected a TOML scenario file"
    assert info.value.key == ""


def test_a_directory(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory; expected a TOML scenario file"


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.toml"
    path.write_text(BASE)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)  # root reads a chmod 000 file anyway
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert str(info.value) == f"{path}: cannot read the file: Permission denied"


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.encode() + b'# caf\xe9\n')
    with pytest.raises(ScenarioError) as info:
        load(path)
    offset = len(BASE) + len("# caf")
    assert str(info.value) == f"{path}: expected UTF-8 text, got a bad byte at offset {offset}"


def test_toml_error_at_end_of_document():
    with pytest.raises(ScenarioError) as info:
        loads(BASE + 'x = "unterminated')
    assert info.value.path == "<string>"
    assert re.fullmatch(r"line \d+, column \d+|end of document", info.value.key)
    assert info.value.message.startswith("TOML syntax error: ")


def test_scenario_error_is_a_value_error_and_pickles():
    err = ScenarioError("a.toml", "risk.velocity_max", "expected an integer >= 1, got 0")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.key, again.message, str(again)) == (
        err.path, err.key, err.message,
        "a.toml: risk.velocity_max: expected an integer >= 1, got 0")


# -- shipped scenarios --------------------------------------------------------------------------
def test_the_four_scenarios_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"smoke", "bank-timeouts", "duplicate-notify",
                                         "merchant-down"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_loads_and_stays_modest(path):
    s = load(path)
    assert s.name == path.stem
    assert s.expectations.invariants == tuple(INVARIANTS)
    assert tomllib.loads(path.read_text())["expectations"]["invariants"] == "all"
    payments = s.traffic.rate_per_min * s.duration_ms / 60_000
    assert 100 <= payments <= 600  # a few hundred payments: they run in CI
    assert s.expectations.metrics


def faults_by_kind(name):
    return {f.kind: f for f in load(ROOT / "scenarios" / f"{name}.toml").faults}


def test_smoke_has_no_faults_and_mixed_traffic():
    s = load(ROOT / "scenarios" / "smoke.toml")
    assert s.faults == () and s.duration_ms == 3_600_000
    assert set(s.traffic.products) == {"quick", "platform"} and s.traffic.refund_probability > 0


def test_bank_timeouts_loses_replies_and_hangs_requests():
    faults = faults_by_kind("bank-timeouts")
    assert (faults["drop"].target, faults["drop"].probability) == ("bank->paysys", 0.3)
    assert (faults["hang"].target, faults["hang"].probability) == ("paysys->bank", 0.1)
    metrics = load(ROOT / "scenarios" / "bank-timeouts.toml").expectations.metrics
    assert metrics["unknown"] == (1, None) and metrics["unknown_resolved"] == (1, None)


def test_duplicate_notify_duplicates_and_delays_notifications():
    s = load(ROOT / "scenarios" / "duplicate-notify.toml")
    wechat = next(c for c in s.channels if c.kind == "wechat")
    assert wechat.duplicate_notify_probability == 0.5
    faults = faults_by_kind("duplicate-notify")
    assert faults["duplicate"].target == faults["latency"].target == "wechat->paysys"
    assert faults["latency"].extra is not None
    assert s.expectations.metrics["duplicate_channel_notifications"] == (1, None)


def test_merchant_down_window_is_shorter_than_the_retry_schedule():
    s = load(ROOT / "scenarios" / "merchant-down.toml")
    (down,) = s.faults
    assert (down.kind, down.target) == ("merchant_down", "merchant:M001")
    assert down.end_ms - down.start_ms == 2 * 3_600_000
    assert down.end_ms - down.start_ms < sum(s.notifications.schedule_ms)
    assert s.expectations.metrics["notification_retries"] == (1, None)
    assert s.expectations.metrics["notifications_dead"] == (None, 0)
    assert s.end_ms >= s.faults_end_ms + sum(s.notifications.schedule_ms)  # time to settle


# -- defaults and derived values ----------------------------------------------------------------
def test_defaults():
    s = loads(BASE)
    start = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
    assert (s.name, s.description, s.path, s.seed) == ("t", "", "<string>", 1)
    assert s.start_ms == int(start.timestamp()) * 1000
    assert (s.duration_ms, s.grace_ms) == (3_600_000, 26 * 3_600_000)
    p = s.population
    assert (p.users, p.merchants, p.locale, p.daily_limit, p.magic_cards, p.frozen_share) == (
        100, 2, "zh_CN", 1_000_000, {}, 0.0)
    assert p.bank_balance == Dist("uniform", (("low", 50000), ("high", 2000000)))
    assert p.wallet_balance == Dist("uniform", (("low", 0), ("high", 500000)))
    t = s.traffic
    assert (t.rate_per_min, t.curve, t.currency, t.products) == (
        5.0, (), "CNY", {"quick": 0.5, "platform": 0.5})
    assert t.amount == Dist("lognormal", (("median", 5000), ("p99", 300000)))
    assert t.refund_delay == Dist("exponential", (("mean", 600000),))
    assert t.pay_delay == Dist("lognormal", (("median", 20000), ("p99", 120000)))
    assert (t.refund_probability, t.partial_refund_probability, t.abandon_probability,
            t.otp_fail_probability, t.unsign_probability, t.double_submit_probability) == (
        0.1, 0.5, 0.05, 0.2, 0.01, 0.02)
    bank, wechat = s.channels
    assert (bank.products, wechat.products) == (("quick", "netbank", "withhold"), ("platform",))
    assert (bank.priority, bank.min_amount, bank.max_amount, bank.timeout_ms, bank.capacity,
            bank.max_queue_ms, bank.duplicate_notify_probability, bank.api_key) == (
        1, 1, 1_000_000_000, 3000, 50, 2000, 0.0, "key-bank")
    assert (bank.fee.rate_bp, bank.fee.fixed, bank.fee.minimum, bank.fee.maximum) == (0, 0, 0, 0)
    assert bank.service_time == Dist("lognormal", (("median", 80), ("p99", 500)))
    assert wechat.api_key == "key-wechat"
    assert s.network.latency == Dist("lognormal", (("median", 15), ("p99", 80)))
    assert s.network.links == {} and s.routing.policy == "priority"
    r = s.risk
    assert (r.max_amount, r.challenge_amount, r.velocity_window_ms, r.velocity_max) == (
        5_000_000, 200_000, 600_000, 5)
    m = s.merchants
    assert (m.fee_rate_bp, m.sign_types, m.endpoint_error_probability) == (
        60, ("MD5", "HMAC-SHA256"), 0.0)
    assert m.endpoint_latency == Dist("lognormal", (("median", 30), ("p99", 300)))
    assert s.notifications.schedule_ms[:4] == (15_000, 15_000, 30_000, 180_000)
    assert len(s.notifications.schedule_ms) == 15 and s.notifications.schedule_ms[-1] == 21_600_000
    assert s.faults == ()
    assert s.expectations.invariants == tuple(INVARIANTS) and s.expectations.metrics == {}
    assert s.merchant_ids == ("M001", "M002")


def test_a_full_file_is_read_into_the_dataclasses():
    s = loads(
        '[scenario]\nname = "full"\nseed = 9\nduration = "2h"\ngrace = "1h"\n'
        'start = "2026-01-01T00:00:00Z"\n'
        "[population]\nmerchants = 12\n"
        "[traffic]\ncurve = [" + ", ".join(["1"] * 23) + ", 2.5]\n"
        "products = {quick = 1}\n"
        '[[channels]]\nid = "icbc"\nkind = "bank"\npriority = 2\n'
        'fee = {rate_bp = 25, fixed = 10, min = 5, max = 900}\nlimits = {min = 100, max = 500}\n'
        'api_key = "s3cret"\n'
        '[network.links."paysys->icbc"]\nlatency = {dist = "fixed", value = 5}\n'
        '[routing]\npolicy = "lowest_cost"\n'
        + fault("down", '"paysys<->icbc"', start=600_000, end='"1h30m"')
        + fault("merchant_slow", '"merchant:*"', more="probability = 0.25\nextra = 2000\n")
        + fault("hang", '"merchant:M012->paysys"')
        + '[expectations]\ninvariants = ["conservation"]\n'
        "[expectations.metrics]\nsuccess_rate = {min = 0.5, max = 1}\nunknown = {max = 3}\n",
        path="full.toml",
    )
    assert s.start_ms == 1_767_225_600_000 and s.traffic.curve[-1] == 2.5
    (icbc,) = s.channels
    assert icbc.fee == Fee(rate_bp=25, fixed=10, minimum=5, maximum=900)
    assert (icbc.min_amount, icbc.max_amount, icbc.priority) == (100, 500, 2)
    assert icbc.api_key == "s3cret"
    assert s.network.links == {"paysys->icbc": Dist.fixed(5)}
    down, slow, hang = s.faults
    assert (down.index, down.start_ms, down.end_ms) == (0, 600_000, 5_400_000)
    assert down.probability == 1.0
    assert down.links == ("paysys->icbc", "icbc->paysys")
    assert (slow.index, slow.target, slow.extra, slow.probability, slow.links) == (
        1, "merchant:*", Dist.fixed(2000), 0.25, ())
    assert (hang.extra, hang.links) == (None, ("merchant:M012->paysys",))
    assert s.expectations.invariants == ("conservation",)
    assert s.expectations.metrics == {"success_rate": (0.5, 1.0), "unknown": (None, 3.0)}
    assert s.merchant_ids[-1] == "M012" and len(s.merchant_ids) == 12
    # windows: traffic 2 h, last fault ends at 1 h 30 m, grace 1 h
    assert s.traffic_end_ms == s.start_ms + 7_200_000
    assert s.faults_end_ms == s.start_ms + 5_400_000
    assert s.end_ms == s.start_ms + 7_200_000 + 3_600_000


def test_end_counts_faults_that_outlast_the_traffic():
    s = loads(BASE + fault(start='"0s"', end='"3h"'))
    assert s.faults_end_ms == s.start_ms + 3 * 3_600_000
    assert s.end_ms == s.start_ms + 3 * 3_600_000 + s.grace_ms
    assert loads(BASE).faults_end_ms == loads(BASE).start_ms + 3_600_000


def test_toml_date_time_and_iso_string_give_the_same_start():
    a = loads(HEAD + "start = 2026-11-02T09:00:00+08:00\n" + BANK + WECHAT)
    b = loads(HEAD + 'start = "2026-11-02T01:00:00+00:00"\n' + BANK + WECHAT)
    assert a.start_ms == b.start_ms == 1_793_581_200_000


def test_with_seed_changes_only_the_seed():
    s = loads(BASE)
    t = s.with_seed(77)
    assert t.seed == 77 and s.seed == 1 and t.traffic == s.traffic
    with pytest.raises(ValueError):
        s.with_seed(-1)


def test_scenarios_are_frozen():
    s = loads(BASE)
    with pytest.raises(AttributeError):
        s.seed = 3


# -- never a traceback --------------------------------------------------------------------------
VALID = tomllib.loads(BASE + fault("latency", more="extra = 100\n") + "[expectations.metrics]\n"
                      "unknown = {max = 2}\n")
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6,
)


def paths(data, prefix=()):
    """Every key path in a parsed TOML document (tables and arrays of tables)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield (*prefix, i)
            yield from paths(value, (*prefix, i))


PATHS = sorted(paths(VALID), key=str)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), junk)
def test_any_value_anywhere_gives_a_scenario_or_one_scenario_error(where, value):
    data = copy.deepcopy(VALID)
    node = data
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    try:
        from_dict(data, "fuzz.toml")
    except ScenarioError as e:
        assert str(e).startswith("fuzz.toml: ") and "\n" not in str(e)


# -- the reference ------------------------------------------------------------------------------
def test_docs_describe_every_key_and_name():
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    keys = {k for section in (*DEFAULTS.values(), *REQUIRED.values()) for k in section}
    from sim import checks  # the product families' names are in docs/products.md (generated)
    doc += (ROOT / "docs" / "products.md").read_text()
    names = keys | set(INVARIANTS) | set(METRICS) | set(FAULTS) | set(FLAWS)
    assert set(checks.INVARIANTS) <= set(INVARIANTS) and set(checks.METRICS) <= set(METRICS)
    names |= {p for f in FAULTS.values() for p in f.params}
    missing = sorted(k for k in names if f"`{k}`" not in doc)
    assert missing == []


def test_the_full_example_in_the_docs_loads():
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    example = doc.split("## A full example")[1].split("```toml\n")[1].split("```")[0]
    s = loads(example, "docs/scenarios.md")
    assert s.name == "example" and len(s.channels) == 2 and len(s.faults) == 3
    assert s.channels[0].api_key == "bank-secret" and s.traffic.amount.max == 4000000
    assert s.faults[1].links == ("paysys->wechat", "wechat->paysys")


def test_every_fault_family_and_the_paysys_section_parse():
    text = (BASE + fault("partition", '"paysys, wechat | bank"')
            + fault("drop", '"paysys<->bank"', more='messages = "replies"\n')
            + fault("rate_limit", '"bank"', more="max_per_s = 2\n")
            + fault("retry_storm", '"users"', more='interval = "500ms"\n')
            + fault("crash", '"paysys"', more='extra = {dist = "fixed", value = 2000}\n')
            + '[paysys]\nflaws = ["no_query", "no_cas"]\npartial_payment = "refund"\n')
    s = loads(text)
    partition, drop, rate, storm, crash = s.faults
    assert partition.target == "paysys,wechat|bank" and partition.family == "network"
    assert set(partition.links) == {"paysys->bank", "wechat->bank", "bank->paysys", "bank->wechat"}
    assert drop.params == {"messages": "replies"} and drop.links == ("paysys->bank", "bank->paysys")
    assert rate.params == {"max_per_s": 2} and rate.family == "channel"
    assert storm.params == {"retries": 5, "interval": 500}
    assert crash.params == {"point": "any"} and crash.extra.kind == "fixed"
    assert s.paysys.flaws == ("no_query", "no_cas") and s.paysys.partial_payment == "refund"
    assert s.paysys.late_success == "refund" and s.buggify is False


# -- the back office: [recon], [settlement], statement faults ----------------------------------

BACK_OFFICE_BAD = {
    "statement fault without recon": (
        BASE + fault("stmt_missing_row", '"bank"', '"0m"', '"1h"'),
        "faults[0].kind", 'expected a [recon] section: a stmt_missing_row fault acts on statement '
        'files, which only a reconciling payment system reads, got "stmt_missing_row"'),
    "currency fault on an alipay bill": (
        HEAD + BANK + WECHAT + 'statement = "alipay"\n[recon]\n'
        + fault("stmt_currency", '"wechat"', '"0m"', '"1h"'),
        "faults[0].target", 'expected the id of a channel whose statements are mt940 or wechat '
        'among bank, got "wechat"'),
    "bank writing a wechat bill": (
        HEAD + BANK + 'statement = "wechat"\n',
        "channels[0].statement", 'expected one of "mt940", got "wechat"'),
    "late before the first try": (
        BASE + '[recon]\ntime = "10h"\nlate_after = "9h"\n',
        "recon.late_after", 'expected a time of day at or after recon.time (10:00), got "9h"'),
    "a time of day past midnight": (
        BASE + '[recon]\ntime = "25h"\n',
        "recon.time", 'expected a time of day under 24h, like "10h" or "23h30m", got "25h"'),
    "unknown fee policy": (
        BASE + '[recon]\nfees = "ignore"\n',
        "recon.fees", 'expected one of "dispute", "adjust", got "ignore"'),
    "no payout bank": (
        BASE + "[settlement]\n",
        "settlement.payout_channel", "missing; expected the id of a bank channel among bank: "
        "merchants are paid out through it"),
    "payout through the platform": (
        BASE + '[settlement]\npayout_channel = "wechat"\n',
        "settlement.payout_channel", "expected the id of a bank channel among bank: merchants "
        'are paid out through it, got "wechat"'),
    "bad cycle": (
        BASE + '[settlement]\npayout_channel = "bank"\ncycle = "T+0"\n',
        "settlement.cycle", 'expected "D+0" (the same day), "T+1" (the next day) or "T+<n>" '
        '(n days later, a risk hold; n at most 99), got "T+0"'),
    "split to an unknown merchant": (
        BASE + '[settlement]\npayout_channel = "bank"\n[settlement.merchants.M001]\n'
        'splits = {M009 = 100}\n',
        "settlement.merchants.M001.splits.M009", 'expected a receiver among M001..M002, got "M009"'),
    "split to itself": (
        BASE + '[settlement]\npayout_channel = "bank"\n[settlement.merchants.M001]\n'
        'splits = {M001 = 100}\n',
        "settlement.merchants.M001.splits.M001", 'expected another merchant than the payer, '
        'got "M001"'),
    "splits over 100 %": (
        BASE + '[settlement]\npayout_channel = "bank"\nsplits = {M001 = 6000, M002 = 5000}\n',
        "settlement.splits", "expected splits totalling at most 9940 basis points (100 % less the "
        "merchants' fee rate, merchants.fee_rate_bp = 60), got {M001 = 6000, M002 = 5000}"),
    "splits and fee over 100 %": (
        BASE + '[settlement]\npayout_channel = "bank"\n[settlement.merchants.M001]\n'
        'splits = {M002 = 9950}\n',
        "settlement.merchants.M001.splits", "expected splits totalling at most 9940 basis points "
        "(100 % less the merchants' fee rate, merchants.fee_rate_bp = 60), got {M002 = 9950}"),
    "rule for an unknown merchant": (
        BASE + '[settlement]\npayout_channel = "bank"\n[settlement.merchants.M007]\ncycle = "D+0"\n',
        "settlement.merchants.M007", 'expected a merchant among M001..M002, got "M007"'),
}


@pytest.mark.parametrize("case", list(BACK_OFFICE_BAD), ids=list(BACK_OFFICE_BAD))
def test_bad_back_office_gives_one_line_naming_the_key(tmp_path, case):
    text, key, message = BACK_OFFICE_BAD[case]
    err = fail(tmp_path, text)
    assert (err.key, err.message) == (key, message)


def test_back_office_sections_parse_with_defaults_and_per_merchant_rules():
    s = loads(BASE + WECHAT.replace('"wechat"', '"alipay"', 1) + 'statement = "alipay"\n'
              + 'booked_fee = {rate_bp = 30}\n[recon]\nfees = "adjust"\n'
              + '[settlement]\npayout_channel = "bank"\nreserve = 100000\ncycle = "T+2"\n'
              + '[settlement.merchants.M002]\ncycle = "D+0"\nsplits = {M001 = 250}\n'
              + fault("stmt_late", '"bank"', '"0m"', '"1h"', 'delay = "3h"\n'))
    bank, wechat, alipay = s.channels
    assert (bank.statement, wechat.statement, alipay.statement) == ("mt940", "wechat", "alipay")
    assert alipay.booked_fee.rate_bp == 30 and bank.booked_fee is None
    assert (s.recon.time_ms, s.recon.late_after_ms, s.recon.carry, s.recon.fees) == (
        10 * 3_600_000, 12 * 3_600_000, 1, "adjust")
    st = s.settlement
    assert (st.payout_channel, st.reserve, st.default.cycle) == ("bank", 100000, "T+2")
    assert st.merchants["M002"].cycle == "D+0" and st.merchants["M002"].splits == (("M001", 250),)
    assert st.merchants["M002"].min_amount == 0 and "M001" not in st.merchants
    assert s.faults[0].family == "statement" and s.faults[0].params == {"delay": 3 * 3_600_000}
