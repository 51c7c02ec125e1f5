"""The bank's withholding mandates (mockbanks/bank_mandates.py), fed message by message."""

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.bank_mandates import MANDATE_TRANSITIONS
from mockbanks.fees import Fee

T0 = int(datetime(2026, 11, 2, 2, 0, tzinfo=UTC).timestamp()) * 1000
CARD = "6222000000001111"


def make_bank() -> Bank:
    bank = Bank(name="bank", rng=random.Random(5), fee_rule=Fee(rate_bp=100), capacity=8,
                max_queue_ms=1000, service_time=lambda rng: 100)
    bank.open_account("U1", CARD, 100_000, 1_000_000)
    bank.open_account("U2", "6222000000002222", 100_000, 1_000_000, frozen=True)
    bank.open_account("U3", "6222000000009995", 10**9, 1_000_000)
    return bank


def handle(bank: Bank, body: dict, now: int = T0, src: str = "paysys") -> tuple[dict, list]:
    effects = bank.handle(src, body, now)
    replies = [e[1] for e in effects if e[0] == "reply"]
    assert len(replies) == 1, effects
    return replies[0], [e for e in effects if e[0] == "event"]


def sign(bank: Bank, req_id: str = "W1.m1", ref: str = "W1", user: str = "U1",
         card: str = CARD, merchant: str = "M001", now: int = T0) -> dict:
    return handle(bank, {"type": "bank.mandate.sign", "req_id": req_id, "mandate_ref": ref,
                         "user_id": user, "card_no": card, "merchant_id": merchant}, now)[0]


def debit(bank: Bank, req_id: str, ref: str = "W1", amount: int = 1_000, user: str = "U1",
          merchant: str = "M001", now: int = T0) -> dict:
    return handle(bank, {"type": "bank.debit", "req_id": req_id, "mandate_ref": ref,
                         "merchant_id": merchant, "user_id": user, "amount": amount,
                         "currency": "CNY"}, now)[0]


def bal(bank: Bank, account: str) -> int:
    return bank.truth.balance(account, "CNY")


def test_a_mandate_is_signed_once_per_user_and_merchant() -> None:
    bank = make_bank()
    first = sign(bank)
    assert first["result"] == "OK" and first["mandate_no"].startswith("BM")
    assert sign(bank) == first                                    # the same request again
    assert sign(bank, "W2.m1", "W2")["mandate_no"] == first["mandate_no"]   # still the one
    other = sign(bank, "W3.m1", "W3", merchant="M002")
    assert other["mandate_no"] != first["mandate_no"]


def test_a_sign_is_declined_for_a_frozen_card_or_someone_elses() -> None:
    bank = make_bank()
    assert sign(bank, user="U2", card="6222000000002222")["code"] == "CARD_FROZEN"
    assert sign(bank, "W2.m1", "W2", user="U2", card=CARD)["code"] == "INVALID_CARD"
    assert sign(bank, "W3.m1", "W3", card="6222000000007777")["code"] == "INVALID_CARD"
    assert sign(bank, "W4.m1", "W4", card="6222000000000002")["code"] == "CARD_FROZEN"  # magic


def test_debits_move_money_once_and_are_queried_like_pays() -> None:
    bank = make_bank()
    sign(bank)
    reply = debit(bank, "P1.p1")
    assert reply["result"] == "SUCCESS" and reply["amount"] == 1_000
    assert debit(bank, "P1.p1") == reply                           # a repeat moves nothing
    assert bal(bank, f"card:{CARD}") == 99_000 and bal(bank, "platform") == 990
    query = handle(bank, {"type": "bank.query", "req_id": "P1.p1"})[0]
    assert query["result"] == "SUCCESS" and query["bank_txn_id"] == reply["bank_txn_id"]
    assert debit(bank, "P2.p1", amount=500_000)["code"] == "INSUFFICIENT_FUNDS"
    assert debit(bank, "P3.p1", merchant="M002")["code"] == "MANDATE_INVALID"
    assert debit(bank, "P4.p1", ref="W9")["code"] == "MANDATE_INVALID"
    assert bal(bank, f"card:{CARD}") == 99_000


def test_magic_9995_is_short_whatever_its_balance() -> None:
    bank = make_bank()
    sign(bank, user="U3", card="6222000000009995")
    assert debit(bank, "P1.p1", user="U3")["code"] == "INSUFFICIENT_FUNDS"


def test_a_revoked_mandate_refuses_every_later_debit() -> None:
    bank = make_bank()
    signed = sign(bank)
    debit(bank, "P1.p1")
    reply, events = handle(bank, {"type": "bank.mandate.revoke", "req_id": "W1.r1",
                                  "mandate_no": signed["mandate_no"]}, T0 + 10)
    assert reply["result"] == "OK"
    assert [(e[1], e[3]["status"], e[3]["by"]) for e in events] == [
        ("bank.mandate", "REVOKED", "paysys")]
    refused = debit(bank, "P2.p1", now=T0 + 20)
    assert (refused["result"], refused["code"]) == ("DECLINED", "MANDATE_REVOKED")
    assert handle(bank, {"type": "bank.mandate.revoke", "req_id": "W1.r2",
                         "mandate_no": "BM-none"})[0]["result"] == "NOT_FOUND"
    again = sign(bank, "W2.m1", "W2", now=T0 + 30)   # signing again makes a new mandate
    assert again["mandate_no"] != signed["mandate_no"]
    assert debit(bank, "P3.p1", ref="W2", now=T0 + 40)["result"] == "SUCCESS"


def test_the_user_may_revoke_in_the_banks_app() -> None:
    bank = make_bank()
    sign(bank)
    reply, events = handle(bank, {"type": "bank.user.mandate.revoke", "user_id": "U1",
                                  "merchant_id": "M001"}, src="user:U1")
    assert reply["result"] == "OK" and events[0][3]["by"] == "user"
    assert debit(bank, "P1.p1")["code"] == "MANDATE_REVOKED"
    assert handle(bank, {"type": "bank.user.mandate.revoke", "user_id": "U1",
                         "merchant_id": "M001"}, src="user:U1")[0]["result"] == "NOT_FOUND"


def test_the_mandate_states_are_a_table() -> None:
    assert MANDATE_TRANSITIONS == {"ACTIVE": {"revoke": "REVOKED"}, "REVOKED": {}}


STEPS = st.lists(st.one_of(
    st.tuples(st.just("sign"), st.sampled_from(["M001", "M002"])),
    st.tuples(st.just("debit"), st.sampled_from(["M001", "M002"])),
    st.tuples(st.just("revoke"), st.sampled_from(["M001", "M002"])),
    st.tuples(st.just("user_revoke"), st.sampled_from(["M001", "M002"]))), max_size=25)


@settings(max_examples=60, deadline=None)
@given(STEPS, st.integers(100, 60_000))
def test_no_sequence_debits_a_revoked_mandate(steps, amount) -> None:
    """Whatever signs, debits and revocations come in whatever order: a debit succeeds only
    under a mandate that is ACTIVE at the bank, and money is conserved."""
    bank = make_bank()
    refs: dict[str, str] = {}             # merchant -> the mandate_ref it uses
    banks_no: dict[str, str] = {}         # merchant -> the bank's mandate_no of that ref
    revoked: set[str] = set()             # bank mandate numbers revoked so far
    for n, (step, merchant) in enumerate(steps):
        now = T0 + n
        if step == "sign":
            reply = sign(bank, f"W{n}.m1", f"W{n}", merchant=merchant, now=now)
            refs[merchant], banks_no[merchant] = f"W{n}", reply["mandate_no"]
        elif step == "debit" and merchant in refs:
            reply = debit(bank, f"P{n}.p1", ref=refs[merchant], amount=amount,
                          merchant=merchant, now=now)
            if reply["result"] == "SUCCESS":
                assert banks_no[merchant] not in revoked
            elif banks_no[merchant] in revoked:
                assert reply["code"] == "MANDATE_REVOKED"
        elif step == "revoke" and merchant in banks_no:
            handle(bank, {"type": "bank.mandate.revoke", "req_id": f"W{n}.r1",
                          "mandate_no": banks_no[merchant]}, now)
            revoked.add(banks_no[merchant])
        elif step == "user_revoke":
            reply, _ = handle(bank, {"type": "bank.user.mandate.revoke", "user_id": "U1",
                                     "merchant_id": merchant}, now, src="user:U1")
            if reply["result"] == "OK":
                revoked.add(reply["mandate_no"])
    assert bank.truth.total("CNY") == bank.truth.initial_total("CNY")
