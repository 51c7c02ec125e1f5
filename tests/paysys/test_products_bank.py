"""The bank's products on the paysys side: withholding mandates (their state table, the merchant
API, a Hypothesis property wired to the bank mock), netbank through the generic async flow,
agreement.query / agreement.list, and the bank adapter's netbank and mandate operations."""

import random
from collections import deque

import pytest
from _node import CARD, M_HMAC, M_MD5, NOW, TIMEOUT_MS, Driver, make_node, pay_create, signed
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.fees import Fee
from paysys import orders, store
from paysys.channels.bank import BankAdapter
from paysys.channels.base import FAILURE, PENDING, REJECTED, SUCCESS, UNKNOWN
from paysys.config import ChannelConfig
from paysys.money import FeeRule
from paysys.orders import IllegalTransition
from paysys.products import mandates, quick

KEY = "key-bank"
BANK = ChannelConfig("bank", "bank", ("quick", "netbank", "withhold"), priority=1,
                     fee=FeeRule(rate_bp=20), timeout_ms=TIMEOUT_MS, api_key=KEY)


class Wire:
    """A paysys node and the bank mock, every message delivered at once (no network)."""

    def __init__(self, balance: int = 1_000_000):
        self.d = Driver(make_node(channels=(BANK,)))
        self.bank = Bank(name="bank", rng=random.Random(1), fee_rule=Fee(rate_bp=20),
                         capacity=8, max_queue_ms=1_000, service_time=lambda rng: 50)
        self.bank.api_key = KEY
        self.bank.open_account("U1", CARD, balance, 10**9)
        self.bank_events: list[tuple] = []      # (kind, ref, data) in the bank's order

    def pump(self, fx: list[tuple], src: str = "paysys") -> list[dict]:
        """Carry out effects until the world is quiet; returns the answers to merchants."""
        answers, queue = [], deque((src, e) for e in fx)
        while queue:
            origin, effect = queue.popleft()
            if effect[0] == "event":
                if origin == "bank":
                    self.bank_events.append(effect[1:])
                continue
            body = effect[2] if effect[0] == "send" else effect[1]
            to_bank = effect[0] == "send" and effect[1] == "bank" or (
                effect[0] == "reply" and origin == "paysys" and body.get("type", "").startswith(
                    "bank."))
            if origin == "paysys" and to_bank:
                queue.extend(("bank", e) for e in self.bank.handle("paysys", body, self.d.now))
            elif origin == "bank" and (effect[0] == "reply" or effect[1] == "paysys"):
                queue.extend(("paysys", e) for e in self.d.handle("bank", body))
            elif origin == "paysys" and effect[0] in ("reply", "send") and (
                    body.get("type", "").endswith(".reply") and "ok" in body):
                answers.append(body)
        return answers

    def merchant(self, body: dict, merchant=M_MD5) -> dict:
        fx = self.d.handle(f"merchant:{merchant.merchant_id}", signed(merchant, body, self.d.now))
        answers = self.pump(fx)
        assert answers, fx
        return answers[-1]

    def tick(self, ms: int = 1_000) -> None:
        self.pump(self.d.advance(ms))
        while (due := self.bank.next_deadline()) is not None and due <= self.d.now:
            self.pump(self.bank.on_timer(due), "bank")

    def mandate(self, mandate_no: str) -> dict:
        return mandates.mandate(self.d.conn, mandate_no)


# -- mandates ----------------------------------------------------------------------------------

def test_the_mandate_states_are_a_table() -> None:
    assert orders.fire("mandate", "SIGNING", "signed") == "ACTIVE"
    assert orders.fire("mandate", "ACTIVE", "revoke") == "REVOKING"
    assert orders.fire("mandate", "REVOKING", "revoked") == "REVOKED"
    assert orders.fire("mandate", "ACTIVE", "bank_revoked") == "REVOKED"
    assert orders.fire("mandate", "SIGNING", "decline") == "FAILED"
    with pytest.raises(IllegalTransition):
        orders.fire("mandate", "REVOKED", "signed")
    with pytest.raises(IllegalTransition):
        orders.fire("mandate", "SIGNING", "revoke")
    assert orders.is_final("mandate", "REVOKED") and orders.is_final("mandate", "FAILED")
    assert not orders.is_final("mandate", "REVOKING")
    assert "ACTIVE --> REVOKING: revoke" in orders.mermaid("mandate")


def sign_body(key: str = "S1", user: str = "U1", card: str = CARD) -> dict:
    return {"type": "mandate.sign", "idempotency_key": key, "user_id": user, "card_no": card}


def debit_body(order_no: str, mandate_no: str, amount: int = 3_000) -> dict:
    body = pay_create(order_no, amount, product="withhold", user_id="U1", mandate_no=mandate_no)
    body.pop("card_no", None)
    return body


def test_sign_once_debit_revoke_then_the_debit_is_refused() -> None:
    w = Wire()
    signed_ = w.merchant(sign_body())
    assert signed_["ok"] and signed_["status"] == "ACTIVE" and signed_["channel"] == "bank"
    number = signed_["mandate_no"]
    assert w.merchant(sign_body("S2"))["mandate_no"] == number       # once per user, merchant
    assert w.merchant(sign_body("S3"), M_HMAC)["mandate_no"] != number   # another merchant
    paid = w.merchant(debit_body("B1", number))
    assert paid["status"] == "SUCCEEDED"
    revoked = w.merchant({"type": "mandate.revoke", "idempotency_key": "V1",
                          "mandate_no": number})
    assert revoked["status"] == "REVOKING"             # the answer leaves before the bank's
    assert w.mandate(number)["status"] == "REVOKED"    # ... which came at once on this wire
    refused = w.merchant(debit_body("B2", number))
    assert (refused["status"], refused["code"]) == ("FAILED", "MANDATE_REVOKED")
    again = w.merchant(sign_body("S4"))
    assert again["status"] == "ACTIVE" and again["mandate_no"] != number
    assert w.merchant(debit_body("B3", again["mandate_no"]))["status"] == "SUCCEEDED"


def test_a_short_card_is_declined_and_the_mandate_stays_active() -> None:
    w = Wire(balance=1_000)
    number = w.merchant(sign_body())["mandate_no"]
    answer = w.merchant(debit_body("B1", number, amount=5_000))
    assert (answer["status"], answer["code"]) == ("FAILED", "INSUFFICIENT_FUNDS")
    assert w.mandate(number)["status"] == "ACTIVE"


def test_a_user_revoking_at_the_bank_is_learned_from_the_refused_debit() -> None:
    w = Wire()
    number = w.merchant(sign_body())["mandate_no"]
    w.bank.handle("user:U1", {"type": "bank.user.mandate.revoke", "user_id": "U1",
                              "merchant_id": "M001"}, w.d.now)
    assert w.merchant(debit_body("B1", number))["code"] == "MANDATE_REVOKED"
    w.tick(mandates.SYNC_MS)
    assert w.mandate(number)["status"] == "REVOKED"
    query = w.merchant({"type": "mandate.query", "mandate_no": number})
    assert query["status"] == "REVOKED" and query["code"] == "MANDATE_REVOKED"


def test_mandate_requests_are_checked() -> None:
    w = Wire()
    number = w.merchant(sign_body())["mandate_no"]
    other = w.merchant({"type": "mandate.query", "mandate_no": number}, M_HMAC)
    assert (other["ok"], other["code"]) == (False, "NOT_FOUND")
    bad = w.merchant(sign_body(card="12"))
    assert (bad["code"], bad["field"]) == ("INVALID_PARAM", "card_no")
    frozen = Wire()
    frozen.bank.set_frozen(CARD)
    failed = frozen.merchant(sign_body())
    assert (failed["ok"], failed["status"], failed["code"]) == (False, "FAILED", "CARD_FROZEN")
    answer = frozen.merchant({"type": "mandate.revoke", "idempotency_key": "V",
                              "mandate_no": failed["mandate_no"]})
    assert answer["code"] == "BAD_STATE"


def test_a_sign_without_answer_is_asked_again_under_the_same_id() -> None:
    d = Driver(make_node(channels=(BANK,)))
    fx = d.merchant(sign_body())
    first = [e[2] for e in fx if e[0] == "send" and e[1] == "bank"]
    assert [b["type"] for b in first] == ["bank.mandate.sign"]
    again = [e[2] for e in d.advance(TIMEOUT_MS + mandates.RETRY_MS) if e[0] == "send"
             and e[1] == "bank"]
    assert again and again[0]["req_id"] == first[0]["req_id"]
    row = mandates.mandate(d.conn, first[0]["mandate_ref"])
    assert row["status"] == "SIGNING"


ACTIONS = st.lists(st.tuples(st.sampled_from(["sign", "debit", "revoke", "user_revoke",
                                              "tick"]), st.sampled_from([M_MD5, M_HMAC])),
                   max_size=14)


@settings(max_examples=25, deadline=None)
@given(ACTIONS)
def test_no_sequence_of_events_debits_a_revoked_mandate(actions) -> None:
    """Whatever merchants and the user do in whatever order, no debit succeeds after its
    mandate was revoked at the bank, every SUCCEEDED debit names a mandate of its merchant that
    was ACTIVE, and a mandate paysys calls REVOKED is revoked at the bank."""
    w = Wire()
    numbers: dict[str, str] = {}
    for n, (action, merchant) in enumerate(actions):
        m = merchant.merchant_id
        if action == "sign":
            answer = w.merchant(sign_body(f"S{n}"), merchant)
            numbers[m] = answer.get("mandate_no", numbers.get(m, ""))
        elif action == "debit" and numbers.get(m):
            w.merchant(debit_body(f"B{n}", numbers[m]), merchant)
        elif action == "revoke" and numbers.get(m):
            w.merchant({"type": "mandate.revoke", "idempotency_key": f"V{n}",
                        "mandate_no": numbers[m]}, merchant)
        elif action == "user_revoke":
            w.pump(w.bank.handle("user:U1", {"type": "bank.user.mandate.revoke",
                                             "user_id": "U1", "merchant_id": m}, w.d.now),
                   "bank")
        else:
            w.tick(mandates.SYNC_MS)
    revoked_at_bank: set[str] = set()
    for kind, ref, data in w.bank_events:
        if kind == "bank.mandate" and data["status"] == "REVOKED":
            revoked_at_bank.add(ref)
        if kind == "bank.txn" and data.get("mandate_ref"):
            assert data["mandate_ref"] not in revoked_at_bank, (ref, data)
    for order_id, mandate_no, merchant_id in w.d.conn.execute(
            "SELECT order_id, mandate_no, merchant_id FROM pay_orders WHERE status='SUCCEEDED'"):
        row = w.mandate(mandate_no)
        assert row["merchant_id"] == merchant_id and row["bank_mandate_no"], order_id
    bank_numbers = {data["mandate_no"] for kind, _, data in w.bank_events
                    if kind == "bank.mandate" and data["status"] == "REVOKED"}
    for (bank_no,) in w.d.conn.execute("SELECT bank_mandate_no FROM mandates WHERE "
                                       "status='REVOKED'"):
        assert bank_no in bank_numbers


# -- netbank -----------------------------------------------------------------------------------

def test_a_netbank_payment_from_the_page_to_the_notification() -> None:
    w = Wire()
    answer = w.merchant(pay_create("N1", 4_000, product="netbank"))
    assert answer["status"] == "PROCESSING" and "page=" in answer["code_url"]
    order_id = answer["order_id"]
    page_id = answer["code_url"].rsplit("page=", 1)[1]
    w.tick()
    paid = w.bank.handle("user:U1", {"type": "bank.user.netbank", "page_id": page_id,
                                     "user_id": "U1"}, w.d.now)
    assert [e[1]["result"] for e in paid if e[0] == "reply"] == ["SUCCESS"]
    w.tick(40_000)                                  # the debit confirmed and notified
    assert w.d.status(order_id) == "SUCCEEDED"
    assert w.bank.next_deadline() is None           # acknowledged: no more notifications


def test_an_unpaid_netbank_page_is_closed_when_the_order_expires() -> None:
    w = Wire()
    order_id = w.merchant(pay_create("N1", 4_000, product="netbank"))["order_id"]
    w.tick(w.d.node.cfg.platform_expire_ms + 1_000)
    assert w.d.status(order_id) == "CLOSED"


# -- agreements ---------------------------------------------------------------------------------

def test_agreement_query_and_list() -> None:
    d = Driver(make_node())
    store.save_agreement(d.conn, "U1", CARD, "bank", "AG1", "active")
    store.save_agreement(d.conn, "U1", "6222020000000002", "bank", "AG2", "revoked")

    def ask(body):
        return [e[1] for e in d.merchant(body) if e[0] == "reply"][0]

    answer = ask({"type": "agreement.query", "user_id": "U1", "card_no": CARD})
    assert (answer["status"], answer["channel"], answer["card_no"]) == (
        "active", "bank", "622202******0001")
    assert ask({"type": "agreement.query", "user_id": "U1",
                "card_no": "6222020000000009"})["status"] == "none"
    assert ask({"type": "agreement.query", "user_id": "U2", "card_no": CARD})["status"] == "none"
    listed = ask({"type": "agreement.list", "user_id": "U1"})["agreements"]
    assert [(a["card_no"][-4:], a["status"]) for a in listed] == [("0001", "active"),
                                                                   ("0002", "revoked")]
    assert ask({"type": "agreement.list", "user_id": "U9"})["agreements"] == []
    bad = ask({"type": "agreement.list"})
    assert (bad["code"], bad["field"]) == ("INVALID_PARAM", "user_id")


def test_a_card_signed_at_two_banks_reads_as_its_best_status() -> None:
    node = make_node()
    store.save_agreement(node.conn, "U1", CARD, "bank", "AG1", "revoked")
    store.save_agreement(node.conn, "U1", CARD, "bank2", "AG2", "revoking")
    assert quick.status_of(node.conn, "U1", CARD) == ("revoking", "bank2")
    assert quick.mask("6222020000000001") == "622202******0001"


# -- the adapter --------------------------------------------------------------------------------

ORDER = {"order_id": "P1", "amount": 500, "currency": "CNY", "expire_ms": NOW + 1,
         "merchant_id": "M001", "user_id": "U1", "mandate_no": "W1", "product": "netbank"}


def test_the_adapter_builds_netbank_and_debit_requests() -> None:
    adapter = BankAdapter("bank", KEY)
    assert adapter.is_async("netbank") and not adapter.is_async("withhold")
    assert not adapter.signs("netbank") and not adapter.signs("withhold")
    page = adapter.pay("P1.p1", ORDER, "", NOW, "paysys")
    assert page == {"type": "bank.netbank", "req_id": "P1.p1", "out_trade_no": "P1",
                    "amount": 500, "currency": "CNY", "notify_url": "paysys",
                    "time_expire": NOW + 1}
    debit = adapter.pay("P1.p1", dict(ORDER, product="withhold"), "", NOW, "paysys")
    assert (debit["type"], debit["mandate_ref"], debit["merchant_id"]) == (
        "bank.debit", "W1", "M001")
    assert adapter.pay("P1.p1", dict(ORDER, product="quick"), "AG1", NOW, "")["type"] == \
        "bank.pay"


@pytest.mark.parametrize(("reply", "kind", "code"), [
    ({"type": "bank.netbank.reply", "result": "PROCESSING", "code_url": "u", "page_id": "NB1"},
     PENDING, None),
    ({"type": "bank.netbank.reply", "result": "PROCESSING"}, UNKNOWN, "NO_CODE_URL"),
    ({"type": "bank.netbank.reply", "result": "REJECTED", "code": "SYSTEM_MAINTENANCE"},
     REJECTED, "SYSTEM_MAINTENANCE"),
    ({"type": "bank.netbank.reply", "result": "DECLINED", "code": "CLOSED"}, FAILURE, "CLOSED"),
    ({"type": "bank.pay.reply", "result": "SUCCESS", "bank_txn_id": "BT1", "amount": 5},
     SUCCESS, None),
    ({"type": "bank.debit.reply", "result": "DECLINED", "code": "MANDATE_REVOKED"}, FAILURE,
     "MANDATE_REVOKED"),
    ({"type": "bank.debit.reply", "result": "ERROR", "code": "PROCESSING_ERROR"}, UNKNOWN,
     "PROCESSING_ERROR"),
    ({"type": "bank.debit.reply", "result": "ERROR", "code": "SYSTEM_BUSY"}, FAILURE,
     "SYSTEM_BUSY"),
])
def test_pay_like_answers_are_classified(reply, kind, code) -> None:
    outcome = BankAdapter("bank", KEY).classify("pay", reply)
    assert outcome.kind == kind
    if code is not None:
        assert outcome.code == code
    if kind == PENDING:
        assert outcome.extra == {"code_url": "u"} and outcome.channel_ref == "NB1"


@pytest.mark.parametrize(("op", "reply", "kind"), [
    ("mandate_sign", {"result": "OK", "mandate_no": "BM1"}, SUCCESS),
    ("mandate_sign", {"result": "DECLINED", "code": "CARD_FROZEN"}, FAILURE),
    ("mandate_sign", {"result": "REJECTED", "code": "RATE_LIMITED"}, REJECTED),
    ("mandate_sign", {"result": "ERROR", "code": "SYSTEM_BUSY"}, REJECTED),
    ("mandate_sign", {"result": "ERROR", "code": "PROCESSING_ERROR"}, UNKNOWN),
    ("revoke_mandate", {"result": "OK"}, SUCCESS),
    ("revoke_mandate", {"result": "NOT_FOUND"}, SUCCESS),
    ("revoke_mandate", {"result": "REJECTED", "code": "SYSTEM_MAINTENANCE"}, UNKNOWN),
])
def test_mandate_answers_are_classified(op, reply, kind) -> None:
    outcome = BankAdapter("bank", KEY).classify(op, reply)
    assert outcome.kind == kind
    if op == "mandate_sign" and kind == SUCCESS:
        assert outcome.channel_ref == "BM1"
