"""Money: integer minor units with a currency. No float ever touches an amount.

Rates are integer basis points (1 bp = 0.01 %); every division rounds half-up, so a fee is a
deterministic function of integers.
"""

from dataclasses import dataclass

CURRENCIES = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0}
MAX_AMOUNT = 10**15


class MoneyError(ValueError):
    pass


def check_amount(amount: object, field: str = "amount") -> int:
    """`amount` as a positive integer of minor units, or MoneyError naming `field`."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise MoneyError(f"{field}: expected an integer number of minor units, got {amount!r}")
    if amount <= 0 or amount > MAX_AMOUNT:
        raise MoneyError(f"{field}: expected 1..{MAX_AMOUNT}, got {amount}")
    return amount


def check_currency(currency: object, field: str = "currency") -> str:
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise MoneyError(f"{field}: expected one of {sorted(CURRENCIES)}, got {currency!r}")
    return currency


def div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class FeeRule:
    """A fee: `rate_bp` of the amount plus `fixed`, clamped to [`minimum`, `maximum`] (0 = no max),
    and never more than the amount itself."""

    rate_bp: int = 0
    fixed: int = 0
    minimum: int = 0
    maximum: int = 0

    def fee(self, amount: int) -> int:
        fee = div_half_up(amount * self.rate_bp, 10_000) + self.fixed
        fee = max(fee, self.minimum)
        if self.maximum:
            fee = min(fee, self.maximum)
        return min(fee, amount)


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def _same(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise MoneyError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __str__(self) -> str:
        digits = CURRENCIES.get(self.currency, 2)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**digits)
        return f"{sign}{units}.{minor:0{digits}d} {self.currency}" if digits else f"{sign}{units} {self.currency}"
