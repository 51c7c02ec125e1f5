"""Pre-authorisations at the quick-pay bank (预授权): holds on a card, released, captured or
expired; plus, through `ops()`, the same-day cancel of a payment (mockbanks/bank_cancel.py).

Owns `Preauth`, a part of the bank (mockbanks/bank.py: `ops()`, `next_deadline()`,
`on_timer(now_ms)`). Every request is de-duplicated by its `req_id`: a repeat is answered from
the record and never moves money twice; an invalid one is the bank's INVALID_PARAM.

| type | fields | reply fields |
|---|---|---|
| `bank.preauth` | `req_id`, `agreement_no`, `amount`, `currency`, optional `hold_ms` | `result` (`SUCCESS`/`DECLINED`/`ERROR`), `code`, `preauth_no`, `amount`, `expire_ms` |
| `bank.preauth.cancel` | `req_id`, `preauth_req_id`, `amount` (= what is held: full only), `currency` | `result`, `code`, `amount` |
| `bank.preauth.capture` | `req_id`, `preauth_req_id`, `amount` (<= held), `currency` | `result`, `code`, `bank_txn_id`, `amount`, `released` |
| `bank.preauth.capture_cancel` | `req_id`, `capture_req_id`, `amount` (= captured: full only), `currency` | `result`, `code`, `bank_txn_id`, `amount` |
| `bank.preauth.query` | `req_id`, `orig_req_id` (any request above) | `orig_req_id`, `result` of that request (`SUCCESS`/`DECLINED`/`NOT_FOUND`), `code`, `state` of its hold (`HELD`/`CAPTURED`/`CANCELLED`/`EXPIRED`), `held`, `expire_ms`, `bank_txn_id`, `amount` |

Money (ground truth, so conservation stays exact): a hold moves the amount from the card to the
bank's account `holds`; a cancel or an expiry moves it back; a capture of c moves c - fee to the
platform and the fee to `bank_fees`, and releases the rest to the card (truth txn `pay`, ref =
the capture's paysys order, recorded as a pay of the bank under the capture's req_id so that
`bank.query`, `bank.refund` and `bank.cancel` know it); a capture cancel takes the capture back
into the hold, fee included (truth txn `refund`, ref = the paysys refund id): the pre-auth is
HELD again for the captured amount (what was released stays released) until its original
expiry. A hold expires `hold_ms` (default HOLD_MS, at most MAX_HOLD_MS) after it was granted.

Decline codes: `CARD_FROZEN`, `INSUFFICIENT_FUNDS`, `LIMIT_EXCEEDED`, `AGREEMENT_INVALID`
(magic cards as for pays: 0002, 9995; 0119 answers ERROR/PROCESSING_ERROR and holds nothing;
4242 and 3220 always hold, topped up from `magic`), `NOT_FOUND` (no such pre-auth or capture),
`EXPIRED`, `BAD_STATE` (cancelled, captured, not captured...), `NOT_FULL` (a cancel or capture
cancel of another amount), `EXCEEDS_HELD`, `INSUFFICIENT_FUNDS` (capture cancel: the platform's
account is short).
"""

import heapq
from dataclasses import dataclass

from mockbanks.bank_cancel import Cancels
from mockbanks.bank_records import (
    FEE_ACCOUNT,
    FUNDED_MAGIC,
    MAGIC_ACCOUNT,
    MAGIC_FAILURES,
    Charge,
    Pay,
    first_bad,
    invalid,
)
from mockbanks.truth import ref_of

HOLD_ACCOUNT = "holds"
HOLD_MS = 30 * 86_400_000          # a hold's life when the request names none
MAX_HOLD_MS = 30 * 86_400_000
# the life of a hold: state -> {event: new state}; absent = final
HOLD_TRANSITIONS: dict[str, dict[str, str]] = {
    "HELD": {"cancel": "CANCELLED", "capture": "CAPTURED", "expire": "EXPIRED"},
    "CAPTURED": {"capture_cancel": "HELD"},
}


@dataclass(slots=True)
class Hold:
    req_id: str
    card_no: str | None
    amount: int                 # authorised
    result: str                 # answer to bank.preauth: SUCCESS / DECLINED / ERROR
    code: str | None
    preauth_no: str | None = None
    state: str | None = None    # HELD, CAPTURED, CANCELLED, EXPIRED (None: nothing held)
    held: int = 0               # held now
    expire_at: int = 0
    capture_req_id: str | None = None

    def fire(self, event: str) -> None:
        try:
            self.state = HOLD_TRANSITIONS[self.state][event]
        except KeyError:
            raise ValueError(f"hold {self.req_id}: no transition {event!r} from {self.state}") from None


class Preauth:
    """A part of the bank (mockbanks/bank.py): pre-authorisations, and same-day cancels."""

    def __init__(self, bank) -> None:
        self.bank = bank
        self.truth, self.currency = bank.truth, bank.currency
        self.truth.open(HOLD_ACCOUNT, self.currency, 0)
        self._holds: dict[str, Hold] = {}       # bank.preauth req_id -> its hold
        self._done: dict[str, tuple[str, dict]] = {}   # op req_id -> (hold req_id, answer)
        self._expiry: list[tuple[int, str]] = []     # (expire_at, hold req_id), lazily cleaned
        self._captures: dict[str, str] = {}     # capture req_id -> its hold's req_id
        self.cancels = Cancels(bank)

    def ops(self) -> dict:
        """request type -> handler `(body, now_ms, done_ms) -> (reply, effects)`."""
        return {"bank.preauth": self._preauth, "bank.preauth.cancel": self._cancel,
                "bank.preauth.capture": self._capture,
                "bank.preauth.capture_cancel": self._capture_cancel,
                "bank.preauth.query": self._query, **self.cancels.ops()}

    def next_deadline(self) -> int | None:
        while self._expiry and self._stale(self._expiry[0]):
            heapq.heappop(self._expiry)
        return self._expiry[0][0] if self._expiry else None

    def _stale(self, item: tuple[int, str]) -> bool:
        hold = self._holds[item[1]]
        return hold.state != "HELD" or hold.expire_at != item[0]

    def on_timer(self, now_ms: int) -> list[tuple]:
        return self._expire_due(now_ms)

    def _expire_due(self, now_ms: int) -> list[tuple]:
        effects = []
        while (due := self.next_deadline()) is not None and due <= now_ms:
            _, req_id = heapq.heappop(self._expiry)
            hold = self._holds[req_id]
            hold.fire("expire")
            effects.append(self._release(hold, hold.held, hold.expire_at, "expire"))
            hold.held = 0
        return effects

    # -- money -------------------------------------------------------------------------------
    def _card_account(self, hold: Hold) -> str:
        return self.bank._cards[hold.card_no].account

    def _release(self, hold: Hold, amount: int, at_ms: int, why: str) -> tuple:
        """Give `amount` of the hold back to the card; the event telling it."""
        account, ref = self._card_account(hold), ref_of(hold.req_id)
        self.truth.move(HOLD_ACCOUNT, account, amount, self.currency, at_ms, ref,
                        hold.preauth_no, f"release:{why}")
        return ("event", "bank.hold", ref, {"req_id": hold.req_id, "preauth_no": hold.preauth_no,
                                            "action": why, "amount": amount, "account": account,
                                            "state": hold.state})

    # -- bank.preauth ------------------------------------------------------------------------
    def _preauth(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        effects = self._expire_due(now_ms)
        problem = first_bad(body, ("req_id", "agreement_no"), True, self.currency)
        hold_ms = body.get("hold_ms", HOLD_MS)
        if problem is None and (isinstance(hold_ms, bool) or not isinstance(hold_ms, int)
                                or hold_ms <= 0):
            problem = "hold_ms", f"expected a positive integer of ms or absent, got {hold_ms!r}"
        if problem:
            return invalid(body, problem)
        req_id, amount = body["req_id"], body["amount"]
        if req_id in self._holds:
            return self._preauth_answer(self._holds[req_id]), effects
        bank = self.bank
        card_no = bank._agreements.get(body["agreement_no"])
        card = bank._cards.get(card_no) if card_no else None
        hold = self._holds[req_id] = Hold(req_id, card_no, amount, "DECLINED", "AGREEMENT_INVALID")
        if card is None:
            return self._preauth_answer(hold), effects
        suffix = card_no[-4:]
        if suffix in MAGIC_FAILURES:
            hold.result, hold.code = MAGIC_FAILURES[suffix]
            return self._preauth_answer(hold), effects
        cur = self.currency
        if suffix in FUNDED_MAGIC:
            short = amount - self.truth.balance(card.account, cur)
            if short > 0:
                self.truth.move(MAGIC_ACCOUNT, card.account, short, cur, done_ms,
                                ref_of(req_id), req_id, "magic")
        else:
            day = bank.local_day(now_ms)
            hold.code = bank._decline_code(card, amount, day)
            if hold.code is not None:
                return self._preauth_answer(hold), effects
            card.day, card.used = day, (card.used if card.day == day else 0) + amount
        hold.result, hold.code, hold.preauth_no = "SUCCESS", None, bank._next_id("BH")
        hold.state, hold.held = "HELD", amount
        hold.expire_at = done_ms + min(hold_ms, MAX_HOLD_MS)
        heapq.heappush(self._expiry, (hold.expire_at, req_id))
        self.truth.move(card.account, HOLD_ACCOUNT, amount, cur, done_ms, ref_of(req_id),
                        hold.preauth_no, "hold")
        effects.append(("event", "bank.hold", ref_of(req_id), {
            "req_id": req_id, "preauth_no": hold.preauth_no, "action": "hold", "amount": amount,
            "account": card.account, "state": hold.state, "expire_ms": hold.expire_at}))
        return self._preauth_answer(hold), effects

    @staticmethod
    def _preauth_answer(hold: Hold) -> dict:
        return {"req_id": hold.req_id, "result": hold.result, "code": hold.code,
                "preauth_no": hold.preauth_no, "amount": hold.amount,
                "expire_ms": hold.expire_at or None}

    # -- operations on a hold ------------------------------------------------------------------
    def _op(self, body: dict, now_ms: int, target: str) -> tuple[dict | None, Hold | None, list]:
        """The common start of an operation on a hold: (stored or invalid answer, hold, effects)."""
        effects = self._expire_due(now_ms)
        if problem := first_bad(body, ("req_id", target), True, self.currency):
            return invalid(body, problem)[0], None, effects
        if body["req_id"] in self._done:
            return dict(self._done[body["req_id"]][1]), None, effects
        key = self._captures.get(body[target], "") if target == "capture_req_id" else body[target]
        hold = self._holds.get(key)
        return None, hold, effects

    def _answer(self, body: dict, hold: Hold | None, code: str | None, **fields) -> dict:
        answer = {"req_id": body["req_id"], "result": "DECLINED" if code else "SUCCESS",
                  "code": code, "amount": body["amount"], **fields}
        self._done[body["req_id"]] = (hold.req_id if hold else "", answer)
        return dict(answer)

    @staticmethod
    def _refusal(hold: Hold | None, wanted: str) -> str | None:
        """Why an operation needing state `wanted` cannot act on `hold`, or None."""
        if hold is None or hold.state is None:
            return "NOT_FOUND"
        if hold.state == "EXPIRED":
            return "EXPIRED"
        return None if hold.state == wanted else "BAD_STATE"

    def _cancel(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        stored, hold, effects = self._op(body, now_ms, "preauth_req_id")
        if stored is not None:
            return stored, effects
        code = self._refusal(hold, "HELD")
        if code is None and body["amount"] != hold.held:
            code = "NOT_FULL"
        if code:
            return self._answer(body, hold, code), effects
        hold.fire("cancel")
        effects.append(self._release(hold, hold.held, done_ms, "cancel"))
        hold.held = 0
        return self._answer(body, hold, None), effects

    def _capture(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        stored, hold, effects = self._op(body, now_ms, "preauth_req_id")
        if stored is not None:
            return stored, effects
        code = self._refusal(hold, "HELD")
        amount = body["amount"]
        if code is None and amount > hold.held:
            code = "EXCEEDS_HELD"
        if code:
            return self._answer(body, hold, code, bank_txn_id=None, released=0), effects
        bank, cur, req_id = self.bank, self.currency, body["req_id"]
        hold.fire("capture")
        rest, hold.held, hold.capture_req_id = hold.held - amount, 0, req_id
        self._captures[req_id] = hold.req_id
        txn_id, ref, fee = bank._next_id("BT"), ref_of(req_id), bank.fee_rule.fee(amount)
        self.truth.move(HOLD_ACCOUNT, bank.platform_account, amount - fee, cur, done_ms, ref,
                        txn_id, "pay")
        self.truth.move(HOLD_ACCOUNT, FEE_ACCOUNT, fee, cur, done_ms, ref, txn_id, "fee")
        txn = self.truth.record(ref, txn_id, "pay", amount, fee, cur, done_ms)
        # a pay of the bank from now on: bank.query / bank.refund / bank.cancel know it
        bank._pays[req_id] = Pay(req_id, "SUCCESS", None, amount, hold.card_no, txn_id,
                                 charges=[Charge(txn_id, amount)])
        self.cancels.charged(txn_id, done_ms)
        account = self._card_account(hold)
        effects.append(("event", "bank.txn", ref, {**txn, "req_id": req_id, "account": account,
                                                   "preauth_req_id": hold.req_id}))
        if rest:
            effects.append(self._release(hold, rest, done_ms, "capture"))
        return self._answer(body, hold, None, bank_txn_id=txn_id, released=rest), effects

    def _capture_cancel(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        stored, hold, effects = self._op(body, now_ms, "capture_req_id")
        if stored is not None:
            return stored, effects
        code = self._refusal(hold, "CAPTURED")
        if code is None and hold.capture_req_id != body["capture_req_id"]:
            code = "BAD_STATE"      # captured again since, by another capture
        pay = self.bank._pays.get(body["capture_req_id"]) if code is None else None
        charge = pay.charges[0] if pay is not None else None
        bank, cur, amount = self.bank, self.currency, body["amount"]
        fee = bank.fee_rule.fee(amount)
        if code is None and (amount != charge.amount or charge.refunded):
            code = "NOT_FULL"
        if code is None and self.truth.balance(bank.platform_account, cur) < amount - fee:
            code = "INSUFFICIENT_FUNDS"
        if code:
            return self._answer(body, hold, code, bank_txn_id=None), effects
        req_id, ref = body["req_id"], ref_of(body["req_id"])
        txn_id = bank._next_id("BR")
        charge.refunded = amount
        hold.fire("capture_cancel")
        hold.held, hold.capture_req_id = amount, None
        heapq.heappush(self._expiry, (hold.expire_at, hold.req_id))
        self.truth.move(bank.platform_account, HOLD_ACCOUNT, amount - fee, cur, done_ms, ref,
                        txn_id, "capture_cancel")
        self.truth.move(FEE_ACCOUNT, HOLD_ACCOUNT, fee, cur, done_ms, ref, txn_id, "fee_back")
        txn = self.truth.record(ref, txn_id, "refund", amount, 0, cur, done_ms)
        effects.append(("event", "bank.txn", ref, {
            **txn, "req_id": req_id, "orig_req_id": body["capture_req_id"], "fee_returned": fee,
            "account": HOLD_ACCOUNT, "preauth_req_id": hold.req_id}))
        return self._answer(body, hold, None, bank_txn_id=txn_id), effects

    # -- bank.preauth.query ----------------------------------------------------------------------
    def _query(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        effects = self._expire_due(now_ms)
        if problem := first_bad(body, ("req_id", "orig_req_id"), False, self.currency):
            return invalid(body, problem)
        orig = body["orig_req_id"]
        view = {"req_id": body["req_id"], "orig_req_id": orig, "result": "NOT_FOUND",
                "code": None, "state": None, "held": 0, "expire_ms": None,
                "bank_txn_id": None, "amount": None}
        hold = self._holds.get(orig)
        if hold is not None:
            view.update(self._preauth_answer(hold), req_id=body["req_id"])
            view["result"] = "DECLINED" if hold.result == "ERROR" else hold.result
        elif orig in self._done:
            hold_id, answer = self._done[orig]
            hold = self._holds.get(hold_id)
            view.update(answer, req_id=body["req_id"])
        if hold is not None:
            view.update(state=hold.state, held=hold.held, expire_ms=hold.expire_at or None)
        return view, effects
