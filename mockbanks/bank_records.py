"""The quick-pay bank's records and tables: cards, pays and their charges, magic cards, the
state table of a pay, how a status reads in a query, and request validation.

Owns the data the bank (mockbanks/bank.py) keeps per card and per request, split out of it so each
file stays small; the behaviour is the bank's (its module docstring describes it).
"""

from dataclasses import dataclass
from dataclasses import field as _field

MAGIC_ACCOUNT = "magic"
FEE_ACCOUNT = "bank_fees"
FUNDED_MAGIC = ("4242", "3220")  # always succeed; topped up from MAGIC_ACCOUNT when short
# magic last four digits -> (result, code) answered to a pay, nothing checked, no money moved
MAGIC_FAILURES = {
    "0002": ("DECLINED", "CARD_FROZEN"),
    "9995": ("DECLINED", "INSUFFICIENT_FUNDS"),
    "0119": ("ERROR", "PROCESSING_ERROR"),
}
MAGIC_SUFFIXES = FUNDED_MAGIC + tuple(MAGIC_FAILURES)
# the life of a pay at the bank: status -> {event: new status}; absent = final
PAY_TRANSITIONS: dict[str, dict[str, str]] = {"PROCESSING": {"settle": "SUCCESS"}}
# how a pay's status reads in bank.query / bank.close: status -> result (code kept unless given)
QUERY_RESULT = {"SUCCESS": "SUCCESS", "PROCESSING": "PROCESSING", "DECLINED": "DECLINED",
                "ERROR": "DECLINED", "CLOSED": "CLOSED"}


@dataclass(slots=True)
class Card:
    user_id: str
    card_no: str
    account: str
    daily_limit: int
    frozen: bool
    day: int = -1
    used: int = 0


@dataclass(slots=True)
class Charge:
    txn_id: str
    amount: int
    refunded: int = 0


@dataclass(slots=True)
class Pay:
    req_id: str
    status: str
    code: str | None
    amount: int | None
    card_no: str | None = None
    bank_txn_id: str | None = None
    settle_at: int | None = None
    charges: list[Charge] = _field(default_factory=list)     # money really taken, in order

    def fire(self, event: str) -> None:
        try:
            self.status = PAY_TRANSITIONS[self.status][event]
        except KeyError:
            raise ValueError(f"pay {self.req_id}: no transition {event!r} from {self.status}") from None


def first_bad(body: dict, strs: tuple[str, ...], money: bool, currency: str) -> tuple[str, str] | None:
    """(field, problem) of the first invalid field of `body`, or None."""
    for field in strs:
        value = body.get(field)
        if not isinstance(value, str) or not value:
            return field, f"expected a non-empty string, got {value!r}"
    if money:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return "amount", f"expected a positive integer of minor units, got {amount!r}"
        if body.get("currency") != currency:
            return "currency", f"expected {currency!r}, got {body.get('currency')!r}"
    return None


def invalid(body: dict, bad: tuple[str, str]) -> tuple[dict, list]:
    """The bank's INVALID_PARAM answer naming the field `bad[0]` (nothing done)."""
    req_id = body.get("req_id") if isinstance(body.get("req_id"), str) else None
    return {"req_id": req_id, "result": "ERROR", "code": "INVALID_PARAM", "field": bad[0],
            "message": f"{bad[0]}: {bad[1]}"}, []
