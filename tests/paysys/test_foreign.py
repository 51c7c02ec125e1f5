"""Foreign card payments on paysys's side: rates from decimal strings, the conversion (half-up,
currency exponents, JPY), the settlement columns, the two-currency entries through equity:fx,
and the PayPal-like adapter (its outcomes, its webhook signature against the platform's)."""

import random
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.fees import Fee
from mockbanks.paypal import PayPal
from mockbanks.paypal_records import convert as platform_convert
from mockbanks.paypal_records import refund_settle_of, settle_of
from paysys import ledger
from paysys.channels.base import CLOSED, FAILURE, NOT_FOUND, PENDING, REJECTED, SUCCESS, UNKNOWN
from paysys.channels.paypal import PayPalAdapter
from paysys.money import CURRENCIES
from paysys.products import foreign
from paysys.products.foreign import (
    FX,
    ForeignError,
    ForeignSettings,
    convert,
    convert_down,
    parse_rate,
    settle_amount,
    settlement_columns,
)
from paysys.store import open_store

NOW = 1_793_581_200_000
SETTINGS = ForeignSettings.parse("USD", {"CNY/USD": "0.1389", "JPY/USD": "0.0067"})


def order(amount: int = 10_000, currency: str = "CNY", **over) -> dict:
    row = {"order_id": "P1", "merchant_id": "M001", "amount": amount, "currency": currency}
    row.update(settlement_columns(row, SETTINGS))
    return {**row, **over}


# -- rates and conversion ----------------------------------------------------------------------

@pytest.mark.parametrize("text, ppm", [("0.1389", 138_900), ("7.2", 7_200_000), ("1", 1_000_000),
                                       ("0.000001", 1), (" 150.25 ", 150_250_000)])
def test_rates_are_decimal_strings_in_parts_per_million(text, ppm):
    assert parse_rate(text) == ppm


@pytest.mark.parametrize("value, words", [(0.1389, "decimal string"), ("abc", "decimal string"),
                                          ("0", "> 0"), ("-1.5", "> 0"), ("NaN", "> 0"),
                                          ("0.1234567", "at most 6 decimals"),
                                          (138900, "decimal string")])
def test_a_bad_rate_is_refused_naming_the_field(value, words):
    with pytest.raises(ForeignError, match=rf"rates\.CNY/USD: .*{words}"):
        parse_rate(value, "rates.CNY/USD")


def test_conversion_in_minor_units_rounds_half_up_and_honours_exponents():
    assert convert(10_000, "CNY", "USD", 138_900) == 1389           # 100.00 CNY = 13.89 USD
    assert convert(1, "CNY", "USD", 500_000) == 1                   # 0.5 cent: half-up
    assert convert(1, "CNY", "USD", 499_999) == 0
    assert settle_amount(1, "CNY", "USD", 499_999) == 1             # a capture is never 0
    assert convert(1000, "JPY", "USD", 6_700) == 670                # 1000 JPY = 6.70 USD
    assert convert(1, "USD", "JPY", 150_000_000) == 2               # 0.01 USD = 1.5 JPY -> 2
    assert convert(333, "USD", "JPY", 150_000_000) == 500           # 3.33 USD = 499.5 -> 500
    assert convert_down(333, "USD", "JPY", 150_000_000) == 499
    assert convert_down(1, "CNY", "USD", 999_999) == 0


def test_settlement_columns_record_the_amount_currency_and_rate():
    assert settlement_columns({"amount": 10_000, "currency": "CNY"}, SETTINGS) == {
        "settle_amount": 1389, "settle_currency": "USD", "fx_rate_ppm": 138_900}
    assert settlement_columns({"amount": 500, "currency": "USD"}, SETTINGS)["settle_amount"] == 500
    with pytest.raises(ForeignError, match="EUR/USD"):
        settlement_columns({"amount": 1, "currency": "EUR"}, SETTINGS)


def test_settings_refuse_pairs_not_into_the_settle_currency():
    with pytest.raises(ForeignError, match=r"rates\.CNY/EUR"):
        ForeignSettings.parse("USD", {"CNY/EUR": "0.13"})
    with pytest.raises(ForeignError, match="settle_currency"):
        ForeignSettings.parse("XYZ", {})


rates = st.integers(1, 10**9)
currencies = st.sampled_from(sorted(CURRENCIES))


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(0, 10**12), rate=rates, source=currencies, target=currencies)
def test_conversion_is_decimal_arithmetic_rounded_and_agrees_with_the_platform(
        amount, rate, source, target):
    exact = (Decimal(amount) / 10 ** CURRENCIES[source] * Decimal(rate) / 10**6
             * 10 ** CURRENCIES[target])
    assert convert(amount, source, target, rate) == int(exact.quantize(1, ROUND_HALF_UP))
    assert convert_down(amount, source, target, rate) == int(exact.quantize(1, ROUND_DOWN))
    assert convert(amount, source, target, rate) == platform_convert(amount, source, target, rate)
    assert convert_down(amount, source, target, rate) == refund_settle_of(amount, source, target,
                                                                          rate)
    if amount:
        assert settle_amount(amount, source, target, rate) == settle_of(amount, source, target,
                                                                        rate)


# -- the entries ---------------------------------------------------------------------------------

def per_currency(lines) -> dict[str, int]:
    out: dict[str, int] = {}
    for account, cur, debit, credit in lines:
        ledger.account_type(account)              # every account is in the chart
        out[cur] = out.get(cur, 0) + debit - credit
    return out


def test_a_payment_books_both_currencies_through_the_fx_position():
    lines = foreign.payment_lines("paypal", order(), merchant_fee=60, channel_cost=370)
    assert ("asset:channel:paypal", "USD", 1389, 0) in lines
    assert (FX, "USD", 0, 1389) in lines and (FX, "CNY", 10_000, 0) in lines
    assert ("expense:channel:paypal", "USD", 51, 0) in lines        # 370 fen -> 51 cents
    assert ("liability:merchant:M001", "CNY", 0, 9_940) in lines
    assert ("income:fee", "CNY", 0, 60) in lines
    assert per_currency(lines) == {"USD": 0, "CNY": 0}


def test_a_refund_gives_back_the_converted_amount_rounded_down():
    lines = foreign.refund_lines("paypal", {"amount": 3_333, "merchant_id": "M001"}, order())
    assert ("asset:channel:paypal", "USD", 0, 462) in lines          # 462.95... -> 462
    assert ("liability:merchant:M001", "CNY", 3_333, 0) in lines
    assert per_currency(lines) == {"USD": 0, "CNY": 0}


def test_an_order_without_its_settlement_cannot_be_booked():
    with pytest.raises(ledger.LedgerError, match="settle_amount"):
        foreign.payment_lines("paypal", order(settle_amount=0, settle_currency=""), 0, 0)


def test_the_entries_post_to_a_real_ledger():
    conn = open_store(":memory:")
    o = order(amount=200_000)
    ledger.post(conn, NOW, "P1", "payment", foreign.payment_lines("paypal", o, 1_200, 7_100))
    ledger.post(conn, NOW, "R1", "refund",
                foreign.refund_lines("paypal", {"amount": 50_000, "merchant_id": "M001"}, o))
    assert ledger.balance(conn, "asset:channel:paypal", "USD") == 27_780 - 986 - 6_945
    assert ledger.balance(conn, "liability:merchant:M001", "CNY") == 200_000 - 1_200 - 50_000


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(1, 10**10), rate=rates, source=currencies, fee_bp=st.integers(0, 10_000),
       cost_bp=st.integers(0, 10_000), parts=st.lists(st.integers(1, 10**10), max_size=5))
def test_entries_balance_per_currency_and_refunds_stay_within_the_capture(
        amount, rate, source, fee_bp, cost_bp, parts):
    target = "USD" if source != "USD" else "EUR"
    o = {"order_id": "P1", "merchant_id": "M001", "amount": amount, "currency": source,
         **settlement_columns({"amount": amount, "currency": source},
                              ForeignSettings(target, {f"{source}/{target}": rate}))}
    fee, cost = amount * fee_bp // 10_000, amount * cost_bp // 10_000
    pay = foreign.payment_lines("paypal", o, fee, cost)
    assert all(v == 0 for v in per_currency(pay).values())
    left, back = amount, 0
    for part in parts:
        part = min(part, left)
        if part == 0:
            break
        left -= part
        lines = foreign.refund_lines("paypal", {"amount": part, "merchant_id": "M001"}, o)
        assert all(v == 0 for v in per_currency(lines).values())
        back += sum(c for a, cur, _, c in lines if a == "asset:channel:paypal")
    assert back <= o["settle_amount"]


# -- the adapter -----------------------------------------------------------------------------------

def adapter() -> PayPalAdapter:
    return PayPalAdapter("paypal", "key-paypal")


def test_order_columns_come_from_the_products_settings():
    cfg = SimpleNamespace(products={"foreign": SETTINGS})
    assert adapter().order_columns({"amount": 10_000, "currency": "CNY"}, cfg)["settle_amount"] \
        == 1389
    assert adapter().order_columns({"amount": 1, "currency": "EUR"}, cfg) == {}   # no rate
    default = adapter().order_columns({"amount": 10_000, "currency": "CNY"},
                                      SimpleNamespace(products={}))
    assert default["fx_rate_ppm"] == parse_rate(foreign.DEFAULT_RATES["CNY/USD"])


def test_the_pay_body_carries_both_amounts():
    body = adapter().pay("P1.p1", {**order(), "expire_ms": NOW}, "", NOW, "paysys")
    assert body["type"] == "pp.order.create" and body["req_id"] == "P1.p1"
    assert (body["amount"], body["currency"]) == (10_000, "CNY")
    assert (body["settle_amount"], body["settle_currency"], body["fx_rate_ppm"]) == (
        1389, "USD", 138_900)


@pytest.mark.parametrize("op, reply, kind", [
    ("pay", {"status_code": 201, "status": "CREATED", "approve_url": "u"}, PENDING),
    ("pay", {"status_code": 422, "name": "SETTLE_AMOUNT_MISMATCH"}, FAILURE),
    ("pay", {"status_code": 503, "name": "SERVICE_UNAVAILABLE"}, REJECTED),
    ("pay", {"status_code": 500}, UNKNOWN),
    ("query", {"status_code": 200, "status": "COMPLETED", "amount": 10, "capture_id": "C"},
     SUCCESS),
    ("query", {"status_code": 200, "status": "CREATED"}, PENDING),
    ("query", {"status_code": 200, "status": "VOIDED"}, CLOSED),
    ("query", {"status_code": 404, "name": "RESOURCE_NOT_FOUND"}, NOT_FOUND),
    ("query", {"status_code": 429, "name": "RATE_LIMIT_REACHED"}, REJECTED),
    ("close", {"status_code": 200, "status": "VOIDED"}, CLOSED),
    ("close", {"status_code": 422, "name": "ORDER_ALREADY_CAPTURED", "amount": 10}, SUCCESS),
    ("refund", {"status_code": 201, "status": "COMPLETED", "refund_id": "R"}, SUCCESS),
    ("refund", {"status_code": 422, "name": "REFUND_AMOUNT_EXCEEDED"}, FAILURE),
    ("refund", {}, UNKNOWN),
])
def test_classification(op, reply, kind):
    assert adapter().classify(op, reply).kind == kind


def test_the_adapter_verifies_the_platforms_webhooks():
    pp = PayPal(name="paypal", rng=random.Random(2), fee_rule=Fee(), api_key="key-paypal")
    pp.open_buyer("U1", 10**6)
    o = {**order(), "expire_ms": NOW + 10**6}
    (_, created, _), *_ = pp.handle("paysys", adapter().pay("P1.p1", o, "", NOW, "paysys"), NOW)
    out = adapter().classify("pay", created)
    assert out.kind == PENDING
    effects = pp.handle("user:U1", {"type": "pp.user.approve", "user_id": "U1",
                                    "token": created["id"]}, NOW + 1)
    (hook,) = [e[2] for e in effects if e[0] == "send"]
    notice = adapter().notification(hook)
    assert notice.valid and notice.order_id == "P1"
    assert (notice.outcome.kind, notice.outcome.amount) == (SUCCESS, 10_000)   # order currency
    assert notice.ack["status_code"] == 200
    pp.handle("paysys", notice.ack, NOW + 2)
    assert pp.next_deadline() is None                                  # the 200 stops them
    forged = PayPalAdapter("paypal", "another-key").notification(hook)
    assert not forged.valid and forged.ack["status_code"] == 401
    assert PayPalAdapter("paypal", "another-key").notification(hook, verify=False).valid
