"""The payment-system node driven by hand: we play the merchant, the bank and WeChat.

Each test feeds messages (and time) to a `PaySys` on an in-memory store and checks the effects it
returns and what it wrote: order statuses, ledger entries, notifications, channel requests.
Counterparty replies are built per docs/protocol.md by the helpers of `_node.py`.
"""

from dataclasses import replace

import pytest
from _node import (
    BANK,
    CHALLENGE_AMOUNT,
    M_HMAC,
    M_MD5,
    NOTIFY_URL,
    TIMEOUT_MS,
    WECHAT,
    Driver,
    bank_reply,
    confirm_otp,
    events,
    make_node,
    one,
    pay_create,
    refund_create,
    replies,
    sends,
    signed,
    wx_notify,
    wx_reply,
)

from paysys import ledger
from paysys.config import NOTIFY_SCHEDULE_MS, QUERY_BACKOFF_MS
from paysys.payments import CLOSE_MARGIN_MS
from paysys.signing import verify

MERCHANT = "merchant:M001"


def entries(conn, ref: str | None = None) -> list[tuple]:
    sql, args = "SELECT entry_id, ref, memo FROM journal_entries", ()
    if ref is not None:
        sql, args = sql + " WHERE ref=?", (ref,)
    return conn.execute(sql, args).fetchall()


def assert_books_balance(conn) -> None:
    for currency, (debits, credits) in ledger.trial_balance(conn).items():
        assert debits == credits, f"trial balance {currency}: {debits} != {credits}"
    for merchant in ("M001", "M002"):
        assert ledger.external_balance(conn, f"merchant:{merchant}", "CNY") == ledger.balance(
            conn, f"liability:merchant:{merchant}", "CNY")


def start_quick(d: Driver, order_no: str, amount: int = 10_000, **fields) -> tuple[str, dict]:
    """pay.create for a quick payment; returns the order id and the first bank request."""
    fx = d.merchant(pay_create(order_no, amount, **fields))
    order_id = one([e[2] for e in fx if e[0] == "event" and e[1] == "route.decision"])
    return order_id, one(sends(fx, "bank"))


def quick_paid(d: Driver, order_no: str, amount: int = 10_000) -> str:
    """A quick payment taken to SUCCEEDED (signing the card first if needed); returns its id."""
    order_id, request = start_quick(d, order_no, amount)
    if request["type"] == "bank.sign":
        fx = d.handle("bank", bank_reply(request, "OK", agreement_no="AG1"))
        request = one(sends(fx, "bank", "bank.pay"))
    d.handle("bank", bank_reply(request, "SUCCESS", bank_txn_id=f"T-{order_no}", amount=amount))
    assert d.status(order_id) == "SUCCEEDED"
    return order_id


def pay_timed_out(d: Driver, order_no: str) -> tuple[str, dict]:
    """A quick payment whose bank.pay got no answer within the timeout; returns (id, pay)."""
    quick_paid(d, "warm-up")  # the card is signed: the next payment goes straight to bank.pay
    order_id, pay = start_quick(d, order_no)
    assert pay["type"] == "bank.pay"
    fx = d.advance(TIMEOUT_MS)
    assert one(events(fx, "channel.timeout", order_id))["req_id"] == f"{order_id}.p1"
    assert d.status(order_id) == "UNKNOWN"
    return order_id, pay


@pytest.fixture
def d() -> Driver:
    return Driver()


# -- quick pay --------------------------------------------------------------------------------


def test_quick_pay_first_use_signs_then_pays_and_posts_a_balanced_entry(d):
    order_id, sign_req = start_quick(d, "MO1")
    assert sign_req == {"type": "bank.sign", "req_id": f"{order_id}.s1", "user_id": "U00001",
                        "card_no": "6222020000000001"}
    assert d.status(order_id) == "PROCESSING"
    fx = d.handle("bank", bank_reply(sign_req, "OK", agreement_no="AG1"))
    pay = one(sends(fx, "bank", "bank.pay"))
    assert pay == {"type": "bank.pay", "req_id": f"{order_id}.p1", "agreement_no": "AG1",
                   "amount": 10_000, "currency": "CNY"}
    fx = d.handle("bank", bank_reply(pay, "SUCCESS", bank_txn_id="T1", amount=10_000))

    order = d.order(order_id)
    assert (order["status"], order["channel_ref"], order["merchant_fee"], order["channel_cost"]) == (
        "SUCCEEDED", "T1", 60, 20)
    answer = one(sends(fx, MERCHANT, "pay.create.reply"))
    assert (answer["ok"], answer["order_id"], answer["status"]) == (True, order_id, "SUCCEEDED")
    assert len(entries(d.conn, order_id)) == 1
    assert one(events(fx, "ledger.post", order_id))["memo"] == "payment"
    assert ledger.balance(d.conn, "asset:channel:bank", "CNY") == 10_000 - 20
    assert ledger.balance(d.conn, "liability:merchant:M001", "CNY") == 10_000 - 60
    assert ledger.balance(d.conn, "income:fee", "CNY") == 60
    assert ledger.balance(d.conn, "expense:channel:bank", "CNY") == 20
    assert_books_balance(d.conn)
    moves = d.conn.execute("SELECT from_status, to_status, event FROM transitions WHERE ref=? "
                           "ORDER BY seq", (order_id,)).fetchall()
    assert moves == [(None, "CREATED", "create"), ("CREATED", "PROCESSING", "submit"),
                     ("PROCESSING", "SUCCEEDED", "success")]


def test_a_second_payment_with_the_same_card_uses_the_agreement(d):
    quick_paid(d, "MO1")
    _, request = start_quick(d, "MO2", 500)
    assert request["type"] == "bank.pay" and request["agreement_no"] == "AG1"


def test_merchant_notification_is_signed_retried_on_schedule_and_acked(d):
    order_id = quick_paid(d, "MO1")
    first = one(sends(d.log_effects(), NOTIFY_URL))
    assert first["type"] == "notify.payment" and first["status"] == "SUCCEEDED"
    assert (first["order_id"], first["merchant_order_no"], first["amount"]) == (order_id, "MO1", 10_000)
    assert verify(first, M_MD5.secret) and not verify(first, "another secret")
    start = d.now
    times = []
    for _ in range(3):
        fx = d.advance(d.node.next_deadline() - d.now)
        times.append(d.now - start)
        attempt = one(sends(fx, NOTIFY_URL))
        assert verify(attempt, M_MD5.secret) and attempt["notify_id"] == first["notify_id"]
        assert attempt["nonce"] != first["nonce"]
    assert times == [15_000, 30_000, 60_000]  # 15 s, 15 s, 30 s apart (WeChat's schedule)
    fx = d.handle(NOTIFY_URL, {"type": "notify.payment.reply", "notify_id": first["notify_id"],
                               "body": "success"})
    assert one(events(fx, "notify.result"))["outcome"] == "acked"
    assert d.conn.execute("SELECT status, attempts FROM notifications").fetchall() == [("acked", 4)]
    assert sends(d.advance(24 * 3_600_000), NOTIFY_URL) == []


def test_only_the_literal_success_acknowledges(d):
    quick_paid(d, "MO1")
    notify_id = one(sends(d.log_effects(), NOTIFY_URL))["notify_id"]
    fx = d.handle(NOTIFY_URL, {"type": "notify.payment.reply", "notify_id": notify_id, "body": "ok"})
    assert one(events(fx, "notify.result"))["outcome"] == "failed"
    assert d.conn.execute("SELECT status FROM notifications").fetchone() == ("pending",)
    assert len(sends(d.advance(15_000), NOTIFY_URL)) == 1


def test_a_notification_never_acked_is_dead_after_the_last_attempt(d):
    quick_paid(d, "MO1")
    start = d.now
    fx = d.advance(sum(NOTIFY_SCHEDULE_MS) + 60_000)
    attempts = [t - start for t, e in d.log if e[0] == "send" and e[1] == NOTIFY_URL]
    cumulative = [sum(NOTIFY_SCHEDULE_MS[:i]) for i in range(len(NOTIFY_SCHEDULE_MS) + 1)]
    assert attempts == cumulative  # the first attempt, then one after each interval
    dead = one(events(fx, "notify.result"))
    assert dead["outcome"] == "dead"
    assert d.conn.execute("SELECT status, attempts FROM notifications").fetchall() == [
        ("dead", len(NOTIFY_SCHEDULE_MS) + 1)]
    assert d.node.next_deadline() is None


def test_decline_fails_the_order_without_an_entry(d):
    quick_paid(d, "MO1")
    order_id, pay = start_quick(d, "MO2")
    fx = d.handle("bank", bank_reply(pay, "DECLINED", code="INSUFFICIENT_FUNDS"))
    order = d.order(order_id)
    assert (order["status"], order["error_code"]) == ("FAILED", "INSUFFICIENT_FUNDS")
    answer = one(sends(fx, MERCHANT, "pay.create.reply"))
    assert (answer["status"], answer["code"]) == ("FAILED", "INSUFFICIENT_FUNDS")
    assert entries(d.conn, order_id) == []
    assert one(sends(fx, NOTIFY_URL))["status"] == "FAILED"


# -- unknown outcomes: timeout, query, close, late replies -------------------------------------


def test_pay_timeout_is_unknown_then_a_query_success_succeeds(d):
    order_id, _ = pay_timed_out(d, "MO2")
    answer = one(sends(d.log_effects(), MERCHANT, "pay.create.reply")[-1:])
    assert (answer["order_id"], answer["status"]) == (order_id, "PROCESSING")  # never FAILED
    fx = d.advance(QUERY_BACKOFF_MS[0] - 1)
    assert sends(fx, "bank") == []
    query = one(sends(d.advance(1), "bank", "bank.query"))
    assert query == {"type": "bank.query", "req_id": f"{order_id}.p1"}
    fx = d.handle("bank", bank_reply(query, "SUCCESS", amount=10_000, bank_txn_id="T2"))
    assert d.status(order_id) == "SUCCEEDED"
    assert len(entries(d.conn, order_id)) == 1
    assert_books_balance(d.conn)


def test_queries_back_off_while_they_time_out(d):
    order_id, _ = pay_timed_out(d, "MO2")
    t0 = d.now
    fx = d.advance(QUERY_BACKOFF_MS[0] + TIMEOUT_MS + QUERY_BACKOFF_MS[1] + TIMEOUT_MS
                   + QUERY_BACKOFF_MS[2])
    sent = [t - t0 for t, e in d.log if t >= t0 and e[0] == "send" and e[2]["type"] == "bank.query"]
    assert sent == [QUERY_BACKOFF_MS[0], QUERY_BACKOFF_MS[0] + TIMEOUT_MS + QUERY_BACKOFF_MS[1],
                    sum(QUERY_BACKOFF_MS[:3]) + 2 * TIMEOUT_MS]
    assert len(events(fx, "channel.timeout", order_id)) == 2
    assert d.status(order_id) == "UNKNOWN"


def test_query_not_found_closes_at_the_bank_before_closing_the_order(d):
    order_id, _ = pay_timed_out(d, "MO2")
    query = one(sends(d.advance(QUERY_BACKOFF_MS[0]), "bank", "bank.query"))
    fx = d.handle("bank", bank_reply(query, "NOT_FOUND"))
    assert d.status(order_id) == "UNKNOWN"  # not found is not a failure by itself
    close = one(sends(fx, "bank", "bank.close"))
    assert close == {"type": "bank.close", "req_id": f"{order_id}.p1"}
    fx = d.handle("bank", bank_reply(close, "CLOSED"))
    assert d.status(order_id) == "CLOSED"
    assert entries(d.conn, order_id) == []
    assert one(sends(fx, NOTIFY_URL))["status"] == "CLOSED"


def test_a_reply_after_the_timeout_is_late_and_changes_nothing(d):
    order_id, pay = pay_timed_out(d, "MO2")
    fx = d.handle("bank", bank_reply(pay, "SUCCESS", amount=10_000, bank_txn_id="T2"))
    late = one(events(fx, "channel.late_reply"))
    assert late == {"channel": "bank", "req_id": f"{order_id}.p1"}
    assert [e for e in fx if e[0] != "event"] == []
    assert d.status(order_id) == "UNKNOWN"
    assert entries(d.conn, order_id) == []


# -- platform pay (WeChat-like) ----------------------------------------------------------------


def start_platform(d: Driver, order_no: str, amount: int = 2_000) -> tuple[str, dict]:
    fx = d.merchant(pay_create(order_no, amount, product="platform"))
    request = one(sends(fx, "wechat"))
    return request["out_trade_no"], request


def test_platform_pay_answers_with_the_code_url(d):
    order_id, unified = start_platform(d, "MO1")
    assert unified["type"] == "wx.unifiedorder"
    assert (unified["total_fee"], unified["fee_type"], unified["notify_url"]) == (2_000, "CNY", "paysys")
    # the platform's deadline is later than paysys's own close, so that paysys closes it
    assert unified["time_expire"] == d.now + d.node.cfg.platform_expire_ms + CLOSE_MARGIN_MS
    fx = d.handle("wechat", wx_reply(unified, prepay_id="wx1", code_url="weixin://wxpay/1"))
    answer = one(sends(fx, MERCHANT, "pay.create.reply"))
    assert (answer["order_id"], answer["status"], answer["code_url"]) == (
        order_id, "PROCESSING", "weixin://wxpay/1")
    assert d.status(order_id) == "PROCESSING"


def test_wx_notify_succeeds_once_and_a_duplicate_changes_nothing(d):
    order_id, unified = start_platform(d, "MO1")
    d.handle("wechat", wx_reply(unified, prepay_id="wx1", code_url="weixin://wxpay/1"))
    fx = d.handle("wechat", wx_notify(order_id, 2_000))
    assert one(replies(fx))["return_code"] == "SUCCESS"
    assert one(events(fx, "channel.notify")) == {"channel": "wechat", "valid": True,
                                                 "duplicate": False}
    assert d.status(order_id) == "SUCCEEDED"
    fx = d.handle("wechat", wx_notify(order_id, 2_000))
    assert one(replies(fx))["return_code"] == "SUCCESS"  # acknowledged again, or it retries
    assert one(events(fx, "channel.notify"))["duplicate"] is True
    assert events(fx, "ledger.post") == [] and len(entries(d.conn, order_id)) == 1
    assert ledger.balance(d.conn, "asset:channel:wechat", "CNY") == 2_000 - 5
    assert_books_balance(d.conn)


@pytest.mark.parametrize("forge", ["wrong key", "amount changed after signing"])
def test_forged_wx_notify_is_refused_and_changes_nothing(d, forge):
    order_id, unified = start_platform(d, "MO1")
    d.handle("wechat", wx_reply(unified, prepay_id="wx1", code_url="weixin://wxpay/1"))
    body = wx_notify(order_id, 2_000, key="not-the-key") if forge == "wrong key" else dict(
        wx_notify(order_id, 2_000), total_fee=1)
    fx = d.handle("wechat", body)
    assert one(replies(fx))["return_code"] == "FAIL"
    assert one(events(fx, "channel.notify"))["valid"] is False
    assert d.status(order_id) == "PROCESSING" and entries(d.conn) == []


def test_an_unpaid_platform_order_expires_closeorder_then_closed(d):
    order_id, unified = start_platform(d, "MO1")
    d.handle("wechat", wx_reply(unified, prepay_id="wx1", code_url="weixin://wxpay/1"))
    assert sends(d.advance(d.node.cfg.platform_expire_ms - 1), "wechat") == []
    close = one(sends(d.advance(1), "wechat", "wx.closeorder"))
    assert close["out_trade_no"] == order_id
    d.handle("wechat", wx_reply(close))
    assert d.status(order_id) == "CLOSED"


def test_expiry_of_an_order_paid_meanwhile_queries_and_succeeds(d):
    order_id, unified = start_platform(d, "MO1")
    d.handle("wechat", wx_reply(unified, prepay_id="wx1", code_url="weixin://wxpay/1"))
    close = one(sends(d.advance(d.node.cfg.platform_expire_ms), "wechat", "wx.closeorder"))
    d.handle("wechat", wx_reply(close, result_code="FAIL", err_code="ORDERPAID"))
    assert d.status(order_id) == "PROCESSING"
    query = one(sends(d.advance(QUERY_BACKOFF_MS[0]), "wechat", "wx.orderquery"))
    d.handle("wechat", wx_reply(query, trade_state="SUCCESS", total_fee=2_000,
                                transaction_id="WX1"))
    assert d.status(order_id) == "SUCCEEDED" and len(entries(d.conn, order_id)) == 1


# -- gateway: idempotency, signatures ---------------------------------------------------------


def test_idempotent_retry_after_the_answer_gets_the_stored_answer(d):
    order_id = quick_paid(d, "MO1")
    answer = sends(d.log_effects(), MERCHANT, "pay.create.reply")[-1]
    fx = d.merchant(pay_create("MO1"))  # new nonce and timestamp, same key and content
    assert one(replies(fx)) == answer
    assert one(events(fx, "gateway.replay"))["key"] == "K-MO1"
    assert d.conn.execute("SELECT order_id FROM pay_orders").fetchall() == [(order_id,)]


def test_same_key_with_other_content_is_a_conflict(d):
    quick_paid(d, "MO1")
    fx = d.merchant(pay_create("MO1", 10_001))
    reply = one(replies(fx))
    assert (reply["ok"], reply["code"], reply["field"]) == (False, "IDEMPOTENCY_CONFLICT",
                                                           "idempotency_key")
    assert d.conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone() == (1,)


def test_a_retry_while_in_flight_is_told_to_come_back_and_makes_no_second_order(d):
    start_quick(d, "MO1")
    fx = d.merchant(pay_create("MO1"))
    answer = one(replies(fx))
    assert (answer["ok"], answer["code"], answer["field"]) == (False, "IN_PROGRESS", "idempotency_key")
    assert sends(fx) == [] and d.conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone() == (1,)


def test_same_key_other_content_while_the_first_is_in_flight_is_a_conflict(d):
    quick_paid(d, "warm-up")
    _, pay = start_quick(d, "MO1", key="K1")
    fx = d.merchant(pay_create("MO2", 777, key="K1"))
    assert one(replies(fx))["code"] == "IDEMPOTENCY_CONFLICT"
    assert d.conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone() == (2,)


def test_a_channel_reply_never_raises_even_under_a_reused_key(d):
    quick_paid(d, "warm-up")
    _, pay1 = start_quick(d, "MO1", key="K1")
    second = sends(d.merchant(pay_create("MO2", 777, key="K1")), "bank", "bank.pay")
    d.handle("bank", bank_reply(pay1, "SUCCESS", amount=10_000, bank_txn_id="T1"))
    for pay2 in second:  # none once the reused key is refused at the door
        d.handle("bank", bank_reply(pay2, "SUCCESS", amount=777, bank_txn_id="T2"))
        assert d.status(pay2["req_id"].split(".")[0]) == "SUCCEEDED"


@pytest.mark.parametrize("merchant", [M_MD5, M_HMAC], ids=["MD5", "HMAC-SHA256"])
def test_bad_signature_is_refused_without_an_order(d, merchant):
    body = signed(merchant, pay_create("MO1"), d.now)
    body["amount"] = 1
    fx = d.handle(f"merchant:{merchant.merchant_id}", body)
    reply = one(replies(fx))
    assert (reply["ok"], reply["code"]) == (False, "BAD_SIGNATURE")
    assert one(events(fx, "gateway.reject"))["code"] == "BAD_SIGNATURE"
    assert d.conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone() == (0,)
    good = d.merchant(pay_create("MO1"), merchant)  # the key was not burnt by the refusal
    assert one(sends(good, "bank"))["type"] == "bank.sign"


# -- risk challenge -------------------------------------------------------------------------------


def challenged(d: Driver) -> tuple[str, str]:
    fx = d.merchant(pay_create("MO1", CHALLENGE_AMOUNT))
    reply = one(replies(fx))
    assert (reply["challenge"], reply["status"]) == (True, "CHALLENGE")
    sms = one(sends(fx, "sms", "sms.otp"))
    assert sms["order_id"] == reply["order_id"] and sms["user_id"] == "U00001"
    assert sends(fx, "bank") == [] and d.status(reply["order_id"]) == "CHALLENGE"
    return reply["order_id"], sms["otp"]


def test_challenge_right_otp_lets_the_payment_proceed(d):
    order_id, otp = challenged(d)
    fx = d.merchant(confirm_otp(order_id, otp))
    sign_req = one(sends(fx, "bank", "bank.sign"))
    fx = d.handle("bank", bank_reply(sign_req, "OK", agreement_no="AG1"))
    pay = one(sends(fx, "bank", "bank.pay"))
    fx = d.handle("bank", bank_reply(pay, "SUCCESS", amount=CHALLENGE_AMOUNT, bank_txn_id="T1"))
    assert one(sends(fx, MERCHANT, "pay.confirm_otp.reply"))["status"] == "SUCCEEDED"
    assert d.status(order_id) == "SUCCEEDED"


def test_challenge_wrong_otp_fails_the_order(d):
    order_id, otp = challenged(d)
    wrong = f"{(int(otp) + 1) % 1_000_000:06d}"
    fx = d.merchant(confirm_otp(order_id, wrong))
    reply = one(replies(fx))
    assert (reply["ok"], reply["code"], reply["status"]) == (False, "OTP_INVALID", "FAILED")
    assert sends(fx, "bank") == [] and d.status(order_id) == "FAILED"
    again = one(replies(d.merchant(confirm_otp(order_id, otp))))  # too late for the right one
    assert again["code"] == "BAD_STATE"


def test_an_unanswered_challenge_expires(d):
    order_id, _ = challenged(d)
    d.advance(d.node.cfg.otp_ttl_ms)
    assert (d.status(order_id), d.order(order_id)["error_code"]) == ("CLOSED", "OTP_EXPIRED")


# -- refunds ------------------------------------------------------------------------------------


def refund(d: Driver, order_id: str, refund_no: str, amount: int) -> tuple[dict, list]:
    fx = d.merchant(refund_create(order_id, refund_no, amount))
    return one(replies(fx)), sends(fx, "bank", "bank.refund")


def test_full_refund(d):
    quick_paid(d, "MO0")  # the merchant's balance must cover the fee it does not get back
    order_id = quick_paid(d, "MO1")
    before = ledger.balance(d.conn, "liability:merchant:M001", "CNY")
    d.now += 86_400_000   # the next day: a refund, not a same-day cancel (tests/paysys/test_cancel_refund)
    reply, (request,) = refund(d, order_id, "RN1", 10_000)
    assert (reply["ok"], reply["status"]) == (True, "PROCESSING")
    assert request == {"type": "bank.refund", "req_id": f"{reply['refund_id']}.r1",
                       "orig_req_id": f"{order_id}.p1", "amount": 10_000, "currency": "CNY"}
    fx = d.handle("bank", bank_reply(request, "SUCCESS"))
    assert d.conn.execute("SELECT status FROM refund_orders").fetchone() == ("SUCCEEDED",)
    assert d.order(order_id)["refunded"] == 10_000
    assert ledger.balance(d.conn, "liability:merchant:M001", "CNY") == before - 10_000
    assert one(sends(fx, NOTIFY_URL))["type"] == "notify.refund"
    assert_books_balance(d.conn)
    reply, sent = refund(d, order_id, "RN2", 1)
    assert (reply["code"], sent) == ("REFUND_EXCEEDS", [])


def test_partial_refunds_twice_then_over_the_refundable(d):
    quick_paid(d, "MO0")
    order_id = quick_paid(d, "MO1")
    for refund_no, amount in (("RN1", 3_000), ("RN2", 4_000)):
        reply, (request,) = refund(d, order_id, refund_no, amount)
        d.handle("bank", bank_reply(request, "SUCCESS"))
    assert d.order(order_id)["refunded"] == 7_000
    reply, sent = refund(d, order_id, "RN3", 3_001)
    assert (reply["ok"], reply["code"], reply["field"], sent) == (False, "REFUND_EXCEEDS",
                                                                  "amount", [])
    assert len(entries(d.conn, None)) == 4  # two payments, two refunds
    assert_books_balance(d.conn)


def test_a_refund_in_flight_counts_against_the_refundable(d):
    quick_paid(d, "MO0")
    order_id = quick_paid(d, "MO1")
    refund(d, order_id, "RN1", 6_000)  # no answer yet
    reply, _ = refund(d, order_id, "RN2", 4_001)
    assert reply["code"] == "REFUND_EXCEEDS"


def test_refund_timeout_is_resent_under_the_same_id_and_posted_once(d):
    quick_paid(d, "MO0")
    order_id = quick_paid(d, "MO1")
    reply, (first,) = refund(d, order_id, "RN1", 5_000)
    refund_id = reply["refund_id"]
    d.advance(TIMEOUT_MS)
    assert d.conn.execute("SELECT status FROM refund_orders").fetchone() == ("UNKNOWN",)
    again = one(sends(d.advance(5_000), "bank", "bank.refund"))
    assert again == first
    d.handle("bank", bank_reply(again, "SUCCESS"))
    fx = d.handle("bank", bank_reply(first, "SUCCESS"))  # the first attempt's answer, late
    assert events(fx, "channel.late_reply")
    assert len(entries(d.conn, refund_id)) == 1
    assert d.order(order_id)["refunded"] == 5_000
    assert_books_balance(d.conn)


def test_a_resent_refund_gets_its_full_timeout(d):
    d = Driver(make_node(channels=(replace(BANK, timeout_ms=10_000), WECHAT)))
    quick_paid(d, "MO0")
    order_id = quick_paid(d, "MO1")
    _, (request,) = refund(d, order_id, "RN1", 5_000)
    d.handle("bank", {"type": "net.error", "error": "refused", "request": request})
    assert one(sends(d.advance(5_000), "bank", "bank.refund")) == request  # resent at +5 s
    fx = d.advance(9_000)  # 9 s after the resend: within its 10 s timeout
    assert events(fx, "channel.timeout") == []


# -- restart --------------------------------------------------------------------------------------


def crash(d) -> None:
    """The process dies: what its units committed stays (crash faults make every unit commit),
    what it only had in memory (outbox rows it sent but had not marked yet) is lost."""
    if d.conn.in_transaction:
        d.conn.execute("COMMIT")


def test_recover_rearms_pending_timeouts_and_queries_unknown_orders(d):
    unknown_id, _ = pay_timed_out(d, "MO2")
    inflight_id, pay = start_quick(d, "MO3")
    crash(d)
    restarted = Driver(make_node(conn=d.conn), now=d.now + 1_000)
    fx = restarted.node.recover(restarted.now)
    assert one(events(fx, "paysys.recovered"))["inflight"] == 1
    assert f"{inflight_id}.p1" in restarted.node.inflight
    resent = sends(fx, "bank", "bank.pay")  # not yet marked delivered: sent again, same id
    assert pay in resent
    fx = restarted.advance(0)
    query = one([q for q in sends(fx, "bank", "bank.query") if q["req_id"] == f"{unknown_id}.p1"])
    assert query["req_id"] == f"{unknown_id}.p1"
    restarted.handle("bank", bank_reply(query, "SUCCESS", amount=10_000, bank_txn_id="T9"))
    assert restarted.status(unknown_id) == "SUCCEEDED"
    fx = restarted.advance(TIMEOUT_MS)  # the in-flight pay times out on its original schedule
    timeouts = {e["req_id"]: e["op"] for e in events(fx, "channel.timeout", inflight_id)}
    assert timeouts[f"{inflight_id}.p1"] == "pay"
    assert restarted.status(inflight_id) == "UNKNOWN"
    ids = [r[0] for r in d.conn.execute("SELECT req_id FROM channel_requests")]
    assert len(ids) == len(set(ids))
    assert_books_balance(d.conn)


def test_after_recover_a_pending_pay_is_awaited_not_queried(d):
    quick_paid(d, "warm-up")
    order_id, pay = start_quick(d, "MO1")
    crash(d)
    restarted = Driver(make_node(conn=d.conn), now=d.now + 500)
    restarted.node.recover(restarted.now)
    assert sends(restarted.advance(0), "bank", "bank.query") == []
    fx = restarted.handle("bank", bank_reply(pay, "SUCCESS", amount=10_000, bank_txn_id="T1"))
    assert events(fx, "channel.late_reply") == []
    assert restarted.status(order_id) == "SUCCEEDED"


def test_a_query_answer_is_never_taken_for_the_pay_answer(d):
    quick_paid(d, "warm-up")
    order_id, pay = start_quick(d, "MO1")
    d.advance(TIMEOUT_MS)
    assert d.status(order_id) == "UNKNOWN"
    query = one(sends(d.advance(2_000), "bank", "bank.query"))  # the first query, after 2 s
    assert query["req_id"] == pay["req_id"]  # a query names the pay it is about
    fx = d.handle("bank", bank_reply(query, "SUCCESS", amount=10_000, bank_txn_id="T1"))
    assert one(events(fx, "channel.reply", order_id))["op"] == "query"
    assert d.status(order_id) == "SUCCEEDED"


# -- failover on a refused connection --------------------------------------------------------------


def _refused(request: dict) -> dict:
    return {"type": "net.error", "error": "refused", "request": request}


def test_a_refused_connection_fails_over_to_another_bank():
    backup = replace(BANK, id="bank_b", priority=2)
    d = Driver(make_node(channels=(BANK, backup, WECHAT)))
    order_id, sign = start_quick(d, "MO1")
    fx = d.handle("bank", _refused(sign))
    decision = one(events(fx, "route.decision", order_id))
    assert (decision["channel"], decision["reason"]) == ("bank_b", "failover from bank: priority")
    sign_b = one(sends(fx, "bank_b", "bank.sign"))
    pay_b = one(sends(d.handle("bank_b", bank_reply(sign_b, "OK", agreement_no="AGB")), "bank_b", "bank.pay"))
    d.handle("bank_b", bank_reply(pay_b, "SUCCESS", amount=10_000, bank_txn_id="TB"))
    assert (d.status(order_id), d.order(order_id)["channel"]) == ("SUCCEEDED", "bank_b")


def test_a_refused_connection_with_no_other_channel_fails_the_payment(d):
    order_id, sign = start_quick(d, "MO1")
    d.handle("bank", _refused(sign))
    order = d.order(order_id)
    assert (order["status"], order["error_code"]) == ("FAILED", "CHANNEL_UNREACHABLE")
