"""The WeChat-like platform adapter: prepay order, query, close, refund and notifications.

The platform answers the prepay request with a `code_url`; the user pays later in the wallet and
the platform notifies paysys, with WeChat's retry schedule, until paysys acknowledges. Its
notifications are signed with MD5 over the sorted fields and the API key shared with paysys; a
notification with a bad signature is rejected and changes nothing.
"""

import hmac

from paysys import signing
from paysys.channels.base import (
    CLOSED,
    FAILURE,
    NOT_FOUND,
    PENDING,
    REJECTED,
    SUCCESS,
    UNKNOWN,
    Adapter,
    Notice,
    Outcome,
    as_amount,
    charges,
    classify,
)

UNIFIEDORDER = {"SUCCESS": PENDING, "FAIL": FAILURE}
QUERY = {"SUCCESS": SUCCESS, "REFUND": SUCCESS, "NOTPAY": PENDING, "USERPAYING": PENDING,
         "CLOSED": CLOSED, "ORDERNOTEXIST": NOT_FOUND}
CLOSE = {"SUCCESS": CLOSED, "ORDERNOTEXIST": CLOSED, "ORDERPAID": SUCCESS}
REFUND = {"SUCCESS": SUCCESS, "FAIL": FAILURE}
# err_code of a request refused before anything was done (any operation)
NOTHING_DONE = frozenset({"SYSTEM_MAINTENANCE", "FREQUENCY_LIMITED", "CUTOFF_IN_PROGRESS"})


class WeChatAdapter(Adapter):
    kind = "wechat"
    ASYNC_PRODUCTS = frozenset({"platform"})

    def pay(self, req_id: str, order: dict, agreement_no: str, now_ms: int, notify_to: str) -> dict:
        return {"type": "wx.unifiedorder", "req_id": req_id, "out_trade_no": order["order_id"],
                "total_fee": order["amount"], "fee_type": order["currency"],
                "notify_url": notify_to, "time_expire": order["expire_ms"]}

    def query(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "wx.orderquery", "req_id": pay_req_id, "out_trade_no": order["order_id"]}

    def close(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "wx.closeorder", "req_id": pay_req_id, "out_trade_no": order["order_id"]}

    def refund(self, req_id: str, pay_req_id: str, refund: dict, order: dict) -> dict:
        body = {"type": "wx.refund", "req_id": req_id, "out_trade_no": order["order_id"],
                "out_refund_no": refund["refund_id"], "total_fee": order["amount"],
                "refund_fee": refund["amount"]}
        if refund.get("charge_ref"):  # a compensation takes back one given charge
            body["transaction_id"] = refund["charge_ref"]
        return body

    def statement(self, req_id: str, date: str) -> dict:
        """Download the bill of local business day `date` ("2026-11-02")."""
        return {"type": "wx.downloadbill", "req_id": req_id, "bill_date": date.replace("-", ""),
                "bill_type": "ALL"}

    def classify(self, op: str, reply: dict) -> Outcome:
        if op == "bill":
            return _bill(reply)
        if reply.get("return_code") != "SUCCESS":
            return Outcome(UNKNOWN, reply.get("return_msg", "") or "COMMUNICATION_FAIL")
        err = reply.get("err_code", "")
        if err in NOTHING_DONE:
            return Outcome(REJECTED, err)
        if op == "pay":
            extra = {"code_url": reply.get("code_url", ""), "prepay_id": reply.get("prepay_id", "")}
            return classify(UNIFIEDORDER, reply.get("result_code", ""), err,
                            reply.get("prepay_id", ""), extra=extra)
        if op == "query":
            key = reply.get("trade_state", "") if reply.get("result_code") == "SUCCESS" else err
            listed = charges(reply)
            return classify(QUERY, key, key, reply.get("transaction_id", ""),
                            as_amount(reply.get("total_fee")),
                            {"charges": listed} if listed else None)
        if op == "close":
            key = "SUCCESS" if reply.get("result_code") == "SUCCESS" else err
            return classify(CLOSE, key, err)
        return classify(REFUND, reply.get("result_code", ""), err, reply.get("refund_id", ""))

    def notification(self, body: dict, verify: bool = True) -> Notice:
        """The notification parsed; its signature checked unless `verify` is False (the
        `no_signature_check` flaw)."""
        order_id = body.get("out_trade_no", "")
        expected = signing.sign({k: v for k, v in body.items() if k != "sign"}, self.api_key, "MD5")
        valid = not verify or (isinstance(body.get("sign"), str)
                               and hmac.compare_digest(body["sign"], expected))
        if not valid:
            ack = {"type": "wx.notify.reply", "out_trade_no": order_id, "return_code": "FAIL",
                   "return_msg": "SIGNERROR"}
            return Notice(False, order_id, Outcome(UNKNOWN, "SIGNERROR"), ack)
        kind = SUCCESS if body.get("result_code") == "SUCCESS" else UNKNOWN
        outcome = Outcome(kind, body.get("result_code", ""), body.get("transaction_id", ""),
                          as_amount(body.get("total_fee")))
        ack = {"type": "wx.notify.reply", "out_trade_no": order_id, "return_code": "SUCCESS",
               "return_msg": "OK"}
        if body.get("transaction_id"):   # which charge's notifications this acknowledgement stops
            ack["transaction_id"] = body["transaction_id"]
        return Notice(True, order_id, outcome, ack)


def _bill(reply: dict) -> Outcome:
    """A bill download: the file (SUCCESS, `extra` = format and content), not there yet
    (PENDING: "No Bill Exist"), refused before anything was done, or unknown."""
    if reply.get("return_code") == "SUCCESS" and isinstance(reply.get("content"), str):
        return Outcome(SUCCESS, "", extra={"format": reply.get("format", "wechat"),
                                           "content": reply["content"]})
    if reply.get("return_msg") == "No Bill Exist":
        return Outcome(PENDING, "NOT_READY")
    if reply.get("err_code", "") in NOTHING_DONE:
        return Outcome(REJECTED, reply["err_code"])
    return Outcome(UNKNOWN, reply.get("return_msg", "") or reply.get("err_code", ""))
