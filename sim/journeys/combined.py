"""The users of combined payment (组合支付) and the merchants of trades (交易核心).

- combined: at a user's first combined checkout the platform issues the user's coupons
  (`coupon.issue`: `vouchers` vouchers of `voucher_value` and `discounts` discounts of
  `discount_bp` capped at `discount_cap`); with `topup_probability` the user tops up first
  (`topup.create` by card, sim.journeys.accounts) and pays part of the order from the balance;
  with `coupon_probability` she uses one of her coupons; the rest goes on her card (a magic
  card of the population declines it: the legs are reversed). With `refund_probability` a paid
  order is refunded in full later (the coupon comes back).
- trade: the merchant creates a trade (`trade.create`) and the user pays it in 1 to `attempts`
  attempts (`trade.pay`, `gap` apart); with `overpay_probability` the last attempt pays more
  than what is left (the excess is refunded), with `abandon_probability` the user stops before
  the last one (the trade closes at its `ttl`, refunding what it received).
"""

from paysys.products.trade import TradeSettings
from sim.journeys.accounts import MARGIN_BP, card_request
from sim.journeys.base import Journey
from sim.rng import stream

REFUND_DELAY_MS = (60_000, 600_000)
COMBINED = {"vouchers": 2, "voucher_value": 500, "discounts": 1, "discount_bp": 1_000,
            "discount_cap": 2_000, "topup_probability": 0.5, "coupon_probability": 0.8,
            "refund_probability": 0.2}
TRADE = {"ttl": 600_000, "attempts": 3, "gap": 20_000, "overpay_probability": 0.2,
         "abandon_probability": 0.1}


def _options(defaults: dict):
    """A parser of `[products.<name>]`: only the keys of `defaults`; a float default is a
    probability, an int one an integer >= 0 (`ttl`, `gap` may be durations like "10m")."""
    def options(parser, value, key: str) -> dict:
        if not isinstance(value, dict):
            raise parser.fail(key, "expected a table", value)
        parser.known(value, key, tuple(defaults))
        out = dict(defaults)
        for name, given in value.items():
            sub = f"{key}.{name}"
            if isinstance(defaults[name], float):
                out[name] = parser.prob(given, sub)
            elif name in ("ttl", "gap"):
                out[name] = parser.duration(given, sub, positive=True)
            else:
                out[name] = parser.integer(given, sub, 1 if name == "attempts" else 0)
        return out
    return options


def _state(actors) -> dict:
    """The journeys' memory for this run (their random streams, each user's coupons)."""
    state = actors.__dict__.get("_combined_journeys")
    if state is None:
        seed = actors.sc.seed
        state = actors.__dict__["_combined_journeys"] = {
            "combined": stream(seed, "journey:combined"), "trade": stream(seed, "journey:trade"),
            "coupons": {}}
    return state


def _opts(actors, name: str, defaults: dict) -> dict:
    return {**defaults, **(actors.sc.products.get(name) or {})}


# -- combined ---------------------------------------------------------------------------------

def start_combined(actors, a) -> None:
    opts, state = _opts(actors, "combined", COMBINED), _state(actors)
    wallet = state["coupons"].get(a.user.user_id)
    if wallet is None:
        wallet = state["coupons"][a.user.user_id] = []
        _issue(actors, a, opts, wallet)
        actors.world.later(1_000, _checkout, actors, a, opts, wallet)
    else:
        _checkout(actors, a, opts, wallet)


def _issue(actors, a, opts: dict, wallet: list) -> None:
    for answer_kind, count, value, cap in (
            ("voucher", opts["vouchers"], opts["voucher_value"], 0),
            ("discount", opts["discounts"], opts["discount_bp"], opts["discount_cap"])):
        if count and value:
            body = {"type": "coupon.issue", "idempotency_key": f"coupon-{a.order_no}-{answer_kind}",
                    "user_id": a.user.user_id, "kind": answer_kind, "value": value,
                    "currency": actors.sc.traffic.currency, "count": count}
            if cap:
                body["cap"] = cap
            actors.request(a.merchant.merchant_id, body,
                           on_answer=lambda answer, k=answer_kind: _kept(answer, k, wallet))


def _kept(answer: dict, kind: str, wallet: list) -> None:
    if answer.get("ok"):
        wallet.extend((kind, cid) for cid in answer["coupon_ids"])


def _checkout(actors, a, opts: dict, wallet: list) -> None:
    rng = _state(actors)["combined"]
    coupon = wallet.pop(0) if wallet and rng.random() < opts["coupon_probability"] else None
    cut = 0
    if coupon is not None:
        cut = opts["voucher_value"] if coupon[0] == "voucher" else min(
            opts["discount_cap"] or a.amount, -(-a.amount * opts["discount_bp"] // 10_000))
    if a.amount - cut < 2:   # too small an order for its coupon: keep the coupon
        if coupon is not None:
            wallet.insert(0, coupon)
        coupon, cut = None, 0
    balance = (a.amount - cut) // 2 if rng.random() < opts["topup_probability"] else 0
    refund = rng.random() < opts["refund_probability"]
    refund_delay = rng.randint(*REFUND_DELAY_MS)
    if balance:
        top = balance + (balance * MARGIN_BP + 9_999) // 10_000
        card_request(actors, a, "topup.create", top, "-t", lambda answer: _pay(
            actors, a, coupon, balance if _succeeded(answer) else 0, refund, refund_delay))
    else:
        _pay(actors, a, coupon, 0, refund, refund_delay)


def _succeeded(answer: dict) -> bool:
    return bool(answer.get("ok")) and answer.get("status") == "SUCCEEDED"


def _pay(actors, a, coupon, balance: int, refund: bool, refund_delay: int) -> None:
    now = actors.world.now
    body = {"type": "pay.create", "idempotency_key": f"pay-{a.order_no}",
            "merchant_order_no": a.order_no, "order_time": now, "user_id": a.user.user_id,
            "product": "combined", "amount": a.amount, "currency": actors.sc.traffic.currency,
            "notify_url": a.merchant.notify_url, "device_id": a.user.device_id,
            "subject": f"order {a.order_no}", "card_no": a.user.card_no}
    if coupon is not None:
        body["coupon_id"] = coupon[1]
    if balance:
        body["balance_amount"] = balance

    def paid(answer: dict) -> None:
        if refund and _succeeded(answer):
            request = {"type": "refund.create", "idempotency_key": f"refund-{a.order_no}",
                       "order_id": answer["order_id"], "refund_no": f"{a.order_no}-r1",
                       "amount": a.amount}
            actors.world.later(refund_delay, actors.request, a.merchant.merchant_id, request)
    actors.request(a.merchant.merchant_id, body, on_answer=paid)


# -- trade ------------------------------------------------------------------------------------

def start_trade(actors, a) -> None:
    opts, rng = _opts(actors, "trade", TRADE), _state(actors)["trade"]
    n = rng.randint(1, max(1, min(opts["attempts"], a.amount)))
    cuts = sorted(rng.sample(range(1, a.amount), n - 1)) if n > 1 else []
    parts = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, a.amount], strict=True)]
    if rng.random() < opts["overpay_probability"]:
        parts[-1] += rng.randint(1, max(1, a.amount // 5))
    if len(parts) > 1 and rng.random() < opts["abandon_probability"]:
        parts.pop()
    body = {"type": "trade.create", "idempotency_key": f"trade-{a.order_no}",
            "merchant_order_no": a.order_no, "user_id": a.user.user_id, "amount": a.amount,
            "currency": actors.sc.traffic.currency, "notify_url": a.merchant.notify_url}

    def created(answer: dict) -> None:
        if answer.get("ok"):
            for i, part in enumerate(parts):
                actors.world.later(1_000 + i * opts["gap"], _attempt, actors, a,
                                   answer["trade_id"], i + 1, part)
    actors.request(a.merchant.merchant_id, body, on_answer=created)


def _attempt(actors, a, trade_id: str, n: int, amount: int) -> None:
    body = {"type": "trade.pay", "idempotency_key": f"tpay-{a.order_no}-{n}",
            "trade_id": trade_id, "amount": amount, "product": "quick",
            "card_no": a.user.card_no}
    actors.request(a.merchant.merchant_id, body, on_answer=lambda answer: None)


def _trade_settings(options: dict | None) -> TradeSettings:
    return TradeSettings(ttl_ms=(options or TRADE)["ttl"])


JOURNEYS = {
    "combined": Journey(start=start_combined, needs=("quick",), options=_options(COMBINED)),
    "trade": Journey(start=start_trade, needs=("quick",), options=_options(TRADE),
                     paysys=_trade_settings),
}
