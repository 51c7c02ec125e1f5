"""sim.world: the SimPy adapter, driven by tiny fake sans-IO nodes (plain classes with
handle/next_deadline/on_timer). Delivery after the link latency, replies to the requester,
timers that fire, re-arm and are pre-empted by an earlier deadline, crashes named, URL hosts."""

import pytest
import simpy

from sim.eventlog import EventLog
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
