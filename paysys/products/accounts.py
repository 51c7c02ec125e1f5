"""The internal products paid inside paysys: balance pay (余额支付), virtual coins (虚币) and
credit pay (信用支付).

Plain helpers other families use (combined payments debit the user's balance):
- `balance_of(conn, user_id, currency) -> int`: the user's stored value (余额) in minor units.
- `balance_lines(user_id, currency, amount, merchant_id, merchant_fee) -> list[Line]`: the entry
  of a payment out of the user's balance.
"""

from paysys import ledger
from paysys.ledger import LedgerError, Line
from paysys.money import MAX_AMOUNT


def user_account(user_id: str) -> str:
    """The ledger account of a user's stored value (mirrored onto external `user:<id>`)."""
    return f"liability:user:{user_id}"


def balance_of(conn, user_id: str, currency: str) -> int:
    """The stored value of `user_id` in `currency` (int minor units, >= 0; 0 if never used)."""
    return ledger.balance(conn, user_account(user_id), currency)


def _amount(value, field: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_AMOUNT:
        raise LedgerError("INVALID_LINE", f"{field}: expected an int {low}..{MAX_AMOUNT} of "
                          f"minor units, got {value!r}", field)
    return value


def balance_lines(user_id: str, currency: str, amount: int, merchant_id: str,
                  merchant_fee: int) -> list[Line]:
    """A payment of `amount` out of the user's balance to the merchant (fee kept by the
    platform). Posting it raises LedgerError INSUFFICIENT_BALANCE when the balance is short
    (`liability:user:*` never goes below zero). Zero lines are left out.

        Dr liability:user:U       amount
        Cr liability:merchant:M   amount - merchant_fee
        Cr income:fee             merchant_fee
    """
    _amount(amount, "amount", 1)
    _amount(merchant_fee, "merchant_fee", 0)
    if merchant_fee > amount:
        raise LedgerError("INVALID_LINE", f"merchant_fee: {merchant_fee} exceeds amount {amount}",
                          "merchant_fee")
    lines = [Line(user_account(user_id), currency, amount, 0),
             Line(f"liability:merchant:{merchant_id}", currency, 0, amount - merchant_fee),
             Line("income:fee", currency, 0, merchant_fee)]
    return [line for line in lines if line.debit or line.credit]
