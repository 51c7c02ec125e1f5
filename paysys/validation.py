"""Request validation for the merchant API: the field rules of every request type, AS A TABLE.

`FIELDS[type]` maps each field of a request type (the common fields first, then the type's own,
in a fixed order) to a `Rule`. `validate(body)` walks the table in that order and raises
`GatewayError("INVALID_PARAM", "<field>: expected ..., got ...", field)` on the first problem,
so a body with several problems always reports the same one.

Conventions:
- A field whose value is None or "" counts as absent (the signature ignores such fields too).
- Fields not in the table are ignored (they are still covered by the signature).
- `int` never accepts a bool; money goes through `paysys.money` (check_amount, check_currency).
"""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from paysys.errors import GatewayError
from paysys.money import MoneyError, check_amount, check_currency

TYPES: dict[str, tuple[type, str]] = {
    "str": (str, "a string"),
    "int": (int, "an integer"),
    "bool": (bool, "a boolean"),
}


@dataclass(frozen=True, slots=True)
class Rule:
    """How one field is checked. `expect` describes a valid value for error messages;
    `required_when=(other_field, value)` makes the field required when that other field has
    that value (or one of them, when `value` is a tuple); `check` is a function raising MoneyError (money rules)."""

    kind: str
    expect: str
    required: bool = True
    max_len: int | None = None
    pattern: str | None = None
    allowed: tuple | None = None
    min_value: int | None = None
    check: Callable[[object, str], object] | None = None
    required_when: tuple[str, object] | None = None


ID_PATTERN = r"^[A-Za-z0-9_\-.]{1,64}$"
CARD_PATTERN = r"^[0-9]{13,19}$"
URL_PATTERN = r"^https?://[^/\s]+(/\S*)?$"
OTP_PATTERN = r"^[0-9]{6}$"

ID_EXPECT = "an id of 1-64 letters, digits, '_', '-' or '.'"


def _id(required: bool = True) -> Rule:
    return Rule("str", ID_EXPECT, required=required, pattern=ID_PATTERN)


def _time() -> Rule:
    return Rule("int", "an integer time in ms >= 0", min_value=0)


COMMON: dict[str, Rule] = {
    "merchant_id": _id(),
    "timestamp": _time(),
    "nonce": _id(),
    "sign_type": Rule("str", "'MD5' or 'HMAC-SHA256'", allowed=("MD5", "HMAC-SHA256")),
    "sign": Rule("str", "a signature of at most 128 characters", max_len=128),
}

AMOUNT = Rule("int", "a positive integer of minor units", check=check_amount)
CURRENCY = Rule("str", "a supported currency code", check=check_currency)
CARD_NO = Rule("str", "a card number of 13-19 digits", pattern=CARD_PATTERN)

FIELDS: dict[str, dict[str, Rule]] = {
    "pay.create": {
        **COMMON,
        "idempotency_key": _id(required=False),
        "merchant_order_no": _id(),
        "order_time": _time(),
        "user_id": _id(),
        # which products exist is the configuration's business: payments.create checks it
        "product": Rule("str", "a product name of 1-32 letters, digits or '-'",
                        pattern=r"^[a-z][a-z0-9-]{0,31}$"),
        "amount": AMOUNT,
        "currency": CURRENCY,
        "notify_url": Rule(
            "str", "an http(s) URL of at most 512 characters", max_len=512, pattern=URL_PATTERN
        ),
        "card_no": Rule(
            "str",
            "a card number of 13-19 digits (required for products 'quick' and 'unionpay')",
            required=False,
            pattern=CARD_PATTERN,
            required_when=("product", ("quick", "unionpay")),
        ),
        "device_id": _id(required=False),
        "subject": Rule("str", "a text of at most 128 characters", required=False, max_len=128),
    },
    "pay.confirm_otp": {
        **COMMON,
        "order_id": _id(),
        "otp": Rule("str", "a code of 6 digits", pattern=OTP_PATTERN),
    },
    "pay.query": {
        **COMMON,
        "order_id": _id(),
    },
    "refund.create": {
        **COMMON,
        "idempotency_key": _id(required=False),
        "order_id": _id(),
        "refund_no": _id(),
        "amount": AMOUNT,
    },
    "agreement.unsign": {
        **COMMON,
        "user_id": _id(),
        "card_no": CARD_NO,
    },
}


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _invalid(field: str, rule: Rule, value: object) -> GatewayError:
    got = "nothing (the field is required)" if value is None else _shown(value)
    return GatewayError("INVALID_PARAM", f"{field}: expected {rule.expect}, got {got}", field)


@functools.cache
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _matches(value: object, when: object) -> bool:
    """`when` is one value, or a tuple of the values that make a field required."""
    return value in when if isinstance(when, tuple) else value == when


def _check_field(body: dict, field: str, rule: Rule) -> None:
    value = body.get(field)
    if value is None or value == "":
        needed = rule.required or (
            rule.required_when is not None
            and _matches(body.get(rule.required_when[0]), rule.required_when[1])
        )
        if needed:
            raise _invalid(field, rule, None)
        return
    python_type, _ = TYPES[rule.kind]
    if not isinstance(value, python_type) or (rule.kind == "int" and isinstance(value, bool)):
        raise _invalid(field, rule, value)
    if rule.check is not None:
        try:
            rule.check(value, field)
        except MoneyError as error:
            raise GatewayError("INVALID_PARAM", str(error), field) from None
    if rule.max_len is not None and len(value) > rule.max_len:
        raise _invalid(field, rule, value)
    if rule.pattern is not None and not _compiled(rule.pattern).fullmatch(value):
        raise _invalid(field, rule, value)
    if rule.allowed is not None and value not in rule.allowed:
        raise _invalid(field, rule, value)
    if rule.min_value is not None and value < rule.min_value:
        raise _invalid(field, rule, value)


def validate(body: object) -> None:
    """Raise GatewayError("INVALID_PARAM", ..., field) on the first problem of `body`, in the
    order of `FIELDS[body["type"]]`; an unknown or missing type is reported on field "type"."""
    if not isinstance(body, dict):
        raise GatewayError("INVALID_PARAM", f"body: expected an object, got {_shown(body)}", None)
    request_type = body.get("type")
    rules = FIELDS.get(request_type) if isinstance(request_type, str) else None
    if rules is None:
        raise GatewayError(
            "INVALID_PARAM",
            f"type: expected one of {sorted(FIELDS)}, got {_shown(request_type)}",
            "type",
        )
    for field, rule in rules.items():
        _check_field(body, field, rule)
