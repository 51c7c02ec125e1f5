"""sim.network: each fault kind acts on its directed link inside its window, and only there;
the event log names what happened; probabilities and seeds behave; streams are independent.

Faults are declared the way scenario files declare them (sim.scenario.from_dict). The window
under test is minutes 10 to 20; messages leave at minute 15 (inside), 5 and 25 (outside)."""

import pytest
import simpy

from sim.eventlog import EventLog
from sim.network import Fired, Network, Plan
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
    assert net.plan("paysys", "merchant:M001", INSIDE) == Plan([], [Fired("msg.refused", 0)],
                                                               "refused")
    assert net.plan("paysys", "merchant:M002", INSIDE) == Plan([LAT])
    assert net.plan("paysys", "merchant:M001", AFTER) == Plan([LAT])


# -- probabilities and seeds ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop", "duplicate", "hang", "down", "latency"])
def test_probability_zero_never_fires(kind):
    extra = {"extra": 1_000} if kind == "latency" else {}
    net = Network(scenario(fault(kind, probability=0.0, **extra)))
    plans = [net.plan("paysys", "bank", INSIDE + i) for i in range(500)]
    assert plans == [Plan([LAT])] * 500


def test_probability_is_a_share_of_the_messages():
    net = Network(scenario(fault("drop", probability=0.3)))
    dropped = sum(net.plan("paysys", "bank", INSIDE + i).delays == [] for i in range(2_000))
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
    assert any(p.fired for p in first)  # the faults did act


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


# -- jitter, reorder, reset, partition, and the messages they act on -----------------------------

REPLY = {"type": "bank.pay.reply", "req_id": "P0000000001.p1", "result": "SUCCESS"}


class Replier(Recorder):
    """Answers every bank.pay with REPLY after 5 ms."""

    def handle(self, src, body, now):
        super().handle(src, body, now)
        answers = body["type"] == "bank.pay"
        return [("reply", REPLY, 5)] if answers else []


def run_world(sc, sends, replier="bank"):
    """Like deliver(), with `replier` answering; `sends` are (at_ms, src, dst, body)."""
    env = simpy.Environment(initial_time=sc.start_ms)
    log = EventLog()
    world = World(env, Network(sc), log)
    nodes = {name: (Replier if name == replier else Recorder)(name)
             for name in ("paysys", "bank", "wechat")}
    for node in nodes.values():
        world.add(node)
    for at, src, dst, body in sends:
        world.later(at - sc.start_ms, world.send, src, dst, body)
    env.run()
    return nodes, log


def numbered(n, start=INSIDE, step=1):
    return [(start + i * step, "paysys", "bank", {"type": "bank.pay", "req_id": f"P{i:010d}.p1"})
            for i in range(n)]


def arrival_order(node):
    return [body["req_id"] for _, _, body in node.got]


def test_jitter_moves_each_latency_within_plus_minus_extra_and_messages_overtake():
    sends = numbered(200, step=100)
    nodes, log = run_world(scenario(fault("jitter", extra=2_000)), sends, replier="")
    got = nodes["bank"].got
    assert len(got) == 200
    sent_at = {body["req_id"]: at for at, _, _, body in sends}
    jitters = {row[5]["body"]["req_id"]: row[5] for row in log.rows if row[1] == "msg.jitter"}
    assert len(jitters) == 200 and {d["fault_id"] for d in jitters.values()} == {0}
    for at, _, body in got:
        shift = jitters[body["req_id"]]["extra_ms"]
        assert -2_000 <= shift <= 2_000
        assert at - sent_at[body["req_id"]] == max(1, LAT + shift)  # clamped at 1 ms
    assert arrival_order(nodes["bank"]) != [body["req_id"] for *_, body in sends]
    assert any(at - sent_at[body["req_id"]] == 1 for at, _, body in got)  # some were clamped


def test_reorder_holds_a_message_back_so_a_later_one_overtakes_it():
    sc = scenario(fault("reorder", start="10m", end="15m", extra=500))
    first, second = T0 + 15 * MIN - 1, T0 + 15 * MIN  # inside, then just outside the window
    sends = [(first, "paysys", "bank", {"type": "bank.pay", "req_id": "A.p1"}),
             (second, "paysys", "bank", {"type": "bank.pay", "req_id": "B.p1"})]
    nodes, log = run_world(sc, sends, replier="")
    assert [(at, body["req_id"]) for at, _, body in nodes["bank"].got] == [
        (second + LAT, "B.p1"), (first + LAT + 500, "A.p1")]
    assert fault_events_of(log, "msg.reorder") == [(first, "A", "paysys", "bank", 0, 500)]


def fault_events_of(log, kind):
    return [(r[0], r[2], r[3], r[4], r[5]["fault_id"], r[5]["extra_ms"])
            for r in log.rows if r[1] == kind]


def test_reset_delivers_the_request_answers_the_sender_reset_and_loses_the_reply():
    nodes, log = run_world(scenario(fault("reset")), [(INSIDE, "paysys", "bank", BODY)])
    assert nodes["bank"].got == [(INSIDE + LAT, "paysys", BODY)]  # it was done
    assert nodes["paysys"].got == [  # at once, and never the reply
        (INSIDE, "bank", {"type": "net.error", "error": "reset", "request": BODY})]
    assert fault_events_of(log, "msg.reset") == [(INSIDE, "P0000000001", "paysys", "bank", 0, 0)]
    dropped = [r for r in log.rows if r[1] == "msg.drop"]
    assert [(r[0], r[3], r[4], r[5]["fault_id"], r[5]["body"]) for r in dropped] == [
        (INSIDE + LAT, "bank", "paysys", 0, REPLY)]
    assert not any(r[1] == "msg.deliver" and r[5]["type"] == "bank.pay.reply" for r in log.rows)


def test_without_a_reset_the_reply_comes_back():
    nodes, log = run_world(scenario(), [(INSIDE, "paysys", "bank", BODY)])
    assert nodes["paysys"].got == [(INSIDE + LAT + 5 + LAT, "bank", REPLY)]


def test_replies_only_fault_leaves_requests_alone():
    sc = scenario(fault("drop", target="paysys<->bank", messages="replies"))
    nodes, log = run_world(sc, [(INSIDE, "paysys", "bank", BODY)])
    assert nodes["bank"].got == [(INSIDE + LAT, "paysys", BODY)]
    assert nodes["paysys"].got == []
    assert fault_events_of(log, "msg.drop") == [
        (INSIDE + LAT + 5, "P0000000001", "bank", "paysys", 0, 0)]


def test_requests_only_fault_leaves_replies_alone():
    sc = scenario(fault("down", target="bank->paysys", messages="requests"))
    nodes, log = run_world(sc, [(INSIDE, "paysys", "bank", BODY),
                                (INSIDE, "bank", "paysys", {"type": "bank.notify"})])
    assert nodes["paysys"].got == [(INSIDE + LAT + 5 + LAT, "bank", REPLY)]  # the reply passed
    assert [(r[1], r[5]["type"]) for r in log.rows if r[1] == "msg.refused"] == [
        ("msg.refused", "bank.notify")]
    assert (INSIDE, "paysys", {"type": "net.error", "error": "refused",
                               "request": {"type": "bank.notify"}}) in nodes["bank"].got


@pytest.mark.parametrize("kind, extra", [("latency", 900), ("jitter", 900), ("reorder", 900),
                                         ("hang", None), ("duplicate", None), ("reset", None)])
def test_a_fault_on_the_other_messages_does_not_draw_or_act(kind, extra):
    more = {"extra": extra} if extra else {}
    bodies = [BODY, REPLY] * 100
    quiet = Network(scenario())
    faulty = Network(scenario(fault(kind, messages="replies", probability=0.5, **more)))
    for i, body in enumerate(bodies):
        a = quiet.plan("paysys", "bank", INSIDE + i, body)
        b = faulty.plan("paysys", "bank", INSIDE + i, body)
        if body is BODY:
            assert a == b
    assert any(faulty.plan("paysys", "bank", INSIDE, REPLY).fired for _ in range(20))


def test_partition_loses_every_message_both_ways_between_the_groups():
    sc = scenario(fault("partition", target="paysys | bank, wechat"))
    nodes, log = run_world(sc, [(INSIDE, "paysys", "bank", BODY),
                                (INSIDE, "bank", "paysys", {"type": "bank.notify"}),
                                (INSIDE, "wechat", "paysys", {"type": "wx.notify"}),
                                (INSIDE, "bank", "wechat", {"type": "x"})])
    assert nodes["bank"].got == [] and nodes["paysys"].got == []
    assert nodes["wechat"].got == [(INSIDE + LAT, "bank", {"type": "x"})]  # same side
    assert [(r[3], r[4], r[5]["fault_id"]) for r in log.rows if r[1] == "msg.partition"] == [
        ("paysys", "bank", 0), ("bank", "paysys", 0), ("wechat", "paysys", 0)]


def test_partition_heals_at_the_end_of_its_window():
    sc = scenario(fault("partition", target="paysys | bank"))
    nodes, log = run_world(sc, [(AFTER, "bank", "paysys", {"type": "bank.notify"})])
    assert nodes["paysys"].got == [(AFTER + LAT, "bank", {"type": "bank.notify"})]


def test_new_kinds_on_another_link_do_not_change_this_links_latencies():
    links = [("paysys", "bank"), ("paysys", "wechat"), ("wechat", "paysys")]
    quiet = plans(Network(scenario(latency=LOGNORMAL)), 200, links)
    faulty = plans(Network(scenario(
        fault("jitter", target="paysys<->wechat", start="0s", end="1h", probability=0.5,
              extra=300),
        fault("reorder", target="paysys->wechat", start="0s", end="1h", probability=0.5,
              extra=500),
        fault("reset", target="wechat->paysys", start="0s", end="1h", probability=0.5),
        fault("partition", target="wechat | paysys", start="0s", end="1h", probability=0.2),
        latency=LOGNORMAL)), 200, links)
    assert quiet[0::3] == faulty[0::3]
    assert quiet[1::3] != faulty[1::3] and quiet[2::3] != faulty[2::3]


def test_new_kinds_are_deterministic_per_seed():
    faults = (fault("jitter", target="paysys<->bank", probability=0.5, extra=300),
              fault("reorder", target="paysys->wechat", probability=0.3, extra=700),
              fault("reset", target="paysys->bank", probability=0.2),
              fault("partition", target="wechat | paysys", probability=0.1))
    first = plans(Network(scenario(*faults, latency=LOGNORMAL, seed=5)))
    assert first == plans(Network(scenario(*faults, latency=LOGNORMAL, seed=5)))
    assert first != plans(Network(scenario(*faults, latency=LOGNORMAL, seed=6)))
    kinds = {f.kind for p in first for f in p.fired}
    assert kinds == {"msg.jitter", "msg.reorder", "msg.reset", "msg.partition"}


# -- BUGGIFY -------------------------------------------------------------------------------------


def test_buggify_extra_delay_adds_one_to_five_seconds_and_is_logged_by_point():
    sc = scenario()
    net = Network(sc, buggify=lambda point: point == "net.extra_delay")
    for i in range(50):
        plan = net.plan("paysys", "bank", INSIDE + i, BODY)
        (fired,) = plan.fired
        assert fired.kind == "msg.delay" and fired.fault_id is None
        assert fired.point == "net.extra_delay" and 1_000 <= fired.extra_ms <= 5_000
        assert plan.delays == [LAT + fired.extra_ms]
    env = simpy.Environment(initial_time=sc.start_ms)
    world = World(env, Network(sc, buggify=lambda point: point == "net.extra_delay"), EventLog())
    world.add(Recorder("bank"))
    world.send("paysys", "bank", BODY)
    (row,) = [r for r in world.log.rows if r[1] == "msg.delay"]
    assert row[5]["buggify"] == "net.extra_delay" and "fault_id" not in row[5]


def test_buggify_duplicate_delivers_a_second_copy_later():
    net = Network(scenario(), buggify=lambda point: point == "net.duplicate")
    plan = net.plan("paysys", "bank", INSIDE, BODY)
    assert plan.delays == [LAT, 2 * LAT]
    assert plan.fired == [Fired("msg.duplicate", None, 0, "net.duplicate")]


def test_buggify_that_never_fires_changes_nothing():
    first = plans(Network(scenario(*MIXED, latency=LOGNORMAL, seed=5)))
    assert first == plans(Network(scenario(*MIXED, latency=LOGNORMAL, seed=5),
                                  buggify=lambda point: False))
