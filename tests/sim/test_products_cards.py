"""The card-network and carrier-billing products end to end: both product scenarios pass with
their failure modes proven by metrics, the kinds' options parse with errors naming their key
path, the oracle's card checks catch what they must, and lost replies are resolved by queries."""

import json
import sqlite3
from pathlib import Path

import pytest

from sim import runner
from sim.checks.cards import carrier_cap_respected, unionpay_issuer_routed
from sim.scenario import ScenarioError, load, loads

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "products"
FILES = [DIR / "unionpay.toml", DIR / "carrier.toml"]


def _run(scenario, tmp_path: Path):
    result = runner.run(scenario, str(tmp_path / "run.db"))
    failed = [f"{e.name}: {e.detail}" for e in result.verdict.expectations if not e.ok]
    assert result.verdict.ok, "; ".join(failed)
    return result


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_product_scenario_passes_and_proves_its_failure_modes(path, tmp_path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ")
    scenario = load(str(path))
    assert scenario.name == path.stem and scenario.duration_ms <= 86_400_000
    floors = {n for n, (low, _) in scenario.expectations.metrics.items() if low}
    assert len(floors) >= 4
    m = _run(scenario, tmp_path).verdict.metrics
    if path.stem == "unionpay":
        assert m["unionpay_failovers"] >= 10 and m["issuer_refunds_rejected"] >= 1
        assert m["issuer_declines"] >= 5 and m["unionpay_refunds"] >= 20
    else:
        assert m["carrier_capped"] >= 20 and m["carrier_declines"] >= 1
        assert m["carrier_refunds"] >= 10


def test_lost_replies_are_resolved_by_queries(tmp_path):
    text = (DIR / "carrier.toml").read_text(encoding="utf-8").replace(
        "[expectations]", """[[faults]]
kind = "drop"
target = "paysys<->carrier"
start = "5m"
end = "40m"
probability = 0.15

[expectations]""").replace("unknown = {max = 0}", "unknown = {min = 1}")
    m = _run(loads(text, "carrier-drops.toml"), tmp_path).verdict.metrics
    assert m["unknown"] >= 1 and m["unknown_resolved"] == m["unknown"]


UP = """
[scenario]
name = "t"
seed = 1
duration = "1m"
[traffic]
products = {unionpay = 1.0}
[[channels]]
id = "up"
kind = "unionpay"
options = OPTIONS
"""


@pytest.mark.parametrize("options, where", [
    ('{banks = ["a"]}', "channels[0].options.banks"),
    ('{issuers = []}', "channels[0].options.issuers"),
    ('{issuers = ["a", "a"]}', "channels[0].options.issuers[1]"),
    ('{issuers = ["A"]}', "channels[0].options.issuers[0]"),
    ('{issuers = ["a"], issuer_down = {b = ["1m", "2m"]}}', "channels[0].options.issuer_down.b"),
    ('{issuer_down = {ccb = ["1m"]}}', "channels[0].options.issuer_down.ccb"),
    ('{issuer_down = {ccb = ["2m", "1m"]}}', "channels[0].options.issuer_down.ccb[1]"),
    ('{issuer_down = {ccb = [["1m", "2m"], ["x", "3m"]]}}',
     "channels[0].options.issuer_down.ccb[1][0]"),
])
def test_unionpay_option_errors_name_the_key(options, where):
    with pytest.raises(ScenarioError) as err:
        loads(UP.replace("OPTIONS", options), "t.toml")
    assert where in str(err.value)


def test_unionpay_options_parse_relative_and_absolute_windows():
    sc = loads(UP.replace("OPTIONS", '{issuer_down = {ccb = [["1m", "2m"], '
                                     '["2026-11-02T10:00:00+08:00", "2026-11-02T11:00:00+08:00"]]}}'),
               "t.toml")
    (channel,) = sc.channels
    assert channel.options["issuers"] == ["icbc", "ccb", "abc"]
    assert channel.options["issuer_down"]["ccb"] == [
        (("after", 60_000), ("after", 120_000)),
        (("at", 1_793_584_800_000), ("at", 1_793_588_400_000))]


@pytest.mark.parametrize("options, where", [
    ("{monthly_cap = 0}", "channels[0].options.monthly_cap"),
    ("{per_charge_max = 1.5}", "channels[0].options.per_charge_max"),
    ("{cap = 1}", "channels[0].options.cap"),
])
def test_carrier_option_errors_name_the_key(options, where):
    text = UP.replace('"unionpay"', '"carrier"').replace("unionpay =", "carrier =")
    with pytest.raises(ScenarioError) as err:
        loads(text.replace("OPTIONS", options), "t.toml")
    assert where in str(err.value)


def _db(events: list[tuple], txns: list[tuple]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, at_ms INTEGER, kind TEXT, "
                 "ref TEXT, src TEXT, dst TEXT, data TEXT)")
    conn.execute("CREATE TABLE truth_txns (node TEXT, ref TEXT, channel_ref TEXT, kind TEXT, "
                 "amount INTEGER, fee INTEGER, currency TEXT, status TEXT, at_ms INTEGER)")
    conn.executemany("INSERT INTO events (at_ms, kind, ref, src, dst, data) VALUES "
                     "(?,?,?,?,'',?)", [(a, k, r, s, json.dumps(d)) for a, k, r, s, d in events])
    conn.executemany("INSERT INTO truth_txns VALUES (?,?,?,?,?,0,'CNY','SUCCESS',?)", txns)
    return conn


def _charge(n: int, amount: int, kind: str = "pay", phone: str = "138", cap: int = 1000):
    ref, txn = f"P{n}", f"CB{n}"
    return ((n, "carrier.txn", ref, "carrier", {"channel_ref": txn, "phone": phone,
                                                 "month": 202611, "cap": cap}),
            ("carrier", ref, txn, kind, amount, n))


def test_carrier_cap_respected_catches_a_phone_over_its_cap():
    within = [_charge(1, 600), _charge(2, 300, "refund"), _charge(3, 700)]
    assert carrier_cap_respected(_db([e for e, _ in within], [t for _, t in within])) == []
    over = within + [_charge(4, 1)]
    found = carrier_cap_respected(_db([e for e, _ in over], [t for _, t in over]))
    assert [(v["ref"], v["diff"]) for v in found] == [("P4", 1)]
    other_phone = within + [_charge(4, 900, phone="139")]
    assert carrier_cap_respected(_db([e for e, _ in other_phone],
                                     [t for _, t in other_phone])) == []
    unseen = [_charge(1, 10)]
    found = carrier_cap_respected(_db([unseen[0][0]], [unseen[0][1],
                                                       ("carrier", "P9", "CB9", "pay", 5, 9)]))
    assert [v["ref"] for v in found] == ["P9"]
    assert carrier_cap_respected(sqlite3.connect(":memory:")) == []


def test_unionpay_issuer_routed_catches_a_charge_at_the_wrong_issuer():
    good = (1, "unionpay.txn", "P1", "up", {"kind": "pay", "issuer": "ccb", "amount": 5,
                                             "account": "issuer:ccb:card:6222020000010011"})
    bad = (2, "unionpay.txn", "P2", "up", {"kind": "pay", "issuer": "ccb", "amount": 7,
                                            "account": "issuer:icbc:card:6222020000000011"})
    assert unionpay_issuer_routed(_db([good], [])) == []
    found = unionpay_issuer_routed(_db([good, bad], []))
    assert [(v["ref"], v["diff"]) for v in found] == [("P2", 7)]
