"""What every channel adapter answers: the classification of a channel's reply.

An adapter maps paysys operations onto one channel family's wire protocol (docs/protocol.md) and
classifies every reply into one of a few outcomes. The classification tables are data, one per
adapter, so that the rule "unknown is never failure" is visible at a glance: anything not listed
as a definite answer is `UNKNOWN`, and the engine resolves it by query, retry or notification.
"""

from dataclasses import dataclass

from paysys import postings

SUCCESS = "success"      # the money moved (or the operation was done)
FAILURE = "failure"      # definitely not done, and it never will be
PENDING = "pending"      # accepted; the result comes later (query or notification)
UNKNOWN = "unknown"      # we cannot know: timeout, reset, 5xx, unexpected answer
NOT_FOUND = "not_found"  # the channel has no trace of it (yet)
CLOSED = "closed"        # the channel confirms it is closed: it was not and will not be paid
REJECTED = "rejected"    # refused before doing anything (maintenance, rate limit, cut-off):
                         # nothing was done; try another channel, or the same one later


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    code: str = ""
    channel_ref: str = ""
    amount: int | None = None
    extra: dict | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """A payment notification from a channel, parsed and verified."""

    valid: bool
    order_id: str
    outcome: Outcome
    ack: dict


def charges(reply: dict) -> list[tuple[str, int]] | None:
    """The charges a query answer lists (`charges: [{txn_id, amount}]`), or None when it lists
    none (one charge or none: the answer's own id and amount say it)."""
    listed = reply.get("charges")
    if not isinstance(listed, list):
        return None
    out = []
    for c in listed:
        amount = as_amount(c.get("amount")) if isinstance(c, dict) else None
        if amount is None or not isinstance(c.get("txn_id"), str):
            return None   # never trusted blindly
        out.append((c["txn_id"], amount))
    return out


def classify(table: dict[str, str], key: str, code: str = "", channel_ref: str = "",
             amount: int | None = None, extra: dict | None = None) -> Outcome:
    """Look `key` up in an adapter's classification table; anything unlisted is UNKNOWN."""
    return Outcome(table.get(key, UNKNOWN), code, channel_ref, amount, extra)


def as_amount(value: object) -> int | None:
    """An amount field from the wire, or None when it is not an integer (never trusted blindly)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Adapter:
    """What every adapter shares: which of its products sign a card agreement first (quick pay)
    and which answer later (the user acts on a page or in a wallet, the channel notifies)."""

    kind = ""
    AGREEMENT_PRODUCTS: frozenset[str] = frozenset()
    ASYNC_PRODUCTS: frozenset[str] = frozenset()

    def __init__(self, channel_id: str, api_key: str = "", options: dict | None = None):
        self.channel_id = channel_id
        self.api_key = api_key
        self.options = options or {}

    def signs(self, product: str) -> bool:
        """Whether a payment of `product` needs a signed card agreement first."""
        return product in self.AGREEMENT_PRODUCTS

    def is_async(self, product: str) -> bool:
        """Whether a payment of `product` is answered later (notification, or query)."""
        return product in self.ASYNC_PRODUCTS

    def notification(self, body: dict, verify: bool = True) -> "Notice | None":
        return None   # a channel that never notifies

    def order_columns(self, order: dict, cfg) -> dict:
        """pay_orders columns to record before the pay leaves (a foreign channel: settle_amount,
        settle_currency, fx_rate_ppm from `cfg.products`); {} for most channels."""
        return {}

    def payment_lines(self, order: dict, merchant_fee: int, channel_cost: int) -> list:
        """The entry of a payment this channel collected (a channel settling in another
        currency books both sides: paysys/products/foreign.py)."""
        return postings.payment_lines(self.channel_id, order["merchant_id"], order["currency"],
                                      order["amount"], merchant_fee, channel_cost)

    def refund_lines(self, refund: dict, order: dict) -> list:
        """The entry of a merchant's refund this channel paid back."""
        return postings.refund_lines(self.channel_id, refund["merchant_id"], refund["currency"],
                                     refund["amount"])
