"""sim.world: the SimPy adapter, driven by tiny fake sans-IO nodes (plain classes with
handle/next_deadline/on_timer). Delivery after the link latency, replies to the requester,
timers that fire, re-arm and are pre-empted by an earlier deadline, crashes named, URL hosts."""

import pytest
import simpy

from sim.eventlog import EventLog
from sim.faults import CRASH_DOWNTIME_MS
from sim.network import Network
from sim.scenario import from_dict
from sim.world import NodeCrash, World

LAT = 10  # default one-way latency of every link (fixed)
TO_BANK = 7  # the override of the one direction paysys->bank


def _scenario():
    return from_dict({
        "scenario": {"name": "world", "seed": 1, "duration": "1h"},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
        "network": {"latency": LAT, "links": {"paysys->bank": {"latency": TO_BANK}}},
    })


SCENARIO = _scenario()
T0 = SCENARIO.start_ms


class Fake:
    """A sans-IO node: records what it receives and when its timers fire.

    `script(src, body, now)` gives the effects of a message; `tick(now)` those of a timer;
    `deadlines` are absolute ms, each consumed when the timer fires at or after it."""

    def __init__(self, name, script=None, deadlines=(), tick=None):
        self.name = name
        self.got: list[tuple] = []
        self.fired: list[int] = []
        self.deadlines = sorted(deadlines)
        self.script = script or (lambda src, body, now: [])
        self.tick = tick or (lambda now: [])

    def handle(self, src, body, now):
        self.got.append((now, src, body))
        return list(self.script(src, body, now))

    def next_deadline(self):
        return self.deadlines[0] if self.deadlines else None

    def on_timer(self, now):
        self.fired.append(now)
        self.deadlines = [d for d in self.deadlines if d > now]
        return list(self.tick(now))


def build(*nodes) -> World:
    env = simpy.Environment(initial_time=T0)
    world = World(env, Network(SCENARIO), EventLog())
    for node in nodes:
        world.add(node)
    return world


# -- messages ------------------------------------------------------------------------------------


def test_message_delivered_after_the_link_latency():
    paysys, bank = Fake("paysys"), Fake("bank")
    world = build(paysys, bank)
    world.send("paysys", "bank", {"type": "ping"})
    world.send("bank", "paysys", {"type": "pong"})
    world.env.run()
    assert bank.got == [(T0 + TO_BANK, "paysys", {"type": "ping"})]  # the overridden direction
    assert paysys.got == [(T0 + LAT, "bank", {"type": "pong"})]  # the other: the default
    delivered = [row for row in world.log.rows if row[1] == "msg.deliver"]
    assert [(r[0], r[3], r[4]) for r in delivered] == [
        (T0 + TO_BANK, "paysys", "bank"), (T0 + LAT, "bank", "paysys")]
    assert delivered[0][5]["sent_ms"] == T0


def test_send_delay_is_added_before_the_message_leaves():
    bank = Fake("bank")
    world = build(Fake("paysys"), bank)
    world.send("paysys", "bank", {"type": "ping"}, 100)
    world.env.run()
    assert bank.got == [(T0 + 100 + TO_BANK, "paysys", {"type": "ping"})]


def test_reply_goes_back_to_the_requester():
    def answer(src, body, now):
        return [("reply", {"type": body["type"] + ".reply", "n": body["n"]}, 5)]

    paysys, bank, wechat = Fake("paysys"), Fake("bank", answer), Fake("wechat")
    world = build(paysys, bank, wechat)
    world.send("paysys", "bank", {"type": "ping", "n": 1})
    world.send("wechat", "bank", {"type": "ping", "n": 2})
    world.env.run()
    assert paysys.got == [(T0 + TO_BANK + 5 + LAT, "bank", {"type": "ping.reply", "n": 1})]
    assert wechat.got == [(T0 + LAT + 5 + LAT, "bank", {"type": "ping.reply", "n": 2})]
    assert [src for _, src, _ in bank.got] == ["paysys", "wechat"]


def test_send_effect_goes_to_its_destination_after_its_delay():
    def forward(src, body, now):
        return [("send", "bank", {"type": "fwd"}, 20)]

    paysys, bank = Fake("paysys", forward), Fake("bank")
    world = build(paysys, bank)
    world.send("wechat", "paysys", {"type": "in"})
    world.env.run()
    assert bank.got == [(T0 + LAT + 20 + TO_BANK, "paysys", {"type": "fwd"})]


def test_event_effect_is_logged_with_the_node_as_source():
    def publish(src, body, now):
        return [("event", "order.state", "P0000000001", {"from": "CREATED", "to": "PROCESSING"})]

    world = build(Fake("paysys"), Fake("bank", publish))
    world.send("paysys", "bank", {"type": "bank.pay"})
    world.env.run()
    assert (T0 + TO_BANK, "order.state", "P0000000001", "bank", "",
            {"from": "CREATED", "to": "PROCESSING"}) in world.log.rows


def test_unknown_effect_is_a_crash_of_the_node():
    world = build(Fake("paysys"), Fake("bank", lambda src, body, now: [("teleport", "x")]))
    world.send("paysys", "bank", {"type": "bank.pay"})
    with pytest.raises(NodeCrash, match=r"^bank .*'teleport'"):
        world.env.run()


# -- timers --------------------------------------------------------------------------------------


def test_timers_fire_at_the_deadline_and_rearm():
    node = Fake("paysys", deadlines=[T0 + 100, T0 + 250, T0 + 1000])
    world = build(node)
    world.env.run()
    assert node.fired == [T0 + 100, T0 + 250, T0 + 1000]


def test_timer_effects_are_carried_out():
    node = Fake("paysys", deadlines=[T0 + 100], tick=lambda now: [("send", "bank", {"type": "q"}, 0)])
    bank = Fake("bank")
    world = build(node, bank)
    world.env.run()
    assert bank.got == [(T0 + 100 + TO_BANK, "paysys", {"type": "q"})]


def test_an_earlier_deadline_preempts_the_armed_later_one():
    def add_early(src, body, now):
        paysys.deadlines = sorted([*paysys.deadlines, T0 + 50])
        return []

    paysys = Fake("paysys", add_early, deadlines=[T0 + 1000])
    world = build(paysys, Fake("bank"))
    world.send("bank", "paysys", {"type": "wake"})  # arrives at T0 + LAT, before T0 + 50
    world.env.run()
    assert paysys.fired == [T0 + 50, T0 + 1000]  # the later one still fires, and only once


def test_a_later_deadline_does_not_delay_the_armed_earlier_one():
    def add_late(src, body, now):
        paysys.deadlines = sorted([*paysys.deadlines, T0 + 500])
        return []

    paysys = Fake("paysys", add_late, deadlines=[T0 + 100])
    world = build(paysys, Fake("bank"))
    world.send("bank", "paysys", {"type": "wake"})
    world.env.run()
    assert paysys.fired == [T0 + 100, T0 + 500]


def test_a_deadline_in_the_past_fires_at_once():
    paysys = Fake("paysys", deadlines=[T0 - 5_000])
    world = build(paysys)
    world.env.run()
    assert paysys.fired == [T0]


# -- crashes -------------------------------------------------------------------------------------


def test_exception_in_handle_is_a_node_crash_naming_node_type_and_time():
    def broken(src, body, now):
        raise KeyError("amount")

    world = build(Fake("paysys"), Fake("bank", broken))
    world.send("paysys", "bank", {"type": "bank.pay"})
    with pytest.raises(NodeCrash) as info:
        world.env.run()
    message = str(info.value)
    assert message.startswith("bank ")
    assert "'bank.pay'" in message
    assert str(T0 + TO_BANK) in message
    assert "KeyError" in message
    assert isinstance(info.value.__cause__, KeyError)


def test_exception_in_on_timer_is_a_node_crash_naming_node_and_time():
    def broken(now):
        raise ZeroDivisionError("division by zero")

    world = build(Fake("paysys", deadlines=[T0 + 300], tick=broken))
    with pytest.raises(NodeCrash) as info:
        world.env.run()
    message = str(info.value)
    assert message.startswith("paysys ")
    assert "on_timer" in message and str(T0 + 300) in message
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# -- URL destinations ----------------------------------------------------------------------------


def test_url_destination_resolves_to_a_node_through_hosts():
    bank = Fake("bank")
    world = build(Fake("paysys"), bank)
    world.hosts["bank.example.test"] = "bank"
    world.send("paysys", "https://bank.example.test/gateway?x=1", {"type": "a"})
    world.send("paysys", "http://bank.example.test:8080/gateway", {"type": "b"})
    world.env.run()
    # delivered under the node's name, over the node's link (the paysys->bank latency)
    assert bank.got == [(T0 + TO_BANK, "paysys", {"type": "a"}),
                        (T0 + TO_BANK, "paysys", {"type": "b"})]
    assert world.resolve("https://bank.example.test/x") == "bank"
    assert world.resolve("bank") == "bank"


def test_url_destination_resolves_to_an_actor_through_hosts():
    received = []
    world = build(Fake("paysys"))
    world.add_actor("merchant", lambda dst, src, body, now: received.append((dst, src, body, now)))
    world.hosts["m001.merchant.test"] = "merchant:M001"
    world.send("paysys", "https://m001.merchant.test/paysim/notify", {"type": "notify.payment"})
    world.env.run()
    assert received == [("merchant:M001", "paysys", {"type": "notify.payment"}, T0 + LAT)]


def test_unknown_host_goes_nowhere_without_crashing():
    bank = Fake("bank")
    world = build(Fake("paysys"), bank)
    world.send("paysys", "https://nowhere.test/x", {"type": "lost"})
    world.env.run()
    assert bank.got == []
    assert [(r[1], r[4]) for r in world.log.rows] == [("msg.deliver", "unknown:nowhere.test")]


# -- crash and restart ---------------------------------------------------------------------------


def crash_scenario(*faults, seed=1):
    return from_dict({
        "scenario": {"name": "crash", "seed": seed, "duration": "1h"},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
        "network": {"latency": LAT},
        "faults": [{"kind": "crash", "target": "paysys", **f} for f in faults],
    })


class Crashable(Fake):
    """A Fake that honours abort_next_unit(): the next unit returns only `escaped`."""

    def __init__(self, name, script=None, deadlines=(), tick=None, escaped=()):
        super().__init__(name, script, deadlines, tick)
        self.escaped = list(escaped)
        self.aborting = False
        self.aborted: list[tuple] = []

    def abort_next_unit(self):
        self.aborting = True

    def handle(self, src, body, now):
        effects = super().handle(src, body, now)
        return self._maybe_abort(("handle", now, body), effects)

    def on_timer(self, now):
        effects = super().on_timer(now)
        return self._maybe_abort(("timer", now), effects)

    def _maybe_abort(self, what, effects):
        if not self.aborting:
            return effects
        self.aborting = False
        self.aborted.append(what)
        return list(self.escaped)


def answer_and_forward(src, body, now):
    return [("reply", {"type": body["type"] + ".reply"}, 0),
            ("send", "bank", {"type": "forwarded", "of": body["type"]}, 0)]


class Restarts:
    """restart(now) for the world: records when, returns a fresh node and the recovered outbox."""

    def __init__(self, effects=(), node_factory=None):
        self.calls: list[int] = []
        self.nodes: list[Crashable] = []
        self.effects = list(effects)
        self.node_factory = node_factory or (lambda: Crashable("paysys", answer_and_forward))

    def __call__(self, now):
        self.calls.append(now)
        node = self.node_factory()
        self.nodes.append(node)
        return node, list(self.effects)


def crash_world(sc, paysys, restart, bank=None):
    env = simpy.Environment(initial_time=sc.start_ms)
    world = World(env, Network(sc), EventLog())
    bank = bank or Fake("bank")
    world.add(paysys, restart=restart)
    world.add(bank)
    world.add_crash_faults("paysys", sc.faults, sc.start_ms)
    return world, bank


def events(world, *kinds):
    return [(r[0], r[1], r[2], r[3], r[5]) for r in world.log.rows if r[1] in kinds]


def test_after_commit_the_unit_runs_and_all_its_effects_are_lost():
    sc = crash_scenario({"start": "0s", "end": "100ms", "point": "after_commit", "extra": 1_000})
    t0 = sc.start_ms
    paysys, restart = Crashable("paysys", answer_and_forward), Restarts()
    world, bank = crash_world(sc, paysys, restart)
    world.send("bank", "paysys", {"type": "ping"})
    world.env.run()
    assert paysys.got == [(t0 + LAT, "bank", {"type": "ping"})]  # it handled (and committed)
    assert paysys.aborted == []
    assert bank.got == []  # neither the reply nor the forward left
    assert events(world, "paysys.crash") == [
        (t0 + LAT, "paysys.crash", "", "paysys",
         {"fault_id": 0, "point": "after_commit", "lost_effects": 2, "downtime_ms": 1_000})]
    assert restart.calls == [t0 + LAT + 1_000]


def test_before_commit_the_node_aborts_and_only_escaped_effects_are_carried_out():
    sc = crash_scenario({"start": "0s", "end": "100ms", "point": "before_commit", "extra": 1_000})
    t0 = sc.start_ms
    escaped = [("event", "outbox.sent", "P1", {"n": 1}), ("send", "bank", {"type": "early"}, 0)]
    paysys = Crashable("paysys", answer_and_forward, escaped=escaped)
    world, bank = crash_world(sc, paysys, Restarts())
    world.send("bank", "paysys", {"type": "ping"})
    world.env.run()
    assert paysys.aborted == [("handle", t0 + LAT, {"type": "ping"})]
    assert bank.got == [(t0 + 2 * LAT, "paysys", {"type": "early"})]
    assert (t0 + LAT, "outbox.sent", "P1", "paysys", "", {"n": 1}) in world.log.rows
    (crash,) = events(world, "paysys.crash")
    assert crash[4] == {"fault_id": 0, "point": "before_commit", "lost_effects": 0,
                        "downtime_ms": 1_000}


def test_while_down_messages_are_refused_and_after_the_downtime_the_new_node_takes_over():
    sc = crash_scenario({"start": "0s", "end": "100ms", "point": "after_commit", "extra": 1_000})
    t0 = sc.start_ms
    recovered = [("send", "bank", {"type": "recovered"}, 0)]
    paysys, restart = Crashable("paysys", answer_and_forward), Restarts(recovered)
    world, bank = crash_world(sc, paysys, restart)
    world.send("bank", "paysys", {"type": "ping"})              # crashes it at t0+10
    world.later(5, world.send, "bank", "paysys", {"type": "a"})  # in flight: arrives t0+15
    world.later(500, world.send, "bank", "paysys", {"type": "b"})   # sent while down
    world.later(2_000, world.send, "bank", "paysys", {"type": "c"})  # after the restart
    world.env.run()
    assert [b["type"] for _, _, b in paysys.got] == ["ping"]  # the old node saw nothing more
    refused = [(t, b["request"]["type"]) for t, _, b in bank.got if b["type"] == "net.error"]
    assert refused == [(t0 + 15, "a"), (t0 + 500, "b")]
    assert all(b["error"] == "refused" for _, _, b in bank.got if b["type"] == "net.error")
    assert [(r[0], r[5]["fault_id"]) for r in world.log.rows if r[1] == "msg.refused"] == [
        (t0 + 15, 0), (t0 + 500, 0)]
    (new,) = restart.nodes
    assert world.nodes["paysys"] is new
    assert new.got == [(t0 + 2_000 + LAT, "bank", {"type": "c"})]
    others = [(t, b["type"]) for t, _, b in bank.got if b["type"] != "net.error"]
    assert others == [(t0 + LAT + 1_000 + LAT, "recovered"),  # the recovered outbox, applied
                      (t0 + 2_000 + 2 * LAT, "c.reply"), (t0 + 2_000 + 2 * LAT, "forwarded")]
    assert events(world, "paysys.restart") == [
        (t0 + LAT + 1_000, "paysys.restart", "", "paysys",
         {"fault_id": 0, "down_ms": 1_000, "effects": 1})]


def test_timers_of_a_crashed_node_are_ignored_and_the_new_nodes_timer_is_armed():
    sc = crash_scenario({"start": "0s", "end": "100ms", "point": "after_commit", "extra": 1_000})
    t0 = sc.start_ms
    paysys = Crashable("paysys", deadlines=[t0 + 50, t0 + 500, t0 + 5_000])
    restart = Restarts(node_factory=lambda: Crashable("paysys", deadlines=[t0 + 3_000]))
    world, _ = crash_world(sc, paysys, restart)
    world.env.run()
    assert paysys.fired == [t0 + 50]  # crashed there: 500 and 5 000 never fire
    assert restart.nodes[0].fired == [t0 + 3_000]
    assert events(world, "paysys.crash")[0][0] == t0 + 50


def test_a_timer_armed_when_a_message_crashes_the_node_never_fires():
    sc = crash_scenario({"start": "0s", "end": "100ms", "point": "after_commit", "extra": 1_000})
    t0 = sc.start_ms
    paysys = Crashable("paysys", deadlines=[t0 + 500, t0 + 5_000])
    restart = Restarts(node_factory=lambda: Crashable("paysys", deadlines=[t0 + 3_000]))
    world, _ = crash_world(sc, paysys, restart)
    world.send("bank", "paysys", {"type": "ping"})  # crashes it at t0+10, its timer armed
    world.env.run()
    assert paysys.fired == []
    assert restart.nodes[0].fired == [t0 + 3_000]


def test_a_delayed_send_that_had_not_left_is_lost_with_the_process():
    sc = crash_scenario({"start": "100ms", "end": "200ms", "point": "after_commit",
                         "extra": 1_000})
    t0 = sc.start_ms

    def later_send(src, body, now):
        return [("send", "bank", {"type": "slow"}, 300)] if body["type"] == "first" else []

    world, bank = crash_world(sc, Crashable("paysys", later_send), Restarts())
    world.send("bank", "paysys", {"type": "first"})                  # t0+10, before the window
    world.later(140, world.send, "bank", "paysys", {"type": "boom"})  # crashes at t0+150
    world.env.run()
    assert bank.got == []
    drops = [(r[0], r[5]["fault_id"], r[5]["type"]) for r in world.log.rows if r[1] == "msg.drop"]
    assert drops == [(t0 + 310, 0, "slow")]


def test_default_downtime_and_probability_zero():
    sc = crash_scenario({"start": "0s", "end": "100ms"})
    world, _ = crash_world(sc, Crashable("paysys"), restart := Restarts())
    world.send("bank", "paysys", {"type": "ping"})
    world.env.run()
    assert restart.calls == [sc.start_ms + LAT + CRASH_DOWNTIME_MS]

    sc = crash_scenario({"start": "0s", "end": "1h", "probability": 0.0})
    paysys = Crashable("paysys", answer_and_forward)
    world, bank = crash_world(sc, paysys, Restarts())
    for i in range(50):
        world.later(i * 100, world.send, "bank", "paysys", {"type": "ping"})
    world.env.run()
    assert len(paysys.got) == 50 and paysys.aborted == []
    assert events(world, "paysys.crash") == []


def storm(seed):
    """Many units inside a long window with probability 0.3 and point "any"."""
    sc = crash_scenario({"start": "0s", "end": "10m", "probability": 0.3,
                         "extra": {"dist": "uniform", "low": 500, "high": 3_000}}, seed=seed)
    world, bank = crash_world(sc, Crashable("paysys", answer_and_forward), Restarts())
    for i in range(300):
        world.later(i * 1_000, world.send, "bank", "paysys", {"type": f"m{i}"})
    world.env.run()
    return world


def test_point_any_picks_both_points_and_a_run_is_deterministic():
    first = storm(7)
    points = [r[5]["point"] for r in first.log.rows if r[1] == "paysys.crash"]
    assert {"before_commit", "after_commit"} == set(points)
    assert 30 <= len(points) <= 120
    assert first.log.rows == storm(7).log.rows
    assert first.log.rows != storm(8).log.rows


def test_crash_faults_need_the_node_and_its_restart():
    sc = crash_scenario({"start": "0s", "end": "1s"})
    env = simpy.Environment(initial_time=sc.start_ms)
    world = World(env, Network(sc), EventLog())
    with pytest.raises(ValueError, match="no node named 'paysys'"):
        world.add_crash_faults("paysys", sc.faults, sc.start_ms)
    world.add(Crashable("paysys"))
    with pytest.raises(ValueError, match="without restart="):
        world.add_crash_faults("paysys", sc.faults, sc.start_ms)
    world.add_crash_faults("bank", (), sc.start_ms)  # no crash fault: nothing to check


def test_other_faults_are_ignored_by_add_crash_faults():
    sc = from_dict({
        "scenario": {"name": "crash", "seed": 1, "duration": "1h"},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
        "network": {"latency": LAT},
        "faults": [{"kind": "drop", "target": "bank->paysys", "start": "1h", "end": "2h"}],
    })
    paysys = Crashable("paysys", answer_and_forward)
    world, bank = crash_world(sc, paysys, None)  # no restart needed: nothing can crash it
    world.send("bank", "paysys", {"type": "ping"})
    world.env.run()
    assert [b["type"] for _, _, b in bank.got] == ["ping.reply", "forwarded"]


def test_a_net_error_for_a_crashed_node_is_lost_not_answered():
    sc = from_dict({
        "scenario": {"name": "crash", "seed": 1, "duration": "1h"},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
        "network": {"latency": LAT},
        "faults": [{"kind": "crash", "target": "paysys", "start": "0s", "end": "100ms",
                    "point": "before_commit", "extra": 1_000},
                   {"kind": "down", "target": "paysys->bank", "start": "0s", "end": "100ms"}],
    })
    t0 = sc.start_ms
    escaped = [("send", "bank", {"type": "early"}, 0)]   # refused by the down link
    world, bank = crash_world(sc, Crashable("paysys", escaped=escaped), Restarts())
    world.send("bank", "paysys", {"type": "ping"})
    world.env.run()
    assert bank.got == []
    rows = [(r[0], r[1], r[3], r[4], r[5]["type"], r[5]["fault_id"]) for r in world.log.rows
            if r[1] in ("msg.refused", "msg.drop")]
    assert rows == [(t0 + LAT, "msg.refused", "paysys", "bank", "early", 1),
                    (t0 + LAT, "msg.drop", "bank", "paysys", "net.error", 0)]
