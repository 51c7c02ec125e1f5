"""Journeys of the bank's user-present products: netbank (网银支付).

Quick pay keeps the default journey of sim/actors.py (pay.create with the user's card, OTP
challenges, refunds, unbinding). `netbank` has its own, because its users may pay late:

- the merchant asks paysys for the payment (`pay.create`, product `netbank`); paysys answers the
  bank page's `code_url`;
- with `traffic.abandon_probability` the user walks away from the page;
- else, with `late_probability` ([products.netbank]), the user pays `late_delay` after the order
  was created: around paysys's close of the order (15 minutes by default), so that some pay
  after the close (the page refuses) and some just before it, while the bank confirms the debit
  (the close is answered CLOSED but the debit completes and is notified: a late success that
  paysys refunds);
- else the user pays after `traffic.pay_delay`.
The user's message is `Kind.user_pay` of the channel's kind (`bank.user.netbank`). Draws come
from the stream "journey:netbank".
"""

import weakref
from dataclasses import dataclass

from sim.distributions import Dist
from sim.journeys.base import Arrival, Journey
from sim.rng import stream

LATE_DELAY = {"dist": "uniform", "low": 14 * 60_000 + 40_000, "high": 15 * 60_000 + 20_000}


@dataclass(frozen=True)
class NetbankOptions:
    """[products.netbank]: `late_probability` (a user pays around the order's close) and
    `late_delay` (when, from the order's creation)."""

    late_probability: float = 0.0
    late_delay: Dist = Dist.parse(LATE_DELAY, "products.netbank.late_delay")


def netbank_options(parser, value, key: str) -> NetbankOptions:
    if not isinstance(value, dict):
        raise parser.fail(key, "expected a table", value)
    parser.known(value, key, ("late_probability", "late_delay"))
    default = NetbankOptions()
    late = parser.prob(value.get("late_probability", default.late_probability),
                       f"{key}.late_probability")
    delay = default.late_delay if "late_delay" not in value else parser.dist(
        value["late_delay"], f"{key}.late_delay")
    return NetbankOptions(late, delay)


_streams: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _rng(actors):
    if actors not in _streams:
        _streams[actors] = stream(actors.sc.seed, "journey:netbank")
    return _streams[actors]


def start_netbank(actors, arrival: Arrival) -> None:
    """One netbank checkout: pay.create, then the user on the bank's page (or not)."""
    rng, now = _rng(actors), actors.world.now
    merchant, user = arrival.merchant, arrival.user
    body = {"type": "pay.create", "idempotency_key": f"pay-{arrival.order_no}",
            "merchant_order_no": arrival.order_no, "order_time": now - rng.randrange(60_000),
            "user_id": user.user_id, "product": "netbank", "amount": arrival.amount,
            "currency": actors.sc.traffic.currency, "notify_url": merchant.notify_url,
            "device_id": user.device_id, "subject": f"order {arrival.order_no}"}
    actors.request(merchant.merchant_id, body,
                   on_answer=lambda answer: _on_page(actors, arrival, answer, now))


def _on_page(actors, arrival: Arrival, answer: dict, created: int) -> None:
    if not answer.get("ok") or not answer.get("code_url"):
        return
    rng, traffic = _rng(actors), actors.sc.traffic
    options = actors.sc.products.get("netbank") or NetbankOptions()
    channel, user_id = answer.get("channel", ""), arrival.user.user_id
    message = actors.pay_code(channel, answer["code_url"], user_id, answer["order_id"])
    if message is None or rng.random() < traffic.abandon_probability:
        return
    if rng.random() < options.late_probability:
        delay = max(1, created + options.late_delay.sample(rng) - actors.world.now)
    else:
        delay = traffic.pay_delay.sample(rng)
    actors.world.send(f"user:{user_id}", channel, message, delay)


JOURNEYS = {"netbank": Journey(start=start_netbank, needs=("netbank",), options=netbank_options)}
