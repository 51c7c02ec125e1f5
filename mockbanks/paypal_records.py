"""The PayPal-like platform's records and contract helpers: orders and their capture, the order
state table, the conversion rules both parties agree on, the webhook signature, reply shapes.

Owns the data mockbanks/paypal.py keeps per order (split out so each file stays small; the
behaviour is the platform's, its module docstring describes it). The conversion is the contract
of docs/protocol.md "PayPal-like platform", written again on this side of the wire (paysys has
its own copy in paysys/products/foreign.py: two parties agree on the contract, not on code).
"""

import hashlib
import hmac
from dataclasses import dataclass

from mockbanks.truth import ref_of

PPM = 1_000_000
EXPONENTS = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0}

# status -> {event: new status}; VOIDED is final, COMPLETED only takes refunds
ORDER_TRANSITIONS: dict[str, dict[str, str]] = {
    "CREATED": {"capture": "COMPLETED", "void": "VOIDED", "expire": "VOIDED"},
    "COMPLETED": {"refund": "COMPLETED"},
    "VOIDED": {},
}
# what a buyer's pp.user.approve gets for an order that cannot be approved, by status
APPROVE_REFUSAL = {"VOIDED": "ORDER_NOT_APPROVABLE", "COMPLETED": "ORDER_ALREADY_CAPTURED"}


def _scale(source: str, target: str) -> tuple[int, int]:
    return 10 ** EXPONENTS[target], PPM * 10 ** EXPONENTS[source]


def convert(amount: int, source: str, target: str, rate_ppm: int) -> int:
    """Minor units of `source` in minor units of `target` at `rate_ppm`, rounded half-up."""
    mul, div = _scale(source, target)
    return (2 * amount * rate_ppm * mul + div) // (2 * div)


def settle_of(amount: int, source: str, target: str, rate_ppm: int) -> int:
    """What an order of `amount` captures: half-up, at least 1 minor unit."""
    return max(1, convert(amount, source, target, rate_ppm))


def refund_settle_of(amount: int, source: str, target: str, rate_ppm: int) -> int:
    """What a refund of `amount` gives back in the settle currency: rounded down."""
    mul, div = _scale(source, target)
    return amount * rate_ppm * mul // div


def sign_string(fields: dict) -> str:
    """Every field but `signature` whose value is neither None nor "", sorted, `k=v` joined
    by `&` (booleans as true/false)."""
    def show(v: object) -> str:
        return "true" if v is True else "false" if v is False else str(v)
    return "&".join(f"{k}={show(fields[k])}" for k in sorted(fields)
                    if k != "signature" and fields[k] is not None and fields[k] != "")


def signature(fields: dict, secret: str) -> str:
    """Lower-case hex HMAC-SHA256 of `sign_string(fields)` under the webhook secret."""
    return hmac.new(secret.encode(), sign_string(fields).encode(), hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Capture:
    """The money a buyer's approval took, and the webhook series telling it."""

    capture_id: str
    out_trade_no: str
    settle_amount: int              # taken from the buyer (settle currency)
    fee: int                        # the platform's fee (settle currency)
    payer: str                      # user id
    at_ms: int
    attempts: int = 0
    next_at: int | None = None
    last_at: int | None = None
    acked: bool = False


@dataclass(slots=True)
class Order:
    """One order: `content` is what pp.order.create said (None: a void of a number never seen,
    kept so that nobody can create or pay it later)."""

    pp_id: str
    out_trade_no: str
    content: tuple | None   # (amount, currency, settle_amount, settle_currency, rate, url, expire)
    status: str = "CREATED"
    capture: Capture | None = None
    refunded: int = 0               # order currency
    refunded_settle: int = 0        # settle currency

    def fire(self, event: str) -> None:
        try:
            self.status = ORDER_TRANSITIONS[self.status][event]
        except KeyError:
            raise ValueError(f"order {self.out_trade_no}: no {event!r} from {self.status}") from None

    @property
    def amount(self) -> int:
        return self.content[0]

    @property
    def currency(self) -> str:
        return self.content[1]

    @property
    def settle_amount(self) -> int:
        return self.content[2]

    @property
    def settle_currency(self) -> str:
        return self.content[3]

    @property
    def rate(self) -> int:
        return self.content[4]

    @property
    def ref(self) -> str:
        return ref_of(self.out_trade_no)

    def view(self) -> dict:
        """The order as pp.order.get describes it."""
        out = {"id": self.pp_id, "out_trade_no": self.out_trade_no, "status": self.status}
        if self.content is not None:
            out.update(amount=self.amount, currency=self.currency,
                       settle_amount=self.settle_amount, settle_currency=self.settle_currency,
                       fx_rate_ppm=self.rate, refunded=self.refunded,
                       refunded_settle=self.refunded_settle)
        if self.capture is not None:
            out.update(capture_id=self.capture.capture_id, capture_time=self.capture.at_ms)
        return out


def text(value: object) -> str:
    """`value` if it is a string, else "" (never a key of the tables)."""
    return value if isinstance(value, str) else ""


def ok(status_code: int = 200, **fields) -> dict:
    return {"status_code": status_code, "name": None, **fields}


def error(status_code: int, name: str, message: str = "", **fields) -> dict:
    return {"status_code": status_code, "name": name, "message": message or name, **fields}


def invalid(field: str, expected: str, value: object) -> dict:
    """400 INVALID_REQUEST naming the field."""
    return error(400, "INVALID_REQUEST", f"{field}: expected {expected}, got {value!r}",
                 field=field)


def first_bad(body: dict, strs: tuple[str, ...], ints: tuple[str, ...]) -> dict | None:
    for name in strs:
        if not isinstance(body.get(name), str) or not body[name]:
            return invalid(name, "a non-empty string", body.get(name))
    for name in ints:
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return invalid(name, "a positive integer", value)
    return None
