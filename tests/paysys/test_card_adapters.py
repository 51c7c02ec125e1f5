"""The UnionPay-like and carrier adapters: request bodies from an order, the classification
tables (unknown is never failure; ISSUER_UNAVAILABLE and maintenance are "nothing done"), and a
round trip through each mock."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbanks.carrier import Carrier
from mockbanks.fees import Fee
from mockbanks.unionpay import UnionPay
from mockbanks.unionpay_records import Window
from paysys.channels import ADAPTERS
from paysys.channels.base import (
    CLOSED,
    FAILURE,
    NOT_FOUND,
    REJECTED,
    SUCCESS,
    UNKNOWN,
)
from paysys.channels.carrier import CarrierAdapter
from paysys.channels.unionpay import UnionPayAdapter

T0 = 1_793_584_800_000
CARD = "6222020000010011"   # issuer ccb among icbc, ccb, abc
ORDER = {"order_id": "P0000000001", "user_id": "U000001", "amount": 1_500, "currency": "CNY",
         "card_no": CARD, "merchant_id": "M001"}
REFUND = {"refund_id": "R0000000001", "amount": 500, "currency": "CNY", "merchant_id": "M001"}


def test_registered_and_neither_signs_nor_waits():
    assert ADAPTERS["unionpay"] is UnionPayAdapter and ADAPTERS["carrier"] is CarrierAdapter
    for cls, product in ((UnionPayAdapter, "unionpay"), (CarrierAdapter, "carrier")):
        adapter = cls("ch")
        assert not adapter.signs(product) and not adapter.is_async(product)


def test_bodies_carry_the_card_or_the_user_and_the_pays_req_id():
    up, ca = UnionPayAdapter("up"), CarrierAdapter("carrier")
    assert up.pay("P1.p1", ORDER, "", T0, "paysys") == {
        "type": "up.pay", "req_id": "P1.p1", "card_no": CARD, "amount": 1_500, "currency": "CNY"}
    assert ca.pay("P1.p1", ORDER, "", T0, "paysys") == {
        "type": "carrier.charge", "req_id": "P1.p1", "user_id": "U000001", "amount": 1_500,
        "currency": "CNY"}
    assert up.query("P1.p1", ORDER) == {"type": "up.query", "req_id": "P1.p1"}
    assert ca.close("P1.p1", ORDER) == {"type": "carrier.close", "req_id": "P1.p1"}
    assert up.refund("R1.r1", "P1.p1", REFUND, ORDER)["orig_req_id"] == "P1.p1"
    assert ca.refund("R1.r1", "P1.p1", REFUND, ORDER)["amount"] == 500


@pytest.mark.parametrize("cls", [UnionPayAdapter, CarrierAdapter])
@pytest.mark.parametrize("op, reply, kind", [
    ("pay", {"result": "SUCCESS", "txn_id": "T1", "amount": 1_500}, SUCCESS),
    ("pay", {"result": "DECLINED", "code": "INSUFFICIENT_FUNDS"}, FAILURE),
    ("pay", {"result": "REJECTED", "code": "ISSUER_UNAVAILABLE"}, REJECTED),
    ("pay", {"result": "REJECTED", "code": "SYSTEM_MAINTENANCE"}, REJECTED),
    ("pay", {"result": "ERROR", "code": "PROCESSING_ERROR"}, UNKNOWN),
    ("pay", {"result": "ERROR", "code": "INVALID_PARAM"}, FAILURE),
    ("pay", {}, UNKNOWN),
    ("query", {"result": "NOT_FOUND"}, NOT_FOUND),
    ("query", {"result": "DECLINED", "code": "CLOSED"}, FAILURE),
    ("close", {"result": "CLOSED"}, CLOSED),
    ("refund", {"result": "REJECTED", "code": "ISSUER_UNAVAILABLE"}, REJECTED),
    ("refund", {"result": "DECLINED", "code": "EXCEEDS_REFUNDABLE"}, FAILURE),
    ("sign", {"result": "OK"}, UNKNOWN),
])
def test_classification(cls, op, reply, kind):
    outcome = cls("ch").classify(op, reply)
    assert outcome.kind == kind


def test_a_success_reports_its_charge():
    outcome = UnionPayAdapter("up").classify("pay", {"result": "SUCCESS", "txn_id": "UP1",
                                                     "amount": 1_500, "code": None})
    assert (outcome.channel_ref, outcome.amount, outcome.code) == ("UP1", 1_500, "")
    odd = UnionPayAdapter("up").classify("query", {"result": "SUCCESS", "amount": "1500"})
    assert odd.kind == SUCCESS and odd.amount is None   # an amount not an integer is not trusted


@given(st.text(max_size=12), st.text(max_size=12), st.sampled_from(["pay", "query", "refund"]))
def test_an_unlisted_result_is_never_a_failure(result, code, op):
    listed = {"SUCCESS", "DECLINED", "REJECTED", "NOT_FOUND", "CLOSED"}
    for cls in (UnionPayAdapter, CarrierAdapter):
        outcome = cls("ch").classify(op, {"result": result, "code": code})
        if result not in listed and f"{result}/{code}" != "ERROR/INVALID_PARAM":
            assert outcome.kind == UNKNOWN


def _reply(node, body, now=T0) -> dict:
    return [e for e in node.handle("paysys", body, now) if e[0] == "reply"][0][1]


def test_round_trip_through_the_card_network():
    net = UnionPay(name="up", rng=random.Random(1), fee_rule=Fee(rate_bp=60),
                   issuers=("icbc", "ccb", "abc"), service_time=lambda r: 10,
                   issuer_down={"ccb": [Window(T0 + 1_000, T0 + 2_000)]})
    net.open_card("U000001", CARD, 10_000)
    adapter = UnionPayAdapter("up")
    down = adapter.classify("pay", _reply(net, adapter.pay("P1.p1", ORDER, "", T0, ""),
                                          T0 + 1_500))
    assert (down.kind, down.code) == (REJECTED, "ISSUER_UNAVAILABLE")
    paid = adapter.classify("pay", _reply(net, adapter.pay("P1.p1", ORDER, "", T0, "")))
    assert paid.kind == SUCCESS and paid.amount == 1_500 and paid.channel_ref
    seen = adapter.classify("query", _reply(net, adapter.query("P1.p1", ORDER)))
    assert (seen.kind, seen.channel_ref) == (SUCCESS, paid.channel_ref)
    back = adapter.classify("refund", _reply(net, adapter.refund("R1.r1", "P1.p1", REFUND,
                                                                  ORDER)))
    assert back.kind == SUCCESS


def test_round_trip_through_the_carrier():
    node = Carrier(name="carrier", rng=random.Random(1), fee_rule=Fee(rate_bp=500),
                   service_time=lambda r: 10, monthly_cap=2_000)
    node.open_line("U000001", "13800000001")
    adapter = CarrierAdapter("carrier")
    assert adapter.classify("pay", _reply(node, adapter.pay("P1.p1", ORDER, "", T0, ""))
                            ).kind == SUCCESS
    capped = adapter.classify("pay", _reply(node, adapter.pay("P2.p1", ORDER, "", T0, "")))
    assert (capped.kind, capped.code) == (FAILURE, "MONTHLY_CAP_EXCEEDED")
    closed = adapter.classify("close", _reply(node, adapter.close("P3.p1", ORDER)))
    assert closed.kind == CLOSED
