"""The users and merchants of the money movements: top-up, withdrawal, transfer, payout.

- topup: the user tops up their balance by card (`topup.create`).
- withdraw: the user tops up, then withdraws part of it to the card (`withdraw.create`); with
  `wrong_card_share` the card number given is another user's (the bank declines INVALID_CARD and
  the frozen balance is released).
- transfer: the user tops up, then transfers part of it to another user; with `self_share` to
  themselves, with `overdraw_share` far more than they hold (both refused).
- payout: the merchant pays a user: to the card or (`wallet_share`) to the wallet; a merchant
  whose balance is short is refused.
"""

from sim.journeys.accounts import _rng, _settings, _succeeded, card_request
from sim.journeys.base import Journey

WITHDRAW = {"wrong_card_share": 0.1}
TRANSFER = {"self_share": 0.1, "overdraw_share": 0.1}
PAYOUT = {"wallet_share": 0.4}
MARGIN_BP = 200
THEN_MS = (2_000, 30_000)       # from a top-up's answer to what the user does next


def _opts(actors, product: str, defaults: dict) -> dict:
    return {**defaults, **(actors.sc.products.get(product) or {})}


def _body(actors, a, kind: str, amount: int, suffix: str, **fields) -> dict:
    return {"type": kind, "idempotency_key": f"{kind}-{a.order_no}{suffix}",
            "request_no": f"{a.order_no}{suffix}", "user_id": a.user.user_id, "amount": amount,
            "currency": actors.sc.traffic.currency, **fields}


def _then(actors, a, fn) -> None:
    """Top up the arrival's amount plus the fee margin, then `fn()` once it succeeded."""
    top = a.amount + (a.amount * MARGIN_BP + 9_999) // 10_000
    rng = _rng(actors, "movements")
    delay = rng.randint(*THEN_MS)
    card_request(actors, a, "topup.create", top, "-t",
                 lambda answer: _succeeded(answer) and actors.world.later(delay, fn))


def start_topup(actors, a) -> None:
    card_request(actors, a, "topup.create", a.amount, "")


def start_withdraw(actors, a) -> None:
    opts = _opts(actors, "withdraw", WITHDRAW)
    rng = _rng(actors, "withdraw")
    card = a.user.card_no
    if rng.random() < opts["wrong_card_share"]:
        others = [u for u in actors.users if u.user_id != a.user.user_id]
        card = others[rng.randrange(len(others))].card_no if others else card
    amount = max(1, a.amount // 2)
    _then(actors, a, lambda: actors.request(a.merchant.merchant_id, _body(
        actors, a, "withdraw.create", amount, "-w", card_no=card)))


def start_transfer(actors, a) -> None:
    opts = _opts(actors, "transfer", TRANSFER)
    rng = _rng(actors, "transfer")
    draw = rng.random()
    others = [u for u in actors.users if u.user_id != a.user.user_id]
    to = others[rng.randrange(len(others))].user_id if others else a.user.user_id
    amount = max(1, a.amount // 2)
    if draw < opts["self_share"]:
        to = a.user.user_id
    elif draw < opts["self_share"] + opts["overdraw_share"]:
        amount = a.amount * 100
    _then(actors, a, lambda: actors.request(a.merchant.merchant_id, _body(
        actors, a, "transfer.create", amount, "-x", to_user_id=to)))


def start_payout(actors, a) -> None:
    opts = _opts(actors, "payout", PAYOUT)
    wallet = _rng(actors, "payout").random() < opts["wallet_share"] and any(
        c.kind == "wechat" for c in actors.sc.channels)
    fields = {"to": "wallet"} if wallet else {"to": "card", "card_no": a.user.card_no}
    actors.request(a.merchant.merchant_id, _body(actors, a, "payout.create", a.amount, "",
                                                 **fields))


JOURNEYS = {
    "topup": Journey(start=start_topup, needs=("quick",)),
    "withdraw": Journey(start=start_withdraw, needs=("quick",), options=_settings(WITHDRAW)),
    "transfer": Journey(start=start_transfer, needs=("quick",), options=_settings(TRANSFER)),
    "payout": Journey(start=start_payout, needs=("quick",), options=_settings(PAYOUT)),
}
