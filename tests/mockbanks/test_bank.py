"""The quick-pay bank, fed message by message (no simulator)."""

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.fees import Fee

T0 = int(datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp()) * 1000   # 09:00 in UTC+8
SERVICE_MS = 100
USER_AGREEMENTS = {"U1": "6222000000001111", "U2": "6222000000002222"}


def make_bank(capacity: int = 8, max_queue_ms: int = 1000, fee: Fee | None = None,
              platform_balance: int = 0) -> Bank:
    bank = Bank(name="bank", rng=random.Random(7), fee_rule=fee or Fee(rate_bp=100),
                capacity=capacity, max_queue_ms=max_queue_ms,
                service_time=lambda rng: SERVICE_MS, platform_balance=platform_balance)
    bank.open_account("U1", "6222000000001111", 100_000, 50_000)
    bank.open_account("U2", "6222000000002222", 100_000, 50_000)
    bank.open_account("U3", "6222000000003333", 100_000, 50_000, frozen=True)
    for i, suffix in enumerate(["4242", "0002", "9995", "0119", "3220"]):
        bank.open_account(f"M{i}", f"62220000000{i}{suffix}", 0 if suffix == "4242" else 10**9,
                          50_000)
    return bank


def call(bank: Bank, body: dict, now: int = T0) -> tuple[dict, int, list]:
    """(reply body, reply delay, events) of one request."""
    effects = bank.handle("paysys", body, now)
    replies = [e for e in effects if e[0] == "reply"]
    assert len(replies) == 1, effects
    return replies[0][1], replies[0][2], [e for e in effects if e[0] == "event"]


def sign(bank: Bank, user_id: str, card_no: str, req_id: str = "", now: int = T0) -> str:
    reply, _, _ = call(bank, {"type": "bank.sign", "req_id": req_id or f"S-{card_no}",
                              "user_id": user_id, "card_no": card_no}, now)
    assert reply["result"] == "OK", reply
    return reply["agreement_no"]


def pay(bank: Bank, req_id: str, agreement_no: str, amount: int, now: int = T0) -> dict:
    return call(bank, {"type": "bank.pay", "req_id": req_id, "agreement_no": agreement_no,
                       "amount": amount, "currency": "CNY"}, now)[0]


def bal(bank: Bank, account: str) -> int:
    return bank.truth.balance(account, "CNY")


def test_fee_rule_rounds_half_up_and_clamps() -> None:
    assert Fee(rate_bp=25).fee(200) == 1          # 0.5 rounds up
    assert Fee(rate_bp=25).fee(199) == 0          # 0.4975 rounds down
    assert Fee(rate_bp=100, fixed=30, minimum=50).fee(100) == 50
    assert Fee(rate_bp=100, maximum=7).fee(10_000) == 7
    assert Fee(fixed=500).fee(300) == 300         # never more than the amount
    with pytest.raises(ValueError, match="Fee.rate_bp: expected a non-negative integer"):
        Fee(rate_bp=0.5)


def test_sign_is_deterministic_and_idempotent_per_card() -> None:
    bank = make_bank()
    first = sign(bank, "U1", "6222000000001111", "S1")
    assert first == "AG0000000001"
    assert sign(bank, "U1", "6222000000001111", "S2") == first   # same card, same agreement
    assert sign(bank, "U2", "6222000000002222", "S3") == "AG0000000002"


@pytest.mark.parametrize(("user_id", "card_no"), [("U1", "6222999999999999"),
                                                   ("U2", "6222000000001111")])
def test_sign_unknown_or_foreign_card_is_invalid_card(user_id: str, card_no: str) -> None:
    reply, _, _ = call(make_bank(), {"type": "bank.sign", "req_id": "S1", "user_id": user_id,
                                     "card_no": card_no})
    assert (reply["type"], reply["result"], reply["code"]) == ("bank.sign.reply", "DECLINED",
                                                               "INVALID_CARD")
    assert reply["agreement_no"] is None


def test_successful_pay_moves_money_with_fee() -> None:
    bank = make_bank()
    ag = sign(bank, "U1", "6222000000001111")
    reply, delay, events = call(bank, {"type": "bank.pay", "req_id": "P0000000001.1",
                                       "agreement_no": ag, "amount": 10_000, "currency": "CNY"})
    assert delay == SERVICE_MS
    assert reply == {"type": "bank.pay.reply", "req_id": "P0000000001.1", "result": "SUCCESS",
                     "code": None, "bank_txn_id": reply["bank_txn_id"], "amount": 10_000}
    assert bal(bank, "card:6222000000001111") == 90_000
    assert bal(bank, "platform") == 9_900
    assert bal(bank, "bank_fees") == 100
    assert bank.truth.txns() == [{"ref": "P0000000001", "channel_ref": reply["bank_txn_id"],
                                  "kind": "pay", "amount": 10_000, "fee": 100, "currency": "CNY",
                                  "status": "SUCCESS", "at_ms": T0 + SERVICE_MS}]
    assert [(e[1], e[2], e[3]["amount"]) for e in events] == [("bank.txn", "P0000000001", 10_000)]


@pytest.mark.parametrize(("card_no", "amount", "code"), [
    ("6222000000001111", 100_001, "LIMIT_EXCEEDED"),     # over balance but first the daily limit
    ("6222000000003333", 100, "CARD_FROZEN"),
])
def test_ordinary_declines_move_nothing(card_no: str, amount: int, code: str) -> None:
    bank = make_bank()
    user = "U1" if card_no.endswith("1111") else "U3"
    ag = sign(bank, user, card_no)
    reply = pay(bank, "P1.1", ag, amount)
    assert (reply["result"], reply["code"], reply["bank_txn_id"]) == ("DECLINED", code, None)
    assert bank.truth.txns() == [] and bal(bank, "platform") == 0


def test_insufficient_funds() -> None:
    bank = make_bank()
    bank.open_account("U9", "6222000000009999", 500, 50_000)
    ag = sign(bank, "U9", "6222000000009999")
    assert pay(bank, "P1.1", ag, 501)["code"] == "INSUFFICIENT_FUNDS"
    assert pay(bank, "P2.1", ag, 500)["result"] == "SUCCESS"
    assert bal(bank, "card:6222000000009999") == 0


def test_agreement_invalid_when_unknown_or_revoked() -> None:
    bank = make_bank()
    assert pay(bank, "P1.1", "AG404", 100)["code"] == "AGREEMENT_INVALID"
    ag = sign(bank, "U1", "6222000000001111")
    reply, _, _ = call(bank, {"type": "bank.unsign", "req_id": "X1", "agreement_no": ag})
    assert reply["result"] == "OK"
    assert pay(bank, "P2.1", ag, 100)["code"] == "AGREEMENT_INVALID"
    reply, _, _ = call(bank, {"type": "bank.unsign", "req_id": "X2", "agreement_no": "AG404"})
    assert reply["result"] == "NOT_FOUND"
    assert sign(bank, "U1", "6222000000001111", "S9") != ag    # a new agreement after unsign
    assert bank.truth.txns() == []


def test_daily_limit_resets_at_local_midnight_not_utc() -> None:
    bank = make_bank()
    ag = sign(bank, "U1", "6222000000001111")
    local_midnight = int(datetime(2026, 11, 2, 16, 0, tzinfo=UTC).timestamp()) * 1000
    assert pay(bank, "A.1", ag, 50_000, local_midnight - 60_000)["result"] == "SUCCESS"
    assert pay(bank, "B.1", ag, 1, local_midnight - 1)["code"] == "LIMIT_EXCEEDED"
    assert pay(bank, "C.1", ag, 40_000, local_midnight)["result"] == "SUCCESS"
    utc_midnight = local_midnight + 8 * 3600 * 1000               # 08:00 local, same local day
    assert pay(bank, "D.1", ag, 10_001, utc_midnight)["code"] == "LIMIT_EXCEEDED"
    assert pay(bank, "E.1", ag, 10_000, utc_midnight)["result"] == "SUCCESS"


def test_magic_4242_succeeds_without_money_funded_by_magic_account() -> None:
    bank = make_bank()
    ag = sign(bank, "M0", "6222000000004242")
    assert pay(bank, "P1.1", ag, 10**7)["result"] == "SUCCESS"      # over limit and balance
    assert bal(bank, "card:6222000000004242") == 0
    assert bal(bank, "magic") == -(10**7)
    assert bal(bank, "platform") + bal(bank, "bank_fees") == 10**7
    assert bank.truth.total("CNY") == bank.truth.initial_total("CNY")


@pytest.mark.parametrize(("index", "suffix", "result", "code"), [
    (1, "0002", "DECLINED", "CARD_FROZEN"),
    (2, "9995", "DECLINED", "INSUFFICIENT_FUNDS"),
    (3, "0119", "ERROR", "PROCESSING_ERROR"),
])
def test_magic_failures_move_nothing(index: int, suffix: str, result: str, code: str) -> None:
    bank = make_bank()
    card_no = f"62220000000{index}{suffix}"
    ag = sign(bank, f"M{index}", card_no)
    reply = pay(bank, "P1.1", ag, 100)
    assert (reply["result"], reply["code"]) == (result, code)
    assert bal(bank, f"card:{card_no}") == 10**9 and bank.truth.txns() == []
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P1.1"})
    assert (query["result"], query["code"]) == ("DECLINED", code)   # 0119: never moves money


def test_magic_card_unknown_to_the_bank_can_sign() -> None:
    bank = make_bank()
    ag = sign(bank, "U7", "4000000000004242")
    assert pay(bank, "P1.1", ag, 1_000)["result"] == "SUCCESS"


def test_magic_3220_processing_then_success_30s_later() -> None:
    bank = make_bank()
    ag = sign(bank, "M4", "6222000000043220")
    reply = pay(bank, "P1.1", ag, 2_000)
    assert reply["result"] == "PROCESSING" and reply["bank_txn_id"]
    settle_at = T0 + SERVICE_MS + 30_000
    assert bank.next_deadline() == settle_at
    assert bank.on_timer(settle_at - 1) == [] and bank.truth.txns() == []
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P1.1"}, settle_at - 1)
    assert query["result"] == "PROCESSING"
    events = bank.on_timer(settle_at)
    assert [(e[1], e[3]["at_ms"]) for e in events] == [("bank.txn", settle_at)]
    assert bank.next_deadline() is None
    assert bal(bank, "card:6222000000043220") == 10**9 - 2_000
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P1.1"}, settle_at + 5)
    assert query["result"] == "SUCCESS"
    assert pay(bank, "P1.1", ag, 2_000, settle_at + 10)["result"] == "SUCCESS"   # repeat
    assert len(bank.truth.txns()) == 1


def test_3220_settles_lazily_when_a_message_arrives_after_the_deadline() -> None:
    bank = make_bank()
    ag = sign(bank, "M4", "6222000000043220")
    pay(bank, "P1.1", ag, 2_000)
    effects = bank.handle("paysys", {"type": "bank.query", "req_id": "P1.1"}, T0 + 60_000)
    assert effects[0][1] == "bank.txn" and effects[-1][1]["result"] == "SUCCESS"


def test_repeated_req_id_answers_stored_result_and_moves_money_once() -> None:
    bank = make_bank()
    ag = sign(bank, "U1", "6222000000001111")
    first = pay(bank, "P1.1", ag, 1_000)
    again = pay(bank, "P1.1", ag, 1_000, T0 + 5_000)
    assert again == first
    assert bal(bank, "card:6222000000001111") == 99_000 and len(bank.truth.txns()) == 1
    declined = pay(bank, "P2.1", ag, 10**6)
    assert pay(bank, "P2.1", ag, 1) == declined                     # stored, not re-decided


def test_capacity_queues_then_system_busy() -> None:
    bank = make_bank(capacity=2, max_queue_ms=150)
    delays = [call(bank, {"type": "bank.query", "req_id": f"Q{i}"})[1] for i in range(4)]
    assert delays == [100, 100, 200, 200]
    busy, delay, events = call(bank, {"type": "bank.pay", "req_id": "P1.1",
                                      "agreement_no": "AG1", "amount": 5, "currency": "CNY"})
    assert (busy["result"], busy["code"], delay, events) == ("ERROR", "SYSTEM_BUSY", 0, [])
    later = T0 + 150           # servers free at T0+200: wait 50 <= 150
    query, delay, _ = call(bank, {"type": "bank.query", "req_id": "P1.1"}, later)
    assert query["result"] == "NOT_FOUND" and delay == 150    # the busy pay left no trace


def test_queue_delay_sets_the_money_time() -> None:
    bank = make_bank(capacity=1, max_queue_ms=1000)
    ag = sign(bank, "U1", "6222000000001111")     # occupies the server until T0+100
    reply, delay, events = call(bank, {"type": "bank.pay", "req_id": "P1.1", "agreement_no": ag,
                                       "amount": 10, "currency": "CNY"})
    assert reply["result"] == "SUCCESS" and delay == 200
    assert events[0][3]["at_ms"] == T0 + 200


def test_close_unknown_pay_then_pay_is_declined_closed() -> None:
    bank = make_bank()
    ag = sign(bank, "U1", "6222000000001111")
    reply, _, _ = call(bank, {"type": "bank.close", "req_id": "P1.1"})
    assert reply["result"] == "CLOSED"
    assert (pay(bank, "P1.1", ag, 100)["result"], pay(bank, "P1.1", ag, 100)["code"]) == (
        "DECLINED", "CLOSED")
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P1.1"})
    assert query["result"] == "CLOSED" and bank.truth.txns() == []
    pay(bank, "P2.1", ag, 100)
    reply, _, _ = call(bank, {"type": "bank.close", "req_id": "P2.1"})
    assert (reply["result"], reply["amount"]) == ("SUCCESS", 100)


def test_refunds_limits_and_dedupe() -> None:
    bank = make_bank(platform_balance=1_000)
    ag = sign(bank, "U1", "6222000000001111")
    pay(bank, "P1.1", ag, 10_000)

    def refund(req_id: str, amount: int, orig: str = "P1.1") -> dict:
        return call(bank, {"type": "bank.refund", "req_id": req_id, "orig_req_id": orig,
                           "amount": amount, "currency": "CNY"})[0]

    assert refund("R1.1", 6_000)["result"] == "SUCCESS"
    assert refund("R1.1", 6_000)["result"] == "SUCCESS"          # repeat: stored, once
    assert refund("R2.1", 4_001)["code"] == "EXCEEDS_REFUNDABLE"
    assert refund("R3.1", 1, orig="P404.1")["code"] == "NOT_FOUND"
    assert refund("R4.1", 4_000)["result"] == "SUCCESS"
    assert refund("R5.1", 1)["code"] == "EXCEEDS_REFUNDABLE"
    assert bal(bank, "card:6222000000001111") == 100_000         # all back to the user
    assert bal(bank, "platform") == 1_000 - 100                    # the fee is not returned
    assert bal(bank, "bank_fees") == 100
    refunds = [t for t in bank.truth.txns() if t["kind"] == "refund"]
    assert [(t["ref"], t["amount"], t["fee"]) for t in refunds] == [("R1", 6_000, 0),
                                                                     ("R4", 4_000, 0)]
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "R2.1"})
    assert (query["result"], query["code"]) == ("DECLINED", "EXCEEDS_REFUNDABLE")


def test_refund_declined_when_platform_account_is_short() -> None:
    bank = make_bank()                  # platform starts at 0 and keeps amount - fee
    ag = sign(bank, "U1", "6222000000001111")
    pay(bank, "P1.1", ag, 10_000)
    reply, _, _ = call(bank, {"type": "bank.refund", "req_id": "R1.1", "orig_req_id": "P1.1",
                              "amount": 10_000, "currency": "CNY"})
    assert (reply["result"], reply["code"]) == ("DECLINED", "INSUFFICIENT_FUNDS")
    assert bal(bank, "platform") == 9_900


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "bank.pay", "req_id": "P1.1", "agreement_no": "AG1", "amount": 1.5,
      "currency": "CNY"}, "amount"),
    ({"type": "bank.pay", "req_id": "P1.1", "agreement_no": "AG1", "amount": 10,
      "currency": "USD"}, "currency"),
    ({"type": "bank.sign", "req_id": "S1", "user_id": "U1"}, "card_no"),
    ({"type": "bank.refund", "req_id": "R1.1", "amount": 1, "currency": "CNY"}, "orig_req_id"),
])
def test_invalid_params_name_the_field(body: dict, field: str) -> None:
    reply, _, _ = call(make_bank(), body)
    assert (reply["result"], reply["code"], reply["field"]) == ("ERROR", "INVALID_PARAM", field)


def test_unknown_type_and_net_errors() -> None:
    bank = make_bank()
    reply, delay, _ = call(bank, {"type": "bank.nope", "req_id": "X"})
    assert (reply["type"], reply["code"], delay) == ("bank.nope.reply", "UNKNOWN_TYPE", 0)
    assert bank.handle("paysys", {"type": "net.error", "error": "refused", "request": {}}, T0) == []


CARDS = ["6222000000001111", "6222000000002222", "6222000000003333", "6222000000004242",
         "6222000000010002", "6222000000029995", "6222000000030119", "6222000000043220"]
OWNERS = ["U1", "U2", "U3", "M0", "M1", "M2", "M3", "M4"]
OPS = st.one_of(
    st.tuples(st.just("pay"), st.integers(0, 7), st.integers(1, 80_000), st.integers(0, 30)),
    st.tuples(st.just("refund"), st.integers(0, 30), st.integers(1, 30_000), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 60), st.just(0), st.just(0)),
    st.tuples(st.just("close"), st.integers(0, 40), st.just(0), st.just(0)),
    st.tuples(st.just("unsign"), st.integers(0, 7), st.just(0), st.just(0)),
    st.tuples(st.just("wait"), st.integers(0, 40_000_000), st.just(0), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_money_is_conserved_and_never_negative(ops: list) -> None:
    bank = make_bank(capacity=2, max_queue_ms=300, fee=Fee(rate_bp=60, fixed=3))
    initial = bank.truth.initial_total("CNY")
    agreements = [sign(bank, owner, card, f"S{i}") for i, (owner, card) in
                  enumerate(zip(OWNERS, CARDS, strict=True))]
    now, sent = T0 + 10_000, []
    for op, a, amount, b in ops:
        if op == "pay":
            body = {"type": "bank.pay", "req_id": f"P{b}.1", "agreement_no": agreements[a],
                    "amount": amount, "currency": "CNY"}
        elif op == "refund":
            paid = [s["req_id"] for s in sent if s["type"] == "bank.pay"] or ["P0.1"]
            body = {"type": "bank.refund", "req_id": f"R{len(sent)}.1",
                    "orig_req_id": paid[a % len(paid)], "amount": amount, "currency": "CNY"}
        elif op == "repeat" and sent:
            body = sent[a % len(sent)]
        elif op == "close":
            body = {"type": "bank.close", "req_id": f"P{a}.1"}
        elif op == "unsign":
            body = {"type": "bank.unsign", "req_id": f"U{len(sent)}", "agreement_no": agreements[a]}
        else:
            now += a
            deadline = bank.next_deadline()
            if deadline is not None and deadline <= now:
                bank.on_timer(now)
            continue
        sent.append(body)
        bank.handle("paysys", body, now)
        now += 1
        assert bank.truth.total("CNY") == initial
        assert all(r["balance"] >= 0 for r in bank.truth.accounts() if r["account"] != "magic")
    pays = [t for t in bank.truth.txns() if t["kind"] == "pay"]
    assert len({t["ref"] for t in pays}) == len(pays)     # one req_id per order here: never twice
