"""Properties of paysys.money: fees, half-up division, amount and currency checks."""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paysys.money import MAX_AMOUNT, FeeRule, MoneyError, check_amount, check_currency, div_half_up

amounts = st.integers(min_value=1, max_value=MAX_AMOUNT)
small = st.integers(min_value=0, max_value=10**7)


@st.composite
def fee_rules(draw):
    minimum = draw(small)
    maximum = draw(st.one_of(st.just(0), st.integers(min_value=minimum, max_value=10**8)))
    return FeeRule(
        rate_bp=draw(st.integers(min_value=0, max_value=10_000)),
        fixed=draw(small),
        minimum=minimum,
        maximum=maximum,
    )


@given(fee_rules(), amounts)
def test_fee_is_between_the_minimum_and_the_amount(rule, amount):
    fee = rule.fee(amount)
    assert isinstance(fee, int)
    assert min(rule.minimum, amount) <= fee <= amount
    if rule.maximum:
        assert fee <= rule.maximum


@given(st.integers(min_value=0, max_value=10_000), amounts, amounts)
def test_pure_rate_fee_is_monotone_in_the_amount(rate_bp, a, b):
    rule = FeeRule(rate_bp=rate_bp)
    low, high = sorted((a, b))
    assert rule.fee(low) <= rule.fee(high)


@given(st.integers(min_value=0, max_value=10**30), st.integers(min_value=1, max_value=10**12))
def test_div_half_up_matches_fraction_rounding(numerator, denominator):
    expected = math.floor(Fraction(numerator, denominator) + Fraction(1, 2))
    assert div_half_up(numerator, denominator) == expected


def test_div_half_up_examples():
    assert [div_half_up(n, 10) for n in (14, 15, 16, 25, 0)] == [1, 2, 2, 3, 0]


def test_fee_examples():
    assert FeeRule(rate_bp=60).fee(1999) == 12  # 11.994 -> 12
    assert FeeRule(rate_bp=60).fee(2500) == 15  # 15.0
    assert FeeRule(rate_bp=30, fixed=5).fee(250) == 6  # 0.75 -> 1, + 5
    assert FeeRule(minimum=100).fee(40) == 40  # never more than the amount
    assert FeeRule(rate_bp=100, maximum=20).fee(10_000) == 20


@given(amounts)
def test_check_amount_accepts_positive_ints(amount):
    assert check_amount(amount) == amount


@pytest.mark.parametrize("bad", [0, -1, MAX_AMOUNT + 1, True, False, 1.0, 100.5, "100", None])
def test_check_amount_rejects(bad):
    with pytest.raises(MoneyError, match="^price:"):
        check_amount(bad, "price")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_amount_rejects_every_float(value):
    with pytest.raises(MoneyError):
        check_amount(value)


@pytest.mark.parametrize("bad", ["cny", "RMB", "", None, 156])
def test_check_currency_rejects(bad):
    with pytest.raises(MoneyError, match="^currency:"):
        check_currency(bad)


def test_check_currency_accepts():
    assert check_currency("CNY") == "CNY"
