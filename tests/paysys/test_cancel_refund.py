"""Cancel versus refund (撤销 vs 退款): the method paysys chooses for a merchant refund, the
operation it sends, the entry it books, the trace, and the fallback to a refund when the bank
says it is too late to cancel."""

from datetime import UTC, datetime

from _node import M_MD5, events, pay_create, refund_create
from test_preauth import HOUR, Rig

from paysys import ledger
from paysys.channels.bank_preauth import PreauthOps
from paysys.channels.wechat import WeChatAdapter
from paysys.refunds import choose_method

MORNING = int(datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp()) * 1000   # 09:00 UTC+8


def paid(r: Rig, no: str = "O1", amount: int = 10_000) -> dict:
    reply = r.merchant(pay_create(no, amount, now=r.d.now))
    assert reply["status"] == "SUCCEEDED", reply
    return reply


def refund(r: Rig, order_id: str, no: str, amount: int) -> dict:
    """The refund order once the bank answered (the merchant's answer says PROCESSING)."""
    reply = r.merchant(refund_create(order_id, no, amount))
    assert reply["status"] == "PROCESSING", reply
    row = r.conn.execute("SELECT refund_id, status, method FROM refund_orders WHERE "
                         "refund_id=?", (reply["refund_id"],)).fetchone()
    return dict(zip(("refund_id", "status", "method"), row, strict=True))


def sent(r: Rig, kind: str) -> list[dict]:
    return [e[2] for e in r.d.log_effects() if e[0] == "send" and e[1] == "bank"
            and e[2]["type"] == kind]


def rig() -> Rig:
    r = Rig(balance=10**7)
    r.d.now = MORNING
    paid(r, "O0", 400_000)    # the merchant's balance covers the fees of refunds
    return r


def test_a_full_refund_the_same_day_is_a_cancel_that_returns_every_fee() -> None:
    r = rig()
    order = paid(r)
    fees_before = ledger.balance(r.conn, "income:fee", "CNY")
    r.d.now += HOUR
    reply = refund(r, order["order_id"], "RN1", 10_000)
    assert (reply["status"], reply["method"]) == ("SUCCEEDED", "cancel")
    (body,) = sent(r, "bank.cancel")
    assert body["req_id"].endswith(".x1") and not sent(r, "bank.refund")
    assert ledger.balance(r.conn, "income:fee", "CNY") == fees_before - 60   # 60 bp of 10 000
    assert ledger.balance(r.conn, "asset:channel:bank", "CNY") == r.bank.truth.balance(
        "platform", "CNY")
    (choice,) = events(r.d.log_effects(), "refund.method", reply["refund_id"])
    assert choice["method"] == "cancel"
    memos = [d["memo"] for d in events(r.d.log_effects(), "ledger.post", reply["refund_id"])]
    assert memos == ["cancel"]
    assert r.conn.execute("SELECT method FROM refund_orders WHERE refund_id=?",
                          (reply["refund_id"],)).fetchone() == ("cancel",)


def test_partial_next_day_and_after_cutoff_refunds_are_refunds() -> None:
    r = rig()
    a, b, c = paid(r, "A"), paid(r, "B"), paid(r, "C")
    assert refund(r, a["order_id"], "RA", 4_000)["method"] == "refund"       # partial
    r.d.now = MORNING + 14 * HOUR - 5 * 60_000                               # 22:55 local
    assert refund(r, b["order_id"], "RB", 10_000)["method"] == "refund"      # near the cut-off
    r.d.now = MORNING + 24 * HOUR
    reply = refund(r, c["order_id"], "RC", 10_000)                           # the next day
    assert (reply["method"], reply["status"]) == ("refund", "SUCCEEDED")
    assert len(sent(r, "bank.refund")) == 3 and not sent(r, "bank.cancel")


def test_a_cancel_the_bank_finds_too_late_is_sent_again_as_a_refund() -> None:
    r = rig()
    order = paid(r)
    r.d.now = MORNING + 14 * HOUR - 11 * 60_000        # 22:49 local: paysys still cancels
    r.bank._parts[2].cancels.cutoff_ms = 22 * HOUR      # ... but this bank closed at 22:00
    reply = refund(r, order["order_id"], "RN1", 10_000)
    assert (reply["status"], reply["method"]) == ("SUCCEEDED", "refund")
    assert [b["type"] for b in sent(r, "bank.cancel") + sent(r, "bank.refund")] == [
        "bank.cancel", "bank.refund"]
    methods = [d["method"] for d in events(r.d.log_effects(), "refund.method",
                                           reply["refund_id"])]
    assert methods == ["cancel", "refund"]


def test_the_choice_table() -> None:
    r = rig()
    order = r.d.order(paid(r)["order_id"])
    node, now = r.d.node, r.d.now
    assert choose_method(node, order, 10_000, now)[0] == "cancel"
    assert choose_method(node, order, 9_999, now)[0] == "refund"
    assert choose_method(node, dict(order, product="preauth"), 10_000, now)[0] == "refund"
    assert choose_method(node, dict(order, channel="wechat"), 10_000, now)[0] == "refund"
    assert choose_method(node, order, 10_000, now + 24 * HOUR)[0] == "refund"
    assert not getattr(WeChatAdapter, "CANCELS", False) and PreauthOps.CANCELS
    assert M_MD5.merchant_id == order["merchant_id"]
