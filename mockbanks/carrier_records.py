"""The carrier's records and rules (话费支付): phone lines, charges, the billing month, answers.

Owns the data of mockbanks/carrier.py (its docstring describes the behaviour), split out so each
file stays small. The billing month of an instant is its calendar month in the carrier's zone
(UTC+8 by default), as the integer `year * 100 + month` (202611), computed from integer ms.
"""

import datetime as dt
from dataclasses import dataclass

FEE_ACCOUNT = "carrier_fees"
DEFAULT_MONTHLY_CAP = 20_000       # 200.00 CNY per phone number and billing month
DEFAULT_PER_CHARGE_MAX = 10_000    # 100.00 CNY per charge
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
QUERY_RESULT = {"SUCCESS": "SUCCESS", "DECLINED": "DECLINED", "CLOSED": "CLOSED"}


def billing_month(now_ms: int, tz_offset_ms: int = 8 * 3600 * 1000) -> int:
    """The billing month containing `now_ms`, as 202611 (local calendar month)."""
    local = _EPOCH + dt.timedelta(milliseconds=now_ms + tz_offset_ms)
    return local.year * 100 + local.month


def bill_account(phone: str) -> str:
    """The phone's bill at the carrier: its balance is minus what the subscriber owes."""
    return f"bill:{phone}"


@dataclass(slots=True)
class Line:
    """A subscriber's phone line."""

    user_id: str
    phone: str
    account: str
    suspended: bool = False


@dataclass(slots=True)
class Charge:
    """A charge or a refund the carrier answered (stored for de-duplication)."""

    req_id: str
    status: str               # SUCCESS, DECLINED, CLOSED
    code: str | None
    amount: int | None
    phone: str | None = None
    month: int | None = None  # the billing month the charge counts in
    txn_id: str | None = None
    refunded: int = 0


def answer(charge: Charge) -> dict:
    result = "DECLINED" if charge.status == "CLOSED" else charge.status
    return {"req_id": charge.req_id, "result": result, "code": charge.code,
            "txn_id": charge.txn_id, "amount": charge.amount}


def view(charge: Charge | None, req_id: str) -> dict:
    """The carrier.query / carrier.close answer about the charge `req_id`."""
    if charge is None:
        return {"req_id": req_id, "result": "NOT_FOUND", "code": None, "txn_id": None,
                "amount": None}
    code = "CLOSED" if charge.status == "CLOSED" else charge.code
    return {"req_id": req_id, "result": QUERY_RESULT[charge.status], "code": code,
            "txn_id": charge.txn_id, "amount": charge.amount}


def bad_field(body: dict, strs: tuple[str, ...], money: bool, currency: str) -> tuple | None:
    """(field, problem) of the first invalid field of a request, or None."""
    for name in strs:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            return name, f"expected a non-empty string, got {value!r}"
    if money:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return "amount", f"expected a positive integer of minor units, got {amount!r}"
        if body.get("currency") != currency:
            return "currency", f"expected {currency!r}, got {body.get('currency')!r}"
    return None


def invalid(body: dict, bad: tuple[str, str]) -> dict:
    req_id = body.get("req_id") if isinstance(body.get("req_id"), str) else None
    return {"req_id": req_id, "result": "ERROR", "code": "INVALID_PARAM", "field": bad[0],
            "message": f"{bad[0]}: {bad[1]}"}
