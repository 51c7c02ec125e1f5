"""The journey of agreement pay / withholding (协议支付/代扣): sign once, then monthly bills.

At an arrival of product `withhold`, the merchant signs a mandate for the user (`mandate.sign`
with the user's card) unless one of theirs is already live, then debits it for `bills` bills,
one every `interval` (monthly bills, compressed into simulated hours): each bill is a
`pay.create` of product `withhold` with the mandate's number, for the arrival's amount. Users
whose card is short (low balances, magic card 9995) are declined INSUFFICIENT_FUNDS. Along the
way, after a bill:
- with `revoke_probability` the merchant revokes the mandate (`mandate.revoke`) and, by mistake,
  still sends one more bill `interval / 2` later: it must be refused (MANDATE_REVOKED);
- with `user_revoke_probability` the user revokes it in the bank's app
  (`bank.user.mandate.revoke`) without telling the merchant, whose next bill the bank refuses.
A later arrival for the same merchant and user signs again once the mandate is revoked. Draws
come from the stream "journey:withhold"; settings from `[products.withhold]`.
"""

import weakref
from dataclasses import dataclass, field

from sim.journeys.base import Arrival, Journey
from sim.rng import stream

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class WithholdOptions:
    """[products.withhold]"""

    interval_ms: int = 2 * HOUR_MS
    bills: int = 3
    revoke_probability: float = 0.1
    user_revoke_probability: float = 0.1


def withhold_options(parser, value, key: str) -> WithholdOptions:
    if not isinstance(value, dict):
        raise parser.fail(key, "expected a table", value)
    parser.known(value, key, ("interval", "bills", "revoke_probability",
                              "user_revoke_probability"))
    d = WithholdOptions()
    interval = d.interval_ms if "interval" not in value else parser.duration(
        value["interval"], f"{key}.interval", positive=True)
    return WithholdOptions(
        interval, parser.integer(value.get("bills", d.bills), f"{key}.bills", 1, 100),
        parser.prob(value.get("revoke_probability", d.revoke_probability),
                    f"{key}.revoke_probability"),
        parser.prob(value.get("user_revoke_probability", d.user_revoke_probability),
                    f"{key}.user_revoke_probability"))


@dataclass
class _State:
    rng: object
    live: dict = field(default_factory=dict)   # (merchant, user) -> mandate_no being used
    seq: int = 0


_states: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _state(actors) -> _State:
    if actors not in _states:
        _states[actors] = _State(stream(actors.sc.seed, "journey:withhold"))
    return _states[actors]


def _options(actors) -> WithholdOptions:
    return actors.sc.products.get("withhold") or WithholdOptions()


def start(actors, arrival: Arrival) -> None:
    state = _state(actors)
    merchant_id, user = arrival.merchant.merchant_id, arrival.user
    owner = (merchant_id, user.user_id)
    if owner in state.live:          # signed already: this arrival is one more bill
        _bill(actors, arrival, state.live[owner][0], state.live[owner][1], 0)
        return
    state.live[owner] = ("", "")
    state.seq += 1
    body = {"type": "mandate.sign", "idempotency_key": f"mandate-{arrival.order_no}",
            "user_id": user.user_id, "card_no": user.card_no}
    actors.request(merchant_id, body, on_answer=lambda answer: _signed(actors, arrival, answer))


def _signed(actors, arrival: Arrival, answer: dict) -> None:
    state = _state(actors)
    owner = (arrival.merchant.merchant_id, arrival.user.user_id)
    if not answer.get("ok") or answer.get("status") != "ACTIVE":
        state.live.pop(owner, None)   # declined (or still signing): a later arrival tries again
        return
    state.live[owner] = (answer["mandate_no"], answer.get("channel", ""))
    _bill(actors, arrival, answer["mandate_no"], answer.get("channel", ""), 1)


def _bill(actors, arrival: Arrival, mandate_no: str, channel: str, n: int) -> None:
    """Bill `n` of the mandate now (n = 0: an extra bill of a later arrival), then schedule the
    next, or revoke."""
    if not mandate_no:
        return   # its signing is still going on
    _debit(actors, arrival, mandate_no)
    options, rng = _options(actors), _state(actors).rng
    if n == 0:
        return
    if rng.random() < options.revoke_probability:
        actors.world.later(options.interval_ms // 4, _revoke, actors, arrival, mandate_no)
        actors.world.later(options.interval_ms // 2, _debit, actors, arrival, mandate_no)
        return
    if rng.random() < options.user_revoke_probability and channel:
        user = f"user:{arrival.user.user_id}"
        actors.world.send(user, channel, {"type": "bank.user.mandate.revoke",
                                          "user_id": arrival.user.user_id,
                                          "merchant_id": arrival.merchant.merchant_id},
                          options.interval_ms // 4)
        actors.world.later(options.interval_ms // 4, _forget, actors, arrival)
        actors.world.later(options.interval_ms // 2, _debit, actors, arrival, mandate_no)
        return
    if n < options.bills:
        actors.world.later(options.interval_ms, _bill, actors, arrival, mandate_no, channel, n + 1)


def _debit(actors, arrival: Arrival, mandate_no: str) -> None:
    merchant, user = arrival.merchant, arrival.user
    order_no = actors.order_no(merchant.merchant_id)
    body = {"type": "pay.create", "idempotency_key": f"pay-{order_no}",
            "merchant_order_no": order_no, "order_time": actors.world.now,
            "user_id": user.user_id, "product": "withhold", "amount": arrival.amount,
            "currency": actors.sc.traffic.currency, "notify_url": merchant.notify_url,
            "subject": f"bill {order_no}", "mandate_no": mandate_no}
    actors.request(merchant.merchant_id, body, on_answer=lambda answer: None)


def _revoke(actors, arrival: Arrival, mandate_no: str) -> None:
    _forget(actors, arrival)
    body = {"type": "mandate.revoke", "idempotency_key": f"revoke-{mandate_no}",
            "mandate_no": mandate_no}
    actors.request(arrival.merchant.merchant_id, body, on_answer=lambda answer: None)


def _forget(actors, arrival: Arrival) -> None:
    _state(actors).live.pop((arrival.merchant.merchant_id, arrival.user.user_id), None)


JOURNEYS = {"withhold": Journey(start=start, needs=("withhold",), options=withhold_options)}
