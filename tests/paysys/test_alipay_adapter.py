"""The Alipay-like platform adapter: its requests, its classification tables (unknown is never
failure), RSA2 verification of notifications and the literal "success" acknowledgement; and a
payment driven by hand between a paysys node and the mock, where a forged notification changes
nothing."""

import random

import pytest
from _node import BANK, TIMEOUT_MS, Driver, make_node, pay_create, sends
from hypothesis import given
from hypothesis import strategies as st

from mockbanks.alipay import Alipay
from mockbanks.alipay_records import rsa2_sign
from mockbanks.fees import Fee
from paysys.channels.alipay import (
    BILL,
    CLOSE,
    NOTHING_DONE,
    PRECREATE,
    QUERY,
    REFUND,
    AlipayAdapter,
    sign_string,
)
from paysys.channels.base import (
    CLOSED,
    FAILURE,
    NOT_FOUND,
    PENDING,
    REJECTED,
    SUCCESS,
    UNKNOWN,
)
from paysys.config import ChannelConfig
from paysys.money import FeeRule

ADAPTER = AlipayAdapter("alipay")
ORDER = {"order_id": "P0000000001", "amount": 10_000, "currency": "CNY", "expire_ms": 99}


def ok(**fields) -> dict:
    return {"code": "10000", "msg": "Success", **fields}


def biz(sub_code: str, code: str = "40004") -> dict:
    return {"code": code, "sub_code": sub_code}


def notify(**changes) -> dict:
    body = {"type": "ali.notify", "notify_id": "n1", "notify_time": 5, "app_id": "2021",
            "out_trade_no": "P0000000001", "trade_no": "ALT0000000001",
            "trade_status": "TRADE_SUCCESS", "total_amount": 10_000, "currency": "CNY",
            "buyer_id": "U1", "gmt_payment": 5, "sign_type": "RSA2"}
    body.update(changes)
    body["sign"] = rsa2_sign(body)
    return body


# -- requests -------------------------------------------------------------------------------------

def test_requests_speak_alipay() -> None:
    pay = ADAPTER.pay("P0000000001.p1", ORDER, "", 0, "paysys")
    assert (pay["type"], pay["total_amount"], pay["time_expire"], pay["notify_url"]) == (
        "alipay.trade.precreate", 10_000, 99, "paysys")
    assert ADAPTER.query("P0000000001.p1", ORDER)["type"] == "alipay.trade.query"
    assert ADAPTER.close("P0000000001.p1", ORDER)["out_trade_no"] == "P0000000001"
    refund = {"refund_id": "R0000000001", "amount": 300}
    body = ADAPTER.refund("R0000000001.r1", "P0000000001.p1", refund, ORDER)
    assert (body["out_request_no"], body["refund_amount"]) == ("R0000000001", 300)
    assert "trade_no" not in body
    body = ADAPTER.refund("R1.r1", "", dict(refund, charge_ref="ALT1"), ORDER)
    assert body["trade_no"] == "ALT1"        # a compensation names the charge it takes back
    bill = ADAPTER.statement("X.b1", "2026-11-02")
    assert (bill["type"], bill["bill_date"]) == ("alipay.data.bill.download", "2026-11-02")
    assert ADAPTER.is_async("platform") and not ADAPTER.signs("platform")


# -- classification -------------------------------------------------------------------------------

@pytest.mark.parametrize(("op", "reply", "kind"), [
    ("pay", ok(qr_code="https://qr.alipay.com/bax1"), PENDING),
    ("pay", biz("ACQ.CONTEXT_INCONSISTENT"), FAILURE),
    ("pay", biz("ACQ.TRADE_HAS_CLOSE"), FAILURE),
    ("pay", biz("ACQ.TRADE_HAS_SUCCESS"), UNKNOWN),
    ("pay", biz("isv.invalid-parameter", "40002"), FAILURE),
    ("pay", biz("ACQ.SYSTEM_ERROR", "20000"), UNKNOWN),
    ("query", ok(trade_status="WAIT_BUYER_PAY", buyer_pay_amount=0), PENDING),
    ("query", ok(trade_status="TRADE_SUCCESS", buyer_pay_amount=10_000), SUCCESS),
    ("query", ok(trade_status="TRADE_FINISHED", buyer_pay_amount=10_000), SUCCESS),
    ("query", ok(trade_status="TRADE_CLOSED", buyer_pay_amount=0), CLOSED),
    ("query", ok(trade_status="TRADE_CLOSED", buyer_pay_amount=10_000), SUCCESS),  # refunded
    ("query", ok(trade_status="TRADE_SOMETHING"), UNKNOWN),
    ("query", biz("ACQ.TRADE_NOT_EXIST"), NOT_FOUND),
    ("close", ok(), CLOSED),
    ("close", biz("ACQ.TRADE_NOT_EXIST"), CLOSED),
    ("close", biz("ACQ.TRADE_STATUS_ERROR"), SUCCESS),          # paid: query the details
    ("refund", ok(refund_id="ALR1", fund_change="Y"), SUCCESS),
    ("refund", ok(refund_id="ALR1", fund_change="N"), SUCCESS),  # a repeat: same refund
    ("refund", biz("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"), FAILURE),
    ("refund", biz("ACQ.SELLER_BALANCE_NOT_ENOUGH"), FAILURE),
    ("refund", biz("ACQ.SYSTEM_ERROR", "20000"), UNKNOWN),
    ("bill", ok(format="alipay", content="#..."), SUCCESS),
    ("bill", ok(format="alipay", content=None), UNKNOWN),
    ("bill", biz("ACQ.BILL_NOT_EXIST"), PENDING),
    ("query", {}, UNKNOWN),
])
def test_classification_table(op, reply, kind) -> None:
    assert ADAPTER.classify(op, reply).kind == kind


def test_classified_details() -> None:
    pay = ADAPTER.classify("pay", ok(qr_code="https://qr.alipay.com/bax1"))
    assert pay.extra == {"code_url": "https://qr.alipay.com/bax1"}
    paid = ADAPTER.classify("query", ok(trade_status="TRADE_SUCCESS", trade_no="ALT9",
                                        total_amount=10_000, buyer_pay_amount=10_000))
    assert (paid.channel_ref, paid.amount) == ("ALT9", 10_000)
    bill = ADAPTER.classify("bill", ok(format="alipay", content="x"))
    assert bill.extra == {"format": "alipay", "content": "x"}
    assert ADAPTER.classify("refund", biz("ACQ.TRADE_NOT_EXIST")).code == "ACQ.TRADE_NOT_EXIST"


@pytest.mark.parametrize("op", ["pay", "query", "close", "refund", "bill"])
@pytest.mark.parametrize("refusal", sorted(NOTHING_DONE))
def test_nothing_done_refusals_are_rejected_for_every_operation(op, refusal) -> None:
    code, sub_code = refusal.split("/")
    outcome = ADAPTER.classify(op, biz(sub_code, code))
    assert (outcome.kind, outcome.code) == (REJECTED, sub_code)


@given(st.sampled_from(["pay", "query", "close", "refund", "bill"]),
       st.text(max_size=6), st.text(max_size=12))
def test_unknown_answers_are_never_failures(op, code, sub_code) -> None:
    tables = {"pay": PRECREATE, "query": QUERY, "close": CLOSE, "refund": REFUND, "bill": BILL}
    listed = code in tables[op] or f"{code}/{sub_code}" in tables[op] or code == "10000"
    outcome = ADAPTER.classify(op, {"code": code, "sub_code": sub_code})
    if not listed:
        assert outcome.kind == UNKNOWN


# -- notifications --------------------------------------------------------------------------------

def test_a_genuine_notification_is_success_acknowledged_with_the_literal_string() -> None:
    notice = ADAPTER.notification(notify())
    assert notice.valid and notice.order_id == "P0000000001"
    assert (notice.outcome.kind, notice.outcome.channel_ref, notice.outcome.amount) == (
        SUCCESS, "ALT0000000001", 10_000)
    assert notice.ack == {"type": "ali.notify.reply", "notify_id": "n1",
                          "out_trade_no": "P0000000001", "body": "success"}


def test_sign_string_leaves_out_sign_sign_type_and_empty_values() -> None:
    assert sign_string({"b": True, "a": 1, "sign": "X", "sign_type": "RSA2", "c": None,
                        "d": "", "e": False}) == "a=1&b=true&e=false"


@pytest.mark.parametrize("forge", [
    lambda b: dict(b, total_amount=1),                    # tampered after signing
    lambda b: dict(b, sign="bm90IGEgc2lnbmF0dXJl"),       # base64 of something else
    lambda b: dict(b, sign="***"),                        # not base64
    lambda b: {k: v for k, v in b.items() if k != "sign"},
    lambda b: dict(b, sign_type="RSA"),
    lambda b: dict(b, type="wx.notify"),                  # another platform's message
])
def test_a_bad_signature_is_refused(forge) -> None:
    notice = ADAPTER.notification(forge(notify()))
    assert not notice.valid and notice.outcome.kind == UNKNOWN
    assert notice.ack["body"] == "fail"


def test_without_verification_only_the_message_type_is_checked() -> None:
    """The no_signature_check flaw: a tampered ali.notify passes, another message does not."""
    assert ADAPTER.notification(dict(notify(), total_amount=1), verify=False).valid
    assert not ADAPTER.notification(dict(notify(), type="wx.notify"), verify=False).valid


def test_a_closed_trade_notification_is_not_a_payment() -> None:
    notice = ADAPTER.notification(notify(trade_status="TRADE_CLOSED"))
    assert notice.valid and notice.outcome.kind == UNKNOWN


# -- a payment by hand: paysys <-> the mock ------------------------------------------------------

ALIPAY = ChannelConfig("alipay", "alipay", ("platform",), priority=1, fee=FeeRule(rate_bp=60),
                       timeout_ms=TIMEOUT_MS)


def test_forged_notification_changes_nothing_then_the_genuine_one_pays() -> None:
    drv = Driver(make_node(channels=(BANK, ALIPAY)))
    ali = Alipay(name="alipay", rng=random.Random(1), fee_rule=Fee(rate_bp=60))
    ali.open_wallet("U00001", 50_000)
    fx = drv.merchant(pay_create("O1", product="platform"))
    (pre,) = sends(fx, "alipay")
    (answer,) = [e[1] for e in ali.handle("paysys", pre, drv.now) if e[0] == "reply"]
    fx = drv.handle("alipay", answer)
    (created,) = sends(fx, type="pay.create.reply")
    order_id = created["order_id"]
    assert created["code_url"] == answer["qr_code"]
    postings = drv.conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0]

    forged = dict(notify(out_trade_no=order_id, total_amount=10_000), trade_no="ALTFORGED")
    fx = drv.handle("alipay", forged)
    assert [e[1]["body"] for e in fx if e[0] == "reply"] == ["fail"]
    assert drv.status(order_id) == "PROCESSING"
    assert drv.conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0] == postings

    effects = ali.handle("user:U00001", {"type": "ali.user.pay", "qr_code": created["code_url"],
                                         "user_id": "U00001"}, drv.now + 1_000)
    (note,) = [e[2] for e in effects if e[0] == "send"]
    drv.now += 1_000
    fx = drv.handle("alipay", note)
    (ack,) = [e[1] for e in fx if e[0] == "reply"]
    assert ack["body"] == "success"
    assert drv.status(order_id) == "SUCCEEDED"
    assert drv.order(order_id)["channel_ref"] == note["trade_no"]
    assert ali.handle("paysys", ack, drv.now) == [] and ali.next_deadline() is None
