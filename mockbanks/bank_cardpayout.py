"""Payouts to a user's bank card (提现 / 代付 to a card): a part of the quick-pay bank.

Owns `bank.card_payout` {req_id, user_id, card_no, amount, currency}: moves `amount` from the
platform's account to the card's account `card:<card_no>`, truth kind `payout` (ref = the
paysys movement id, the part of `req_id` before the first dot). Answers {req_id, result
SUCCESS|DECLINED, code None|INVALID_CARD|CARD_FROZEN|INSUFFICIENT_FUNDS, bank_txn_id, amount}.
A card the bank does not know, or of another user, is INVALID_CARD; a frozen card CARD_FROZEN
(money cannot land on it); the platform's account short of the amount INSUFFICIENT_FUNDS.
A repeated req_id is answered from the record and never pays twice; an invalid request is the
bank's INVALID_PARAM (nothing recorded). Money moves at the request's completion (`done_ms`).
Maintenance and rate limits refuse it like any request (mockbanks/bank.py). Not in statements.

mockbanks/bank.py lists `CardPayouts(self)` among its parts (`self._parts`).
"""

from mockbanks.bank_records import first_bad, invalid
from mockbanks.truth import ref_of

OP = "bank.card_payout"


class CardPayouts:
    """A part of the bank (mockbanks/bank.py): `ops()`, `next_deadline()`, `on_timer()`."""

    def __init__(self, bank) -> None:
        self.bank = bank
        self._done: dict[str, dict] = {}     # req_id -> stored answer

    def ops(self) -> dict:
        return {OP: self.card_payout}

    def next_deadline(self) -> int | None:
        return None

    def on_timer(self, now_ms: int) -> list[tuple]:
        return []

    def card_payout(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        bank = self.bank
        if problem := first_bad(body, ("req_id", "user_id", "card_no"), True, bank.currency):
            return invalid(body, problem)
        req_id, amount, cur = body["req_id"], body["amount"], bank.currency
        if req_id in self._done:
            return dict(self._done[req_id]), []
        answer = {"req_id": req_id, "result": "DECLINED", "code": None, "bank_txn_id": None,
                  "amount": amount}
        self._done[req_id] = answer
        card = bank._cards.get(body["card_no"])
        if card is None or card.user_id != body["user_id"]:
            answer["code"] = "INVALID_CARD"
        elif card.frozen:
            answer["code"] = "CARD_FROZEN"
        elif bank.truth.balance(bank.platform_account, cur) < amount:
            answer["code"] = "INSUFFICIENT_FUNDS"
        if answer["code"] is not None:
            return dict(answer), []
        txn_id, ref = bank._next_id("BC"), ref_of(req_id)
        bank.truth.move(bank.platform_account, card.account, amount, cur, done_ms, ref, txn_id,
                        "payout")
        txn = bank.truth.record(ref, txn_id, "payout", amount, 0, cur, done_ms)
        answer.update(result="SUCCESS", bank_txn_id=txn_id)
        return dict(answer), [("event", "bank.txn", ref, {**txn, "req_id": req_id,
                                                          "from": bank.platform_account,
                                                          "to": card.account})]
