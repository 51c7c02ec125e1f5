"""Money leaving the platform's account at the bank: refunds, payouts, reserve transfers.

Owns `Outflows`, the part of the quick-pay bank (mockbanks/bank.py) answering
- `bank.refund` (see the bank's docstring): takes back a charge of a SUCCESS pay, truth kind
  `refund`; the records are the bank's `pays`/`refunds`/`cards` dicts, shared with it;
- `bank.payout` {req_id, account "merchant:<id>", amount, currency}: moves the platform's account
  -> `merchant:<id>` (opened at 0 on its first payout), truth kind `payout`;
- `bank.transfer` {req_id, from, to, amount, currency}: moves between the platform's two accounts
  at the bank (`platform` and `reserve`, opened by the bank with its `reserve_balance`), truth
  kind `transfer`.
Payouts and transfers reply {req_id, result SUCCESS|DECLINED, code None|INSUFFICIENT_FUNDS,
bank_txn_id, amount}. A repeated req_id (of the same type) is answered from the record and never
moves money twice; an invalid request is the bank's INVALID_PARAM (nothing recorded). No fee is
charged; payouts and transfers are not listed in statements. Money moves at the request's
completion instant (`done_ms`).
"""

from collections.abc import Callable

from mockbanks.bank_records import Card, Pay, first_bad, invalid
from mockbanks.truth import Truth, ref_of

RESERVE_ACCOUNT = "reserve"
MERCHANT_PREFIX = "merchant:"


def _refund_answer(refund: Pay) -> dict:
    return {"req_id": refund.req_id, "result": refund.status, "code": refund.code,
            "bank_txn_id": refund.bank_txn_id, "amount": refund.amount}


class Outflows:
    """Refunds, payouts and transfers of one bank; `next_id(prefix)` numbers its transactions."""

    def __init__(self, truth: Truth, platform_account: str, currency: str,
                 next_id: Callable[[str], str], pays: dict[str, Pay], refunds: dict[str, Pay],
                 cards: dict[str, Card]) -> None:
        self.truth, self.platform_account, self.currency = truth, platform_account, currency
        self.pays, self.refunds, self.cards = pays, refunds, cards
        self._next_id = next_id
        self._done: dict[tuple[str, str], dict] = {}     # (kind, req_id) -> stored answer

    def refund(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        problem = first_bad(body, ("req_id", "orig_req_id"), True, self.currency)
        orig_txn_id = body.get("orig_txn_id")
        if problem is None and orig_txn_id is not None and (not isinstance(orig_txn_id, str)
                                                        or not orig_txn_id):
            problem = "orig_txn_id", f"expected a non-empty string or absent, got {orig_txn_id!r}"
        if problem:
            return invalid(body, problem)
        req_id, amount = body["req_id"], body["amount"]
        if req_id in self.refunds:
            return _refund_answer(self.refunds[req_id]), []
        pay = self.pays.get(body["orig_req_id"])
        charge = None
        if pay is not None and pay.status == "SUCCESS" and pay.charges:
            charge = pay.charges[0] if orig_txn_id is None else next(
                (c for c in pay.charges if c.txn_id == orig_txn_id), None)
        code = None
        if charge is None:
            code = "NOT_FOUND"
        elif charge.refunded + amount > charge.amount:
            code = "EXCEEDS_REFUNDABLE"
        elif self.truth.balance(self.platform_account, self.currency) < amount:
            code = "INSUFFICIENT_FUNDS"
        refund = Pay(req_id, "DECLINED", code, amount)
        self.refunds[req_id] = refund
        if code is not None:
            return _refund_answer(refund), []
        refund.status, refund.code, refund.bank_txn_id = "SUCCESS", None, self._next_id("BR")
        refund.card_no = pay.card_no
        charge.refunded += amount
        card, ref = self.cards[pay.card_no], ref_of(req_id)
        self.truth.move(self.platform_account, card.account, amount, self.currency, done_ms, ref,
                        refund.bank_txn_id, "refund")
        txn = self.truth.record(ref, refund.bank_txn_id, "refund", amount, 0, self.currency,
                                done_ms)
        data = {**txn, "req_id": req_id, "account": card.account, "user_id": card.user_id,
                "orig_req_id": pay.req_id}
        if orig_txn_id is not None:
            data["orig_txn_id"] = orig_txn_id
        event = ("event", "bank.txn", ref, data)
        return _refund_answer(refund), [event]

    def payout(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        problem = first_bad(body, ("req_id", "account"), True, self.currency)
        account = body.get("account")
        if problem is None and (not account.startswith(MERCHANT_PREFIX)
                                or account == MERCHANT_PREFIX):
            problem = "account", f"expected 'merchant:<merchant_id>', got {account!r}"
        if problem:
            return invalid(body, problem)
        return self._move("payout", body, self.platform_account, account, done_ms)

    def transfer(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        problem = first_bad(body, ("req_id", "from", "to"), True, self.currency)
        own = (RESERVE_ACCOUNT, self.platform_account)
        for field in ("from", "to"):
            if problem is None and body[field] not in own:
                problem = field, f"expected one of {', '.join(own)}, got {body[field]!r}"
        if problem is None and body["from"] == body["to"]:
            problem = "to", f"same account as from ({body['to']!r})"
        if problem:
            return invalid(body, problem)
        return self._move("transfer", body, body["from"], body["to"], done_ms)

    def _move(self, kind: str, body: dict, source: str, target: str,
              done_ms: int) -> tuple[dict, list]:
        req_id, amount, cur = body["req_id"], body["amount"], self.currency
        if (kind, req_id) in self._done:
            return dict(self._done[(kind, req_id)]), []
        answer = {"req_id": req_id, "result": "DECLINED", "code": "INSUFFICIENT_FUNDS",
                  "bank_txn_id": None, "amount": amount}
        self._done[(kind, req_id)] = answer
        if not self.truth.has(source, cur) or self.truth.balance(source, cur) < amount:
            return dict(answer), []
        if not self.truth.has(target, cur):
            self.truth.open(target, cur, 0)
        txn_id, ref = self._next_id("BP" if kind == "payout" else "BX"), ref_of(req_id)
        self.truth.move(source, target, amount, cur, done_ms, ref, txn_id, kind)
        txn = self.truth.record(ref, txn_id, kind, amount, 0, cur, done_ms)
        answer.update(result="SUCCESS", code=None, bank_txn_id=txn_id)
        return dict(answer), [("event", "bank.txn", ref, {**txn, "req_id": req_id,
                                                          "from": source, "to": target})]
