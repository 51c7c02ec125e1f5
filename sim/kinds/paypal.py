"""The PayPal-like platform kind: foreign buyers approve payments from balances in the
platform's settle currency; webhooks; refunds converted at each order's rate.

`[[channels]] options = {currency = "USD"}`: the currency the platform settles in and holds the
buyers' balances in (it must be the `settle_currency` of `[products.foreign]`, or the platform
refuses the orders CURRENCY_NOT_SUPPORTED). Each simulated user holds `wallet_balance` minor
units of it. No statement files.
"""

from mockbanks.paypal import APPROVE_URL, PayPal
from paysys.money import CURRENCIES
from sim.kinds.base import Build, Kind


def build(b: Build) -> PayPal:
    channel = b.channel
    node = PayPal(name=channel.id, rng=b.rng, fee_rule=b.fee, api_key=channel.api_key,
                  currency=channel.options.get("currency", "USD"),
                  duplicate_notify_probability=channel.duplicate_notify_probability,
                  faults=b.faults, buggify=b.buggify)
    for u in b.users:
        node.open_buyer(u.user_id, u.wallet_balance)
    return node


def options(parser, value, key: str) -> dict:
    """`{currency = "USD"}` (the default)."""
    if not isinstance(value, dict):
        raise parser.fail(key, "expected a table such as {currency = \"USD\"}", value)
    parser.known(value, key, ("currency",))
    return {"currency": parser.string(value.get("currency", "USD"), f"{key}.currency",
                                      choices=tuple(CURRENCIES))}


def user_pay(code_url: str, user_id: str, order_id: str) -> dict:
    """The buyer follows the approval link: `pp.user.approve` with the token it carries."""
    return {"type": "pp.user.approve", "token": code_url.removeprefix(APPROVE_URL),
            "user_id": user_id}


PAYPAL = Kind(products=("foreign",), formats=("alipay",), build=build, options=options,
              user_pay=user_pay, notifies=True)
