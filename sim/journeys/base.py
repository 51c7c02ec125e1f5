"""The shape of a journey (sim/journeys/__init__.py) and of the arrival it starts from."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Arrival:
    """One arrival of the traffic: the user (sim.population.User), the merchant
    (sim.population.MerchantKeys), the product drawn, the amount drawn and a fresh merchant
    order number (unique in the run)."""

    user: object
    merchant: object
    product: str
    amount: int
    order_no: str


@dataclass(frozen=True)
class Journey:
    """A product's traffic.

    - `start(actors, arrival)`: what happens at one arrival (sim.actors.Actors offers
      `request(merchant_id, body, on_answer=...)`, `send_request`, `world`, `rng_user`, `sc`,
      `pay_code(...)`); None: the default journey (one `pay.create`).
    - `needs`: the channel products some `[[channels]]` entry must serve for this product.
    - `options(parser, value, key) -> object`: parse `[products.<name>]` (None: no such table).
    - `paysys(options or None) -> object`: the settings of the payment system's product family
      (`PaySysConfig.products[name]`); None: it needs none.
    """

    start: Callable | None = None
    needs: tuple[str, ...] = ()
    options: Callable | None = None
    paysys: Callable | None = None
