"""Field rules of the merchant API, table-driven: one case per rule."""

import pytest

from paysys import products  # (the product families validate their own request types)
from paysys.errors import GatewayError
from paysys.validation import FIELDS, validate

COMMON = {
    "merchant_id": "M001",
    "timestamp": 1_700_000_000_000,
    "nonce": "n-1",
    "sign_type": "MD5",
    "sign": "0" * 32,
}
VALID = {
    "pay.create": {
        "type": "pay.create",
        **COMMON,
        "idempotency_key": "k1",
        "merchant_order_no": "MO.1",
        "order_time": 1_700_000_000_000,
        "user_id": "U00001",
        "product": "quick",
        "amount": 100,
        "currency": "CNY",
        "notify_url": "https://merchant.example/notify?x=1",
        "card_no": "4111111111114242",
        "device_id": "D1",
        "subject": "coffee",
    },
    "pay.confirm_otp": {
        "type": "pay.confirm_otp",
        **COMMON,
        "order_id": "P0000000001",
        "otp": "012345",
    },
    "pay.query": {"type": "pay.query", **COMMON, "order_id": "P0000000001"},
    "refund.create": {
        "type": "refund.create",
        **COMMON,
        "idempotency_key": "k2",
        "order_id": "P0000000001",
        "refund_no": "RF1",
        "amount": 50,
    },
    "agreement.unsign": {
        "type": "agreement.unsign",
        **COMMON,
        "user_id": "U00001",
        "card_no": "4111111111114242",
    },
}
MISSING = object()


def _error(body) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        validate(body)
    assert caught.value.code == "INVALID_PARAM"
    return caught.value


@pytest.mark.parametrize("request_type", sorted(VALID))
def test_valid_bodies_pass(request_type):
    validate(VALID[request_type])


def test_every_request_type_has_a_valid_example():
    assert set(VALID) == set(FIELDS) - set(products.merged("FIELDS"))


# (request type, field, bad value or MISSING, text the message must contain)
CASES = [
    # common fields
    ("pay.query", "merchant_id", MISSING, "got nothing"),
    ("pay.query", "merchant_id", "M 001", "an id"),
    ("pay.query", "merchant_id", "M" * 65, "an id"),
    ("pay.query", "merchant_id", 1, "an id"),
    ("pay.query", "timestamp", MISSING, "got nothing"),
    ("pay.query", "timestamp", "1700000000000", "integer time"),
    ("pay.query", "timestamp", True, "integer time"),
    ("pay.query", "timestamp", 1.5, "integer time"),
    ("pay.query", "timestamp", -1, "integer time"),
    ("pay.query", "nonce", "", "got nothing"),
    ("pay.query", "nonce", "a/b", "an id"),
    ("pay.query", "sign_type", "RSA", "'MD5' or 'HMAC-SHA256'"),
    ("pay.query", "sign_type", "md5", "'MD5' or 'HMAC-SHA256'"),
    ("pay.query", "sign", MISSING, "got nothing"),
    ("pay.query", "sign", "A" * 129, "at most 128"),
    # pay.create
    ("pay.create", "idempotency_key", "k 1", "an id"),
    ("pay.create", "merchant_order_no", MISSING, "got nothing"),
    ("pay.create", "merchant_order_no", "MO#1", "an id"),
    ("pay.create", "order_time", None, "got nothing"),
    ("pay.create", "order_time", "now", "integer time"),
    ("pay.create", "user_id", "", "got nothing"),
    ("pay.create", "product", "Net Bank!", "a product name of 1-32 letters, digits or '-'"),
    ("pay.create", "amount", MISSING, "got nothing"),
    ("pay.create", "amount", 1.0, "minor units"),
    ("pay.create", "amount", True, "minor units"),
    ("pay.create", "amount", 0, "expected 1.."),
    ("pay.create", "amount", -5, "expected 1.."),
    ("pay.create", "amount", "100", "minor units"),
    ("pay.create", "currency", "RMB", "expected one of"),
    ("pay.create", "currency", "cny", "expected one of"),
    ("pay.create", "notify_url", "ftp://merchant.example/n", "http(s) URL"),
    ("pay.create", "notify_url", "https:///nohost", "http(s) URL"),
    ("pay.create", "notify_url", "https://merchant.example/a b", "http(s) URL"),
    ("pay.create", "notify_url", "https://m.example/" + "a" * 500, "at most 512"),
    ("pay.create", "card_no", MISSING, "required for products 'quick' and 'unionpay'"),
    ("pay.create", "card_no", "411111111111", "13-19 digits"),
    ("pay.create", "card_no", "4" * 20, "13-19 digits"),
    ("pay.create", "card_no", "4111-1111-1111-1111", "13-19 digits"),
    ("pay.create", "card_no", "٤١١١١١١١١١١١١٤٢٤٢", "13-19 digits"),  # non-ASCII digits
    ("pay.create", "device_id", "dev ice", "an id"),
    ("pay.create", "subject", "x" * 129, "at most 128"),
    ("pay.create", "subject", 5, "a text"),
    # pay.confirm_otp
    ("pay.confirm_otp", "order_id", MISSING, "got nothing"),
    ("pay.confirm_otp", "otp", "12345", "6 digits"),
    ("pay.confirm_otp", "otp", 123456, "6 digits"),
    ("pay.confirm_otp", "otp", "123456\n", "6 digits"),
    # refund.create
    ("refund.create", "refund_no", MISSING, "got nothing"),
    ("refund.create", "amount", 10**16, "expected 1.."),
    ("refund.create", "order_id", "P" * 65, "an id"),
    # agreement.unsign
    ("agreement.unsign", "user_id", MISSING, "got nothing"),
    ("agreement.unsign", "card_no", MISSING, "got nothing"),
]


@pytest.mark.parametrize(("request_type", "field", "value", "text"), CASES)
def test_each_rule_rejects_with_the_field_named(request_type, field, value, text):
    body = dict(VALID[request_type])
    if value is MISSING:
        del body[field]
    else:
        body[field] = value
    error = _error(body)
    assert error.field == field
    assert error.message.startswith(f"{field}: expected ")
    assert text in error.message


@pytest.mark.parametrize(
    ("request_type", "field"),
    [(t, f) for t, rules in FIELDS.items() if t in VALID   # the families test their own
     for f, rule in rules.items() if rule.required],
)
def test_every_required_field_of_the_table_is_enforced(request_type, field):
    body = {k: v for k, v in VALID[request_type].items() if k != field}
    assert _error(body).field == field


def test_optional_fields_may_be_absent_none_or_empty():
    body = dict(VALID["pay.create"])
    del body["idempotency_key"]
    body["device_id"] = None
    body["subject"] = ""
    validate(body)


def test_card_no_is_optional_for_platform():
    body = {k: v for k, v in VALID["pay.create"].items() if k != "card_no"}
    body["product"] = "platform"
    validate(body)


def test_unknown_fields_are_ignored():
    validate({**VALID["pay.query"], "client_ref": "anything"})


def test_first_problem_in_table_order_is_reported():
    body = {**VALID["pay.create"], "subject": "x" * 500, "amount": -1, "nonce": None}
    assert _error(body).field == "nonce"
    body["nonce"] = "n"
    assert _error(body).field == "amount"


@pytest.mark.parametrize("bad_type", [None, "pay.refund", 3, MISSING])
def test_unknown_or_missing_type_is_reported_on_type(bad_type):
    body = dict(VALID["pay.query"])
    if bad_type is MISSING:
        del body["type"]
    else:
        body["type"] = bad_type
    error = _error(body)
    assert error.field == "type"
    assert "pay.create" in error.message


def test_non_object_body_is_invalid():
    assert _error(["pay.query"]).code == "INVALID_PARAM"


def test_error_reply_shape():
    error = _error({**VALID["pay.create"], "amount": 0})
    assert error.to_reply("pay.create") == {
        "type": "pay.create.reply",
        "ok": False,
        "code": "INVALID_PARAM",
        "message": error.message,
        "field": "amount",
    }


def test_long_values_are_shortened_in_messages():
    error = _error({**VALID["pay.create"], "subject": "y" * 10_000})
    assert len(error.message) < 200
