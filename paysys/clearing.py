"""Clearing: profit sharing (分账) between merchants, as ledger lines, and its validation.

A merchant's settlement rule may share each of its payments with other merchants:
`splits = {receiver_merchant_id: bp}`. When a payment succeeds, its ledger entry gains, per
receiver, `Dr liability:merchant:<payer> s / Cr liability:merchant:<receiver> s` with
s = half-up(amount * bp / 10000) (contract §5). Refunds do not take splits back (like fees).
Pure functions; the payment flow appends `split_lines(...)` to the payment's lines.
"""

from paysys.money import div_half_up
from paysys.postings import Line

BP = 10_000


class ClearingError(ValueError):
    """A settlement rule refused; the message names the field (`rules.M001.splits.M003`)."""


def splits_of(rule) -> dict[str, int]:
    """The splits of a `config.SettlementRule` (a tuple of (receiver, bp)) as a dict."""
    return dict(rule.splits)


def split_lines(payer: str, currency: str, amount: int, splits: dict[str, int] | tuple,
                available: int | None = None) -> list[Line]:
    """The lines moving each receiver's share of a payment of `amount` from the payer's merchant
    account to the receiver's (receivers in id order; a share that rounds to 0 has no line).

    `available` (the payer's share of the payment: amount - merchant fee) caps the shares: when
    half-up rounding of the fee and of every share would take more than the payer received, the
    last receivers get less, so the payer's account never goes below what it had before."""
    lines: list[Line] = []
    left = amount if available is None else available
    for receiver, bp in sorted(dict(splits).items()):
        share = min(div_half_up(amount * bp, BP), left)
        if share > 0:
            left -= share
            lines += [Line(f"liability:merchant:{payer}", currency, share, 0),
                      Line(f"liability:merchant:{receiver}", currency, 0, share)]
    return lines


def check_rule(merchant_id: str, rule, fee_rate_bp: int, merchants) -> None:
    """Refuse a settlement rule that cannot be applied (ClearingError naming the field): a cycle
    other than "D+0" / "T+<n>" (n >= 1), a negative min_amount, a receiver that is not a known
    merchant (or the payer itself), a bp outside 0..10000, or shares that with the merchant's
    fee rate exceed 100 % of a payment."""
    where = f"rules.{merchant_id}"
    cycle = rule.cycle
    if not isinstance(cycle, str) or not (
            cycle == "D+0" or (cycle.startswith("T+") and cycle[2:].isdigit()
                               and int(cycle[2:]) >= 1)):
        raise ClearingError(f"{where}.cycle: expected 'D+0' or 'T+<n>' (n >= 1), got {cycle!r}")
    if isinstance(rule.min_amount, bool) or not isinstance(rule.min_amount, int) \
            or rule.min_amount < 0:
        raise ClearingError(f"{where}.min_amount: expected an int >= 0, got {rule.min_amount!r}")
    total = 0
    for receiver, bp in rule.splits:
        field = f"{where}.splits.{receiver}"
        if receiver not in merchants or receiver == merchant_id:
            raise ClearingError(f"{field}: unknown receiver (expected another merchant id, one of "
                                f"{sorted(m for m in merchants if m != merchant_id)})")
        if isinstance(bp, bool) or not isinstance(bp, int) or not 0 <= bp <= BP:
            raise ClearingError(f"{field}: expected basis points 0..{BP}, got {bp!r}")
        total += bp
    if total + fee_rate_bp > BP:
        raise ClearingError(f"{where}.splits: {total} bp of splits + a merchant fee rate of "
                            f"{fee_rate_bp} bp exceed {BP} bp")


def check_rules(backoffice, merchants: dict) -> None:
    """Check every merchant's rule (`merchants`: merchant id -> gateway.Merchant) and that no
    rule names a merchant paysys does not know."""
    for merchant_id in backoffice.rules:
        if merchant_id not in merchants:
            raise ClearingError(f"rules.{merchant_id}: unknown merchant (expected one of "
                                f"{sorted(merchants)})")
    for merchant_id, merchant in merchants.items():
        check_rule(merchant_id, backoffice.rule(merchant_id), merchant.fee_rate_bp, merchants)
