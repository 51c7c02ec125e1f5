"""Ground truth: money only moves between opened accounts, never overdraws, rows are exact."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbanks.truth import Truth, TruthError, ref_of


def make() -> Truth:
    truth = Truth({("alice", "CNY"): 1000, ("bob", "CNY"): 0})
    truth.open("magic", "CNY", 0, overdraft=True)
    return truth


def test_move_changes_both_balances_and_journals() -> None:
    truth = make()
    truth.move("alice", "bob", 300, "CNY", 5, "P1", "BT1", "pay")
    assert truth.balance("alice", "CNY") == 700
    assert truth.balance("bob", "CNY") == 300
    assert truth.moves() == [{"debit": "alice", "credit": "bob", "amount": 300, "currency": "CNY",
                              "at_ms": 5, "ref": "P1", "channel_ref": "BT1", "kind": "pay"}]


def test_accounts_rows_keep_initial_and_order() -> None:
    truth = make()
    truth.move("alice", "bob", 1, "CNY", 0, "P1", "BT1", "pay")
    assert truth.accounts() == [
        {"account": "alice", "currency": "CNY", "initial": 1000, "balance": 999},
        {"account": "bob", "currency": "CNY", "initial": 0, "balance": 1},
        {"account": "magic", "currency": "CNY", "initial": 0, "balance": 0},
    ]


def test_overdraft_raises_and_changes_nothing() -> None:
    truth = make()
    with pytest.raises(TruthError, match="debit_account: alice CNY holds 1000, cannot pay 1001"):
        truth.move("alice", "bob", 1001, "CNY", 0, "P1", "BT1", "pay")
    assert truth.balance("alice", "CNY") == 1000
    assert truth.moves() == []


def test_overdraft_account_may_go_negative() -> None:
    truth = make()
    truth.move("magic", "bob", 50, "CNY", 0, "P1", "BT1", "magic")
    assert truth.balance("magic", "CNY") == -50
    assert truth.total("CNY") == truth.initial_total("CNY") == 1000


@pytest.mark.parametrize(("args", "message"), [
    (("nobody", "bob", 1, "CNY"), "debit_account: no account 'nobody'"),
    (("alice", "bob", 1, "USD"), "debit_account: no account 'alice' in 'USD'"),
    (("alice", "carol", 1, "CNY"), "credit_account: no account 'carol'"),
    (("alice", "bob", -1, "CNY"), "amount: expected a non-negative integer"),
    (("alice", "bob", 1.0, "CNY"), "amount: expected a non-negative integer"),
    (("alice", "bob", True, "CNY"), "amount: expected a non-negative integer"),
    (("alice", "alice", 1, "CNY"), "credit_account: same as debit_account"),
])
def test_bad_moves_name_the_field(args: tuple, message: str) -> None:
    with pytest.raises(TruthError, match=message):
        make().move(*args, 0, "P1", "BT1", "pay")


def test_zero_move_is_a_no_op() -> None:
    truth = make()
    truth.move("alice", "bob", 0, "CNY", 0, "P1", "BT1", "fee")
    assert truth.moves() == [] and truth.balance("alice", "CNY") == 1000


def test_open_rejects_duplicates_and_negative_initial() -> None:
    truth = make()
    with pytest.raises(TruthError, match="already open"):
        truth.open("alice", "CNY", 5)
    with pytest.raises(TruthError, match="initial: x CNY may not start negative"):
        truth.open("x", "CNY", -1)
    with pytest.raises(TruthError, match="initial: expected an integer"):
        truth.open("y", "CNY", 1.5)


def test_txns_rows() -> None:
    truth = make()
    truth.record("P1", "BT1", "pay", 500, 5, "CNY", 42)
    rows = truth.txns()
    assert rows == [{"ref": "P1", "channel_ref": "BT1", "kind": "pay", "amount": 500, "fee": 5,
                     "currency": "CNY", "status": "SUCCESS", "at_ms": 42}]
    rows[0]["amount"] = 0          # a copy: the truth cannot be edited from outside
    assert truth.txns()[0]["amount"] == 500
    with pytest.raises(TruthError, match="kind: expected one of pay, refund, payout, transfer"):
        truth.record("P1", "BT1", "topup", 1, 0, "CNY", 0)
    for kind in ("refund", "payout", "transfer"):
        assert truth.record("S1", "BP1", kind, 7, 0, "CNY", 43)["kind"] == kind
    assert [t["kind"] for t in truth.txns()] == ["pay", "refund", "payout", "transfer"]


def test_ref_of_cuts_at_first_dot() -> None:
    assert ref_of("P0000000042.3") == "P0000000042"
    assert ref_of("R0000000001.2.1") == "R0000000001"
    assert ref_of("P0000000042") == "P0000000042"


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 700)),
                max_size=40))
def test_moves_conserve_money_and_never_overdraw(steps: list) -> None:
    names = ["a", "b", "c", "d"]
    truth = Truth({(n, "CNY"): 500 for n in names})
    for src, dst, amount in steps:
        if src == dst:
            continue
        before = truth.accounts()
        if truth.balance(names[src], "CNY") >= amount:
            truth.move(names[src], names[dst], amount, "CNY", 0, "P", "T", "pay")
        else:
            with pytest.raises(TruthError):
                truth.move(names[src], names[dst], amount, "CNY", 0, "P", "T", "pay")
            assert truth.accounts() == before
        assert truth.total("CNY") == 2000
        assert all(row["balance"] >= 0 for row in truth.accounts())
