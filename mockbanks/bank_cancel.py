"""Cancel (撤销) of a payment at the quick-pay bank: the same local business day, before the
bank's cut-off, the full amount, fee returned. After that only `bank.refund` gives money back.

Owns `Cancels`, hooked into the bank through the pre-authorisation part's `ops()`
(mockbanks/bank_preauth.py), so bank.py needs no line of its own.

| type | fields | reply fields |
|---|---|---|
| `bank.cancel` | `req_id`, `orig_req_id` (the pay), `amount`, `currency` | `result` (`SUCCESS`/`DECLINED`), `code`, `bank_txn_id`, `amount` |

Rules: the pay must be SUCCESS with one charge (`NOT_FOUND` otherwise), nothing of it refunded
yet (`ALREADY_REFUNDED`), `amount` = the charge (`NOT_FULL`); the charge and the cancel on the
same local day (UTC+8 by default, the bank's `tz_offset_ms`) and the cancel before CUTOFF_MS
after local midnight (`CANCEL_CLOSED`: too late, use `bank.refund`); the platform's account
must hold amount - fee (`INSUFFICIENT_FUNDS`). Money: the platform's account gives amount - fee
and the bank's fee account gives the fee back, both to the card (truth txn `refund`, fee 0;
the event `bank.txn` says `fee_returned`). A repeated `req_id` is answered from the record.
"""

from mockbanks.bank_records import FEE_ACCOUNT, first_bad, invalid
from mockbanks.truth import ref_of

DAY_MS = 86_400_000
CUTOFF_MS = 23 * 3_600_000    # local time of day after which a payment can no longer be cancelled


class Cancels:
    """Same-day cancels of the bank's pays (and of pre-authorisation captures)."""

    def __init__(self, bank, cutoff_ms: int = CUTOFF_MS) -> None:
        self.bank, self.cutoff_ms = bank, cutoff_ms
        self._done: dict[str, dict] = {}
        self._at: dict[str, int] = {}      # charge txn_id -> when it was charged
        self._seen = 0                     # truth txns already indexed

    def ops(self) -> dict:
        return {"bank.cancel": self.cancel}

    def charged(self, txn_id: str, at_ms: int) -> None:
        self._at[txn_id] = at_ms

    def _charged_at(self, txn_id: str) -> int | None:
        """When charge `txn_id` was made (the truth's journal, indexed as it grows)."""
        if txn_id not in self._at:
            txns = self.bank.truth._txns    # append-only: index only the new ones
            for txn in txns[self._seen:]:
                if txn["kind"] == "pay":
                    self._at.setdefault(txn["channel_ref"], txn["at_ms"])
            self._seen = len(txns)
        return self._at.get(txn_id)

    def local_day(self, at_ms: int) -> int:
        return (at_ms + self.bank.tz_offset_ms) // DAY_MS

    def open(self, charged_ms: int, now_ms: int) -> bool:
        """Whether a charge made at `charged_ms` may still be cancelled at `now_ms`."""
        local = now_ms + self.bank.tz_offset_ms
        return (self.local_day(charged_ms) == self.local_day(now_ms)
                and local % DAY_MS < self.cutoff_ms)

    def cancel(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        bank = self.bank
        if problem := first_bad(body, ("req_id", "orig_req_id"), True, bank.currency):
            return invalid(body, problem)
        req_id, amount, cur = body["req_id"], body["amount"], bank.currency
        if req_id in self._done:
            return dict(self._done[req_id]), []
        pay = bank._pays.get(body["orig_req_id"])
        charge = pay.charges[0] if pay is not None and pay.status == "SUCCESS" else None
        fee = bank.fee_rule.fee(amount)
        code = None
        if charge is None or len(pay.charges) != 1:
            code = "NOT_FOUND"
        elif charge.refunded:
            code = "ALREADY_REFUNDED"
        elif amount != charge.amount:
            code = "NOT_FULL"
        elif not self.open(self._charged_at(charge.txn_id) or 0, now_ms):
            code = "CANCEL_CLOSED"
        elif bank.truth.balance(bank.platform_account, cur) < amount - fee:
            code = "INSUFFICIENT_FUNDS"
        answer = self._done[req_id] = {"req_id": req_id, "result": "DECLINED" if code else "SUCCESS",
                                       "code": code, "bank_txn_id": None, "amount": amount}
        if code:
            return dict(answer), []
        txn_id, ref = bank._next_id("BC"), ref_of(req_id)
        answer["bank_txn_id"] = txn_id
        charge.refunded = amount
        account = bank._cards[pay.card_no].account
        bank.truth.move(bank.platform_account, account, amount - fee, cur, done_ms, ref, txn_id,
                        "cancel")
        bank.truth.move(FEE_ACCOUNT, account, fee, cur, done_ms, ref, txn_id, "fee_back")
        txn = bank.truth.record(ref, txn_id, "refund", amount, 0, cur, done_ms)
        event = ("event", "bank.txn", ref, {**txn, "req_id": req_id, "account": account,
                                            "orig_req_id": pay.req_id, "cancel": True,
                                            "fee_returned": fee})
        return dict(answer), [event]
