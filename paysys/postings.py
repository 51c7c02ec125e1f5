"""Posting templates: the lines of each kind of ledger entry, as pure functions.

What this module owns: the `Line` and `LedgerError` types an entry is made of, and one function
per kind of entry (a payment, a refund, a charge in suspense, a settlement paid out, a top-up of
the payout position, the reserve's opening balance). `paysys/ledger.py` posts them and
re-exports every name, so callers keep importing them from `paysys.ledger`. Splits (分账) are
in `paysys/clearing.py`.
"""

from typing import NamedTuple

from paysys.errors import CodedError
from paysys.money import MAX_AMOUNT

CODES = frozenset(
    {"UNBALANCED", "INVALID_LINE", "UNKNOWN_ACCOUNT", "INSUFFICIENT_BALANCE", "UNKNOWN_ENTRY"}
)


class LedgerError(CodedError):
    """An entry refused: `code` (one of CODES), `message` naming the line/field and what was
    expected, `field` (e.g. "lines[2].debit", or None)."""

    CODES = CODES


class Line(NamedTuple):
    """One posting of an entry; exactly one of debit/credit is > 0. Any 4-tuple will do."""

    account: str
    currency: str
    debit: int
    credit: int


def _template_amount(value: object, field: str, positive: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerError(
            "INVALID_LINE", f"{field}: expected an int of minor units, got {value!r}", field
        )
    low = 1 if positive else 0
    if value < low or value > MAX_AMOUNT:
        raise LedgerError(
            "INVALID_LINE", f"{field}: expected {low}..{MAX_AMOUNT}, got {value}", field
        )
    return value


def payment_lines(
    channel: str, merchant_id: str, currency: str, amount: int, merchant_fee: int, channel_cost: int
) -> list[Line]:
    """A successful payment: the channel holds `amount`, the merchant is owed amount - fee, the
    fee is income, the channel's cost is an expense taken out of what it holds. Zero lines are
    left out.

        Dr asset:channel:C        amount
        Cr liability:merchant:M   amount - merchant_fee
        Cr income:fee             merchant_fee
        Dr expense:channel:C      channel_cost
        Cr asset:channel:C        channel_cost
    """
    _template_amount(amount, "amount", positive=True)
    _template_amount(merchant_fee, "merchant_fee", positive=False)
    _template_amount(channel_cost, "channel_cost", positive=False)
    if merchant_fee > amount:
        raise LedgerError(
            "INVALID_LINE", f"merchant_fee: {merchant_fee} exceeds amount {amount}", "merchant_fee"
        )
    asset, merchant = f"asset:channel:{channel}", f"liability:merchant:{merchant_id}"
    lines = [
        Line(asset, currency, amount, 0),
        Line(merchant, currency, 0, amount - merchant_fee),
        Line("income:fee", currency, 0, merchant_fee),
        Line(f"expense:channel:{channel}", currency, channel_cost, 0),
        Line(asset, currency, 0, channel_cost),
    ]
    return [line for line in lines if line.debit or line.credit]


def refund_lines(channel: str, merchant_id: str, currency: str, amount: int) -> list[Line]:
    """A successful refund: the merchant's balance pays it back through the channel. Fees are not
    returned (the merchant bears them).

        Dr liability:merchant:M   amount
        Cr asset:channel:C        amount
    """
    _template_amount(amount, "amount", positive=True)
    return [
        Line(f"liability:merchant:{merchant_id}", currency, amount, 0),
        Line(f"asset:channel:{channel}", currency, 0, amount),
    ]


SUSPENSE = "liability:suspense"


def suspense_lines(channel: str, currency: str, amount: int, channel_cost: int = 0) -> list[Line]:
    """A charge that belongs to no paid order (a duplicate, a late or mismatched charge, a
    partial payment): the channel holds it, less the cost it keeps for it, and the whole amount
    waits in suspense until it is refunded (the channel does not give its cost back).

        Dr asset:channel:C        amount
        Cr liability:suspense     amount
        Dr expense:channel:C      channel_cost
        Cr asset:channel:C        channel_cost
    """
    _template_amount(amount, "amount", positive=True)
    _template_amount(channel_cost, "channel_cost", positive=False)
    asset = f"asset:channel:{channel}"
    lines = [Line(asset, currency, amount, 0), Line(SUSPENSE, currency, 0, amount)]
    if channel_cost:
        lines += [Line(f"expense:channel:{channel}", currency, channel_cost, 0),
                  Line(asset, currency, 0, channel_cost)]
    return lines


def suspense_refund_lines(channel: str, currency: str, amount: int) -> list[Line]:
    """A charge in suspense goes back to the user through the channel (a compensation refund).

        Dr liability:suspense     amount
        Cr asset:channel:C        amount
    """
    _template_amount(amount, "amount", positive=True)
    return [Line(SUSPENSE, currency, amount, 0), Line(f"asset:channel:{channel}", currency, 0, amount)]


def from_suspense(lines: list[Line], channel: str) -> list[Line]:
    """`payment_lines` for money already in suspense (the legs of a payment completed in
    several parts, whose channel costs were booked with each leg): the amount comes out of
    suspense instead of arriving at the channel."""
    asset, expense = f"asset:channel:{channel}", f"expense:channel:{channel}"
    first, *rest = lines
    assert first.account == asset and first.debit > 0
    costs = {i for i, line in enumerate(rest) if line.account == expense}
    costs |= {i + 1 for i in costs}   # the credit to the channel that pays each cost
    return [Line(SUSPENSE, first.currency, first.debit, 0),
            *(line for i, line in enumerate(rest) if i not in costs)]


def settlement_lines(channel: str, merchant_id: str, currency: str, amount: int) -> list[Line]:
    """A settlement paid out to the merchant's bank account by the payout bank (代付).

        Dr liability:merchant:M   amount
        Cr asset:channel:C        amount
    """
    _template_amount(amount, "amount", positive=True)
    return [Line(f"liability:merchant:{merchant_id}", currency, amount, 0),
            Line(f"asset:channel:{channel}", currency, 0, amount)]


def topup_lines(channel: str, currency: str, amount: int) -> list[Line]:
    """The platform moves money from its reserve (备付金) to its payout position at that bank.

        Dr asset:channel:C        amount
        Cr asset:reserve:C        amount
    """
    _template_amount(amount, "amount", positive=True)
    return [Line(f"asset:channel:{channel}", currency, amount, 0),
            Line(f"asset:reserve:{channel}", currency, 0, amount)]


def fee_adjustment_lines(channel: str, currency: str, difference: int) -> list[Line]:
    """Reconciliation adjusts the books (调账) to the fee a channel's statement says it took:
    `difference` = the statement's fee - the fee booked (positive: the channel kept more).

        Dr expense:channel:C      difference        (or the mirror when it kept less)
        Cr asset:channel:C        difference
    """
    if isinstance(difference, bool) or not isinstance(difference, int) or difference == 0:
        raise LedgerError("INVALID_LINE", f"difference: expected a non-zero int, got "
                          f"{difference!r}", "difference")
    amount = _template_amount(abs(difference), "difference", positive=True)
    expense, asset = f"expense:channel:{channel}", f"asset:channel:{channel}"
    if difference > 0:
        return [Line(expense, currency, amount, 0), Line(asset, currency, 0, amount)]
    return [Line(asset, currency, amount, 0), Line(expense, currency, 0, amount)]


def reserve_open_lines(channel: str, currency: str, amount: int) -> list[Line]:
    """The reserve's opening balance, brought by the platform's owners.

        Dr asset:reserve:C        amount
        Cr equity:capital         amount
    """
    _template_amount(amount, "amount", positive=True)
    return [Line(f"asset:reserve:{channel}", currency, amount, 0),
            Line("equity:capital", currency, 0, amount)]
