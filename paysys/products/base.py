"""The shared shapes of the product catalogue (`paysys/products/__init__.py`)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Posting:
    """One ledger line of an operation, for the docs: `account` (a pattern such as
    `liability:user:<user>:balance`), `side` "Dr" or "Cr", and what `amount` it carries."""

    product: str
    operation: str
    account: str
    side: str
    amount: str


@dataclass(frozen=True)
class Internal:
    """A product paid inside paysys (no channel; the order's `channel` is the product's name).

    - `accept(node, order, body, now_ms)` (optional): just before the order is inserted, check
      the request's own fields (legs, coupons...), raising GatewayError to refuse it before
      writing anything, then store them.
    - `pay(node, order, now_ms)`: the order (PROCESSING) is paid: settle it (SUCCEEDED with its
      entry, or FAILED with a code, through `payments.finished`), or start its legs.
    - `refund(node, order, refund, now_ms)`: a refund order (PROCESSING) of `order`: give the
      money back and move the refund to SUCCEEDED (its entry posted) or FAILED."""

    pay: object
    refund: object
    accept: object = None
