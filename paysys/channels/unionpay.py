"""The UnionPay-like card network adapter: pay, query, close and refund by card number.

The network answers synchronously (mockbanks/unionpay.py documents the wire). No agreement is
signed: the card number the merchant gave (pay.create `card_no`, kept on the order) goes in each
`up.pay`. A pay's `req_id` is also the network's order number and the key it de-duplicates on.
`up.query`/`up.close` carry the pay's `req_id` and their answers are matched by type
(`REPLY_OPS`: `up.query.reply` -> query, `up.close.reply` -> close).

`ISSUER_UNAVAILABLE` (the card's issuing bank is down) is a "nothing done" rejection like
maintenance: the pay may fail over to another channel serving the product, and a refund is sent
again later. Anything not listed below is UNKNOWN, never a failure.
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

# result or "result/code" -> outcome; ERROR/INVALID_PARAM did nothing (refused at the door)
PAY = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "REJECTED": REJECTED,
       "ERROR/INVALID_PARAM": FAILURE, "ERROR": UNKNOWN}
QUERY = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "NOT_FOUND": NOT_FOUND, "CLOSED": CLOSED,
         "REJECTED": REJECTED}
REFUND = {"SUCCESS": SUCCESS, "DECLINED": FAILURE, "REJECTED": REJECTED,
          "ERROR/INVALID_PARAM": FAILURE, "ERROR": UNKNOWN}
TABLES = {"pay": PAY, "query": QUERY, "close": QUERY, "refund": REFUND}
REPLY_OPS = {"up.query.reply": "query", "up.close.reply": "close"}


def key(table: dict, reply: dict) -> str:
    """`result/code` when the table lists it, else `result`."""
    result, code = reply.get("result", ""), reply.get("code", "")
    return f"{result}/{code}" if f"{result}/{code}" in table else str(result)


class UnionPayAdapter(Adapter):
    kind = "unionpay"

    def pay(self, req_id: str, order: dict, agreement_no: str, now_ms: int, notify_to: str) -> dict:
        return {"type": "up.pay", "req_id": req_id, "card_no": order.get("card_no") or "",
                "amount": order["amount"], "currency": order["currency"]}

    def query(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "up.query", "req_id": pay_req_id}

    def close(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "up.close", "req_id": pay_req_id}

    def refund(self, req_id: str, pay_req_id: str, refund: dict, order: dict) -> dict:
        return {"type": "up.refund", "req_id": req_id, "orig_req_id": pay_req_id,
                "amount": refund["amount"], "currency": refund["currency"]}

    def classify(self, op: str, reply: dict) -> Outcome:
        table = TABLES.get(op)
        if table is None:
            return Outcome(UNKNOWN, f"UNSUPPORTED_OP:{op}")
        return classify(table, key(table, reply), reply.get("code") or "",
                        reply.get("txn_id") or "", as_amount(reply.get("amount")))
