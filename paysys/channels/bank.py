"""The quick-pay bank adapter: agreement signing, pay, query, close and refund (docs/protocol.md).

The bank answers synchronously. A pay is correlated and de-duplicated by its `req_id`, which is
also the bank-side order number: a retry or a network duplicate never moves money twice.
"""

from paysys.channels.bank_mandates import MandatesOps
from paysys.channels.bank_netbank import NetbankOps
from paysys.channels.bank_preauth import PreauthOps
from paysys.channels.base import (
    CLOSED,
    FAILURE,
    NOT_FOUND,
    PENDING,
    REJECTED,
    SUCCESS,
    UNKNOWN,
    Adapter,
    Outcome,
    as_amount,
    charges,
    classify,
)

# result (or result/code) -> outcome. ERROR codes are unknown unless the bank documents that it
# did nothing (SYSTEM_BUSY: rejected before processing). REJECTED (maintenance, rate limit,
# cut-off): nothing was done, the request may go elsewhere or be sent again later.
PAY = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "PROCESSING": PENDING,
       "ERROR/SYSTEM_BUSY": FAILURE, "ERROR": UNKNOWN, "REJECTED": REJECTED}
QUERY = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "PROCESSING": PENDING,
         "NOT_FOUND": NOT_FOUND, "CLOSED": CLOSED, "REJECTED": REJECTED}
REFUND = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "ERROR/SYSTEM_BUSY": FAILURE, "ERROR": UNKNOWN,
          "REJECTED": REJECTED}
SIGN = {"OK": SUCCESS, "DECLINED": FAILURE, "REJECTED": REJECTED}
# payouts to merchants and transfers from the reserve: the money moved, or it did not
MOVE = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "ERROR/SYSTEM_BUSY": FAILURE, "ERROR": UNKNOWN,
        "REJECTED": REJECTED}
BILL = {"SUCCESS": SUCCESS, "NOT_READY": PENDING, "REJECTED": REJECTED,
        "ERROR/SYSTEM_BUSY": REJECTED}


def _key(table: dict, reply: dict) -> str:
    result, code = reply.get("result", ""), reply.get("code", "")
    return f"{result}/{code}" if f"{result}/{code}" in table else result


class BankAdapter(NetbankOps, MandatesOps, PreauthOps, Adapter):
    kind = "bank"
    AGREEMENT_PRODUCTS, ASYNC_PRODUCTS = frozenset({"quick"}), frozenset({"netbank"})

    def sign(self, req_id: str, user_id: str, card_no: str) -> dict:
        return {"type": "bank.sign", "req_id": req_id, "user_id": user_id, "card_no": card_no}

    def unsign(self, req_id: str, agreement_no: str) -> dict:
        return {"type": "bank.unsign", "req_id": req_id, "agreement_no": agreement_no}

    def pay(self, req_id: str, order: dict, agreement_no: str, now_ms: int, notify_to: str) -> dict:
        if order["product"] == "netbank":     # a page the user pays on (bank_netbank.py)
            return self.netbank_pay(req_id, order, notify_to)
        if order["product"] == "withhold":    # a debit under a mandate (bank_mandates.py)
            return self.debit(req_id, order)
        return {"type": "bank.pay", "req_id": req_id, "agreement_no": agreement_no,
                "amount": order["amount"], "currency": order["currency"]}

    def query(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "bank.query", "req_id": pay_req_id}

    def close(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "bank.close", "req_id": pay_req_id}

    def refund(self, req_id: str, pay_req_id: str, refund: dict, order: dict) -> dict:
        body = {"type": "bank.refund", "req_id": req_id, "orig_req_id": pay_req_id,
                "amount": refund["amount"], "currency": refund["currency"]}
        if refund.get("charge_ref"):  # a compensation takes back one given charge
            body["orig_txn_id"] = refund["charge_ref"]
        return body

    def statement(self, req_id: str, date: str) -> dict:
        """Download the MT940 statement of local business day `date` ("2026-11-02")."""
        return {"type": "bank.statement", "req_id": req_id, "date": date}

    def payout(self, req_id: str, account: str, amount: int, currency: str) -> dict:
        """Pay `amount` from the platform's account to `account` (代付: a merchant's settlement)."""
        return {"type": "bank.payout", "req_id": req_id, "account": account, "amount": amount,
                "currency": currency}

    def transfer(self, req_id: str, amount: int, currency: str) -> dict:
        """Move `amount` from the platform's reserve to its payout position at this bank."""
        return {"type": "bank.transfer", "req_id": req_id, "from": "reserve", "to": "platform",
                "amount": amount, "currency": currency}

    def classify(self, op: str, reply: dict) -> Outcome:
        more = getattr(self, f"classify_{op}", None)   # a product part's own operation
        if more is not None:
            return more(reply)
        if op == "bill":
            outcome = classify(BILL, _key(BILL, reply), reply.get("code", "") or reply.get("result", ""))
            if outcome.kind == SUCCESS and isinstance(reply.get("content"), str):
                return Outcome(SUCCESS, "", extra={"format": reply.get("format", "mt940"),
                                                   "content": reply["content"]})
            return outcome if outcome.kind != SUCCESS else Outcome(UNKNOWN, "NO_CONTENT")
        if op in ("payout", "transfer"):
            return classify(MOVE, _key(MOVE, reply), reply.get("code", "") or "",
                            reply.get("bank_txn_id", "") or "", as_amount(reply.get("amount")))
        if op == "sign":
            return classify(SIGN, reply.get("result", ""), reply.get("code", ""),
                            reply.get("agreement_no", ""))
        if op == "unsign":
            ok = reply.get("result") in ("OK", "NOT_FOUND")
            return Outcome(SUCCESS if ok else UNKNOWN, reply.get("result", ""))
        table = {"pay": PAY, "query": QUERY, "close": QUERY, "refund": REFUND}[op]
        listed = charges(reply) if op in ("query", "close") else None
        return classify(table, _key(table, reply), reply.get("code", ""),
                        reply.get("bank_txn_id", ""), as_amount(reply.get("amount")),
                        {"charges": listed} if listed else None)
