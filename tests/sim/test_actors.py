"""sim.actors under user faults: a tiny world of the real Actors, a fake paysys (answers every
pay.create at once, a QR code for platform payments, an SMS code for quick ones, then notifies the
merchant) and a fake platform that only records. For each kind: the messages that leave (bodies,
keys, products, amounts, signatures), only for payments or requests inside the window, nothing
at probability 0, `fault.fired` logged; and the same seed gives the same log."""

import simpy

from mockbanks._sign import verify as wx_verify
from paysys.signing import sign as merchant_sign
from paysys.signing import verify as merchant_verify
from sim.actors import Actors
from sim.eventlog import EventLog
from sim.network import Network
from sim.population import MerchantKeys, User
from sim.scenario import from_dict
from sim.world import World

MIN = 60_000
LAT = 10                       # every link, fixed
AMOUNT = 1_000
PAY_DELAY = 5_000
STARTS = (5 * MIN, 12 * MIN, 14 * MIN, 16 * MIN, 18 * MIN, 25 * MIN)   # payments
IN_WINDOW = (1, 2, 3, 4)       # indexes of STARTS inside the window 10m..20m
MERCHANT = MerchantKeys("M001", "Shop", "MD5", "s3cret", "m001.merchant.test")
USER = User("U000001", "Ann", "6222020000000004", "D01", 10**6, 10**6, False)


def scenario(*faults, products=None, channels=("bank", "wechat"), seed=1, **traffic):
    return from_dict({
        "scenario": {"name": "actors", "seed": seed, "duration": "1h"},
        "population": {"merchants": 1},
        "traffic": {"products": products or {"platform": 1.0}, "amount": AMOUNT,
                    "pay_delay": PAY_DELAY, "abandon_probability": 0,
                    "double_submit_probability": 0, "refund_probability": 0,
                    "unsign_probability": 0, "otp_fail_probability": 0, **traffic},
        "channels": [{"id": c, "kind": c} for c in channels],
        "network": {"latency": LAT},
        "faults": [{"target": "users", "start": "10m", "end": "20m", **f} for f in faults],
    })


class FakePaysys:
    name = "paysys"

    def __init__(self, failed=()):
        self.got: list[tuple] = []
        self.orders: dict[str, str] = {}       # idempotency key -> order id
        self.failed = failed                   # products whose payments fail

    def handle(self, src, body, now):
        self.got.append((now, src, body))
        if body.get("type") != "pay.create":
            return []
        key = body["idempotency_key"]
        known = key in self.orders
        order_id = self.orders.setdefault(key, f"P{len(self.orders) + 1:04d}")
        reply = {"type": "pay.create.reply", "idempotency_key": key, "ok": True,
                 "order_id": order_id, "status": "PROCESSING"}
        if body["product"] == "platform":
            reply |= {"code_url": f"weixin://wxpay/bizpayurl?pr=PR{order_id}", "channel": "wechat"}
        if known:       # a repeated request: the same answer, nothing new
            return [("reply", reply, 0)]
        effects = []
        if body["product"] == "quick":
            effects.append(("send", "sms", {"type": "sms.otp", "user_id": body["user_id"],
                                            "order_id": order_id, "otp": "123456"}, 0))
        notify = {"type": "notify.payment", "merchant_id": MERCHANT.merchant_id,
                  "order_id": order_id, "merchant_order_no": body["merchant_order_no"],
                  "status": "FAILED" if body["product"] in self.failed else "SUCCEEDED",
                  "amount": body["amount"], "currency": "CNY",
                  "notify_id": f"N{order_id}", "timestamp": now, "nonce": order_id,
                  "sign_type": "MD5"}
        notify["sign"] = merchant_sign(notify, MERCHANT.secret, "MD5")
        return [("reply", reply, 0), *effects, ("send", body["notify_url"], notify, 60_000)]

    def next_deadline(self):
        return None

    def on_timer(self, now):
        return []

    def of_type(self, kind):
        return [(t, src, b) for t, src, b in self.got if b.get("type") == kind]


class Recorder(FakePaysys):
    def handle(self, src, body, now):
        self.got.append((now, src, body))
        return []


def simulate(sc, starts=STARTS, failed=()):
    env = simpy.Environment(initial_time=sc.start_ms)
    world = World(env, Network(sc), EventLog())
    paysys = FakePaysys(failed)
    world.add(paysys)
    channels = {}
    for c in sc.channels:
        channels[c.id] = Recorder()
        channels[c.id].name = c.id
        world.add(channels[c.id])
    actors = Actors(world, sc, [USER], [MERCHANT])
    for at in starts:
        world.later(at, actors.start_payment)
    env.run(until=sc.end_ms)
    return world, paysys, channels, actors


def fired(world, kind=None):
    return [r for r in world.log.rows if r[1] == "fault.fired" and kind in (None, r[5]["kind"])]


def order_no(i):
    return f"M001-{i + 1:08d}"


def creates_by_order(paysys):
    result: dict[str, list] = {}
    for t, _, body in paysys.of_type("pay.create"):
        result.setdefault(body["merchant_order_no"], []).append((t, body))
    return result


# -- no fault, probability 0 -----------------------------------------------------------------------


def test_probability_zero_changes_nothing():
    base = simulate(scenario())[0].log.rows
    for kind in ("pay_twice", "partial_pay", "abandon", "retry_storm"):
        rows = simulate(scenario({"kind": kind, "probability": 0.0}))[0].log.rows
        assert rows == base, kind
    forged = scenario({"kind": "forged_notify", "target": "wechat", "probability": 0.0})
    assert simulate(forged)[0].log.rows == base
    assert not fired(simulate(scenario())[0])
    assert len(base) > 20


# -- pay_twice ---------------------------------------------------------------------------------------


def test_pay_twice_sends_a_second_create_through_the_other_product_in_the_window_only():
    world, paysys, channels, actors = simulate(scenario({"kind": "pay_twice"}))
    creates = creates_by_order(paysys)
    for i in range(len(STARTS)):
        sent = creates[order_no(i)]
        if i not in IN_WINDOW:
            assert len(sent) == 1
            continue
        (t1, first), (t2, second) = sent
        assert first["product"] == "platform" and "card_no" not in first
        assert second["product"] == "quick" and second["card_no"] == USER.card_no
        assert second["idempotency_key"] == f"pay-{order_no(i)}-2"
        same = ("merchant_order_no", "order_time", "user_id", "amount", "currency",
                "notify_url", "device_id", "subject")
        assert {k: second[k] for k in same} == {k: first[k] for k in same}
        assert 1_000 <= t2 - t1 <= 20_000
        assert merchant_verify(second, MERCHANT.secret)
    events = fired(world, "pay_twice")
    assert [e[2] for e in events] == [order_no(i) for i in IN_WINDOW]
    assert all(e[5]["fault_id"] == 0 and e[5]["product"] == "quick" for e in events)
    assert {(e[3], e[4]) for e in events} == {("merchant:M001", "paysys")}
    payment = actors._payments[order_no(1)]
    assert payment.order_id and payment.second_order_id and \
        payment.order_id != payment.second_order_id


def test_pay_twice_the_user_completes_both_and_refunds_only_the_first():
    sc = scenario({"kind": "pay_twice"}, products={"quick": 1.0}, refund_probability=1.0,
                  refund_delay=1_000)
    world, paysys, channels, actors = simulate(sc)
    twice = [actors._payments[order_no(i)] for i in IN_WINDOW]
    # second tab through the platform: the user pays its QR code in full
    paid = {b["prepay_id"]: b for _, _, b in channels["wechat"].of_type("wx.user.pay")}
    assert set(paid) == {f"PR{p.second_order_id}" for p in twice}
    assert all("amount" not in b for b in paid.values())
    # only the first (quick) attempts asked for a one-time password
    confirmed = {b["order_id"] for _, _, b in paysys.of_type("pay.confirm_otp")}
    assert confirmed == {actors._payments[order_no(i)].order_id for i in range(len(STARTS))}
    # (the fake paysys never answers a refund: the merchant sends each one 3 times)
    refunded = {b["order_id"] for _, _, b in paysys.of_type("refund.create")}
    assert refunded == {actors._payments[order_no(i)].order_id for i in range(len(STARTS))}


def test_pay_twice_no_refund_when_only_the_second_attempt_succeeded():
    sc = scenario({"kind": "pay_twice"}, products={"quick": 1.0}, refund_probability=1.0,
                  refund_delay=1_000)
    _, paysys, channels, _ = simulate(sc, failed=("quick",))
    assert len(channels["wechat"].of_type("wx.user.pay")) == len(IN_WINDOW)  # the second tabs
    assert paysys.of_type("refund.create") == []


def test_pay_twice_keeps_the_product_when_no_channel_serves_the_other():
    sc = scenario({"kind": "pay_twice"}, products={"platform": 1.0}, channels=("wechat",))
    _, paysys, _, _ = simulate(sc)
    seconds = [b for _, b in sum(creates_by_order(paysys).values(), []) if
               b["idempotency_key"].endswith("-2")]
    assert len(seconds) == len(IN_WINDOW)
    assert all(b["product"] == "platform" and "card_no" not in b for b in seconds)


# -- partial_pay, abandon ------------------------------------------------------------------------------


def test_partial_pay_pays_part_then_maybe_the_rest():
    starts = tuple(10 * MIN + k * 10_000 for k in range(40)) + (30 * MIN,)
    world, paysys, channels, actors = simulate(scenario({"kind": "partial_pay"}), starts)
    pays: dict[str, list] = {}
    for t, src, body in channels["wechat"].of_type("wx.user.pay"):
        assert src == f"user:{USER.user_id}"
        pays.setdefault(body["prepay_id"], []).append((t, body.get("amount")))
    events = {e[2]: e for e in fired(world, "partial_pay")}
    assert len(events) == 40
    outside = actors._payments[order_no(40)].order_id
    assert pays[f"PR{outside}"] == [(pays[f"PR{outside}"][0][0], None)]   # in full, once
    rests = 0
    for order_id, e in events.items():
        sent = pays[f"PR{order_id}"]
        assert 1 <= sent[0][1] <= AMOUNT - 1 and sent[0][1] == e[5]["amount"]
        if len(sent) == 2:
            rests += 1
            assert sent[0][1] + sent[1][1] == AMOUNT == e[5]["amount"] + e[5]["rest"]
            assert sent[1][0] > sent[0][0]
        else:
            assert len(sent) == 1 and e[5]["rest"] == 0
    assert 8 <= rests <= 32     # about half


def test_abandon_in_the_window_the_user_never_pays():
    world, _, channels, actors = simulate(scenario({"kind": "abandon"}))
    paid = {b["prepay_id"] for _, _, b in channels["wechat"].of_type("wx.user.pay")}
    ids = [actors._payments[order_no(i)].order_id for i in range(len(STARTS))]
    assert paid == {f"PR{ids[i]}" for i in range(len(STARTS)) if i not in IN_WINDOW}
    events = fired(world, "abandon")
    assert [e[2] for e in events] == [ids[i] for i in IN_WINDOW]
    assert {(e[3], e[4]) for e in events} == {(f"user:{USER.user_id}", "wechat")}


def test_half_probability_acts_on_some_not_all():
    starts = tuple(10 * MIN + k * 10_000 for k in range(40))
    world, _, _, _ = simulate(scenario({"kind": "abandon", "probability": 0.5}), starts)
    assert 8 <= len(fired(world, "abandon")) <= 32


# -- retry_storm ------------------------------------------------------------------------------------


def test_retry_storm_sends_each_request_again_every_interval():
    sc = scenario({"kind": "retry_storm", "retries": 3, "interval": "2s"},
                  products={"quick": 1.0})
    world, paysys, _, actors = simulate(sc)
    creates = creates_by_order(paysys)
    for i in range(len(STARTS)):
        sent = creates[order_no(i)]
        if i not in IN_WINDOW:
            assert len(sent) == 1
            continue
        assert len(sent) == 4
        assert [t - sent[0][0] for t, _ in sent] == [0, 2_000, 4_000, 6_000]
        bodies = [b for _, b in sent]
        assert len({b["nonce"] for b in bodies}) == 4
        assert all(merchant_verify(b, MERCHANT.secret) for b in bodies)
        strip = ("nonce", "timestamp", "sign")
        assert len({tuple(sorted((k, v) for k, v in b.items() if k not in strip))
                    for b in bodies}) == 1
    otps = {}
    for _, _, b in paysys.of_type("pay.confirm_otp"):
        otps[b["order_id"]] = otps.get(b["order_id"], 0) + 1
    assert sum(otps.values()) > len(STARTS)          # some codes were typed in the window too
    events = fired(world, "retry_storm")
    created = [e for e in events if e[5]["type"] == "pay.create"]
    assert [e[2] for e in created] == [order_no(i) for i in IN_WINDOW]
    assert created[0][5] == {"fault_id": 0, "kind": "retry_storm", "type": "pay.create",
                             "idempotency_key": f"pay-{order_no(1)}", "retries": 3,
                             "interval_ms": 2_000}
    stormed_otps = {e[2] for e in events if e[5]["type"] == "pay.confirm_otp"}
    assert {o for o, n in otps.items() if n == 4} == stormed_otps
    assert all(n in (1, 4) for n in otps.values())


# -- forged_notify ----------------------------------------------------------------------------------


def test_forged_notify_comes_from_the_channel_with_a_wrong_signature():
    sc = scenario({"kind": "forged_notify", "target": "wechat"})
    world, paysys, _, actors = simulate(sc)
    notes = paysys.of_type("wx.notify")
    ids = [actors._payments[order_no(i)].order_id for i in range(len(STARTS))]
    assert [b["out_trade_no"] for _, _, b in notes] == [ids[i] for i in IN_WINDOW]
    api_key = sc.channels[1].api_key
    for t, src, body in notes:
        assert src == "wechat"
        assert body["total_fee"] == AMOUNT and body["fee_type"] == "CNY"
        assert body["result_code"] == "SUCCESS" and body["transaction_id"]
        assert body["nonce_str"] and body["time_end"] == t - LAT
        assert body["sign"] and not wx_verify(body, api_key)
        start = sc.start_ms + STARTS[ids.index(body["out_trade_no"])]
        # pay.create reaches paysys after LAT, its answer comes back after LAT, then 1-5 s
        assert 1_000 <= t - LAT - (start + 2 * LAT) <= 5_000
    assert len({b["transaction_id"] for _, _, b in notes}) == len(notes)
    events = fired(world, "forged_notify")
    assert [e[2] for e in events] == [ids[i] for i in IN_WINDOW]
    assert {(e[3], e[4]) for e in events} == {("wechat", "paysys")}


# -- determinism ------------------------------------------------------------------------------------


def test_same_seed_same_log_another_seed_another():
    faults = ({"kind": "pay_twice", "probability": 0.5}, {"kind": "partial_pay"},
              {"kind": "retry_storm", "probability": 0.5, "retries": 2},
              {"kind": "forged_notify", "target": "wechat", "probability": 0.5})
    one = simulate(scenario(*faults, seed=3))[0].log.rows
    assert one == simulate(scenario(*faults, seed=3))[0].log.rows
    assert one != simulate(scenario(*faults, seed=4))[0].log.rows
    assert fired(simulate(scenario(*faults, seed=3))[0])
