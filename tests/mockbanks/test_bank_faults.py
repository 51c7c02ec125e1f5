"""The bank's own faults (maintenance, rate limit, cutoff, amount mismatch, double charge, pay after
close), refunds of one given charge, and BUGGIFY points, fed message by message."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.faults import ChannelFault, ChannelFaults
from mockbanks.fees import Fee
from tests.mockbanks.test_bank import SERVICE_MS, T0, bal, call, make_bank, pay, sign

CARD = "6222000000001111"


def faulty(*faults: ChannelFault, buggify=None, platform_balance: int = 0) -> Bank:
    bank = Bank(name="bank", rng=random.Random(7), fee_rule=Fee(rate_bp=100), capacity=8,
                max_queue_ms=1000, service_time=lambda rng: SERVICE_MS,
                platform_balance=platform_balance, faults=faults, buggify=buggify)
    bank.open_account("U1", CARD, 100_000, 50_000)
    bank.open_account("M0", "6222000000004242", 0, 50_000)
    return bank


def fault(kind: str, start: int = T0, end: int = T0 + 60_000, p: float = 1.0, fid: int = 3,
          **params) -> ChannelFault:
    return ChannelFault(fid, kind, start, end, p, params, None)


def fired(effects: list) -> list[dict]:
    return [e[3] for e in effects if e[0] == "event" and e[1] == "fault.fired"]


def body_pay(req_id: str, ag: str, amount: int) -> dict:
    return {"type": "bank.pay", "req_id": req_id, "agreement_no": ag, "amount": amount,
            "currency": "CNY"}


def sign_before(bank: Bank, start: int = T0) -> str:
    return sign(bank, "U1", CARD, now=start - 10_000)


def test_channel_fault_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="kind: expected one of"):
        fault("meltdown")
    with pytest.raises(ValueError, match="end_ms: .* is before start_ms"):
        fault("maintenance", start=T0, end=T0 - 1)
    with pytest.raises(ValueError, match="probability"):
        fault("maintenance", p=1.5)
    with pytest.raises(ValueError, match="delay: fault 3 .notify_late. needs a delay"):
        fault("notify_late")
    with pytest.raises(ValueError, match="bank bank does not support fault kind 'notify_lost'"):
        faulty(fault("notify_lost"))


def test_no_fault_draws_nothing_from_the_node_stream() -> None:
    rng = random.Random(5)
    ChannelFaults((), rng)
    assert rng.random() == random.Random(5).random()


def test_adding_a_fault_does_not_shift_the_draws_of_the_others() -> None:
    a = fault("maintenance", p=0.5, fid=1)
    b = fault("cutoff", p=0.5, fid=2)
    alone = ChannelFaults([a], random.Random(9))
    both = ChannelFaults([a, b], random.Random(9))
    seq = [(alone.acting("maintenance", T0 + i) is not None) for i in range(50)]
    for i in range(50):
        both.acting("cutoff", T0 + i)
        assert (both.acting("maintenance", T0 + i) is not None) == seq[i]


def test_window_and_probability_are_respected() -> None:
    faults = ChannelFaults([fault("maintenance", start=T0, end=T0 + 1000, p=0.3)],
                           random.Random(1))
    assert faults.acting("maintenance", T0 - 1) is None
    assert faults.acting("maintenance", T0 + 1000) is None       # end excluded
    assert faults.acting("cutoff", T0) is None
    hits = sum(faults.acting("maintenance", T0 + i % 1000) is not None for i in range(2000))
    assert 500 < hits < 700


def test_maintenance_rejects_everything_nothing_done() -> None:
    bank = faulty(fault("maintenance"))
    ag = sign_before(bank)
    effects = bank.handle("paysys", body_pay("P0000000001.1", ag, 1_000), T0 + 5)
    assert effects[-1] == ("reply", {"type": "bank.pay.reply", "req_id": "P0000000001.1",
                                     "result": "REJECTED", "code": "SYSTEM_MAINTENANCE"}, 0)
    assert fired(effects) == [{"fault_id": 3, "kind": "maintenance", "type": "bank.pay",
                               "req_id": "P0000000001.1"}]
    assert effects[0][2] == "P0000000001"
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P0000000001.1"}, T0 + 6)
    assert (query["result"], query["code"]) == ("REJECTED", "SYSTEM_MAINTENANCE")
    assert bank.truth.txns() == [] and bal(bank, f"card:{CARD}") == 100_000
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P0000000001.1"}, T0 + 60_000)
    assert query["result"] == "NOT_FOUND"                         # the window is over
    assert pay(bank, "P0000000001.1", ag, 1_000, T0 + 60_000)["result"] == "SUCCESS"


def test_rate_limit_per_second() -> None:
    bank = faulty(fault("rate_limit", max_per_s=2))
    results = []
    for i, at in enumerate([T0, T0 + 10, T0 + 20, T0 + 999, T0 + 1000, T0 + 1001, T0 + 1002]):
        reply, _, events = call(bank, {"type": "bank.query", "req_id": f"P{i}.1"}, at)
        results.append(reply.get("code") or reply["result"])
        assert len(fired(events)) == (reply["result"] == "REJECTED")
    assert results == ["NOT_FOUND", "NOT_FOUND", "RATE_LIMITED", "RATE_LIMITED",
                       "NOT_FOUND", "NOT_FOUND", "RATE_LIMITED"]


def test_cutoff_refuses_new_pays_and_signs_only() -> None:
    bank = faulty(fault("cutoff", start=T0 + 1_000), platform_balance=10_000)
    ag = sign(bank, "U1", CARD, "S1")
    assert pay(bank, "P1.1", ag, 1_000)["result"] == "SUCCESS"        # before the window
    now = T0 + 2_000
    reply, _, events = call(bank, body_pay("P2.1", ag, 1_000), now)
    assert (reply["result"], reply["code"]) == ("REJECTED", "CUTOFF_IN_PROGRESS")
    assert fired(events)[0]["kind"] == "cutoff"
    reply, _, _ = call(bank, {"type": "bank.sign", "req_id": "S2", "user_id": "U1",
                              "card_no": CARD}, now)
    assert reply["code"] == "CUTOFF_IN_PROGRESS"
    assert call(bank, {"type": "bank.sign", "req_id": "S1", "user_id": "U1", "card_no": CARD},
                now)[0]["result"] == "OK"                              # known req_id: stored
    assert pay(bank, "P1.1", ag, 1_000, now)["result"] == "SUCCESS"    # stored answer
    assert call(bank, {"type": "bank.query", "req_id": "P1.1"}, now)[0]["result"] == "SUCCESS"
    refund, _, _ = call(bank, {"type": "bank.refund", "req_id": "R1.1", "orig_req_id": "P1.1",
                               "amount": 500, "currency": "CNY"}, now)
    assert refund["result"] == "SUCCESS"
    assert call(bank, {"type": "bank.close", "req_id": "P3.1"}, now)[0]["result"] == "CLOSED"
    assert [t["kind"] for t in bank.truth.txns()] == ["pay", "refund"]


@pytest.mark.parametrize(("delta", "charged"), [(-1, 999), (250, 1_250), (-5_000, 1)])
def test_amount_mismatch_charges_and_reports_the_other_amount(delta: int, charged: int) -> None:
    bank = faulty(fault("amount_mismatch", delta=delta))
    ag = sign_before(bank)
    reply, _, events = call(bank, body_pay("P1.1", ag, 1_000), T0)
    assert (reply["result"], reply["amount"]) == ("SUCCESS", charged)
    assert fired(events) == [{"fault_id": 3, "kind": "amount_mismatch", "req_id": "P1.1",
                              "asked": 1_000, "charged": charged}]
    assert [t["amount"] for t in bank.truth.txns()] == [charged]
    assert bal(bank, f"card:{CARD}") == 100_000 - charged
    assert call(bank, {"type": "bank.query", "req_id": "P1.1"})[0]["amount"] == charged


def test_double_charge_two_txns_two_replies() -> None:
    bank = faulty(fault("double_charge"))
    ag = sign_before(bank)
    effects = bank.handle("paysys", body_pay("P0000000001.1", ag, 1_000), T0)
    replies = [e for e in effects if e[0] == "reply"]
    assert len(replies) == 2
    (first, d1), (second, d2) = [(r[1], r[2]) for r in replies]
    assert first["req_id"] == second["req_id"] == "P0000000001.1"
    assert first["bank_txn_id"] != second["bank_txn_id"]
    assert second["type"] == "bank.pay.reply" and second["result"] == "SUCCESS"
    assert d1 == SERVICE_MS and 1_000 <= d2 - d1 <= 3_000
    txns = bank.truth.txns()
    assert [(t["ref"], t["channel_ref"]) for t in txns] == [
        ("P0000000001", first["bank_txn_id"]), ("P0000000001", second["bank_txn_id"])]
    assert txns[1]["at_ms"] == T0 + d2
    assert bal(bank, f"card:{CARD}") == 98_000
    assert fired(effects)[0]["second_txn_id"] == second["bank_txn_id"]
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P0000000001.1"}, T0 + 5_000)
    assert query["charges"] == [{"txn_id": first["bank_txn_id"], "amount": 1_000},
                                {"txn_id": second["bank_txn_id"], "amount": 1_000}]
    again = bank.handle("paysys", body_pay("P0000000001.1", ag, 1_000), T0 + 6_000)
    assert [e[1]["bank_txn_id"] for e in again if e[0] == "reply"] == [first["bank_txn_id"]]
    assert len(bank.truth.txns()) == 2                             # a repeat charges nothing


def test_double_charge_skipped_when_the_card_cannot_pay_twice() -> None:
    bank = faulty(fault("double_charge"))
    bank.open_account("U2", "6222000000002222", 60_000, 100_000)
    ag = sign(bank, "U2", "6222000000002222", "S2", T0 - 5)
    effects = bank.handle("paysys", body_pay("P2.1", ag, 40_000), T0)
    assert len([e for e in effects if e[0] == "reply"]) == 1 and fired(effects) == []
    assert len(bank.truth.txns()) == 1 and bal(bank, "card:6222000000002222") == 20_000


def test_refund_of_a_given_charge() -> None:
    bank = faulty(fault("double_charge"), platform_balance=10_000)
    ag = sign_before(bank)
    effects = bank.handle("paysys", body_pay("P1.1", ag, 1_000), T0)
    first, second = [e[1]["bank_txn_id"] for e in effects if e[0] == "reply"]

    def refund(req_id: str, amount: int, txn: str | None) -> dict:
        body = {"type": "bank.refund", "req_id": req_id, "orig_req_id": "P1.1",
                "amount": amount, "currency": "CNY"}
        if txn is not None:
            body["orig_txn_id"] = txn
        return call(bank, body, T0 + 10_000)[0]

    assert refund("R1.1", 1_000, second)["result"] == "SUCCESS"
    assert refund("R2.1", 1, second)["code"] == "EXCEEDS_REFUNDABLE"
    assert refund("R3.1", 1, "BT404")["code"] == "NOT_FOUND"
    assert refund("R4.1", 600, None)["result"] == "SUCCESS"           # default: the first charge
    assert refund("R5.1", 400, first)["result"] == "SUCCESS"
    assert refund("R6.1", 1, first)["code"] == "EXCEEDS_REFUNDABLE"
    bad = refund("R7.1", 1, "")
    assert (bad["code"], bad["field"]) == ("INVALID_PARAM", "orig_txn_id")
    assert bal(bank, f"card:{CARD}") == 100_000
    assert bank.truth.total("CNY") == bank.truth.initial_total("CNY")


def test_pay_after_close_forgets_the_close() -> None:
    bank = faulty(fault("pay_after_close", end=T0 + 1_000))
    ag = sign_before(bank)
    reply, _, events = call(bank, {"type": "bank.close", "req_id": "P0000000001.1"}, T0)
    assert (reply["result"], reply["code"]) == ("CLOSED", "CLOSED")
    assert fired(events) == [{"fault_id": 3, "kind": "pay_after_close",
                              "req_id": "P0000000001.1"}]
    late = pay(bank, "P0000000001.1", ag, 700, T0 + 4_000)
    assert late["result"] == "SUCCESS"
    assert [(t["ref"], t["amount"]) for t in bank.truth.txns()] == [("P0000000001", 700)]
    call(bank, {"type": "bank.close", "req_id": "P2.1"}, T0 + 2_000)   # after the window
    assert pay(bank, "P2.1", ag, 700, T0 + 3_000)["code"] == "CLOSED"


def test_buggify_reply_lost_does_the_work_without_answering() -> None:
    points, armed = [], [False]

    def buggify(point: str) -> bool:
        points.append(point)
        return armed[0] and point == "bank.reply_lost"

    bank = faulty(buggify=buggify)
    ag = sign_before(bank)
    armed[0] = True
    effects = bank.handle("paysys", body_pay("P1.1", ag, 1_000), T0)
    assert [e for e in effects if e[0] == "reply"] == []
    assert [e[1] for e in effects] == ["bank.txn", "buggify.fired"]
    assert effects[-1][3]["point"] == "bank.reply_lost"
    assert bal(bank, f"card:{CARD}") == 99_000
    assert "bank.slow" in points


def test_buggify_slow_adds_one_to_five_seconds() -> None:
    bank = faulty(buggify=lambda point: point == "bank.slow")
    reply, delay, events = call(bank, {"type": "bank.query", "req_id": "P1.1"})
    assert 1_000 + SERVICE_MS <= delay <= 5_000 + SERVICE_MS
    assert events[0][1] == "buggify.fired" and reply["result"] == "NOT_FOUND"


def test_without_faults_replies_are_unchanged() -> None:
    bank = make_bank()
    ag = sign(bank, "U1", CARD)
    pay(bank, "P1.1", ag, 1_000)
    query, _, _ = call(bank, {"type": "bank.query", "req_id": "P1.1"})
    assert set(query) == {"type", "req_id", "result", "code", "amount", "bank_txn_id"}


KINDS = ("maintenance", "rate_limit", "cutoff", "amount_mismatch", "double_charge",
         "pay_after_close")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
       st.lists(st.tuples(st.sampled_from(["pay", "close", "refund", "query"]),
                          st.integers(0, 9), st.integers(1, 20_000)), max_size=40))
def test_money_is_conserved_under_any_fault(kinds: list, ops: list) -> None:
    bank = faulty(*[fault(k, p=0.6, fid=i, delta=7, max_per_s=3) for i, k in enumerate(kinds)],
                  platform_balance=50_000)
    ag = sign(bank, "U1", CARD, now=T0 - 1)
    initial = bank.truth.initial_total("CNY")
    for i, (op, n, amount) in enumerate(ops):
        now = T0 + 300 * i
        if op == "pay":
            body = body_pay(f"P{n}.1", ag, amount)
        elif op == "close":
            body = {"type": "bank.close", "req_id": f"P{n}.1"}
        elif op == "refund":
            body = {"type": "bank.refund", "req_id": f"R{i}.1", "orig_req_id": f"P{n}.1",
                    "amount": amount, "currency": "CNY"}
        else:
            body = {"type": "bank.query", "req_id": f"P{n}.1"}
        bank.handle("paysys", body, now)
        assert bank.truth.total("CNY") == initial
        assert all(r["balance"] >= 0 for r in bank.truth.accounts() if r["account"] != "magic")
