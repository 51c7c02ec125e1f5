"""Foreign card payments (外卡支付): orders priced in the merchant's currency, paid by foreign
buyers through a PayPal-like platform that settles with paysys in another currency.

Owns the product's settings (`ForeignSettings`, `node.cfg.products["foreign"]`), the currency
conversion, the pay_orders columns recorded before the pay leaves (`settlement_columns`: what the
platform will capture, in which currency, at which rate) and the ledger lines of such a payment
and of its refunds, which book BOTH currencies through the FX position `equity:fx`, so that each
entry balances per currency:

    payment (settle currency S, order currency O)
        S: Dr asset:channel:C  settle_amount        Cr equity:fx  settle_amount
        S: Dr expense:channel:C  settle_cost        Cr asset:channel:C  settle_cost
        O: Dr equity:fx  amount                     Cr liability:merchant:M  amount - fee
                                                    Cr income:fee  fee
    refund of r (O) = settle_refund (S)
        O: Dr liability:merchant:M  r               Cr equity:fx  r
        S: Dr equity:fx  settle_refund              Cr asset:channel:C  settle_refund

Rates are decimal strings in scenarios ("0.1389": 1 unit of O buys 0.1389 units of S), parsed
with Decimal into integer parts per million (`fx_rate_ppm`); no float ever touches a rate or an
amount. Conversion works on minor units and honours each currency's exponent (JPY has none):

    to_minor = amount * rate_ppm * 10**exp(S) / (10**6 * 10**exp(O))

- a payment's settle amount rounds half-up, and is at least 1 minor unit;
- the channel's cost is the fee rule applied to the order amount, converted half-up (may be 0);
- a refund's settle amount rounds DOWN, so that refunds never give back more than was captured
  (the remainder, under one minor unit per refund, stays in the FX position).
The platform (mockbanks/paypal.py) applies the same rules on its side of the wire.
"""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from paysys import ledger
from paysys.money import CURRENCIES, MAX_AMOUNT
from paysys.postings import LedgerError, Line
from paysys.products.base import Posting

PPM = 1_000_000
FX = "equity:fx"
PRODUCT = "foreign"
# the rates of a run without a [products.foreign] table (decimal strings, into USD)
DEFAULT_RATES = {"CNY/USD": "0.1389", "EUR/USD": "1.08", "HKD/USD": "0.1282",
                 "JPY/USD": "0.0067"}

ledger.register_family(FX, "equity", "credit")


class ForeignError(ValueError):
    """A rate or setting refused; the message names the field."""


def parse_rate(text: object, field_name: str = "rate") -> int:
    """A decimal string ("0.1389") as integer parts per million (138900). At most 6 decimals,
    strictly positive; a float or anything else is refused."""
    if not isinstance(text, str):
        raise ForeignError(f"{field_name}: expected a decimal string such as \"0.1389\", "
                           f"got {text!r}")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ForeignError(f"{field_name}: expected a decimal string such as \"0.1389\", "
                           f"got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise ForeignError(f"{field_name}: expected a rate > 0, got {text!r}")
    ppm = value * PPM
    if ppm != ppm.to_integral_value():
        raise ForeignError(f"{field_name}: expected at most 6 decimals, got {text!r}")
    if ppm > PPM * 10**6:
        raise ForeignError(f"{field_name}: expected a rate of at most 1000000, got {text!r}")
    return int(ppm)


def _scale(source: str, target: str) -> tuple[int, int]:
    """(multiplier, divisor) turning `amount * rate_ppm` into minor units of `target`."""
    for cur, name in ((source, "currency"), (target, "settle_currency")):
        if cur not in CURRENCIES:
            raise ForeignError(f"{name}: expected one of {sorted(CURRENCIES)}, got {cur!r}")
    return 10 ** CURRENCIES[target], PPM * 10 ** CURRENCIES[source]


def convert(amount: int, source: str, target: str, rate_ppm: int) -> int:
    """`amount` minor units of `source` in minor units of `target`, rounded half-up (may be 0)."""
    mul, div = _scale(source, target)
    return (2 * amount * rate_ppm * mul + div) // (2 * div)


def convert_down(amount: int, source: str, target: str, rate_ppm: int) -> int:
    """The same conversion rounded down (refunds: never more than was captured)."""
    mul, div = _scale(source, target)
    return amount * rate_ppm * mul // div


def settle_amount(amount: int, source: str, target: str, rate_ppm: int) -> int:
    """What the platform captures for an order of `amount`: half-up, at least 1 minor unit."""
    return max(1, convert(amount, source, target, rate_ppm))


@dataclass(frozen=True)
class ForeignSettings:
    """`[products.foreign]`: the currency the platform settles in and the rates, as
    "FROM/TO" -> parts per million (e.g. {"CNY/USD": 138900})."""

    settle_currency: str = "USD"
    rates: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.settle_currency not in CURRENCIES:
            raise ForeignError(f"settle_currency: expected one of {sorted(CURRENCIES)}, got "
                               f"{self.settle_currency!r}")
        for pair, ppm in self.rates.items():
            source, _, target = pair.partition("/") if isinstance(pair, str) else ("", "", "")
            if source not in CURRENCIES or target != self.settle_currency:
                raise ForeignError(f"rates.{pair}: expected a pair \"<currency>/"
                                   f"{self.settle_currency}\" of known currencies")
            if isinstance(ppm, bool) or not isinstance(ppm, int) or ppm <= 0:
                raise ForeignError(f"rates.{pair}: expected parts per million > 0, got {ppm!r}")

    @classmethod
    def parse(cls, settle_currency: str = "USD", rates: dict | None = None) -> "ForeignSettings":
        """From decimal strings: ForeignSettings.parse("USD", {"CNY/USD": "0.1389"})."""
        return cls(settle_currency, {pair: parse_rate(text, f"rates.{pair}")
                                     for pair, text in (rates or {}).items()})

    def rate(self, currency: str) -> int:
        """The rate from `currency` to the settle currency, in ppm (1:1 for the same one)."""
        if currency == self.settle_currency:
            return PPM
        pair = f"{currency}/{self.settle_currency}"
        if pair not in self.rates:
            raise ForeignError(f"currency: no rate {pair} in [products.foreign] rates "
                               f"(has {', '.join(sorted(self.rates)) or 'none'})")
        return self.rates[pair]


def settlement_columns(order: dict, settings: ForeignSettings) -> dict:
    """The pay_orders columns a foreign payment records before it leaves: what the platform
    captures (`settle_amount`), in `settle_currency`, at `fx_rate_ppm`."""
    rate = settings.rate(order["currency"])
    target = settings.settle_currency
    return {"settle_amount": settle_amount(order["amount"], order["currency"], target, rate),
            "settle_currency": target, "fx_rate_ppm": rate}


def refund_settle_amount(refund_amount: int, order: dict) -> int:
    """A refund's amount in the order's settle currency, at the order's own rate (rounded
    down)."""
    return convert_down(refund_amount, order["currency"], order["settle_currency"],
                        order["fx_rate_ppm"])


def _positive(value: object, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_AMOUNT:
        raise LedgerError("INVALID_LINE", f"{name}: expected {low}..{MAX_AMOUNT} minor units, "
                          f"got {value!r}", name)
    return value


def payment_lines(channel: str, order: dict, merchant_fee: int, channel_cost: int) -> list[Line]:
    """The entry of a foreign payment (module docstring): `channel_cost` is the fee rule on the
    order amount (order currency); the channel keeps its conversion (see `convert`)."""
    amount = _positive(order["amount"], "amount")
    _positive(merchant_fee, "merchant_fee", 0)
    _positive(channel_cost, "channel_cost", 0)
    if merchant_fee > amount:
        raise LedgerError("INVALID_LINE", f"merchant_fee: {merchant_fee} exceeds amount {amount}",
                          "merchant_fee")
    cur, settle_cur = order["currency"], order.get("settle_currency") or ""
    settle, rate = order.get("settle_amount") or 0, order.get("fx_rate_ppm") or 0
    if not settle_cur or settle <= 0 or rate <= 0:
        raise LedgerError("INVALID_LINE", f"settle_amount: order {order.get('order_id')} records "
                          "no settlement (settle_amount, settle_currency, fx_rate_ppm)",
                          "settle_amount")
    cost = convert(channel_cost, cur, settle_cur, rate)
    asset = f"asset:channel:{channel}"
    lines = [
        Line(asset, settle_cur, settle, 0),
        Line(FX, settle_cur, 0, settle),
        Line(f"expense:channel:{channel}", settle_cur, cost, 0),
        Line(asset, settle_cur, 0, cost),
        Line(FX, cur, amount, 0),
        Line(f"liability:merchant:{order['merchant_id']}", cur, 0, amount - merchant_fee),
        Line("income:fee", cur, 0, merchant_fee),
    ]
    return [line for line in lines if line.debit or line.credit]


def refund_lines(channel: str, refund: dict, order: dict) -> list[Line]:
    """The entry of a merchant's refund of a foreign payment (module docstring)."""
    amount = _positive(refund["amount"], "amount")
    cur, settle_cur = order["currency"], order.get("settle_currency") or ""
    if not settle_cur or not order.get("fx_rate_ppm"):
        raise LedgerError("INVALID_LINE", f"fx_rate_ppm: order {order.get('order_id')} records "
                          "no settlement rate", "fx_rate_ppm")
    settle = refund_settle_amount(amount, order)
    lines = [
        Line(f"liability:merchant:{refund['merchant_id']}", cur, amount, 0),
        Line(FX, cur, 0, amount),
        Line(FX, settle_cur, settle, 0),
        Line(f"asset:channel:{channel}", settle_cur, 0, settle),
    ]
    return [line for line in lines if line.debit or line.credit]


POSTINGS = (
    Posting(PRODUCT, "payment", "asset:channel:<channel>", "Dr", "settle_amount (settle currency)"),
    Posting(PRODUCT, "payment", FX, "Cr", "settle_amount (settle currency)"),
    Posting(PRODUCT, "payment", "expense:channel:<channel>", "Dr",
            "channel cost converted (settle currency)"),
    Posting(PRODUCT, "payment", "asset:channel:<channel>", "Cr",
            "channel cost converted (settle currency)"),
    Posting(PRODUCT, "payment", FX, "Dr", "amount (order currency)"),
    Posting(PRODUCT, "payment", "liability:merchant:<merchant>", "Cr",
            "amount - merchant fee (order currency)"),
    Posting(PRODUCT, "payment", "income:fee", "Cr", "merchant fee (order currency)"),
    Posting(PRODUCT, "refund", "liability:merchant:<merchant>", "Dr", "refund (order currency)"),
    Posting(PRODUCT, "refund", FX, "Cr", "refund (order currency)"),
    Posting(PRODUCT, "refund", FX, "Dr", "refund converted down (settle currency)"),
    Posting(PRODUCT, "refund", "asset:channel:<channel>", "Cr",
            "refund converted down (settle currency)"),
)
