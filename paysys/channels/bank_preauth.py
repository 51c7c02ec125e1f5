"""The pre-authorisation operations of the bank adapter, and its same-day cancel (撤销).

Owns `PreauthOps`, mixed into paysys/channels/bank.py's BankAdapter: the request builders of
`bank.preauth`, `bank.preauth.cancel`, `bank.preauth.capture`, `bank.preauth.capture_cancel`,
`bank.preauth.query` and `bank.cancel` (docs: mockbanks/bank_preauth.py, bank_cancel.py), and the
classification of their answers (`classify_<op>`, called by BankAdapter.classify). As for every
channel call, anything not listed as a definite answer is UNKNOWN (resolved by query).

Cancel versus refund: the bank distinguishes them (`CANCELS = True`): a payment may be cancelled
(full amount, fee returned) on the local business day (UTC+8) it was paid, before the bank's
cut-off (`cancel_cutoff_ms` after local midnight: channel option, default 23:00); paysys asks
for it only until CUTOFF_MARGIN_MS before, so that the request arrives in time. A cancel the bank
declines as too late (`CANCEL_CLOSED`) is sent again as a refund (paysys/refunds.py).
"""

from paysys import days
from paysys.channels.base import (
    FAILURE,
    NOT_FOUND,
    PENDING,
    REJECTED,
    SUCCESS,
    Outcome,
    as_amount,
    classify,
)

CUTOFF_MS = 23 * 3_600_000
CUTOFF_MARGIN_MS = 10 * 60_000
FALLBACK_CODES = frozenset({"CANCEL_CLOSED"})   # a cancel declined so: refund instead
# result -> outcome. ERROR/SYSTEM_BUSY: nothing done; other ERRORs are unknown.
OPERATION = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "ERROR/SYSTEM_BUSY": FAILURE,
             "REJECTED": REJECTED}
QUERY = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "NOT_FOUND": NOT_FOUND, "PROCESSING": PENDING,
         "REJECTED": REJECTED}
EXTRA = ("preauth_no", "expire_ms", "released", "state", "held", "orig_req_id")


def _key(table: dict, reply: dict) -> str:
    result, code = reply.get("result", ""), reply.get("code", "")
    return f"{result}/{code}" if f"{result}/{code}" in table else result


def _classified(table: dict, reply: dict) -> Outcome:
    extra = {k: reply[k] for k in EXTRA if k in reply}
    return classify(table, _key(table, reply), reply.get("code", "") or "",
                    reply.get("bank_txn_id", "") or "", as_amount(reply.get("amount")), extra)


class PreauthOps:
    """The preauth operations of the bank adapter (mixed into paysys/channels/bank.py)."""

    PREAUTH = True     # the channel holds money on a card (预授权)
    CANCELS = True     # the channel distinguishes a same-day cancel from a refund
    FALLBACK_CODES = FALLBACK_CODES

    # -- request builders ----------------------------------------------------------------------
    def preauth(self, req_id: str, agreement_no: str, amount: int, currency: str,
                hold_ms: int) -> dict:
        return {"type": "bank.preauth", "req_id": req_id, "agreement_no": agreement_no,
                "amount": amount, "currency": currency, "hold_ms": hold_ms}

    def preauth_cancel(self, req_id: str, preauth_req_id: str, amount: int, currency: str) -> dict:
        return {"type": "bank.preauth.cancel", "req_id": req_id,
                "preauth_req_id": preauth_req_id, "amount": amount, "currency": currency}

    def preauth_capture(self, req_id: str, preauth_req_id: str, amount: int,
                        currency: str) -> dict:
        return {"type": "bank.preauth.capture", "req_id": req_id,
                "preauth_req_id": preauth_req_id, "amount": amount, "currency": currency}

    def preauth_capture_cancel(self, req_id: str, capture_req_id: str, amount: int,
                               currency: str) -> dict:
        return {"type": "bank.preauth.capture_cancel", "req_id": req_id,
                "capture_req_id": capture_req_id, "amount": amount, "currency": currency}

    def preauth_query(self, req_id: str, orig_req_id: str) -> dict:
        return {"type": "bank.preauth.query", "req_id": req_id, "orig_req_id": orig_req_id}

    def cancel(self, req_id: str, pay_req_id: str, refund: dict, order: dict) -> dict:
        """Cancel (撤销) the payment `pay_req_id` in full."""
        return {"type": "bank.cancel", "req_id": req_id, "orig_req_id": pay_req_id,
                "amount": refund["amount"], "currency": refund["currency"]}

    def can_cancel(self, paid_ms: int, now_ms: int) -> bool:
        """Whether a payment made at `paid_ms` may still be cancelled if asked at `now_ms`: the
        same local business day, before the cut-off (less a margin for the trip)."""
        cutoff = int(self.options.get("cancel_cutoff_ms", CUTOFF_MS))
        day = days.day_of(now_ms)
        return (days.day_of(paid_ms) == day
                and now_ms < days.day_start(day) + cutoff - CUTOFF_MARGIN_MS)

    # -- classification (BankAdapter.classify calls classify_<op>) ------------------------------
    def classify_preauth(self, reply: dict) -> Outcome:
        return _classified(OPERATION, reply)

    def classify_preauth_cancel(self, reply: dict) -> Outcome:
        return _classified(OPERATION, reply)

    def classify_preauth_capture(self, reply: dict) -> Outcome:
        return _classified(OPERATION, reply)

    def classify_preauth_capture_cancel(self, reply: dict) -> Outcome:
        return _classified(OPERATION, reply)

    def classify_preauth_query(self, reply: dict) -> Outcome:
        return _classified(QUERY, reply)

    def classify_preauth_sign(self, reply: dict) -> Outcome:
        return self.classify("sign", reply)
