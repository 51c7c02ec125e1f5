"""Clearing: split lines (half-up shares, receivers in order, zero shares left out, capped at
the payer's share) and the validation of settlement rules (each error names its field)."""

import pytest
import sqlite_utils
from _node import M_HMAC, M_MD5
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys import clearing, ledger
from paysys.clearing import ClearingError, split_lines
from paysys.config import BackOffice, SettlementRule
from paysys.ledger import Line

MERCHANTS = {"M001": M_MD5, "M002": M_HMAC, "M003": M_HMAC}


def test_split_lines_half_up_per_receiver_in_id_order():
    lines = split_lines("M001", "CNY", 10_005, {"M003": 150, "M002": 1_000})
    assert lines == [
        Line("liability:merchant:M001", "CNY", 1_001, 0),   # 1000.5 -> 1001
        Line("liability:merchant:M002", "CNY", 0, 1_001),
        Line("liability:merchant:M001", "CNY", 150, 0),     # 150.075 -> 150
        Line("liability:merchant:M003", "CNY", 0, 150),
    ]
    assert split_lines("M001", "CNY", 10, {"M002": 1}) == []          # rounds to 0
    assert split_lines("M001", "CNY", 100, ()) == []
    assert clearing.splits_of(SettlementRule(splits=(("M002", 5),))) == {"M002": 5}


def test_shares_never_take_more_than_the_payer_received():
    # amount 1 with a fee of 1 (5000 bp half-up) leaves the payer nothing to share
    assert split_lines("M001", "CNY", 1, {"M002": 5_000}, available=0) == []
    lines = split_lines("M001", "CNY", 3, {"M002": 5_000, "M003": 4_999}, available=2)
    assert [line.debit for line in lines if line.debit] == [2]


@settings(max_examples=100, deadline=None)
@given(amount=st.integers(1, 10**9), fee_bp=st.integers(0, 10_000), data=st.data())
def test_a_payment_with_splits_always_posts(amount, fee_bp, data):
    b2 = data.draw(st.integers(0, 10_000 - fee_bp))
    b3 = data.draw(st.integers(0, 10_000 - fee_bp - b2))
    fee = (2 * amount * fee_bp + 10_000) // 20_000
    db = sqlite_utils.Database(memory=True)
    ledger.create_tables(db)
    lines = ledger.payment_lines("bank", "M001", "CNY", amount, fee, 0)
    lines += split_lines("M001", "CNY", amount, {"M002": b2, "M003": b3}, available=amount - fee)
    ledger.post(db.conn, 1, "P1", "payment", lines)      # never below zero, always balanced
    payer = ledger.balance(db.conn, "liability:merchant:M001", "CNY")
    got = {m: ledger.balance(db.conn, f"liability:merchant:{m}", "CNY") for m in ("M002", "M003")}
    assert payer + sum(got.values()) == amount - fee
    for m, bp in (("M002", b2), ("M003", b3)):
        assert got[m] <= (2 * amount * bp + 10_000) // 20_000


@pytest.mark.parametrize("rule, field", [
    (SettlementRule("T+0"), "rules.M001.cycle"),
    (SettlementRule("D+1"), "rules.M001.cycle"),
    (SettlementRule("T+x"), "rules.M001.cycle"),
    (SettlementRule("T+1", min_amount=-1), "rules.M001.min_amount"),
    (SettlementRule(splits=(("M009", 10),)), "rules.M001.splits.M009: unknown receiver"),
    (SettlementRule(splits=(("M001", 10),)), "rules.M001.splits.M001: unknown receiver"),
    (SettlementRule(splits=(("M002", 10_001),)), "rules.M001.splits.M002: expected basis"),
    (SettlementRule(splits=(("M002", -1),)), "rules.M001.splits.M002: expected basis"),
    (SettlementRule(splits=(("M002", 5_000), ("M003", 4_950))), "rules.M001.splits: 9950 bp"),
])
def test_bad_rules_are_refused_naming_the_field(rule, field):
    with pytest.raises(ClearingError, match=field.replace(".", r"\.").replace("+", r"\+")):
        clearing.check_rules(BackOffice(rules={"M001": rule}), MERCHANTS)


def test_good_rules_pass_and_unknown_merchants_are_refused():
    ok = SettlementRule("D+0", 100, (("M002", 4_000), ("M003", 5_940)))   # + 60 bp = 100 %
    clearing.check_rules(BackOffice(rules={"M001": ok, "M002": SettlementRule("T+3")}), MERCHANTS)
    with pytest.raises(ClearingError, match=r"rules\.M404: unknown merchant"):
        clearing.check_rules(BackOffice(rules={"M404": SettlementRule()}), MERCHANTS)
