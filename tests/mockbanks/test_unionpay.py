"""The UnionPay-like card network mock: routing by BIN range, pays, declines, issuer outages,
queries, closes, refunds, channel faults and conservation, fed message by message."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.faults import ChannelFault
from mockbanks.fees import Fee
from mockbanks.unionpay import UnionPay
from mockbanks.unionpay_records import Window, issuer_index

T0 = 1_793_584_800_000          # 2026-11-02T10:00:00+08:00
SERVICE_MS = 50
ISSUERS = ("icbc", "ccb", "abc")
ICBC = "6222020000000011"       # digits 7-12 = 000000 -> 0 -> icbc
CCB = "6222020000010011"        # 000001 -> ccb
ABC = "6222020000020011"        # 000002 -> abc


def make(down=None, faults=(), balance=100_000) -> UnionPay:
    net = UnionPay(name="up", rng=random.Random(1), fee_rule=Fee(rate_bp=100), issuers=ISSUERS,
                   service_time=lambda rng: SERVICE_MS, issuer_down=down, faults=faults)
    for i, card in enumerate((ICBC, CCB, ABC)):
        net.open_card(f"U{i}", card, balance)
    return net


def call(net: UnionPay, body: dict, now: int = T0) -> dict:
    replies = [e for e in net.handle("paysys", body, now) if e[0] == "reply"]
    assert len(replies) == 1
    return replies[0][1]


def pay(net, req_id, card, amount, now=T0) -> dict:
    return call(net, {"type": "up.pay", "req_id": req_id, "card_no": card, "amount": amount,
                      "currency": "CNY"}, now)


def refund(net, req_id, orig, amount, now=T0) -> dict:
    return call(net, {"type": "up.refund", "req_id": req_id, "orig_req_id": orig,
                      "amount": amount, "currency": "CNY"}, now)


def bal(net, account) -> int:
    return net.truth.balance(account, "CNY")


def test_a_card_goes_to_the_issuer_its_digits_7_to_12_name():
    net = make()
    assert [net.issuer_of(c) for c in (ICBC, CCB, ABC)] == ["icbc", "ccb", "abc"]
    assert issuer_index("6222021234561234", 3) == 123456 % 3
    assert issuer_index("6222021234561234", 7) == 123456 % 7
    assert net.truth.has("issuer:ccb:card:" + CCB, "CNY")
    with pytest.raises(ValueError, match="card_no"):
        issuer_index("12ab", 3)


def test_a_pay_moves_the_money_from_the_card_to_the_platform_and_the_fee():
    net = make()
    effects = net.handle("paysys", {"type": "up.pay", "req_id": "P0000000001.p1",
                                    "card_no": CCB, "amount": 10_000, "currency": "CNY"}, T0)
    reply = effects[-1]
    assert reply[0] == "reply" and reply[2] == SERVICE_MS
    assert reply[1]["result"] == "SUCCESS" and reply[1]["issuer"] == "ccb"
    assert reply[1]["type"] == "up.pay.reply" and reply[1]["req_id"] == "P0000000001.p1"
    assert bal(net, "issuer:ccb:card:" + CCB) == 90_000
    assert bal(net, "platform") == 9_900 and bal(net, "network_fees") == 100
    (txn,) = net.truth.txns()
    assert txn["ref"] == "P0000000001" and txn["channel_ref"] == reply[1]["txn_id"]
    assert txn["at_ms"] == T0 + SERVICE_MS
    events = [e for e in effects if e[0] == "event"]
    assert events[0][1] == "unionpay.txn" and events[0][3]["issuer"] == "ccb"


def test_a_repeated_req_id_never_moves_money_twice():
    net = make()
    first = pay(net, "P1.p1", ICBC, 5_000)
    again = pay(net, "P1.p1", ICBC, 5_000, T0 + 1000)
    assert first == again
    assert bal(net, "issuer:icbc:card:" + ICBC) == 95_000
    assert len(net.truth.txns()) == 1


@pytest.mark.parametrize("card, code", [
    ("6222020000000099", "INVALID_CARD"),
    ("6222020000009995", "INSUFFICIENT_FUNDS"),
    ("6222020000000002", "CARD_FROZEN"),
])
def test_declines_move_nothing(card, code):
    net = make()
    reply = pay(net, "P1.p1", card, 1_000)
    assert (reply["result"], reply["code"]) == ("DECLINED", code)
    assert net.truth.txns() == []


def test_frozen_and_short_cards_are_declined_and_4242_always_pays():
    net = make(balance=1_000)
    net.open_card("U9", "6222020000004242", 0)
    net.open_card("U8", "6222020000050011", 50_000, frozen=True)
    assert pay(net, "P1.p1", ICBC, 1_001)["code"] == "INSUFFICIENT_FUNDS"
    assert pay(net, "P2.p1", "6222020000050011", 10)["code"] == "CARD_FROZEN"
    assert pay(net, "P3.p1", "6222020000004242", 70_000)["result"] == "SUCCESS"
    assert bal(net, "magic") == -70_000
    assert net.truth.total("CNY") == net.truth.initial_total("CNY")


def test_0119_errors_without_money_and_a_query_says_declined():
    net = make()
    net.open_card("U7", "6222020000000119", 10_000)
    assert pay(net, "P1.p1", "6222020000000119", 100)["result"] == "ERROR"
    q = call(net, {"type": "up.query", "req_id": "P1.p1"})
    assert q["result"] == "DECLINED" and net.truth.txns() == []


def test_an_issuer_down_rejects_its_cards_and_records_nothing():
    net = make(down={"ccb": [Window(T0, T0 + 60_000)]})
    effects = net.handle("paysys", {"type": "up.pay", "req_id": "P1.p1", "card_no": CCB,
                                    "amount": 1_000, "currency": "CNY"}, T0 + 10)
    reply = effects[-1][1]
    assert (reply["result"], reply["code"]) == ("REJECTED", "ISSUER_UNAVAILABLE")
    assert ("event", "unionpay.issuer_down", "P1",
            {"issuer": "ccb", "req_id": "P1.p1", "type": "up.pay"}) in effects
    assert pay(net, "P2.p1", ICBC, 1_000, T0 + 10)["result"] == "SUCCESS"   # others unaffected
    assert call(net, {"type": "up.query", "req_id": "P1.p1"})["result"] == "NOT_FOUND"
    # the same req_id after the outage is carried out: nothing was recorded
    assert pay(net, "P1.p1", CCB, 1_000, T0 + 60_000)["result"] == "SUCCESS"


def test_a_refund_to_a_down_issuer_is_rejected_then_done_after():
    net = make(down={"abc": [Window(T0 + 10_000, T0 + 20_000)]})
    assert pay(net, "P1.p1", ABC, 4_000)["result"] == "SUCCESS"
    during = refund(net, "R1.r1", "P1.p1", 1_000, T0 + 15_000)
    assert (during["result"], during["code"]) == ("REJECTED", "ISSUER_UNAVAILABLE")
    after = refund(net, "R1.r1", "P1.p1", 1_000, T0 + 20_000)
    assert after["result"] == "SUCCESS"
    assert bal(net, "issuer:abc:card:" + ABC) == 97_000


def test_refund_rules():
    net = make()
    pay(net, "P1.p1", ICBC, 4_000)
    assert refund(net, "R1.r1", "P9.p1", 1)["code"] == "NOT_FOUND"
    assert refund(net, "R2.r1", "P1.p1", 3_000)["result"] == "SUCCESS"
    assert refund(net, "R3.r1", "P1.p1", 1_001)["code"] == "EXCEEDS_REFUNDABLE"
    assert refund(net, "R2.r1", "P1.p1", 3_000)["result"] == "SUCCESS"   # de-duplicated
    assert bal(net, "platform") == 4_000 - 40 - 3_000
    assert refund(net, "R4.r1", "P1.p1", 1_000)["code"] == "INSUFFICIENT_FUNDS"


def test_close_of_an_unseen_pay_blocks_it_for_good():
    net = make()
    assert call(net, {"type": "up.close", "req_id": "P1.p1"})["result"] == "CLOSED"
    late = pay(net, "P1.p1", ICBC, 100)
    assert (late["result"], late["code"]) == ("DECLINED", "CLOSED")
    pay(net, "P2.p1", ICBC, 100)
    assert call(net, {"type": "up.close", "req_id": "P2.p1"})["result"] == "SUCCESS"


@pytest.mark.parametrize("body, field", [
    ({"type": "up.pay", "req_id": "P1.p1", "card_no": "12", "amount": 1, "currency": "CNY"},
     "card_no"),
    ({"type": "up.pay", "req_id": "P1.p1", "card_no": ICBC, "amount": 0, "currency": "CNY"},
     "amount"),
    ({"type": "up.pay", "req_id": "P1.p1", "card_no": ICBC, "amount": 1, "currency": "USD"},
     "currency"),
    ({"type": "up.query"}, "req_id"),
])
def test_invalid_requests_name_the_field(body, field):
    net = make()
    reply = call(net, body)
    assert (reply["result"], reply["code"], reply["field"]) == ("ERROR", "INVALID_PARAM", field)
    assert net.truth.txns() == []


def test_maintenance_and_rate_limit_reject_with_nothing_done():
    maint = ChannelFault(1, "maintenance", T0, T0 + 1000, 1.0, {}, None)
    net = make(faults=[maint])
    effects = net.handle("paysys", {"type": "up.pay", "req_id": "P1.p1", "card_no": ICBC,
                                    "amount": 10, "currency": "CNY"}, T0)
    assert effects[-1][1]["code"] == "SYSTEM_MAINTENANCE"
    assert effects[0][1] == "fault.fired"
    limit = ChannelFault(2, "rate_limit", T0, T0 + 1000, 1.0, {"max_per_s": 1}, None)
    net = make(faults=[limit])
    assert pay(net, "P1.p1", ICBC, 10)["result"] == "SUCCESS"
    assert pay(net, "P2.p1", ICBC, 10)["code"] == "RATE_LIMITED"
    with pytest.raises(ValueError, match="does not support"):
        make(faults=[ChannelFault(3, "double_charge", T0, T0 + 1, 1.0, {}, None)])


def test_construction_errors_name_the_field():
    with pytest.raises(ValueError, match="issuer_down.boc"):
        make(down={"boc": [Window(T0, T0 + 1)]})
    with pytest.raises(ValueError, match="end_ms"):
        Window(T0, T0)
    with pytest.raises(ValueError, match="issuers"):
        UnionPay(name="up", rng=random.Random(1), fee_rule=Fee(), issuers=("a", "a"),
                 service_time=lambda r: 1)


ops = st.lists(st.tuples(st.sampled_from(["pay", "refund"]), st.integers(0, 5),
                         st.sampled_from([ICBC, CCB, ABC]), st.integers(1, 60_000),
                         st.integers(0, 120_000)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_any_sequence_conserves_money_and_never_refunds_more_than_paid(seq):
    net = make(down={"ccb": [Window(T0 + 30_000, T0 + 60_000)]})
    for op, n, card, amount, at in seq:
        if op == "pay":
            pay(net, f"P{n}.p1", card, amount, T0 + at)
        else:
            refund(net, f"R{n}-{at}.r1", f"P{n}.p1", amount, T0 + at)
    assert net.truth.total("CNY") == net.truth.initial_total("CNY")
    paid = {t["ref"]: t["amount"] for t in net.truth.txns() if t["kind"] == "pay"}
    assert sum(t["amount"] for t in net.truth.txns() if t["kind"] == "refund") <= sum(
        paid.values())
    assert bal(net, "platform") >= 0
    for card in (ICBC, CCB, ABC):
        assert bal(net, f"issuer:{net.issuer_of(card)}:card:{card}") >= 0
