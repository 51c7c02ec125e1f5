"""The WeChat-like platform, fed message by message (no simulator)."""

import hashlib
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks._sign import sign, sign_string, verify
from mockbanks.fees import Fee
from mockbanks.wechat import WeChat

T0 = int(datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp()) * 1000
KEY = "key-wechat"
S, M, H = 1000, 60_000, 3_600_000


def make_wx(dup: float = 0.0, platform_balance: int = 0) -> WeChat:
    wx = WeChat(name="wechat", rng=random.Random(3), fee_rule=Fee(rate_bp=60), api_key=KEY,
                duplicate_notify_probability=dup, platform_balance=platform_balance)
    wx.open_wallet("U1", 100_000)
    wx.open_wallet("U2", 500)
    return wx


def call(wx: WeChat, body: dict, now: int = T0, src: str = "paysys") -> tuple[dict, list]:
    effects = wx.handle(src, body, now)
    assert effects[0][0] == "reply" and effects[0][2] == 0, effects
    return effects[0][1], effects[1:]


def order(wx: WeChat, no: str = "P1", fee: int = 10_000, expire: int | None = T0 + 30 * M) -> str:
    reply, _ = call(wx, {"type": "wx.unifiedorder", "out_trade_no": no, "total_fee": fee,
                         "fee_type": "CNY", "notify_url": "paysys", "time_expire": expire})
    assert reply["result_code"] == "SUCCESS", reply
    return reply["prepay_id"]


def user_pay(wx: WeChat, prepay_id: str, user: str = "U1", now: int = T0) -> tuple[dict, list]:
    return call(wx, {"type": "wx.user.pay", "prepay_id": prepay_id, "user_id": user}, now,
                src=f"user:{user}")


def query(wx: WeChat, no: str = "P1", now: int = T0) -> dict:
    return call(wx, {"type": "wx.orderquery", "out_trade_no": no}, now)[0]


def sends(effects: list) -> list[tuple]:
    return [e for e in effects if e[0] == "send"]


def bal(wx: WeChat, account: str) -> int:
    return wx.truth.balance(account, "CNY")


def test_sign_string_skips_empty_and_renders_booleans() -> None:
    fields = {"b": True, "a": 1, "sign": "X", "c": None, "d": "", "e": False}
    assert sign_string(fields, "K") == "a=1&b=true&e=false&key=K"
    expected = hashlib.md5(b"a=1&b=true&e=false&key=K").hexdigest().upper()
    assert sign(fields, "K") == expected
    assert verify({**fields, "sign": expected}, "K")
    assert not verify({**fields, "sign": expected, "a": 2}, "K")
    assert not verify({**fields, "sign": expected}, "other")
    assert not verify({"a": 1}, "K")


def test_unifiedorder_is_idempotent_on_same_content() -> None:
    wx = make_wx()
    prepay = order(wx)
    assert order(wx) == prepay
    reply, _ = call(wx, {"type": "wx.unifiedorder", "out_trade_no": "P1", "total_fee": 10_001,
                         "fee_type": "CNY", "notify_url": "paysys", "time_expire": T0 + 30 * M})
    assert (reply["type"], reply["result_code"], reply["err_code"]) == (
        "wx.unifiedorder.reply", "FAIL", "OUTTRADENO_USED")


@pytest.mark.parametrize(("change", "field"), [({"total_fee": 10.5}, "total_fee"),
                                               ({"fee_type": "USD"}, "fee_type"),
                                               ({"notify_url": ""}, "notify_url"),
                                               ({"time_expire": "soon"}, "time_expire")])
def test_unifiedorder_param_errors_name_the_field(change: dict, field: str) -> None:
    body = {"type": "wx.unifiedorder", "out_trade_no": "P1", "total_fee": 100, "fee_type": "CNY",
            "notify_url": "paysys", "time_expire": None, **change}
    reply, _ = call(make_wx(), body)
    assert (reply["return_code"], reply["err_code"], reply["field"]) == ("FAIL", "PARAM_ERROR",
                                                                         field)


def test_user_pay_moves_money_and_notifies_at_once_signed() -> None:
    wx = make_wx()
    reply, effects = user_pay(wx, order(wx, "P1.1"))
    assert (reply["type"], reply["result"]) == ("wx.user.pay.reply", "SUCCESS")
    assert bal(wx, "wallet:U1") == 90_000 and bal(wx, "platform") == 9_940
    assert bal(wx, "wx_fees") == 60
    assert wx.truth.txns() == [{"ref": "P1", "channel_ref": reply["transaction_id"], "kind": "pay",
                                "amount": 10_000, "fee": 60, "currency": "CNY",
                                "status": "SUCCESS", "at_ms": T0}]
    kinds = [(e[0], e[1]) for e in effects]
    assert kinds == [("event", "wx.txn"), ("event", "wx.notify.attempt"), ("send", "paysys")]
    notify = effects[2][2]
    assert notify["type"] == "wx.notify" and notify["out_trade_no"] == "P1.1"
    assert (notify["total_fee"], notify["transaction_id"]) == (10_000, reply["transaction_id"])
    assert verify(notify, KEY) and not verify(notify, "wrong-key")
    assert wx.next_deadline() == T0 + 15 * S


def test_user_pay_refusals() -> None:
    wx = make_wx()
    assert user_pay(wx, "wx404")[0]["result"] == "NOT_FOUND"
    prepay = order(wx)
    assert user_pay(wx, prepay, "U2")[0]["result"] == "NOTENOUGH"
    assert user_pay(wx, prepay, "U9")[0]["result"] == "NOTENOUGH"       # no wallet at all
    assert user_pay(wx, prepay)[0]["result"] == "SUCCESS"
    assert user_pay(wx, prepay)[0]["result"] == "ORDERPAID"
    assert len(wx.truth.txns()) == 1
    other = order(wx, "P2", 100)
    call(wx, {"type": "wx.closeorder", "out_trade_no": "P2"})
    assert user_pay(wx, other)[0]["result"] == "ORDERCLOSED"
    assert bal(wx, "wallet:U1") == 90_000


def test_expiry_closes_unpaid_order() -> None:
    wx = make_wx()
    prepay = order(wx, expire=T0 + 10 * M)
    assert query(wx, now=T0 + 10 * M - 1)["trade_state"] == "NOTPAY"
    assert query(wx, now=T0 + 10 * M)["trade_state"] == "CLOSED"
    assert user_pay(wx, prepay, now=T0 + 10 * M + 1)[0]["result"] == "ORDERCLOSED"
    late = order(wx, "P2", expire=T0 + M)
    assert user_pay(wx, late, now=T0 + M)[0]["result"] == "ORDERCLOSED"   # never queried first
    assert wx.truth.txns() == []


def test_orderquery_states() -> None:
    wx = make_wx(platform_balance=1_000)
    reply = query(wx, "P404")
    assert (reply["result_code"], reply["err_code"]) == ("FAIL", "ORDERNOTEXIST")
    prepay = order(wx)
    assert query(wx)["trade_state"] == "NOTPAY"
    paid, _ = user_pay(wx, prepay)
    reply = query(wx)
    assert (reply["trade_state"], reply["total_fee"], reply["transaction_id"]) == (
        "SUCCESS", 10_000, paid["transaction_id"])
    call(wx, {"type": "wx.refund", "out_trade_no": "P1", "out_refund_no": "R1", "total_fee": 10_000,
              "refund_fee": 1})
    assert query(wx)["trade_state"] == "REFUND"


def test_close_vs_paid_race_both_orders() -> None:
    wx = make_wx()
    prepay = order(wx)
    user_pay(wx, prepay)
    reply, _ = call(wx, {"type": "wx.closeorder", "out_trade_no": "P1"})
    assert (reply["result_code"], reply["err_code"]) == ("FAIL", "ORDERPAID")
    assert query(wx)["trade_state"] == "SUCCESS"

    prepay = order(wx, "P2")
    reply, _ = call(wx, {"type": "wx.closeorder", "out_trade_no": "P2"})
    assert reply["result_code"] == "SUCCESS"
    assert call(wx, {"type": "wx.closeorder", "out_trade_no": "P2"})[0]["result_code"] == "SUCCESS"
    assert user_pay(wx, prepay)[0]["result"] == "ORDERCLOSED"
    assert len(wx.truth.txns()) == 1


def test_close_of_unknown_order_blocks_a_late_unifiedorder() -> None:
    wx = make_wx()
    assert call(wx, {"type": "wx.closeorder", "out_trade_no": "P1"})[0]["result_code"] == "SUCCESS"
    assert query(wx)["trade_state"] == "CLOSED"
    reply, _ = call(wx, {"type": "wx.unifiedorder", "out_trade_no": "P1", "total_fee": 100,
                         "fee_type": "CNY", "notify_url": "paysys", "time_expire": None})
    assert reply["err_code"] == "OUTTRADENO_USED" and "prepay_id" not in reply


def run_notifications(wx: WeChat, until: int, ack_after: int | None = None) -> list[int]:
    """Absolute times of notification attempts, acking the attempt number `ack_after`."""
    times = []
    while (deadline := wx.next_deadline()) is not None and deadline <= until:
        for effect in wx.on_timer(deadline):
            if effect[0] == "event" and effect[1] == "wx.notify.attempt":
                times.append(deadline)
                if effect[3]["n"] == ack_after:
                    wx.handle("paysys", {"type": "wx.notify.reply", "out_trade_no": "P1",
                                         "return_code": "SUCCESS"}, deadline + 50)
    return times


def test_notification_schedule_is_wechats_real_one() -> None:
    wx = make_wx()
    _, effects = user_pay(wx, order(wx))
    assert sum(1 for e in effects if e[0] == "send") == 1          # attempt 1 at payment time
    times = [T0] + run_notifications(wx, T0 + 48 * H)
    offsets = [0, 15 * S, 30 * S, 60 * S, 4 * M, 14 * M, 34 * M, 64 * M, 94 * M, 124 * M, 184 * M,
               364 * M, 544 * M, 724 * M, 1084 * M, 1444 * M]
    assert times == [T0 + o for o in offsets]
    assert wx.next_deadline() is None                                # gave up after 16 attempts


def test_ack_stops_retries_and_fail_or_refusal_does_not() -> None:
    wx = make_wx()
    _, effects = user_pay(wx, order(wx))
    request = sends(effects)[0][2]
    wx.handle("paysys", {"type": "wx.notify.reply", "out_trade_no": "P1", "return_code": "FAIL"},
              T0 + 10)
    wx.handle("paysys", {"type": "net.error", "error": "refused", "request": request}, T0 + 11)
    assert wx.next_deadline() == T0 + 15 * S
    times = run_notifications(wx, T0 + 48 * H, ack_after=3)
    assert times == [T0 + 15 * S, T0 + 30 * S]
    assert wx.next_deadline() is None


def test_attempts_carry_fresh_nonces_and_valid_signatures() -> None:
    wx = make_wx()
    _, effects = user_pay(wx, order(wx))
    first = sends(effects)[0][2]
    second = sends(wx.on_timer(T0 + 15 * S))[0][2]
    assert first["nonce_str"] != second["nonce_str"]
    assert verify(first, KEY) and verify(second, KEY)
    assert {k: v for k, v in first.items() if k not in ("nonce_str", "sign")} == {
        k: v for k, v in second.items() if k not in ("nonce_str", "sign")}


@pytest.mark.parametrize(("dup", "copies"), [(1.0, 2), (0.0, 1)])
def test_duplicate_notifications(dup: float, copies: int) -> None:
    wx = make_wx(dup=dup)
    _, effects = user_pay(wx, order(wx))
    assert len(sends(effects)) == copies
    attempt = [e for e in effects if e[0] == "event" and e[1] == "wx.notify.attempt"][0]
    assert attempt[3]["n"] == 1 and attempt[3]["duplicate"] is (copies == 2)
    assert len(sends(wx.on_timer(T0 + 15 * S))) == copies


def refund(wx: WeChat, no: str, fee: int, total: int = 10_000, trade: str = "P1") -> dict:
    return call(wx, {"type": "wx.refund", "out_trade_no": trade, "out_refund_no": no,
                     "total_fee": total, "refund_fee": fee})[0]


def test_refunds_limits_and_dedupe() -> None:
    wx = make_wx(platform_balance=1_000)
    assert refund(wx, "R0", 1)["err_code"] == "ORDERNOTEXIST"           # no such order
    prepay = order(wx)
    assert refund(wx, "R0b", 1)["err_code"] == "ORDERNOTEXIST"          # not paid
    user_pay(wx, prepay)
    ok = refund(wx, "R1.1", 7_000)
    assert (ok["type"], ok["result_code"], ok["refund_fee"]) == ("wx.refund.reply", "SUCCESS", 7_000)
    assert refund(wx, "R1.1", 7_000) == ok                              # stored, once
    assert refund(wx, "R2.1", 3_001)["err_code"] == "REFUND_FEE_INVALID"
    assert refund(wx, "R3.1", 1, total=9_999)["err_code"] == "PARAM_ERROR"
    assert refund(wx, "R4.1", 3_000)["result_code"] == "SUCCESS"
    assert bal(wx, "wallet:U1") == 100_000
    assert bal(wx, "platform") == 1_000 - 60                            # fee not returned
    refunds = [t for t in wx.truth.txns() if t["kind"] == "refund"]
    assert [(t["ref"], t["amount"], t["fee"]) for t in refunds] == [("R1", 7_000, 0),
                                                                     ("R4", 3_000, 0)]


def test_refund_notenough_when_platform_account_is_short() -> None:
    wx = make_wx()
    user_pay(wx, order(wx))
    reply = refund(wx, "R1.1", 10_000)
    assert (reply["result_code"], reply["err_code"]) == ("FAIL", "NOTENOUGH")
    assert bal(wx, "platform") == 9_940 and bal(wx, "wallet:U1") == 90_000


def test_unknown_type() -> None:
    reply, _ = call(make_wx(), {"type": "wx.nope"})
    assert (reply["type"], reply["return_code"], reply["err_code"]) == ("wx.nope.reply", "FAIL",
                                                                        "UNKNOWN_TYPE")


OPS = st.one_of(
    st.tuples(st.just("order"), st.integers(0, 6), st.integers(1, 60_000)),
    st.tuples(st.just("pay"), st.integers(0, 6), st.integers(0, 2)),
    st.tuples(st.just("refund"), st.integers(0, 6), st.integers(1, 20_000)),
    st.tuples(st.just("repeat"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("close"), st.integers(0, 6), st.just(0)),
    st.tuples(st.just("wait"), st.integers(0, H), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_money_is_conserved_and_never_negative(ops: list) -> None:
    wx = make_wx(dup=0.5, platform_balance=5_000)
    wx.open_wallet("U3", 30_000)
    initial = wx.truth.initial_total("CNY")
    now, sent, totals = T0, [], {}
    def unifiedorder(a: int, total: int) -> dict:
        totals.setdefault(a, total)
        return {"type": "wx.unifiedorder", "out_trade_no": f"P{a}", "total_fee": totals[a],
                "fee_type": "CNY", "notify_url": "paysys", "time_expire": T0 + 2 * H}

    for op, a, b in ops:
        if op == "order":
            body = unifiedorder(a, b)
        elif op == "pay":        # the user scans the order's code (getting it first if needed)
            prepay_id = wx.handle("paysys", unifiedorder(a, 5_000 * (b + 1)), now)[0][1].get(
                "prepay_id", "wx404")
            body = {"type": "wx.user.pay", "prepay_id": prepay_id, "user_id": f"U{b + 1}"}
        elif op == "refund":
            body = {"type": "wx.refund", "out_trade_no": f"P{a}", "out_refund_no": f"R{len(sent)}",
                    "total_fee": totals.get(a, 1), "refund_fee": b}
        elif op == "repeat" and sent:
            body = sent[a % len(sent)]
        elif op == "close":
            body = {"type": "wx.closeorder", "out_trade_no": f"P{a}"}
        else:
            now += a
            wx.on_timer(now)
            continue
        sent.append(body)
        wx.handle("paysys", body, now)
        now += 1
        assert wx.truth.total("CNY") == initial
        assert all(r["balance"] >= 0 for r in wx.truth.accounts())
    pays = [t["ref"] for t in wx.truth.txns() if t["kind"] == "pay"]
    assert len(set(pays)) == len(pays)                                  # never paid twice


def test_malformed_ids_are_not_found_not_crashes() -> None:
    wx = make_wx()
    assert user_pay(wx, ["wx1"])[0]["result"] == "NOT_FOUND"
    assert wx.handle("paysys", {"type": "wx.notify.reply", "out_trade_no": {"a": 1}}, T0) == []
    reply, _ = call(wx, {"type": "wx.orderquery", "out_trade_no": 7})
    assert (reply["err_code"], reply["field"]) == ("PARAM_ERROR", "out_trade_no")
