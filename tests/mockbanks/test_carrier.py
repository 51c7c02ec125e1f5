"""The carrier-billing mock: charges on the phone bill, the monthly cap per phone (UTC+8
months), the per-charge maximum, declines, queries, closes, refunds, faults, and the property
that no sequence of charges and refunds ever takes a phone over its cap."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.carrier import Carrier
from mockbanks.carrier_records import billing_month
from mockbanks.faults import ChannelFault
from mockbanks.fees import Fee

T0 = 1_793_584_800_000          # 2026-11-02T10:00:00+08:00
DEC1_LOCAL = 1_796_054_400_000  # 2026-12-01T00:00:00+08:00 (2026-11-30T16:00Z)
PHONES = {"U1": "13800000001", "U2": "13800000002"}


def make(cap=20_000, per_charge=10_000, faults=()) -> Carrier:
    node = Carrier(name="carrier", rng=random.Random(2), fee_rule=Fee(rate_bp=500),
                   service_time=lambda rng: 30, monthly_cap=cap, per_charge_max=per_charge,
                   faults=faults)
    for user, phone in PHONES.items():
        node.open_line(user, phone)
    node.open_line("U3", "13800000003", suspended=True)
    return node


def call(node: Carrier, body: dict, now: int = T0) -> dict:
    replies = [e for e in node.handle("paysys", body, now) if e[0] == "reply"]
    assert len(replies) == 1
    return replies[0][1]


def charge(node, req_id, amount, now=T0, user="U1") -> dict:
    return call(node, {"type": "carrier.charge", "req_id": req_id, "user_id": user,
                       "amount": amount, "currency": "CNY"}, now)


def refund(node, req_id, orig, amount, now=T0) -> dict:
    return call(node, {"type": "carrier.refund", "req_id": req_id, "orig_req_id": orig,
                       "amount": amount, "currency": "CNY"}, now)


def bill(node, phone="13800000001") -> int:
    return node.truth.balance(f"bill:{phone}", "CNY")


def test_the_billing_month_is_the_local_month_utc8():
    assert billing_month(T0) == 202611
    assert billing_month(DEC1_LOCAL - 1) == 202611
    assert billing_month(DEC1_LOCAL) == 202612


def test_a_charge_goes_onto_the_bill_of_the_users_phone():
    node = make()
    effects = node.handle("paysys", {"type": "carrier.charge", "req_id": "P1.p1",
                                     "user_id": "U1", "amount": 2_000, "currency": "CNY"}, T0)
    reply = effects[-1][1]
    assert reply["type"] == "carrier.charge.reply" and reply["result"] == "SUCCESS"
    assert bill(node) == -2_000
    assert node.truth.balance("platform", "CNY") == 1_900
    assert node.truth.balance("carrier_fees", "CNY") == 100
    event = [e for e in effects if e[0] == "event"][0]
    assert event[1] == "carrier.txn" and event[2] == "P1"
    assert event[3]["phone"] == "13800000001" and event[3]["month"] == 202611
    assert (event[3]["used"], event[3]["cap"]) == (2_000, 20_000)
    assert node.truth.total("CNY") == node.truth.initial_total("CNY") == 0


def test_the_monthly_cap_declines_the_charge_that_would_pass_it():
    node = make()
    for i in range(2):
        assert charge(node, f"P{i}.p1", 10_000)["result"] == "SUCCESS"
    over = charge(node, "P9.p1", 1)
    assert (over["result"], over["code"]) == ("DECLINED", "MONTHLY_CAP_EXCEEDED")
    assert charge(node, "P10.p1", 500, user="U2")["result"] == "SUCCESS"   # per phone
    assert charge(node, "P11.p1", 5_000, DEC1_LOCAL)["result"] == "SUCCESS"  # a new month
    assert node.used("13800000001", 202611) == 20_000
    assert node.used("13800000001", 202612) == 5_000


def test_a_refund_credits_the_bill_and_gives_the_room_back():
    node = make()
    charge(node, "P1.p1", 10_000)
    charge(node, "P2.p1", 10_000)
    assert refund(node, "R1.r1", "P1.p1", 4_000)["result"] == "SUCCESS"
    assert node.used("13800000001", 202611) == 16_000
    assert bill(node) == -16_000
    assert charge(node, "P3.p1", 4_000)["result"] == "SUCCESS"
    assert charge(node, "P4.p1", 1)["code"] == "MONTHLY_CAP_EXCEEDED"


@pytest.mark.parametrize("user, amount, code", [
    ("U1", 10_001, "AMOUNT_OVER_LIMIT"),
    ("U3", 100, "LINE_SUSPENDED"),
    ("U404", 100, "UNKNOWN_SUBSCRIBER"),
])
def test_declines_move_nothing(user, amount, code):
    node = make()
    reply = charge(node, "P1.p1", amount, user=user)
    assert (reply["result"], reply["code"]) == ("DECLINED", code)
    assert node.truth.txns() == []


def test_a_charge_may_name_the_phone_and_repeats_are_answered_once():
    node = make()
    body = {"type": "carrier.charge", "req_id": "P1.p1", "phone": "13800000002",
            "amount": 700, "currency": "CNY"}
    assert call(node, body) == call(node, body, T0 + 5_000)
    assert bill(node, "13800000002") == -700 and len(node.truth.txns()) == 1


def test_query_close_and_refund_rules():
    node = make()
    assert call(node, {"type": "carrier.query", "req_id": "P1.p1"})["result"] == "NOT_FOUND"
    assert call(node, {"type": "carrier.close", "req_id": "P1.p1"})["result"] == "CLOSED"
    assert charge(node, "P1.p1", 100)["code"] == "CLOSED"
    charge(node, "P2.p1", 1_000)
    assert call(node, {"type": "carrier.query", "req_id": "P2.p1"})["result"] == "SUCCESS"
    assert refund(node, "R1.r1", "P1.p1", 1)["code"] == "NOT_FOUND"
    assert refund(node, "R2.r1", "P2.p1", 1_001)["code"] == "EXCEEDS_REFUNDABLE"
    assert refund(node, "R3.r1", "P2.p1", 950)["result"] == "SUCCESS"
    assert refund(node, "R4.r1", "P2.p1", 50)["code"] == "INSUFFICIENT_FUNDS"  # fee kept


def test_invalid_requests_and_faults():
    node = make()
    reply = charge(node, "P1.p1", -5)
    assert (reply["code"], reply["field"]) == ("INVALID_PARAM", "amount")
    reply = call(node, {"type": "carrier.charge", "req_id": "P1.p1", "amount": 5,
                        "currency": "CNY"})
    assert reply["field"] == "user_id"
    maint = ChannelFault(1, "maintenance", T0, T0 + 1000, 1.0, {}, None)
    node = make(faults=[maint])
    assert charge(node, "P1.p1", 100)["code"] == "SYSTEM_MAINTENANCE"
    assert charge(node, "P1.p1", 100, T0 + 1000)["result"] == "SUCCESS"
    with pytest.raises(ValueError, match="monthly_cap"):
        make(cap=0)
    with pytest.raises(ValueError, match="already open"):
        make().open_line("U1", "13900000000")


steps = st.lists(st.tuples(st.sampled_from(["charge", "refund"]), st.sampled_from(["U1", "U2"]),
                           st.integers(0, 30), st.integers(1, 12_000),
                           st.integers(0, 40 * 86_400_000)), max_size=60)


@settings(max_examples=80, deadline=None)
@given(steps)
def test_no_sequence_of_charges_and_refunds_takes_a_phone_over_its_cap(seq):
    cap = 15_000
    node = make(cap=cap, per_charge=10_000)
    seq = sorted(seq, key=lambda s: s[4])   # time moves forward
    months: dict[tuple[str, int], int] = {}
    charged: dict[str, tuple[str, int, int]] = {}   # req_id -> (phone, month, amount left)
    refunded: set[str] = set()
    for op, user, n, amount, at in seq:
        now = T0 + at
        if op == "charge":
            req = f"P{n}.p1"
            before = req in charged
            reply = charge(node, req, amount, now, user)
            if reply["result"] == "SUCCESS" and not before:
                key = (PHONES[user], billing_month(now))
                months[key] = months.get(key, 0) + amount
                charged[req] = (*key, amount)
        else:
            orig, req = f"P{n}.p1", f"R{n}-{at}-{amount}.r1"
            before = req in refunded
            refunded.add(req)
            reply = refund(node, req, orig, amount, now)
            if reply["result"] == "SUCCESS" and not before:
                phone, month, left = charged[orig]
                months[(phone, month)] -= amount
                charged[orig] = (phone, month, left - amount)
        for (phone, month), used in months.items():
            assert 0 <= used <= cap
            assert node.used(phone, month) == used
    for phone in PHONES.values():
        owed = sum(u for (p, _), u in months.items() if p == phone)
        assert bill(node, phone) == -owed
    assert node.truth.total("CNY") == node.truth.initial_total("CNY")
