"""The users of the internal products: balance pay, virtual coins, credit pay.

- balance: with `topup_probability` the user tops up first (`topup.create`, a card charge of the
  amount plus a margin for the fee) and pays once the top-up succeeded; otherwise pays at once
  and, short of balance, is declined (INSUFFICIENT_BALANCE).
- coins: with `buy_probability` the user buys coins by card (`coins.buy`) and then spends a
  whole number of them (amount rounded to the coin price); otherwise spends coins never bought
  (INSUFFICIENT_COINS).
- credit: pays on the credit line; with `big_share` the amount is beyond the whole line
  (CREDIT_LIMIT); after a success, with `repay_probability` the user repays it by card later.
`[products.coins]` price (minor units per coin) and `[products.credit]` limit / overdraft_bp are
also the payment system's settings (paysys.products.accounts CoinSettings, CreditSettings).
"""

from paysys.products.accounts import CoinSettings, CreditSettings
from sim.journeys.base import Journey
from sim.rng import stream

MARGIN_BP = 200          # a top-up covers the payment plus 2 % (the top-up fee)
REPAY_DELAY_MS = (30_000, 600_000)


def _settings(defaults: dict):
    """An options parser: a table with only the keys of `defaults`, each a number checked by
    its default's type (int: integer >= 0, float: a probability)."""
    def options(parser, value, key: str) -> dict:
        if not isinstance(value, dict):
            raise parser.fail(key, "expected a table", value)
        parser.known(value, key, tuple(defaults))
        out = dict(defaults)
        for name, given in value.items():
            sub = f"{key}.{name}"
            if isinstance(defaults[name], float):
                out[name] = parser.number(given, sub)
                if out[name] > 1:
                    raise parser.fail(sub, "expected a probability between 0 and 1", given)
            else:
                out[name] = parser.integer(given, sub, 1 if name in ("price", "limit") else 0)
        return out
    return options


BALANCE = {"topup_probability": 0.7}
COINS = {"price": CoinSettings().price, "buy_probability": 0.8}
CREDIT = {"limit": CreditSettings().limit, "overdraft_bp": CreditSettings().overdraft_bp,
          "big_share": 0.1, "repay_probability": 0.5}


def _opts(actors, product: str, defaults: dict) -> dict:
    return {**defaults, **(actors.sc.products.get(product) or {})}


def _rng(actors, name: str):
    """The journey's own random stream `journey:<name>`, kept with this run's actors."""
    cache = actors.__dict__.setdefault("_journey_rngs", {})
    if name not in cache:
        cache[name] = stream(actors.sc.seed, f"journey:{name}")
    return cache[name]


def _pay(actors, a, product: str, amount: int, suffix: str = "", then=None) -> None:
    """A pay.create of `product`; a success may be refunded later (the traffic's refund
    probability, in part with its partial share), then `then(answer)` if given."""
    now = actors.world.now
    body = {"type": "pay.create", "idempotency_key": f"pay-{a.order_no}{suffix}",
            "merchant_order_no": f"{a.order_no}{suffix}", "order_time": now,
            "user_id": a.user.user_id, "product": product, "amount": amount,
            "currency": actors.sc.traffic.currency, "notify_url": a.merchant.notify_url,
            "device_id": a.user.device_id, "subject": f"order {a.order_no}"}
    rng, traffic = _rng(actors, "refunds"), actors.sc.traffic
    refund = rng.random() < traffic.refund_probability
    part = amount > 1 and rng.random() < traffic.partial_refund_probability
    share = rng.randint(1, amount - 1) if part else amount
    delay = traffic.refund_delay.sample(rng)

    def answered(answer: dict) -> None:
        if refund and _succeeded(answer):
            refund_no = f"{answer['order_id']}-r1"
            actors.world.later(delay, actors.request, a.merchant.merchant_id, {
                "type": "refund.create", "idempotency_key": f"refund-{refund_no}",
                "order_id": answer["order_id"], "refund_no": refund_no, "amount": share},
                1, lambda _answer: None)
        if then is not None:
            then(answer)
    actors.request(a.merchant.merchant_id, body, on_answer=answered)


def card_request(actors, a, kind: str, amount: int, suffix: str, on_answer=None) -> None:
    """A top-up-like request (topup.create, coins.buy, credit.repay) paid by the user's card."""
    body = {"type": kind, "idempotency_key": f"{kind}-{a.order_no}{suffix}",
            "request_no": f"{a.order_no}{suffix}", "user_id": a.user.user_id,
            "card_no": a.user.card_no, "amount": amount, "currency": actors.sc.traffic.currency}
    actors.request(a.merchant.merchant_id, body, on_answer=on_answer)


def _succeeded(answer: dict) -> bool:
    return bool(answer.get("ok")) and answer.get("status") == "SUCCEEDED"


def start_balance(actors, a) -> None:
    opts = _opts(actors, "balance", BALANCE)
    if _rng(actors, "balance").random() < opts["topup_probability"]:
        top = a.amount + (a.amount * MARGIN_BP + 9_999) // 10_000
        card_request(actors, a, "topup.create", top, "-t", lambda answer: _succeeded(answer)
                     and _pay(actors, a, "balance", a.amount))
    else:
        _pay(actors, a, "balance", a.amount)


def start_coins(actors, a) -> None:
    opts = _opts(actors, "coins", COINS)
    price = opts["price"]
    coins = max(1, a.amount // price)
    if _rng(actors, "coins").random() < opts["buy_probability"]:
        cost = coins * price
        cost += (cost * MARGIN_BP + 9_999) // 10_000 + price
        card_request(actors, a, "coins.buy", cost, "-c", lambda answer: _succeeded(answer)
                     and _pay(actors, a, "coins", coins * price))
    else:
        _pay(actors, a, "coins", coins * price)


def start_credit(actors, a) -> None:
    opts = _opts(actors, "credit", CREDIT)
    rng = _rng(actors, "credit")
    amount = a.amount
    if rng.random() < opts["big_share"]:
        amount = opts["limit"] + opts["limit"] * opts["overdraft_bp"] // 10_000 + a.amount
    repay = rng.random() < opts["repay_probability"]
    delay = rng.randint(*REPAY_DELAY_MS)

    def paid(answer: dict) -> None:
        if repay and _succeeded(answer):
            actors.world.later(delay, card_request, actors, a, "credit.repay", amount // 2 or 1,
                               "-r")
    _pay(actors, a, "credit", amount, then=paid)


def coin_settings(options: dict | None) -> CoinSettings:
    return CoinSettings(price=(options or COINS)["price"])


def credit_settings(options: dict | None) -> CreditSettings:
    o = options or CREDIT
    return CreditSettings(limit=o["limit"], overdraft_bp=o["overdraft_bp"])


JOURNEYS = {
    "balance": Journey(start=start_balance, needs=("quick",), options=_settings(BALANCE)),
    "coins": Journey(start=start_coins, needs=("quick",), options=_settings(COINS),
                     paysys=coin_settings),
    "credit": Journey(start=start_credit, needs=("quick",), options=_settings(CREDIT),
                      paysys=credit_settings),
}
