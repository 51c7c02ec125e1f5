"""The UnionPay-like network's records and rules: how a card is routed to its issuer, the cards
and pays it keeps, issuer outage windows, and the answers it gives.

Owns the data of mockbanks/unionpay.py (its docstring describes the behaviour), split out so each
file stays small.

Routing by BIN range (documented rule, deterministic): a card's issuer is
`issuers[int(card_no[6:12]) % len(issuers)]`, i.e. digits 7 to 12 (1-based) of the card number,
read as one integer, modulo the number of issuers, indexing the issuers in the order the channel
declares them. Every card number of 13-19 digits has an issuer.
"""

import re
from dataclasses import dataclass
from dataclasses import field as _field

CARD_PATTERN = re.compile(r"[0-9]{13,19}")
FEE_ACCOUNT = "network_fees"          # the network's own fee income
MAGIC_ACCOUNT = "magic"               # funds magic card 4242 (the only overdraft account)
FUNDED_MAGIC = ("4242",)
# magic last four digits -> (result, code): answered to a pay, nothing checked, no money moved
MAGIC_FAILURES = {"0002": ("DECLINED", "CARD_FROZEN"),
                  "9995": ("DECLINED", "INSUFFICIENT_FUNDS"),
                  "0119": ("ERROR", "PROCESSING_ERROR")}
# how a pay's status reads in up.query / up.close (ERROR did nothing and never will: DECLINED)
QUERY_RESULT = {"SUCCESS": "SUCCESS", "DECLINED": "DECLINED", "ERROR": "DECLINED",
                "CLOSED": "CLOSED"}
ISSUER_DOWN = "ISSUER_UNAVAILABLE"


def issuer_index(card_no: str, n_issuers: int) -> int:
    """The index of the issuer of `card_no` among `n_issuers` (digits 7-12 modulo the count)."""
    if not CARD_PATTERN.fullmatch(card_no):
        raise ValueError(f"card_no: expected 13-19 digits, got {card_no!r}")
    if n_issuers < 1:
        raise ValueError(f"n_issuers: expected at least 1, got {n_issuers}")
    return int(card_no[6:12]) % n_issuers


def card_account(issuer: str, card_no: str) -> str:
    """The truth account of a card at its issuer: `issuer:<issuer>:card:<card_no>`."""
    return f"issuer:{issuer}:card:{card_no}"


@dataclass(frozen=True, slots=True)
class Window:
    """An issuer outage: [start_ms, end_ms) in absolute ms."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        for name in ("start_ms", "end_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: expected an integer of ms, got {value!r}")
        if self.end_ms <= self.start_ms:
            raise ValueError(f"end_ms: {self.end_ms} is not after start_ms {self.start_ms}")

    def covers(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms < self.end_ms


@dataclass(slots=True)
class Card:
    user_id: str
    card_no: str
    issuer: str
    account: str
    frozen: bool = False


@dataclass(slots=True)
class Pay:
    """A pay or a refund the network answered (its answer is stored for de-duplication)."""

    req_id: str
    status: str              # SUCCESS, DECLINED, ERROR, CLOSED
    code: str | None
    amount: int | None
    card_no: str | None = None
    issuer: str | None = None
    txn_id: str | None = None
    refunded: int = 0
    extra: dict = _field(default_factory=dict)


def answer(pay: Pay) -> dict:
    """The reply fields of a pay or refund (a CLOSED pay answers DECLINED/CLOSED)."""
    result = "DECLINED" if pay.status == "CLOSED" else pay.status
    return {"req_id": pay.req_id, "result": result, "code": pay.code, "txn_id": pay.txn_id,
            "amount": pay.amount, "issuer": pay.issuer}


def view(pay: Pay | None, req_id: str) -> dict:
    """The up.query / up.close answer about the pay `req_id`."""
    if pay is None:
        return {"req_id": req_id, "result": "NOT_FOUND", "code": None, "txn_id": None,
                "amount": None, "issuer": None}
    code = "CLOSED" if pay.status == "CLOSED" else pay.code
    return {"req_id": req_id, "result": QUERY_RESULT[pay.status], "code": code,
            "txn_id": pay.txn_id, "amount": pay.amount, "issuer": pay.issuer}


def bad_field(body: dict, strs: tuple[str, ...], money: bool, currency: str) -> tuple | None:
    """(field, problem) of the first invalid field of a request, or None."""
    for name in strs:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            return name, f"expected a non-empty string, got {value!r}"
    if "card_no" in strs and not CARD_PATTERN.fullmatch(body["card_no"]):
        return "card_no", f"expected 13-19 digits, got {body['card_no']!r}"
    if money:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return "amount", f"expected a positive integer of minor units, got {amount!r}"
        if body.get("currency") != currency:
            return "currency", f"expected {currency!r}, got {body.get('currency')!r}"
    return None


def invalid(body: dict, bad: tuple[str, str]) -> dict:
    """The INVALID_PARAM answer naming the field (nothing done, nothing recorded)."""
    req_id = body.get("req_id") if isinstance(body.get("req_id"), str) else None
    return {"req_id": req_id, "result": "ERROR", "code": "INVALID_PARAM", "field": bad[0],
            "message": f"{bad[0]}: {bad[1]}"}
