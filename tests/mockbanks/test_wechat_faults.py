"""The WeChat-like platform's own faults, partial payments, charges in queries, refunds of one given
charge and the BUGGIFY point, fed message by message."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks._sign import verify
from mockbanks.faults import ChannelFault
from mockbanks.fees import Fee
from mockbanks.wechat import WeChat
from tests.mockbanks.test_wechat import KEY, T0, S, bal, call, order, query, sends

NO = "P0000000001"


def faulty(*faults: ChannelFault, buggify=None, platform_balance: int = 50_000) -> WeChat:
    wx = WeChat(name="wechat", rng=random.Random(3), fee_rule=Fee(rate_bp=60), api_key=KEY,
                platform_balance=platform_balance, faults=faults, buggify=buggify)
    wx.open_wallet("U1", 100_000)
    wx.open_wallet("U2", 500)
    return wx


def fault(kind: str, start: int = T0, end: int = T0 + 60_000, p: float = 1.0, fid: int = 4,
          delay=None, **params) -> ChannelFault:
    return ChannelFault(fid, kind, start, end, p, params, delay)


def fired(effects: list) -> list[dict]:
    return [e[3] for e in effects if e[0] == "event" and e[1] == "fault.fired"]


def pay(wx: WeChat, prepay: str, amount: int | None = None, user: str = "U1",
        now: int = T0) -> tuple[dict, list]:
    body = {"type": "wx.user.pay", "prepay_id": prepay, "user_id": user}
    if amount is not None:
        body["amount"] = amount
    return call(wx, body, now, src=f"user:{user}")


def refund(wx: WeChat, no: str, fee: int, txn: str | None = None, now: int = T0) -> dict:
    body = {"type": "wx.refund", "out_trade_no": NO, "out_refund_no": no, "total_fee": 10_000,
            "refund_fee": fee}
    if txn is not None:
        body["transaction_id"] = txn
    return call(wx, body, now)[0]


def conserved(wx: WeChat) -> bool:
    return wx.truth.total("CNY") == wx.truth.initial_total("CNY")


def test_unsupported_kind_for_the_bank_only_is_fine_here_and_bad_kind_refused() -> None:
    faulty(fault("notify_lost"))
    with pytest.raises(ValueError, match="kind: expected one of"):
        fault("outage")


def test_maintenance_refuses_every_request_nothing_done() -> None:
    wx = faulty(fault("maintenance", start=T0 + 1_000))
    prepay = order(wx, NO)
    reply, effects = call(wx, {"type": "wx.unifiedorder", "out_trade_no": "P2", "total_fee": 1,
                               "fee_type": "CNY", "notify_url": "paysys", "time_expire": None},
                          T0 + 1_000)
    assert (reply["return_code"], reply["result_code"], reply["err_code"]) == (
        "SUCCESS", "FAIL", "SYSTEM_MAINTENANCE")
    assert fired(effects) == [{"fault_id": 4, "kind": "maintenance", "type": "wx.unifiedorder",
                               "out_trade_no": "P2"}]
    reply, effects = pay(wx, prepay, now=T0 + 2_000)
    assert reply["result"] == "SYSTEM_MAINTENANCE" and effects[0][2] == NO
    assert query(wx, NO, T0 + 2_000)["err_code"] == "SYSTEM_MAINTENANCE"
    assert wx.truth.txns() == [] and bal(wx, "wallet:U1") == 100_000
    assert query(wx, "P2", T0 + 60_000)["err_code"] == "ORDERNOTEXIST"    # nothing was done


def test_rate_limit_frequency_limited_for_paysys_not_users() -> None:
    wx = faulty(fault("rate_limit", max_per_s=2))
    prepay = order(wx, NO)                                           # 1
    assert query(wx, NO)["result_code"] == "SUCCESS"                 # 2
    reply = query(wx, NO, T0 + 500)
    assert (reply["result_code"], reply["err_code"]) == ("FAIL", "FREQUENCY_LIMITED")
    assert pay(wx, prepay, now=T0 + 600)[0]["result"] == "SUCCESS"   # the user is not limited
    assert query(wx, NO, T0 + 1_000)["trade_state"] == "SUCCESS"     # a new second


def test_cutoff_refuses_unifiedorder_only() -> None:
    wx = faulty(fault("cutoff", start=T0 + 1))
    prepay = order(wx, NO)
    reply, effects = call(wx, {"type": "wx.unifiedorder", "out_trade_no": "P2", "total_fee": 5,
                               "fee_type": "CNY", "notify_url": "paysys", "time_expire": None},
                          T0 + 1)
    assert reply["err_code"] == "CUTOFF_IN_PROGRESS" and fired(effects)[0]["kind"] == "cutoff"
    assert pay(wx, prepay, now=T0 + 2)[0]["result"] == "SUCCESS"
    assert query(wx, NO, T0 + 3)["trade_state"] == "SUCCESS"
    assert refund(wx, "R1.1", 100, now=T0 + 4)["result_code"] == "SUCCESS"


def test_notify_late_delays_each_attempt() -> None:
    wx = faulty(fault("notify_late", end=T0 + 20 * S, delay=lambda rng: 7_000))
    _, effects = pay(wx, order(wx, NO))
    assert [e[3] for e in sends(effects)] == [7_000]
    assert fired(effects)[0] | {"delay": 7_000} == fired(effects)[0]
    assert [e[3] for e in sends(wx.on_timer(T0 + 15 * S))] == [7_000]
    assert [e[3] for e in sends(wx.on_timer(T0 + 30 * S))] == [0]    # after the window


def test_notify_lost_never_notifies_that_payment() -> None:
    wx = faulty(fault("notify_lost", end=T0 + 1))
    reply, effects = pay(wx, order(wx, NO))
    assert reply["result"] == "SUCCESS" and sends(effects) == []
    assert fired(effects) == [{"fault_id": 4, "kind": "notify_lost", "out_trade_no": NO,
                               "txn_id": reply["transaction_id"]}]
    assert wx.next_deadline() is None and len(wx.truth.txns()) == 1
    _, effects = pay(wx, order(wx, "P2"), now=T0 + 1)                 # after the window
    assert len(sends(effects)) == 1


def test_notify_duplicate_sends_each_attempt_twice() -> None:
    wx = faulty(fault("notify_duplicate"))
    _, effects = pay(wx, order(wx, NO))
    assert len(sends(effects)) == 2 and fired(effects)[0]["n"] == 1
    assert len(sends(wx.on_timer(T0 + 15 * S))) == 2


def test_buggify_notify_duplicate() -> None:
    wx = faulty(buggify=lambda point: point == "wechat.notify_duplicate")
    _, effects = pay(wx, order(wx, NO))
    assert len(sends(effects)) == 2
    assert [e[3]["point"] for e in effects if e[1] == "buggify.fired"] == [
        "wechat.notify_duplicate"]


@pytest.mark.parametrize(("delta", "charged"), [(-1, 9_999), (300, 10_300)])
def test_amount_mismatch_charges_and_notifies_the_other_amount(delta: int, charged: int) -> None:
    wx = faulty(fault("amount_mismatch", delta=delta))
    reply, effects = pay(wx, order(wx, NO))
    assert reply["result"] == "SUCCESS"
    assert sends(effects)[0][2]["total_fee"] == charged
    assert fired(effects) == [{"fault_id": 4, "kind": "amount_mismatch", "out_trade_no": NO,
                               "asked": 10_000, "charged": charged}]
    assert [t["amount"] for t in wx.truth.txns()] == [charged]
    q = query(wx, NO)
    assert (q["trade_state"], q["paid_fee"]) == ("SUCCESS", charged)
    assert q["charges"] == [{"txn_id": reply["transaction_id"], "amount": charged}]
    assert refund(wx, "R1.1", charged)["result_code"] == "SUCCESS"
    assert bal(wx, "wallet:U1") == 100_000 and conserved(wx)


def test_double_charge_second_transaction_notified_on_its_own() -> None:
    wx = faulty(fault("double_charge"))
    reply, effects = pay(wx, order(wx, NO))
    first = reply["transaction_id"]
    txns = wx.truth.txns()
    assert [(t["ref"], t["amount"]) for t in txns] == [(NO, 10_000), (NO, 10_000)]
    second = txns[1]["channel_ref"]
    assert second != first and 1_000 <= txns[1]["at_ms"] - T0 <= 3_000
    assert fired(effects)[0]["second_txn_id"] == second
    assert [s[2]["transaction_id"] for s in sends(effects)] == [first]
    # paysys acknowledges the first notification (by out_trade_no only)
    wx.handle("paysys", {"type": "wx.notify.reply", "out_trade_no": NO, "return_code": "SUCCESS"},
              T0 + 50)
    later = sends(wx.on_timer(txns[1]["at_ms"]))
    assert [(s[2]["transaction_id"], s[2]["total_fee"]) for s in later] == [(second, 10_000)]
    assert verify(later[0][2], KEY)
    wx.handle("paysys", {"type": "wx.notify.reply", "out_trade_no": NO, "transaction_id": second,
                         "return_code": "SUCCESS"}, txns[1]["at_ms"] + 50)
    assert wx.next_deadline() is None
    q = query(wx, NO, T0 + 5_000)
    assert (q["trade_state"], q["transaction_id"], q["paid_fee"]) == ("SUCCESS", first, 20_000)
    assert [c["txn_id"] for c in q["charges"]] == [first, second]
    assert refund(wx, "R1.1", 10_000, txn=second)["result_code"] == "SUCCESS"
    assert refund(wx, "R2.1", 1, txn=second)["err_code"] == "REFUND_FEE_INVALID"
    assert bal(wx, "wallet:U1") == 90_000 and conserved(wx)


def test_double_charge_skipped_when_the_wallet_is_short() -> None:
    wx = faulty(fault("double_charge"))
    _, effects = pay(wx, order(wx, NO, fee=60_000))
    assert fired(effects) == [] and len(wx.truth.txns()) == 1 and wx.next_deadline() == T0 + 15 * S


def test_pay_after_close_charges_anyway_and_notifies() -> None:
    wx = faulty(fault("pay_after_close", end=T0 + 10 * S))
    order(wx, NO, expire=T0 + 5 * S)
    reply, effects = call(wx, {"type": "wx.closeorder", "out_trade_no": NO}, T0 + S)
    assert reply["result_code"] == "SUCCESS"
    lands = fired(effects)[0]["lands_at"]
    assert T0 + 3 * S <= lands <= T0 + 6 * S and wx.next_deadline() == lands
    assert query(wx, NO, T0 + 2 * S)["trade_state"] == "NOTPAY"
    effects = wx.on_timer(lands)
    assert [e[1] for e in effects if e[0] == "event"] == ["fault.fired", "wx.txn",
                                                          "wx.notify.attempt"]
    payer = fired(effects)[0]["user_id"]
    assert payer == "U1"                                  # the only wallet that can pay it
    notify = sends(effects)[0][2]
    assert (notify["out_trade_no"], notify["total_fee"], notify["time_end"]) == (NO, 10_000, lands)
    assert query(wx, NO, lands + 1)["trade_state"] == "SUCCESS"    # no expiry meanwhile
    assert [(t["ref"], t["at_ms"]) for t in wx.truth.txns()] == [(NO, lands)]
    assert refund(wx, "R1.1", 10_000, now=lands + 2)["result_code"] == "SUCCESS"
    assert bal(wx, "wallet:U1") == 100_000


def test_pay_after_close_yields_to_a_real_payment_and_after_the_window_closes() -> None:
    wx = faulty(fault("pay_after_close", end=T0 + 10 * S))
    prepay = order(wx, NO)
    call(wx, {"type": "wx.closeorder", "out_trade_no": NO}, T0)
    assert pay(wx, prepay, user="U1", now=T0 + 1)[0]["result"] == "SUCCESS"
    effects = wx.on_timer(T0 + 10 * S)                 # the "in flight" payment finds it paid
    assert [e for e in effects if e[1] == "wx.txn"] == [] and len(wx.truth.txns()) == 1
    other = order(wx, "P2")
    call(wx, {"type": "wx.closeorder", "out_trade_no": "P2"}, T0 + 10 * S)
    assert pay(wx, other, now=T0 + 11 * S)[0]["result"] == "ORDERCLOSED"


def test_partial_payments_accumulate_until_success() -> None:
    wx = faulty()
    prepay = order(wx, NO)
    first, effects = pay(wx, prepay, 3_000)
    assert first["result"] == "SUCCESS" and sends(effects)[0][2]["total_fee"] == 3_000
    q = query(wx, NO)
    assert (q["trade_state"], q["paid_fee"], q["transaction_id"]) == ("NOTPAY", 3_000, None)
    assert pay(wx, prepay, 7_001)[0] | {"field": "amount"} == pay(wx, prepay, 7_001)[0]
    assert pay(wx, prepay, 0)[0]["result"] == "PARAM_ERROR"
    second, _ = pay(wx, prepay, 2_000, user="U2", now=T0 + 1)     # U2 holds only 500
    assert second["result"] == "NOTENOUGH"
    second, _ = pay(wx, prepay, 7_000, now=T0 + 2)
    q = query(wx, NO, T0 + 3)
    assert (q["trade_state"], q["paid_fee"], q["transaction_id"], q["time_end"]) == (
        "SUCCESS", 10_000, first["transaction_id"], T0 + 2)
    assert [c["amount"] for c in q["charges"]] == [3_000, 7_000]
    assert pay(wx, prepay, 1, now=T0 + 4)[0]["result"] == "ORDERPAID"
    assert refund(wx, "R1.1", 8_000)["result_code"] == "SUCCESS"     # spans both charges
    assert refund(wx, "R2.1", 2_001)["err_code"] == "REFUND_FEE_INVALID"
    assert refund(wx, "R3.1", 2_000, txn=second["transaction_id"])["result_code"] == "SUCCESS"
    assert bal(wx, "wallet:U1") == 100_000 and conserved(wx)


def test_partial_charge_of_an_unpaid_or_closed_order_is_refundable_by_transaction_id() -> None:
    wx = faulty()
    first, _ = pay(wx, order(wx, NO), 4_000)
    call(wx, {"type": "wx.closeorder", "out_trade_no": NO}, T0 + 1)
    assert query(wx, NO, T0 + 2)["trade_state"] == "CLOSED"
    assert refund(wx, "R1.1", 4_000)["err_code"] == "ORDERNOTEXIST"   # the order is not paid
    ok = refund(wx, "R2.1", 4_000, txn=first["transaction_id"])
    assert ok["result_code"] == "SUCCESS"
    bad = refund(wx, "R3.1", 1, txn="")
    assert (bad["err_code"], bad["field"]) == ("PARAM_ERROR", "transaction_id")
    assert bal(wx, "wallet:U1") == 100_000 and conserved(wx)


def test_ack_by_transaction_id_stops_only_that_series() -> None:
    wx = faulty()
    prepay = order(wx, NO)
    a, _ = pay(wx, prepay, 1_000)
    b, _ = pay(wx, prepay, 1_000, now=T0 + 10)
    wx.handle("paysys", {"type": "wx.notify.reply", "out_trade_no": NO,
                         "transaction_id": a["transaction_id"], "return_code": "SUCCESS"}, T0 + 20)
    due = sends(wx.on_timer(T0 + 15 * S + 10))
    assert [s[2]["transaction_id"] for s in due] == [b["transaction_id"]]


OPS = st.lists(st.tuples(st.sampled_from(["pay", "part", "refund", "txrefund", "close", "wait"]),
                         st.integers(0, 3), st.integers(1, 12_000)), max_size=30)
KINDS = ("amount_mismatch", "double_charge", "pay_after_close", "notify_lost")


@settings(max_examples=40, deadline=None)
@given(OPS, st.lists(st.sampled_from(KINDS), max_size=2, unique=True))
def test_money_is_conserved_with_partial_payments_refunds_and_faults(ops: list,
                                                                     kinds: list) -> None:
    wx = faulty(*[fault(k, p=0.5, fid=i, delta=11, end=T0 + 3_600_000)
                  for i, k in enumerate(kinds)], platform_balance=20_000)
    initial, now = wx.truth.initial_total("CNY"), T0
    prepays = [order(wx, f"P{i}", fee=10_000, expire=None) for i in range(4)]
    for i, (op, n, amount) in enumerate(ops):
        now += 700
        if op in ("pay", "part"):
            pay(wx, prepays[n], amount if op == "part" else None, user="U1", now=now)
        elif op in ("refund", "txrefund"):
            q = query(wx, f"P{n}", now)
            txn = q.get("charges", [{"txn_id": q["transaction_id"]}])[0]["txn_id"] if (
                op == "txrefund" and (q.get("charges") or q["transaction_id"])) else None
            call(wx, {"type": "wx.refund", "out_trade_no": f"P{n}", "out_refund_no": f"R{i}",
                      "total_fee": 10_000, "refund_fee": amount,
                      **({"transaction_id": txn} if txn else {})}, now)
        elif op == "close":
            call(wx, {"type": "wx.closeorder", "out_trade_no": f"P{n}"}, now)
        else:
            now += amount
            wx.on_timer(now)
        assert wx.truth.total("CNY") == initial
        assert all(r["balance"] >= 0 for r in wx.truth.accounts())
    for i in range(4):
        q = query(wx, f"P{i}", now)
        charged = sum(t["amount"] for t in wx.truth.txns()
                      if t["kind"] == "pay" and t["ref"] == f"P{i}")
        assert q.get("paid_fee", 10_000 if q["trade_state"] in ("SUCCESS", "REFUND") else 0) \
            == charged
