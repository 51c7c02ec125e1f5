"""The fee a counterparty charges the platform on a payment (its cost to the platform).

Owns one rule: `rate_bp` basis points of the amount, rounded half-up, plus `fixed`, clamped to
`minimum` and (when > 0) `maximum`, and never more than the amount. The payment system has its own
copy of this rule on its side of the wire (paysys.money.FeeRule): the two parties agree on the
contract, not on shared code. Money is integer minor units; nothing here is a float.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fee:
    """A fee rule in integer minor units and basis points (1 bp = 0.01 %)."""

    rate_bp: int = 0
    fixed: int = 0
    minimum: int = 0
    maximum: int = 0

    def __post_init__(self) -> None:
        for field in ("rate_bp", "fixed", "minimum", "maximum"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Fee.{field}: expected a non-negative integer, got {value!r}")

    def fee(self, amount: int) -> int:
        """The fee on `amount` minor units: half-up rounded rate + fixed, clamped, <= amount."""
        fee = (2 * amount * self.rate_bp + 10_000) // 20_000 + self.fixed
        fee = max(fee, self.minimum)
        if self.maximum > 0:
            fee = min(fee, self.maximum)
        return min(fee, amount)
