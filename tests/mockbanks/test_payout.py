"""Bank payouts to merchants and transfers between the platform's accounts (bank.payout,
bank.transfer): moves, de-duplication, INSUFFICIENT_FUNDS, refusals, conservation."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.faults import ChannelFault
from mockbanks.fees import Fee
from tests.mockbanks.test_bank import T0, bal, call


def make(platform: int = 10_000, reserve: int = 0, faults=()) -> Bank:
    return Bank(name="bank", rng=random.Random(7), fee_rule=Fee(rate_bp=100), capacity=8,
                max_queue_ms=1000, service_time=lambda rng: 100, platform_balance=platform,
                reserve_balance=reserve, faults=faults)


def payout(bank: Bank, req_id: str, amount: int, account: str = "merchant:M001",
           now: int = T0) -> tuple[dict, list]:
    reply, _, events = call(bank, {"type": "bank.payout", "req_id": req_id, "account": account,
                                   "amount": amount, "currency": "CNY"}, now)
    return reply, events


def transfer(bank: Bank, req_id: str, amount: int, source: str = "reserve",
             target: str = "platform", now: int = T0) -> tuple[dict, list]:
    reply, _, events = call(bank, {"type": "bank.transfer", "req_id": req_id, "from": source,
                                   "to": target, "amount": amount, "currency": "CNY"}, now)
    return reply, events


def test_payout_moves_platform_money_to_the_merchant_once() -> None:
    bank = make()
    assert not bank.truth.has("merchant:M001", "CNY")
    reply, events = payout(bank, "S000001", 4000)
    assert reply == {"type": "bank.payout.reply", "req_id": "S000001", "result": "SUCCESS",
                     "code": None, "bank_txn_id": "BP0000000001", "amount": 4000}
    assert (bal(bank, "platform"), bal(bank, "merchant:M001")) == (6000, 4000)
    assert bank.truth.txns() == [{"ref": "S000001", "channel_ref": "BP0000000001",
                                  "kind": "payout", "amount": 4000, "fee": 0, "currency": "CNY",
                                  "status": "SUCCESS", "at_ms": T0 + 100}]
    assert events[0][:3] == ("event", "bank.txn", "S000001")
    again, events = payout(bank, "S000001", 4000, now=T0 + 5000)
    assert again == reply and events == []
    assert (bal(bank, "platform"), bal(bank, "merchant:M001")) == (6000, 4000)
    assert len(bank.truth.txns()) == 1


def test_payout_beyond_the_platform_balance_is_declined_and_stays_declined() -> None:
    bank = make(platform=1000)
    reply, events = payout(bank, "S2", 1001)
    assert (reply["result"], reply["code"], reply["bank_txn_id"], events) == (
        "DECLINED", "INSUFFICIENT_FUNDS", None, [])
    assert bal(bank, "platform") == 1000 and bank.truth.txns() == []
    bank.truth.move("magic", "platform", 5000, "CNY", T0, "X", "X", "magic")
    assert payout(bank, "S2", 1001)[0]["result"] == "DECLINED"      # answered from the record
    assert payout(bank, "S3", 1001)[0]["result"] == "SUCCESS"


def test_reserve_transfers_both_ways() -> None:
    bank = make(platform=0, reserve=50_000)
    assert bank.truth.accounts()[3] == {"account": "reserve", "currency": "CNY",
                                        "initial": 50_000, "balance": 50_000}
    reply, _ = transfer(bank, "T1", 20_000)
    assert (reply["type"], reply["result"], reply["bank_txn_id"]) == ("bank.transfer.reply",
                                                                      "SUCCESS", "BX0000000001")
    assert (bal(bank, "reserve"), bal(bank, "platform")) == (30_000, 20_000)
    assert transfer(bank, "T1", 20_000)[0] == reply and bal(bank, "reserve") == 30_000
    assert transfer(bank, "T2", 5000, "platform", "reserve")[0]["result"] == "SUCCESS"
    assert (bal(bank, "reserve"), bal(bank, "platform")) == (35_000, 15_000)
    reply, _ = transfer(bank, "T3", 35_001)
    assert (reply["result"], reply["code"]) == ("DECLINED", "INSUFFICIENT_FUNDS")
    assert [t["kind"] for t in bank.truth.txns()] == ["transfer", "transfer"]
    assert make().truth.balance("reserve", "CNY") == 0        # opened by default, empty


@pytest.mark.parametrize("body, field", [
    ({"account": "M001"}, "account"), ({"account": "merchant:"}, "account"),
    ({"account": None}, "account"), ({"amount": 0}, "amount"), ({"amount": 1.5}, "amount"),
    ({"currency": "USD"}, "currency"), ({"req_id": ""}, "req_id"),
])
def test_invalid_payout_names_the_field_and_records_nothing(body, field) -> None:
    bank = make()
    request = {"type": "bank.payout", "req_id": "S9", "account": "merchant:M1", "amount": 10,
               "currency": "CNY", **body}
    reply, _, events = call(bank, request)
    assert (reply["result"], reply["code"], reply["field"]) == ("ERROR", "INVALID_PARAM", field)
    assert events == [] and bank.truth.txns() == []
    assert payout(bank, "S9", 10, "merchant:M1")[0]["result"] == "SUCCESS"


@pytest.mark.parametrize("source, target, field", [
    ("reserve", "reserve", "to"), ("card:1", "platform", "from"), ("platform", "bank_fees", "to"),
    (None, "platform", "from"),
])
def test_invalid_transfer_names_the_field(source, target, field) -> None:
    reply, _ = transfer(make(reserve=100), "T1", 10, source, target)
    assert (reply["code"], reply["field"]) == ("INVALID_PARAM", field)


def test_maintenance_and_rate_limit_refuse_payouts_cutoff_does_not() -> None:
    window = (T0, T0 + 60_000, 1.0)
    bank = make(faults=[ChannelFault(1, "maintenance", *window)])
    reply, events = payout(bank, "S1", 100)
    assert (reply["result"], reply["code"]) == ("REJECTED", "SYSTEM_MAINTENANCE")
    assert bank.truth.txns() == [] and events[0][1] == "fault.fired"
    assert payout(bank, "S1", 100, now=T0 + 60_000)[0]["result"] == "SUCCESS"
    bank = make(faults=[ChannelFault(1, "cutoff", *window)])
    assert payout(bank, "S1", 100)[0]["result"] == "SUCCESS"
    assert transfer(bank, "T1", 100, "platform", "reserve")[0]["result"] == "SUCCESS"
    bank = make(faults=[ChannelFault(1, "rate_limit", *window, {"max_per_s": 1})])
    assert payout(bank, "S1", 100)[0]["result"] == "SUCCESS"
    assert transfer(bank, "T1", 100, "platform", "reserve")[0]["code"] == "RATE_LIMITED"


def test_payouts_and_transfers_are_not_in_statements() -> None:
    bank = make(reserve=1000)
    payout(bank, "S1", 100)
    transfer(bank, "T1", 100)
    reply, _, _ = call(bank, {"type": "bank.statement", "req_id": "ST", "date": "2026-11-02"},
                       T0 + 2 * 86_400_000)
    assert reply["result"] == "SUCCESS" and ":61:" not in reply["content"]


ops = st.lists(st.tuples(st.sampled_from(["payout", "to_platform", "to_reserve"]),
                         st.integers(0, 6), st.integers(1, 30_000)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(ops=ops)
def test_money_is_conserved_and_each_req_id_moves_at_most_once(ops) -> None:
    bank = make(platform=20_000, reserve=40_000)
    first: dict[tuple[str, str], dict] = {}
    for i, (op, n, amount) in enumerate(ops):
        req_id, now = f"R{n}", T0 + i * 1000
        if op == "payout":
            reply, _ = payout(bank, req_id, amount, f"merchant:M{n % 3}", now)
        elif op == "to_platform":
            reply, _ = transfer(bank, req_id, amount, now=now)
        else:
            reply, _ = transfer(bank, req_id, amount, "platform", "reserve", now)
        kind = "payout" if op == "payout" else "transfer"
        assert reply == first.setdefault((kind, req_id), reply)      # a repeat: the record
    assert bank.truth.total("CNY") == bank.truth.initial_total("CNY")
    assert all(a["balance"] >= 0 for a in bank.truth.accounts() if a["account"] != "magic")
    moved = [(t["kind"], t["ref"]) for t in bank.truth.txns()]
    assert len(moved) == len(set(moved))
    assert len(moved) == sum(r["result"] == "SUCCESS" for r in first.values())
