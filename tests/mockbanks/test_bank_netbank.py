"""The bank's netbank pages (mockbanks/bank_netbank.py), fed message by message."""

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.bank_netbank import CONFIRM_MS, NOTIFY_SCHEDULE_MS, PAGE_TRANSITIONS, sign_hmac
from mockbanks.fees import Fee
from paysys.channels.bank import BankAdapter

T0 = int(datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp()) * 1000
KEY = "key-bank"
CARD = "6222000000001111"


def make_bank() -> Bank:
    bank = Bank(name="bank", rng=random.Random(3), fee_rule=Fee(rate_bp=100), capacity=8,
                max_queue_ms=1000, service_time=lambda rng: 100)
    bank.api_key = KEY
    bank.open_account("U1", CARD, 100_000, 1_000_000)
    bank.open_account("U2", "6222000000009995", 10**9, 1_000_000)
    bank.open_account("U3", "6222000000003333", 100_000, 1_000_000, frozen=True)
    return bank


def handle(bank: Bank, body: dict, now: int, src: str = "paysys") -> tuple[dict, list]:
    effects = bank.handle(src, body, now)
    replies = [e[1] for e in effects if e[0] == "reply"]
    assert len(replies) == 1, effects
    return replies[0], effects


def open_page(bank: Bank, req_id: str = "P1.p1", amount: int = 5_000, now: int = T0,
              expire: int | None = None) -> dict:
    reply, _ = handle(bank, {"type": "bank.netbank", "req_id": req_id, "out_trade_no": "P1",
                             "amount": amount, "currency": "CNY", "notify_url": "paysys",
                             "time_expire": expire if expire is not None else now + 1_200_000},
                      now)
    return reply


def user_pay(bank: Bank, page_id: str, user: str = "U1", now: int = T0) -> tuple[dict, list]:
    return handle(bank, {"type": "bank.user.netbank", "page_id": page_id, "user_id": user},
                  now, src=f"user:{user}")


def query(bank: Bank, req_id: str, now: int, kind: str = "bank.query") -> dict:
    return handle(bank, {"type": kind, "req_id": req_id}, now)[0]


def sends(effects: list) -> list[dict]:
    return [e[2] for e in effects if e[0] == "send"]


def bal(bank: Bank, account: str) -> int:
    return bank.truth.balance(account, "CNY")


def test_a_page_paid_is_charged_then_confirmed_and_notified_until_acknowledged() -> None:
    bank = make_bank()
    page = open_page(bank)
    assert page["result"] == "PROCESSING" and page["code_url"].endswith(page["page_id"])
    assert open_page(bank) == page                      # a repeat: the same page
    answer, effects = user_pay(bank, page["page_id"], now=T0 + 10_000)
    assert answer["result"] == "SUCCESS" and answer["bank_txn_id"]
    assert bal(bank, f"card:{CARD}") == 95_000 and bal(bank, "platform") == 4_950
    assert query(bank, "P1.p1", T0 + 10_001)["result"] == "PROCESSING"   # not yet confirmed
    due = bank.next_deadline()
    assert T0 + 10_000 + CONFIRM_MS[0] <= due <= T0 + 10_200 + CONFIRM_MS[1]
    notices = sends(bank.on_timer(due))
    assert len(notices) == 1 and notices[0]["result"] == "SUCCESS"
    notice = notices[0]
    assert notice["sign"] == sign_hmac(notice, KEY) and notice["amount"] == 5_000
    assert notice["bank_txn_id"] == answer["bank_txn_id"] and notice["out_trade_no"] == "P1"
    assert query(bank, "P1.p1", due + 1)["result"] == "SUCCESS"
    again = sends(bank.on_timer(due + NOTIFY_SCHEDULE_MS[0]))
    assert len(again) == 1                             # no answer yet: the series goes on
    bank.handle("paysys", {"type": "bank.notify.reply", "req_id": "P1.p1",
                           "result": "SUCCESS"}, due + NOTIFY_SCHEDULE_MS[0] + 5)
    assert bank.next_deadline() is None                # acknowledged: nothing more to send
    assert bank.truth.total("CNY") == bank.truth.initial_total("CNY")


def test_the_series_ends_after_its_last_attempt() -> None:
    bank = make_bank()
    page = open_page(bank)
    user_pay(bank, page["page_id"])
    sent = 0
    while (due := bank.next_deadline()) is not None:
        sent += len(sends(bank.on_timer(due)))
    assert sent == len(NOTIFY_SCHEDULE_MS) + 1


def test_a_forged_answer_does_not_stop_the_notifications_only_success_does() -> None:
    bank = make_bank()
    page = open_page(bank)
    user_pay(bank, page["page_id"])
    due = bank.next_deadline()
    bank.on_timer(due)
    bank.handle("paysys", {"type": "bank.notify.reply", "req_id": "P1.p1", "result": "FAIL"},
                due + 1)
    assert bank.next_deadline() == due + NOTIFY_SCHEDULE_MS[0]


def test_a_closed_page_refuses_the_user_and_charges_nothing() -> None:
    bank = make_bank()
    page = open_page(bank)
    close = query(bank, "P1.p1", T0 + 1_000, "bank.close")
    assert close["result"] == "CLOSED"
    answer, effects = user_pay(bank, page["page_id"], now=T0 + 2_000)
    assert answer["result"] == "CLOSED"
    assert [e[1] for e in effects if e[0] == "event"] == ["bank.netbank.refused"]
    assert bal(bank, f"card:{CARD}") == 100_000 and bank.next_deadline() is None


def test_a_page_expires_by_itself_at_its_time_expire() -> None:
    bank = make_bank()
    page = open_page(bank, expire=T0 + 60_000)
    assert user_pay(bank, page["page_id"], now=T0 + 60_000)[0]["result"] == "CLOSED"
    assert query(bank, "P1.p1", T0 + 61_000)["result"] == "CLOSED"


def test_a_close_while_the_debit_is_confirmed_answers_closed_but_the_debit_is_notified() -> None:
    bank = make_bank()
    page = open_page(bank)
    answer, _ = user_pay(bank, page["page_id"], now=T0 + 1_000)
    reply, effects = handle(bank, {"type": "bank.close", "req_id": "P1.p1"}, T0 + 2_000)
    assert reply["result"] == "CLOSED"
    assert "bank.netbank.closed_paying" in [e[1] for e in effects if e[0] == "event"]
    notices = sends(bank.on_timer(bank.next_deadline()))
    assert notices and notices[0]["bank_txn_id"] == answer["bank_txn_id"]
    after = bank.next_deadline() + 1
    assert query(bank, "P1.p1", after)["result"] == "SUCCESS"   # the charge the bank kept
    refund, _ = handle(bank, {"type": "bank.refund", "req_id": "R1.r1", "orig_req_id": "P1.p1",
                              "amount": 4_900, "currency": "CNY"}, after)
    assert refund["result"] == "SUCCESS" and bal(bank, f"card:{CARD}") == 99_900


def test_a_close_of_a_page_never_seen_means_it_is_never_opened() -> None:
    bank = make_bank()
    assert query(bank, "P9.p1", T0, "bank.close")["result"] == "CLOSED"
    assert open_page(bank, "P9.p1")["result"] == "DECLINED"


def test_declines_leave_the_page_open() -> None:
    bank = make_bank()
    page = open_page(bank, amount=200_000)
    assert user_pay(bank, page["page_id"])[0]["code"] == "INSUFFICIENT_FUNDS"
    page2 = open_page(bank, "P2.p1")
    assert user_pay(bank, page2["page_id"], "U2")[0]["code"] == "INSUFFICIENT_FUNDS"   # 9995
    page3 = open_page(bank, "P3.p1")
    assert user_pay(bank, page3["page_id"], "U3")[0]["code"] == "CARD_FROZEN"
    assert user_pay(bank, page3["page_id"], "U9")[0]["code"] == "INVALID_CARD"
    assert user_pay(bank, "NB-nope")[0]["result"] == "NOT_FOUND"
    assert query(bank, "P1.p1", T0 + 1)["result"] == "PROCESSING"
    assert user_pay(bank, page3["page_id"], "U1")[0]["result"] == "SUCCESS"
    assert user_pay(bank, page3["page_id"], "U1")[0]["result"] == "PAID"


def test_invalid_requests_name_the_field() -> None:
    bank = make_bank()
    reply, _ = handle(bank, {"type": "bank.netbank", "req_id": "P1.p1", "out_trade_no": "P1",
                             "amount": 0, "currency": "CNY", "notify_url": "paysys"}, T0)
    assert (reply["code"], reply["field"]) == ("INVALID_PARAM", "amount")


def test_the_page_states_are_a_table() -> None:
    assert PAGE_TRANSITIONS["OPEN"]["pay"] == "PAYING"
    assert PAGE_TRANSITIONS["PAYING"]["confirm"] == "PAID"
    assert not PAGE_TRANSITIONS["PAID"] and not PAGE_TRANSITIONS["CLOSED"]


def test_paysys_verifies_the_banks_notifications() -> None:
    bank = make_bank()
    page = open_page(bank)
    user_pay(bank, page["page_id"])
    notice = sends(bank.on_timer(bank.next_deadline()))[0]
    adapter = BankAdapter("bank", KEY)
    parsed = adapter.notification(notice)
    assert parsed.valid and parsed.order_id == "P1" and parsed.outcome.amount == 5_000
    assert parsed.ack["type"] == "bank.notify.reply" and parsed.ack["result"] == "SUCCESS"
    forged = BankAdapter("bank", "another-key").notification(notice)
    assert not forged.valid and forged.ack["result"] == "FAIL"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pay", "close", "query", "tick"]),
                          st.integers(0, 40_000)), max_size=12))
def test_money_is_conserved_and_a_closed_page_is_charged_only_if_accepted_first(steps) -> None:
    """Whatever the order of pays, closes and timers: money is conserved, the page is charged
    at most once, and a page closed while OPEN is never charged."""
    bank = make_bank()
    page = open_page(bank)
    now, closed_open, charged = T0, False, 0
    for step, gap in steps:
        now += gap
        if step == "pay":
            charged += user_pay(bank, page["page_id"], now=now)[0]["result"] == "SUCCESS"
        elif step == "close":
            reply = query(bank, "P1.p1", now, "bank.close")
            closed_open = closed_open or (reply["result"] == "CLOSED" and charged == 0)
        elif step == "query":
            query(bank, "P1.p1", now)
        elif (due := bank.next_deadline()) is not None:
            now = max(now, due)
            bank.on_timer(now)
    assert charged <= 1
    assert bank.truth.total("CNY") == bank.truth.initial_total("CNY")
    if closed_open:
        assert charged == 0 and bal(bank, f"card:{CARD}") == 100_000
