"""The Alipay-like platform's records and tables: trades, the trade status table, the answers
refusing a user's payment, the reply shapes, request validation and the RSA2 signature.

Owns the data the platform (mockbanks/alipay.py) keeps per trade, split out of it so each file
stays small; the behaviour is the platform's (its module docstring describes it).

RSA2 (Alipay's own signature): SHA256withRSA (PKCS#1 v1.5) over the string of every field except
`sign` and `sign_type` whose value is neither None nor "", sorted by key, rendered `k=v` (booleans
`true`/`false`, everything else `str()`) joined by `&`, UTF-8; the signature is base64. The mock
signs with the platform's private key (mockbanks/_alipay_keys.py); paysys verifies with the
public half it holds.
"""

import base64
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from mockbanks._alipay_keys import PRIVATE_KEY_PEM

# trade_status -> {event: new trade_status}; TRADE_CLOSED and TRADE_FINISHED are final
TRADE_TRANSITIONS: dict[str, dict[str, str]] = {
    "WAIT_BUYER_PAY": {"pay": "TRADE_SUCCESS", "close": "TRADE_CLOSED", "expire": "TRADE_CLOSED"},
    "TRADE_SUCCESS": {"refund": "TRADE_SUCCESS", "refund_all": "TRADE_CLOSED",
                      "finish": "TRADE_FINISHED"},
    "TRADE_CLOSED": {},
    "TRADE_FINISHED": {},
}
# what a user's ali.user.pay gets for a trade that is not payable, by trade_status
USER_PAY_REFUSAL = {"TRADE_CLOSED": "TRADE_CLOSED", "TRADE_SUCCESS": "TRADE_HAS_SUCCESS",
                    "TRADE_FINISHED": "TRADE_HAS_SUCCESS"}
# gateway codes of every reply (Alipay's): success, business failure, invalid arguments,
# service unavailable (a "nothing done" refusal carries its sub_code)
OK, BUSINESS_FAILED, INVALID, UNAVAILABLE = "10000", "40004", "40002", "20000"
MESSAGES = {OK: "Success", BUSINESS_FAILED: "Business Failed", INVALID: "Invalid Arguments",
            UNAVAILABLE: "Service Currently Unavailable"}


@dataclass(slots=True)
class Trade:
    """One trade (交易) of the platform: a QR order and, once paid, its single charge."""

    out_trade_no: str
    content: tuple | None   # (total_amount, currency, notify_url, time_expire); None: tombstone
    qr_token: str | None
    state: str = "WAIT_BUYER_PAY"
    trade_no: str | None = None     # the charge's id, set when the buyer pays
    buyer: str | None = None
    paid_ms: int | None = None
    refunded: int = 0
    notify_id: str | None = None    # the notification series of the payment
    attempts: int = 0               # notification attempts made
    next_at: int | None = None      # instant of the next attempt
    acked: bool = False

    def fire(self, event: str) -> None:
        try:
            self.state = TRADE_TRANSITIONS[self.state][event]
        except KeyError:
            raise ValueError(f"trade {self.out_trade_no}: no {event!r} from {self.state}") \
                from None

    @property
    def total_amount(self) -> int | None:
        return self.content[0] if self.content else None

    @property
    def notify_url(self) -> str:
        return self.content[2]

    @property
    def paid(self) -> bool:
        """Whether a buyer paid it (a fully refunded trade is closed, but was paid)."""
        return self.trade_no is not None


def text(value: object) -> str:
    """`value` if it is a string, else "" (never a key of the tables)."""
    return value if isinstance(value, str) else ""


def first_bad(body: dict, strs: tuple[str, ...], ints: tuple[str, ...]) -> tuple[str, str] | None:
    """The first field of `body` that is not a non-empty string / a positive integer."""
    for field in strs:
        if not isinstance(body.get(field), str) or not body[field]:
            return field, f"expected a non-empty string, got {body.get(field)!r}"
    for field in ints:
        value = body.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return field, f"expected a positive integer, got {value!r}"
    return None


def ok(**fields) -> dict:
    return {"code": OK, "msg": MESSAGES[OK], "sub_code": None, "sub_msg": None, **fields}


def fail(sub_code: str, code: str = BUSINESS_FAILED, **fields) -> dict:
    return {"code": code, "msg": MESSAGES[code], "sub_code": sub_code, "sub_msg": sub_code,
            **fields}


def invalid(bad: tuple[str, str], **fields) -> dict:
    """40002: a field is missing or wrong (named in `field`); nothing done, nothing recorded."""
    return {**fail("isv.invalid-parameter", INVALID, **fields), "field": bad[0],
            "sub_msg": f"{bad[0]}: {bad[1]}"}


# -- RSA2 ---------------------------------------------------------------------------------------
def _render(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def sign_string(fields: dict) -> str:
    """The exact string RSA2 signs for `fields` (without sign, sign_type, None and "")."""
    return "&".join(f"{k}={_render(fields[k])}" for k in sorted(fields)
                    if k not in ("sign", "sign_type") and fields[k] is not None
                    and fields[k] != "")


@cache
def _private_key():
    return serialization.load_pem_private_key(PRIVATE_KEY_PEM, password=None)


def rsa2_sign(fields: dict) -> str:
    """Base64 SHA256withRSA signature of `fields` with the platform's private key."""
    raw = _private_key().sign(sign_string(fields).encode("utf-8"), padding.PKCS1v15(),
                              hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")
