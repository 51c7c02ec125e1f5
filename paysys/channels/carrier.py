"""The carrier billing adapter (话费支付): the charge goes onto the user's phone bill.

The carrier answers synchronously (mockbanks/carrier.py documents the wire). The merchant's
pay.create carries no phone number: the carrier knows each subscriber's number, so the charge
names the order's `user_id`. A charge's `req_id` is also the carrier's order number and the key
it de-duplicates on. `carrier.query`/`carrier.close` carry the charge's `req_id` and their answers
are matched by type (`REPLY_OPS`). Declines (`MONTHLY_CAP_EXCEEDED`, `AMOUNT_OVER_LIMIT`,
`LINE_SUSPENDED`, `UNKNOWN_SUBSCRIBER`) are failures; maintenance and rate limits are "nothing
done" rejections; anything not listed is UNKNOWN, never a failure.
"""

from paysys.channels.base import (
    CLOSED,
    FAILURE,
    NOT_FOUND,
    REJECTED,
    SUCCESS,
    UNKNOWN,
    Adapter,
    Outcome,
    as_amount,
    classify,
)
from paysys.channels.unionpay import key

PAY = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "REJECTED": REJECTED,
       "ERROR/INVALID_PARAM": FAILURE, "ERROR": UNKNOWN}
QUERY = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "NOT_FOUND": NOT_FOUND, "CLOSED": CLOSED,
         "REJECTED": REJECTED}
REFUND = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "REJECTED": REJECTED,
          "ERROR/INVALID_PARAM": FAILURE, "ERROR": UNKNOWN}
TABLES = {"pay": PAY, "query": QUERY, "close": QUERY, "refund": REFUND}
REPLY_OPS = {"carrier.query.reply": "query", "carrier.close.reply": "close"}


class CarrierAdapter(Adapter):
    kind = "carrier"

    def pay(self, req_id: str, order: dict, agreement_no: str, now_ms: int, notify_to: str) -> dict:
        return {"type": "carrier.charge", "req_id": req_id, "user_id": order["user_id"],
                "amount": order["amount"], "currency": order["currency"]}

    def query(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "carrier.query", "req_id": pay_req_id}

    def close(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "carrier.close", "req_id": pay_req_id}

    def refund(self, req_id: str, pay_req_id: str, refund: dict, order: dict) -> dict:
        return {"type": "carrier.refund", "req_id": req_id, "orig_req_id": pay_req_id,
                "amount": refund["amount"], "currency": refund["currency"]}

    def classify(self, op: str, reply: dict) -> Outcome:
        table = TABLES.get(op)
        if table is None:
            return Outcome(UNKNOWN, f"UNSUPPORTED_OP:{op}")
        return classify(table, key(table, reply), reply.get("code") or "",
                        reply.get("txn_id") or "", as_amount(reply.get("amount")))
