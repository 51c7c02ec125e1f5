"""sim.network: each fault kind acts on its directed link inside its window, and only there;
the event log names what happened; probabilities and seeds behave; streams are independent.

Faults are declared the way scenario files declare them (sim.scenario.from_dict). The window
under test is minutes 10 to 20; messages leave at minute 15 (inside), 5 and 25 (outside)."""

import pytest
import simpy

from sim.eventlog import EventLog
from sim.network import Fired, Network
from sim.scenario import from_dict
from sim.world import World

LAT = 10  # fixed one-way latency
MIN = 60_000
BODY = {"type": "bank.pay", "req_id": "P0000000001.p1"}
FAULT_EVENTS = {"msg.drop", "msg.duplicate", "msg.hang", "msg.delay", "msg.refused"}


def scenario(*faults, seed=1, latency=LAT):
    return from_dict({
        "scenario": {"name": "net", "seed": seed, "duration": "1h"},
        "population": {"merchants": 2},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
        "network": {"latency": latency},
        "faults": list(faults),
    })


def fault(kind, target="paysys->bank", start="10m", end="20m", **more):
    return {"kind": kind, "target": target, "start": start, "end": end, **more}


T0 = scenario().start_ms
INSIDE, BEFORE, AFTER = T0 + 15 * MIN, T0 + 5 * MIN, T0 + 25 * MIN


class Recorder:
    """A sans-IO node that records what it receives."""

    def __init__(self, name):
        self.name = name
        self.got: list[tuple] = []

    def handle(self, src, body, now):
        self.got.append((now, src, body))
        return []

    def next_deadline(self):
        return None

    def on_timer(self, now):
        return []


def deliver(sc, *sends):
    """Run a world with recorder nodes; `sends` are (at_ms, src, dst). Returns (nodes, log)."""
    env = simpy.Environment(initial_time=sc.start_ms)
    log = EventLog()
    world = World(env, Network(sc), log)
    nodes = {name: Recorder(name) for name in ("paysys", "bank", "wechat")}
    for node in nodes.values():
        world.add(node)
    for at, src, dst in sends:
        world.later(at - sc.start_ms, world.send, src, dst, BODY)
    env.run()
    return nodes, log


def fault_events(log):
    return [(row[0], row[1], row[2], row[3], row[4]) for row in log.rows if row[1] in FAULT_EVENTS]


# -- each kind, inside its window ---------------------------------------------------------------

ACTING = {  # fault -> (arrival times at the bank, event kind, extra_ms recorded)
    "drop": (fault("drop"), [], "msg.drop", None),
    "duplicate": (fault("duplicate"), [INSIDE + LAT, INSIDE + LAT], "msg.duplicate", None),
    "hang forever": (fault("hang"), [], "msg.hang", None),
    "hang 5 s": (fault("hang", extra=5_000), [INSIDE + LAT + 5_000], "msg.hang", 5_000),
    "latency 3 s": (fault("latency", extra=3_000), [INSIDE + LAT + 3_000], "msg.delay", 3_000),
}


@pytest.mark.parametrize("name", list(ACTING))
def test_fault_acts_inside_its_window_and_is_logged(name):
    spec, arrivals, kind, extra = ACTING[name]
    nodes, log = deliver(scenario(spec), (INSIDE, "paysys", "bank"))
    assert [t for t, _, _ in nodes["bank"].got] == arrivals
    assert all(src == "paysys" and body == BODY for _, src, body in nodes["bank"].got)
    assert nodes["paysys"].got == []  # lost, hung and late messages tell the sender nothing
    assert fault_events(log) == [(INSIDE, kind, "P0000000001", "paysys", "bank")]
    data = next(row[5] for row in log.rows if row[1] == kind)
    assert data["fault_id"] == 0
    assert data["type"] == "bank.pay"
    if extra is not None:
        assert data["extra_ms"] == extra


def test_down_link_refuses_at_once_with_net_error_to_the_sender():
    nodes, log = deliver(scenario(fault("down")), (INSIDE, "paysys", "bank"))
    assert nodes["bank"].got == []
    assert nodes["paysys"].got == [
        (INSIDE, "bank", {"type": "net.error", "error": "refused", "request": BODY})]
    assert fault_events(log) == [(INSIDE, "msg.refused", "P0000000001", "paysys", "bank")]


ALL_KINDS = {
    "drop": fault("drop"),
    "duplicate": fault("duplicate"),
    "hang": fault("hang"),
    "hang with extra": fault("hang", extra=5_000),
    "latency": fault("latency", extra=3_000),
    "down": fault("down"),
}


@pytest.mark.parametrize("name", list(ALL_KINDS))
def test_outside_the_window_nothing_happens(name):
    just_after = T0 + 20 * MIN + 1
    nodes, log = deliver(scenario(ALL_KINDS[name]), (BEFORE, "paysys", "bank"),
                         (just_after, "paysys", "bank"), (AFTER, "paysys", "bank"))
    assert [t for t, _, _ in nodes["bank"].got] == [BEFORE + LAT, just_after + LAT, AFTER + LAT]
    assert nodes["paysys"].got == []
    assert fault_events(log) == []


@pytest.mark.parametrize("name", list(ALL_KINDS))
def test_the_window_starts_at_its_start(name):
    nodes, log = deliver(scenario(ALL_KINDS[name]), (T0 + 10 * MIN, "paysys", "bank"))
    assert len(fault_events(log)) == 1


@pytest.mark.parametrize("name", list(ALL_KINDS))
def test_the_other_direction_is_untouched(name):
    nodes, log = deliver(scenario(ALL_KINDS[name]), (INSIDE, "bank", "paysys"),
                         (INSIDE, "paysys", "wechat"))
    assert nodes["paysys"].got == [(INSIDE + LAT, "bank", BODY)]
    assert nodes["wechat"].got == [(INSIDE + LAT, "paysys", BODY)]
    assert nodes["bank"].got == []
    assert fault_events(log) == []


def test_both_directions_target_acts_on_each_direction():
    nodes, log = deliver(scenario(fault("drop", target="paysys<->bank")),
                         (INSIDE, "paysys", "bank"), (INSIDE, "bank", "paysys"))
    assert nodes["bank"].got == [] and nodes["paysys"].got == []
    assert [e[1:] for e in fault_events(log)] == [
        ("msg.drop", "P0000000001", "paysys", "bank"), ("msg.drop", "P0000000001", "bank", "paysys")]


def test_merchant_down_refuses_every_link_into_that_merchant_only():
    net = Network(scenario(fault("merchant_down", target="merchant:M001")))
    assert net.plan("paysys", "merchant:M001", INSIDE) == (None, [Fired("msg.refused", 0)])
    assert net.plan("paysys", "merchant:M002", INSIDE) == ([LAT], [])
    assert net.plan("paysys", "merchant:M001", AFTER) == ([LAT], [])


# -- probabilities and seeds ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop", "duplicate", "hang", "down", "latency"])
def test_probability_zero_never_fires(kind):
    extra = {"extra": 1_000} if kind == "latency" else {}
    net = Network(scenario(fault(kind, probability=0.0, **extra)))
    plans = [net.plan("paysys", "bank", INSIDE + i) for i in range(500)]
    assert plans == [([LAT], [])] * 500


def test_probability_is_a_share_of_the_messages():
    net = Network(scenario(fault("drop", probability=0.3)))
    dropped = sum(net.plan("paysys", "bank", INSIDE + i)[0] == [] for i in range(2_000))
    assert 500 <= dropped <= 700  # 600 expected, sd ~20


MIXED = (
    fault("drop", target="bank->paysys", probability=0.3),
    fault("duplicate", target="paysys->bank", probability=0.3),
    fault("latency", target="paysys<->wechat", probability=0.5,
          extra={"dist": "uniform", "low": 100, "high": 5_000}),
    fault("hang", target="paysys->wechat", probability=0.2, extra={"dist": "exponential", "mean": 900}),
)
LOGNORMAL = {"dist": "lognormal", "median": 15, "p99": 80}
LINKS = [("paysys", "bank"), ("bank", "paysys"), ("paysys", "wechat"), ("wechat", "paysys")]


def plans(net, n=300, links=LINKS):
    return [net.plan(src, dst, T0 + 9 * MIN + i * 1_000) for i in range(n) for src, dst in links]


def test_same_seed_gives_identical_plans():
    first = plans(Network(scenario(*MIXED, latency=LOGNORMAL, seed=5)))
    again = plans(Network(scenario(*MIXED, latency=LOGNORMAL, seed=5)))
    assert first == again
    assert any(fired for _, fired in first)  # the faults did act


def test_another_seed_gives_other_plans():
    first = plans(Network(scenario(*MIXED, latency=LOGNORMAL, seed=5)))
    other = plans(Network(scenario(*MIXED, latency=LOGNORMAL, seed=6)))
    assert first != other


def test_a_fault_on_another_link_does_not_change_this_links_latencies():
    links = [("paysys", "bank"), ("paysys", "wechat"), ("wechat", "paysys"),
             ("paysys", "merchant:M001")]
    quiet = plans(Network(scenario(latency=LOGNORMAL)), 200, links)
    faulty = plans(Network(scenario(
        fault("duplicate", target="paysys<->wechat", start="0s", end="1h"),
        fault("latency", target="paysys->wechat", start="0s", end="1h", probability=0.5, extra=500),
        fault("merchant_down", target="merchant:M001", start="0s", end="1h", probability=0.5),
        latency=LOGNORMAL)), 200, links)
    assert quiet[0::4] == faulty[0::4]  # paysys->bank: same latencies, nothing fired
    assert quiet[1::4] != faulty[1::4]  # (the faults did act on their own links)
    assert quiet[3::4] != faulty[3::4]
