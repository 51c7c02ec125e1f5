"""paysys/compensation.py and paid.py, message by message: every charge a channel reports is
counted once; a charge no order keeps goes to suspense and is refunded by a refund aimed at that
charge; another amount is held; the policies; crash injection before the commit."""

from _node import (
    TIMEOUT_MS,
    Driver,
    bank_reply,
    events,
    make_node,
    one,
    pay_create,
    sends,
    wx_notify,
    wx_reply,
)

from paysys import ledger


def quick_paid(d: Driver, order_no: str, amount: int = 10_000, txn: str = "T1") -> tuple[str, dict]:
    fx = d.merchant(pay_create(order_no, amount))
    order_id = one([e[2] for e in fx if e[0] == "event" and e[1] == "route.decision"])
    request = one(sends(fx, "bank"))
    if request["type"] == "bank.sign":
        fx = d.handle("bank", bank_reply(request, "OK", agreement_no="AG1"))
        request = one(sends(fx, "bank", "bank.pay"))
    d.handle("bank", bank_reply(request, "SUCCESS", bank_txn_id=txn, amount=amount))
    assert d.status(order_id) == "SUCCEEDED"
    return order_id, request


def platform_order(d: Driver, order_no: str, amount: int = 2_000) -> str:
    fx = d.merchant(pay_create(order_no, amount, product="platform"))
    unified = one(sends(fx, "wechat"))
    d.handle("wechat", wx_reply(unified, prepay_id="wx1", code_url="weixin://wxpay/1"))
    return unified["out_trade_no"]


def suspense(d: Driver) -> int:
    return ledger.balance(d.conn, "liability:suspense", "CNY")


def compensations(d: Driver) -> list[tuple]:
    return d.conn.execute("SELECT order_id, reason, charge_ref, amount, status FROM refund_orders "
                          "WHERE reason != 'merchant' ORDER BY refund_id").fetchall()


def test_a_second_charge_of_a_paid_order_is_refunded_by_its_own_id():
    d = Driver()
    order_id, pay = quick_paid(d, "MO1")
    fx = d.handle("bank", bank_reply(pay, "SUCCESS", bank_txn_id="T2", amount=10_000))  # late
    refund = one(sends(fx, "bank", "bank.refund"))
    assert refund["orig_txn_id"] == "T2" and refund["amount"] == 10_000
    assert compensations(d) == [(order_id, "double_charge", "T2", 10_000, "PROCESSING")]
    assert suspense(d) == 10_000 and d.status(order_id) == "SUCCEEDED"
    d.handle("bank", bank_reply(refund, "SUCCESS", bank_txn_id="BR1", amount=10_000))
    assert suspense(d) == 0
    assert compensations(d)[0][-1] == "SUCCEEDED"


def test_a_repeat_of_the_same_charge_changes_nothing():
    d = Driver()
    order_id, pay = quick_paid(d, "MO1")
    fx = d.handle("bank", bank_reply(pay, "SUCCESS", bank_txn_id="T1", amount=10_000))
    assert sends(fx, "bank") == [] and compensations(d) == []
    order_id = platform_order(d, "MO2")
    d.handle("wechat", wx_notify(order_id, 2_000))
    fx = d.handle("wechat", wx_notify(order_id, 2_000))   # the platform's retry
    assert sends(fx, "wechat", "wx.refund") == [] and compensations(d) == []


def test_without_dedupe_a_repeat_is_taken_for_a_second_charge():
    d = Driver(make_node(flaws=frozenset({"no_notify_dedupe"})))
    order_id = platform_order(d, "MO1")
    d.handle("wechat", wx_notify(order_id, 2_000))
    fx = d.handle("wechat", wx_notify(order_id, 2_000))
    assert one(sends(fx, "wechat", "wx.refund"))["transaction_id"] == f"WX{order_id}"


def test_another_amount_is_held_never_paid():
    d = Driver()
    order_id = platform_order(d, "MO1")
    fx = d.handle("wechat", wx_notify(order_id, 2_100))
    order = d.order(order_id)
    assert (order["status"], order["error_code"], order["received"]) == (
        "HELD", "AMOUNT_MISMATCH", 2_100)
    assert one(events(fx, "channel.amount_mismatch"))["reported"] == 2_100
    assert suspense(d) == 2_100
    assert ledger.balance(d.conn, "liability:merchant:M001", "CNY") == 0
    # and a last query asks the platform for every charge of it
    assert one(sends(fx, "wechat", "wx.orderquery"))["out_trade_no"] == order_id


def test_trusting_the_notified_amount_marks_it_paid():
    d = Driver(make_node(flaws=frozenset({"trust_notified_amount"})))
    order_id = platform_order(d, "MO1")
    d.handle("wechat", wx_notify(order_id, 1_000))
    assert d.status(order_id) == "SUCCEEDED"


def test_partial_payment_completed_under_the_complete_policy():
    d = Driver(make_node(partial_payment="complete"))
    order_id = platform_order(d, "MO1")
    d.handle("wechat", wx_notify(order_id, 500, transaction_id="WX-a"))
    assert d.status(order_id) == "PROCESSING" and d.order(order_id)["received"] == 500
    d.handle("wechat", wx_notify(order_id, 1_500, transaction_id="WX-b"))
    assert d.status(order_id) == "SUCCEEDED" and suspense(d) == 0
    kept = d.conn.execute("SELECT channel_ref, kept FROM charges ORDER BY channel_ref").fetchall()
    assert kept == [("WX-a", 1), ("WX-b", 1)]


def test_partial_payment_refunded_under_the_refund_policy():
    d = Driver(make_node(partial_payment="refund"))
    order_id = platform_order(d, "MO1")
    fx = d.handle("wechat", wx_notify(order_id, 500, transaction_id="WX-a"))
    assert one(sends(fx, "wechat", "wx.refund"))["transaction_id"] == "WX-a"
    assert one(sends(fx, "wechat", "wx.closeorder"))["out_trade_no"] == order_id
    assert compensations(d)[0][:4] == (order_id, "partial", "WX-a", 500)


def test_late_success_after_close_is_refunded_or_reopened():
    for policy, status, refunds in (("refund", "CLOSED", 1), ("reopen", "SUCCEEDED", 0)):
        d = Driver(make_node(late_success=policy))
        order_id = platform_order(d, "MO1")
        fx = d.advance(d.node.cfg.platform_expire_ms)
        close = one(sends(fx, "wechat", "wx.closeorder"))
        d.handle("wechat", wx_reply(close))
        assert d.status(order_id) == "CLOSED"
        d.handle("wechat", wx_notify(order_id, 2_000, transaction_id="WX-late"))
        assert d.status(order_id) == status
        assert len(compensations(d)) == refunds


def test_a_second_attempt_paid_after_the_first_is_a_duplicate():
    d = Driver()
    first = platform_order(d, "MO1", 10_000)
    fx = d.merchant(pay_create("MO1", 10_000, key="pay-MO1-2"))   # the other tab: quick pay
    second = one([e[2] for e in fx if e[0] == "event" and e[1] == "route.decision"])
    assert d.order(second)["attempt"] == 2
    d.handle("wechat", wx_notify(first, 10_000))
    request = one(sends(fx, "bank"))
    if request["type"] == "bank.sign":
        fx = d.handle("bank", bank_reply(request, "OK", agreement_no="AG1"))
        request = one(sends(fx, "bank", "bank.pay"))
    fx = d.handle("bank", bank_reply(request, "SUCCESS", bank_txn_id="T9", amount=10_000))
    assert (d.status(first), d.status(second)) == ("SUCCEEDED", "DUPLICATE")
    assert one(sends(fx, "bank", "bank.refund"))["orig_txn_id"] == "T9"


def test_a_crash_before_the_commit_loses_the_unit_and_sends_nothing_through_the_outbox():
    d = Driver(make_node(commit_every=1))
    d.node.abort_next_unit()
    fx = d.merchant(pay_create("MO1"))
    assert fx == [] and d.node.dead
    assert d.conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone() == (0,)


def test_without_the_outbox_the_request_has_left_before_the_crash():
    d = Driver(make_node(commit_every=1, flaws=frozenset({"no_outbox"})))
    d.node.abort_next_unit()
    fx = d.merchant(pay_create("MO1"))
    assert one(sends(fx, "bank"))["type"] in ("bank.sign", "bank.pay")
    assert d.conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone() == (0,)


def test_the_janitor_queries_an_order_left_without_a_timer():
    d = Driver()
    quick_paid(d, "warm-up")
    fx = d.merchant(pay_create("MO2"))
    stuck = one([e[2] for e in fx if e[0] == "event" and e[1] == "route.decision"])
    d.advance(TIMEOUT_MS)
    assert d.status(stuck) == "UNKNOWN"
    d.node._timers.clear()          # memory lost some other way: only the janitor is left
    d.node.janitor_armed = False    # the next message wakes it
    d.handle("merchant:M001", {"type": "notify.payment.reply", "notify_id": "x", "body": "fail"})
    fx = d.advance(2 * 60 * 60_000)
    assert events(fx, "janitor.action", stuck)
    assert any(q["req_id"].startswith(stuck) for q in sends(fx, "bank", "bank.query"))
