"""The journey of a pre-authorisation (预授权), as at a hotel or a car rental desk.

At an arrival of product `preauth` the merchant holds the arrival's amount on the user's card
(`preauth.create`: paysys signs the card's agreement first if needed; cards that are frozen or
short, e.g. magic cards 0002 / 9995, are declined). Once it is AUTHORISED, after a stay drawn
between `stay_min` and `stay_max`, one plan is drawn:
- `capture` (share `capture`): check-out captures the bill, the whole hold or less (a share
  `partial` of captures is for less than held);
- `cancel` (share `cancel`): the guest leaves without a bill, the hold is cancelled in full;
- `recapture` (share `recapture`): a capture, then a capture cancel (the bill was wrong), then a
  capture again, a stay apart each;
- otherwise nothing: the hold is left to expire (`hold` after it was granted, at the bank, then
  paysys's own check).
An answer still PROCESSING (the bank's answer is unknown) ends the journey: paysys resolves the
operation by itself. Draws come from the stream "journey:preauth"; settings from
`[products.preauth]`: hold, stay_min, stay_max, capture, partial, cancel, recapture.
"""

import weakref
from dataclasses import dataclass

from paysys.products.preauth import Settings
from sim.journeys.base import Arrival, Journey
from sim.rng import stream

MINUTE_MS = 60_000


@dataclass(frozen=True)
class PreauthOptions:
    """[products.preauth]"""

    hold_ms: int = 2 * 60 * MINUTE_MS
    stay_min_ms: int = 5 * MINUTE_MS
    stay_max_ms: int = 60 * MINUTE_MS
    capture: float = 0.5
    partial: float = 0.5
    cancel: float = 0.2
    recapture: float = 0.15


def options(parser, value, key: str) -> PreauthOptions:
    if not isinstance(value, dict):
        raise parser.fail(key, "expected a table", value)
    parser.known(value, key, ("hold", "stay_min", "stay_max", "capture", "partial", "cancel",
                              "recapture"))
    d = PreauthOptions()

    def duration(name: str, default: int) -> int:
        if name not in value:
            return default
        return parser.duration(value[name], f"{key}.{name}", positive=True)

    out = PreauthOptions(
        duration("hold", d.hold_ms), duration("stay_min", d.stay_min_ms),
        duration("stay_max", d.stay_max_ms),
        *(parser.prob(value.get(n, getattr(d, n)), f"{key}.{n}")
          for n in ("capture", "partial", "cancel", "recapture")))
    if out.stay_max_ms < out.stay_min_ms:
        raise parser.fail(f"{key}.stay_max", f"a duration >= stay_min ({out.stay_min_ms} ms)",
                          value.get("stay_max"))
    if out.capture + out.cancel + out.recapture > 1:
        raise parser.fail(f"{key}.recapture", "capture + cancel + recapture <= 1",
                          value.get("recapture", d.recapture))
    return out


def paysys_settings(opts: PreauthOptions | None) -> Settings:
    return Settings(hold_ms=(opts or PreauthOptions()).hold_ms)


_rngs: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _rng(actors):
    if actors not in _rngs:
        _rngs[actors] = stream(actors.sc.seed, "journey:preauth")
    return _rngs[actors]


def _opts(actors) -> PreauthOptions:
    return actors.sc.products.get("preauth") or PreauthOptions()


def start(actors, arrival: Arrival) -> None:
    user, merchant = arrival.user, arrival.merchant
    body = {"type": "preauth.create", "idempotency_key": f"preauth-{arrival.order_no}",
            "merchant_order_no": arrival.order_no, "user_id": user.user_id,
            "amount": arrival.amount, "currency": actors.sc.traffic.currency,
            "card_no": user.card_no, "notify_url": merchant.notify_url,
            "device_id": user.device_id}
    actors.request(merchant.merchant_id, body,
                   on_answer=lambda answer: _authorised(actors, arrival, answer))


def _authorised(actors, arrival: Arrival, answer: dict) -> None:
    if not answer.get("ok") or answer.get("status") != "AUTHORISED":
        return     # declined (or still unknown: paysys settles it, the hold may expire)
    rng, opts = _rng(actors), _opts(actors)
    draw = rng.random()
    if draw < opts.capture:
        plan = ("capture",)
    elif draw < opts.capture + opts.cancel:
        plan = ("cancel",)
    elif draw < opts.capture + opts.cancel + opts.recapture:
        plan = ("capture", "capture_cancel", "capture")
    else:
        return     # left to expire
    _later(actors, arrival, answer, plan, 0)


def _later(actors, arrival: Arrival, view: dict, plan: tuple, step: int) -> None:
    opts = _opts(actors)
    delay = _rng(actors).randint(opts.stay_min_ms, opts.stay_max_ms)
    actors.world.later(delay, _step, actors, arrival, view, plan, step)


def _step(actors, arrival: Arrival, view: dict, plan: tuple, step: int) -> None:
    op, rng = plan[step], _rng(actors)
    body = {"type": f"preauth.{op}", "idempotency_key": f"preauth-{arrival.order_no}-{op}{step}",
            "preauth_id": view["preauth_id"]}
    if op == "capture":
        held = view["held"]
        full = held <= 1 or rng.random() >= _opts(actors).partial
        body["amount"] = held if full else rng.randint(1, held - 1)

    def answered(answer: dict) -> None:
        if answer.get("ok") and answer.get("op_status") == "SUCCEEDED" and step + 1 < len(plan):
            _later(actors, arrival, answer, plan, step + 1)

    actors.request(arrival.merchant.merchant_id, body, on_answer=answered)


JOURNEYS = {"preauth": Journey(start=start, needs=("quick",), options=options,
                               paysys=paysys_settings)}
