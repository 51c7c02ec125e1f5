"""Withholding mandates (协议支付/代扣) at the quick-pay bank: sign once, debit, revoke.

Owns `Mandates`, a part of the bank (mockbanks/bank.py), and its messages (docs/protocol.md):
- `bank.mandate.sign` {req_id, mandate_ref, user_id, card_no, merchant_id} from paysys
  (`mandate_ref` is paysys's mandate number): {req_id, result OK|DECLINED, code, mandate_no (the
  bank's), mandate_ref}. Declined: INVALID_CARD (no such card of that user), CARD_FROZEN (a frozen
  card or magic 0002). One mandate per (user, merchant) at a time: signing again while one is
  ACTIVE answers that one. A repeated req_id gets the stored answer.
- `bank.debit` {req_id, mandate_ref, merchant_id, user_id, amount, currency}: a debit under the
  mandate, answered like `bank.pay` {req_id, result SUCCESS|DECLINED|ERROR, code, bank_txn_id,
  amount}. Declined: MANDATE_REVOKED (revoked before the debit arrived), MANDATE_INVALID (no
  such mandate, or not of that merchant and user),
  INSUFFICIENT_FUNDS, LIMIT_EXCEEDED, CARD_FROZEN; magic cards as for pays (0002, 9995 declined,
  0119 ERROR/PROCESSING_ERROR without moving money; 4242 and 3220 always paid). The debit is a
  `Pay` of the bank's `_pays`: `bank.query`, `bank.close` and `bank.refund` work as for a pay.
- `bank.mandate.revoke` {req_id, mandate_no} from paysys, and `bank.user.mandate.revoke`
  {user_id, merchant_id} from the user (in the bank's app): {result OK|NOT_FOUND}; the mandate is
  REVOKED from that instant and every later debit is declined MANDATE_REVOKED.
Each change publishes ("event", "bank.mandate", mandate_ref, {mandate_no, status, at_ms, by}) so
the oracle can compare debits with the instant the bank revoked their mandate.

Mandate states are MANDATE_TRANSITIONS. Money moves when the debit arrives (card -> platform less
the fee, truth kind `pay`, ref = the paysys order), at its completion instant.
"""

from dataclasses import dataclass

from mockbanks.bank_records import FUNDED_MAGIC, MAGIC_FAILURES, Pay, first_bad, invalid
from mockbanks.truth import ref_of

# mandate status -> {event: new status}
MANDATE_TRANSITIONS: dict[str, dict[str, str]] = {
    "ACTIVE": {"revoke": "REVOKED"},
    "REVOKED": {},
}


@dataclass(slots=True)
class Mandate:
    mandate_no: str
    mandate_ref: str
    user_id: str
    merchant_id: str
    card_no: str
    status: str = "ACTIVE"
    revoked_ms: int | None = None

    def fire(self, event: str) -> None:
        try:
            self.status = MANDATE_TRANSITIONS[self.status][event]
        except KeyError:
            raise ValueError(f"mandate {self.mandate_no}: no transition {event!r} from "
                             f"{self.status}") from None


class Mandates:
    """The withholding mandates of one bank (a part of mockbanks/bank.py)."""

    def __init__(self, bank) -> None:
        self.bank = bank
        self._mandates: dict[str, Mandate] = {}     # bank mandate_no -> mandate
        self._by_ref: dict[str, Mandate] = {}       # paysys mandate_ref -> mandate
        self._active: dict[tuple[str, str], Mandate] = {}   # (user, merchant) -> ACTIVE one
        self._answers: dict[tuple[str, str], dict] = {}     # (type, req_id) -> stored answer

    def ops(self) -> dict:
        """request type -> handler `(body, now_ms, done_ms) -> (reply, effects)`."""
        return {"bank.mandate.sign": self._sign, "bank.mandate.revoke": self._revoke,
                "bank.user.mandate.revoke": self._user_revoke, "bank.debit": self._debit}

    def next_deadline(self) -> int | None:
        return None

    def on_timer(self, now_ms: int) -> list[tuple]:
        return []

    def mandate(self, mandate_ref: str) -> Mandate | None:
        return self._by_ref.get(mandate_ref)

    # -- signing and revoking ---------------------------------------------------------------
    def _sign(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        bank = self.bank
        fields = ("req_id", "mandate_ref", "user_id", "card_no", "merchant_id")
        if bad := first_bad(body, fields, False, bank.currency):
            return invalid(body, bad)
        key = ("sign", body["req_id"])
        if key in self._answers:
            return dict(self._answers[key]), []
        user_id, merchant_id, card_no = body["user_id"], body["merchant_id"], body["card_no"]
        answer = {"req_id": body["req_id"], "result": "DECLINED", "code": None,
                  "mandate_no": None, "mandate_ref": body["mandate_ref"]}
        self._answers[key] = answer
        card = bank._cards.get(card_no)
        if card is None and card_no[-4:] in (*FUNDED_MAGIC, *MAGIC_FAILURES):
            bank.open_account(user_id, card_no, 0, 0)   # magic cards need no prior account
            card = bank._cards[card_no]
        if card is None or card.user_id != user_id:
            answer["code"] = "INVALID_CARD"
        elif card.frozen or card_no.endswith("0002"):
            answer["code"] = "CARD_FROZEN"
        if answer["code"] is not None:
            return dict(answer), []
        events = []
        mandate = self._active.get((user_id, merchant_id))
        if mandate is None:
            mandate = Mandate(bank._next_id("BM"), body["mandate_ref"], user_id, merchant_id,
                              card_no)
            self._mandates[mandate.mandate_no] = mandate
            self._active[(user_id, merchant_id)] = mandate
            events.append(self._event(mandate, done_ms, "sign"))
        self._by_ref.setdefault(body["mandate_ref"], mandate)
        answer.update(result="OK", mandate_no=mandate.mandate_no)
        return dict(answer), events

    def _event(self, mandate: Mandate, at_ms: int, by: str) -> tuple:
        return ("event", "bank.mandate", mandate.mandate_ref,
                {"mandate_no": mandate.mandate_no, "status": mandate.status, "at_ms": at_ms,
                 "by": by, "user_id": mandate.user_id, "merchant_id": mandate.merchant_id})

    def _end(self, mandate: Mandate, at_ms: int, by: str) -> list[tuple]:
        """Revoke `mandate` (nothing when it is revoked already)."""
        if mandate.status != "ACTIVE":
            return []
        mandate.fire("revoke")
        mandate.revoked_ms = at_ms
        self._active.pop((mandate.user_id, mandate.merchant_id), None)
        return [self._event(mandate, at_ms, by)]

    def _revoke(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("req_id", "mandate_no"), False, self.bank.currency):
            return invalid(body, bad)
        key = ("revoke", body["req_id"])
        if key in self._answers:
            return dict(self._answers[key]), []
        mandate = self._mandates.get(body["mandate_no"])
        answer = {"req_id": body["req_id"], "result": "OK" if mandate else "NOT_FOUND",
                  "code": None, "mandate_no": body["mandate_no"]}
        self._answers[key] = answer
        # the revocation holds from the instant the request arrives: a debit behind it is refused
        events = self._end(mandate, now_ms, "paysys") if mandate else []
        return dict(answer), events

    def _user_revoke(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("user_id", "merchant_id"), False, self.bank.currency):
            return invalid(body, bad)
        mandate = self._active.get((body["user_id"], body["merchant_id"]))
        answer = {"user_id": body["user_id"], "merchant_id": body["merchant_id"],
                  "result": "OK" if mandate else "NOT_FOUND",
                  "mandate_no": mandate.mandate_no if mandate else None}
        return answer, self._end(mandate, now_ms, "user") if mandate else []

    # -- debits -----------------------------------------------------------------------------
    def _debit(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        bank = self.bank
        fields = ("req_id", "mandate_ref", "merchant_id", "user_id")
        if bad := first_bad(body, fields, True, bank.currency):
            return invalid(body, bad)
        req_id, amount = body["req_id"], body["amount"]
        if req_id in bank._pays:
            return self._answer(bank._pays[req_id]), []
        mandate = self._by_ref.get(body["mandate_ref"])
        pay = Pay(req_id, "DECLINED", "MANDATE_INVALID", amount)
        bank._pays[req_id] = pay
        if mandate is None or (mandate.merchant_id, mandate.user_id) != (body["merchant_id"],
                                                                        body["user_id"]):
            return self._answer(pay), []
        pay.card_no = mandate.card_no
        if mandate.status != "ACTIVE":
            pay.code = "MANDATE_REVOKED"
            return self._answer(pay), [("event", "bank.debit.refused", ref_of(req_id),
                                        {"mandate_ref": mandate.mandate_ref, "code": pay.code})]
        card = bank._cards[mandate.card_no]
        suffix = card.card_no[-4:]
        if suffix in MAGIC_FAILURES:
            pay.status, pay.code = MAGIC_FAILURES[suffix]
            return self._answer(pay), []
        if suffix not in FUNDED_MAGIC:
            day = bank.local_day(now_ms)
            pay.code = bank._decline_code(card, amount, day)
            if pay.code is not None:
                return self._answer(pay), []
            card.day, card.used = day, (card.used if card.day == day else 0) + amount
        pay.status, pay.code, pay.bank_txn_id = "SUCCESS", None, bank._next_id("BT")
        txn = bank._charge(pay, card, pay.bank_txn_id, amount, done_ms)
        txn[3]["mandate_ref"] = mandate.mandate_ref
        return self._answer(pay), [txn]

    @staticmethod
    def _answer(pay: Pay) -> dict:
        result = "DECLINED" if pay.status == "CLOSED" else pay.status
        return {"req_id": pay.req_id, "result": result, "code": pay.code,
                "bank_txn_id": pay.bank_txn_id, "amount": pay.amount}
