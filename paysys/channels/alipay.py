"""The Alipay-like platform adapter: QR precreate, query, close, refund, bills, notifications.

The platform answers `alipay.trade.precreate` with a `qr_code` (the order waits for the user, as
WeChat's does); the user pays in the wallet and the platform notifies paysys (`ali.notify`, 8
tries within 25 h) until paysys answers the literal acknowledgement "success". Every reply
carries Alipay's gateway `code` ("10000" Success, "40004" Business Failed + `sub_code`, "40002"
Invalid Arguments, "20000" Service Currently Unavailable); the tables below key on `code`, or on
`code/sub_code` when that is listed, and anything unlisted is UNKNOWN (never a failure).

Notifications are signed RSA2 (SHA256withRSA, PKCS#1 v1.5, base64) over the sorted `k=v&k=v`
string of every field except `sign` and `sign_type` (None and "" left out; booleans true/false)
with the platform's private key; paysys verifies with the platform's public key, held here
(ALIPAY_PUBLIC_KEY_PEM, the fixed sandbox pair of mockbanks/_alipay_keys.py). A notification
with a bad signature, or that is not an `ali.notify`, is refused (`Notice.valid` False, answer
"fail") and changes nothing.

Query and close answers echo the id of the pay they are about (the operation's own id is not in
the request): the engine matches them by type and out_trade_no, `REPLY_OPS` below.
"""

import base64
import binascii
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

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
    classify,
)

ALIPAY_PUBLIC_KEY_PEM = b"""\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmfgeHX3ji4DLk8kwaXxE
VGMycx6kKCuSSAaaS8jr6vsjEfPFHv5EXre+99WyJwtlLW58T29/ETLLibuCQa+7
72LrExfuSl56ojMiFA3VvUXlIlvdvw+Ou8G0qiFxGXKZkogiLvSbUOIlfYDkxVf2
+zZ1MEVKWimsl6vpSWyrHx/5CrvE2fxpz1lWktC8zozaAf6+7WlwUpCJGlPPNfp+
G6swVdroEqh5zPcsNn5tsiFfYtKoS+Lyb9btRCtb05Lhj/UdsjrZ3YIJV3x+vGqS
H0w53gkBeF7ApIMKvqZ1t7c4Zj9gbcOO77bFLgU1yPia932jy2KZ/NG7ppfrWO45
IQIDAQAB
-----END PUBLIC KEY-----
"""

OK = "10000"
# a request refused before anything was done (any operation): maintenance, rate limit, cut-off
NOTHING_DONE = frozenset({"20000/ACQ.SYSTEM_MAINTENANCE", "20000/ACQ.FREQUENCY_LIMITED",
                          "20000/ACQ.CUTOFF_IN_PROGRESS"})
PRECREATE = {OK: PENDING, "40004/ACQ.CONTEXT_INCONSISTENT": FAILURE,
             "40004/ACQ.TRADE_HAS_CLOSE": FAILURE, "40004/ACQ.TRADE_HAS_SUCCESS": UNKNOWN,
             "40002": FAILURE}
# trade_status of a "10000" answer; "TRADE_CLOSED/PAID": a paid trade refunded in full
QUERY = {"WAIT_BUYER_PAY": PENDING, "TRADE_SUCCESS": SUCCESS, "TRADE_FINISHED": SUCCESS,
         "TRADE_CLOSED": CLOSED, "TRADE_CLOSED/PAID": SUCCESS,
         "40004/ACQ.TRADE_NOT_EXIST": NOT_FOUND}
# a paid trade cannot be closed: SUCCESS without an amount (paysys queries for the details)
CLOSE = {OK: CLOSED, "40004/ACQ.TRADE_NOT_EXIST": CLOSED, "40004/ACQ.TRADE_STATUS_ERROR": SUCCESS}
REFUND = {OK: SUCCESS, "40004/ACQ.TRADE_NOT_EXIST": FAILURE,
          "40004/ACQ.TRADE_STATUS_ERROR": FAILURE, "40004/ACQ.TRADE_HAS_FINISHED": FAILURE,
          "40004/ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": FAILURE,
          "40004/ACQ.SELLER_BALANCE_NOT_ENOUGH": FAILURE, "40002": FAILURE}
BILL = {OK: SUCCESS, "40004/ACQ.BILL_NOT_EXIST": PENDING}
# trade_status of a verified notification
NOTIFY = {"TRADE_SUCCESS": SUCCESS, "TRADE_FINISHED": SUCCESS}
TABLES = {"pay": PRECREATE, "query": QUERY, "close": CLOSE, "refund": REFUND, "bill": BILL}
# reply type -> operation, for answers matched by type and out_trade_no (engine.REPLY_OPS)
REPLY_OPS = {"alipay.trade.query.reply": "query", "alipay.trade.close.reply": "close"}
ACK, NACK = "success", "fail"


def _key(table: dict, reply: dict) -> str:
    """The table key of a reply: `code/sub_code` when listed, else `code`."""
    code = reply.get("code")
    full = f"{code}/{reply.get('sub_code')}"
    return full if full in table or full in NOTHING_DONE else str(code)


def sign_string(fields: dict) -> str:
    """The string RSA2 signs: sorted `k=v` of every field but sign/sign_type, None and ""."""
    def render(value: object) -> str:
        return "true" if value is True else "false" if value is False else str(value)
    return "&".join(f"{k}={render(fields[k])}" for k in sorted(fields)
                    if k not in ("sign", "sign_type") and fields[k] is not None
                    and fields[k] != "")


@cache
def _public_key():
    return serialization.load_pem_public_key(ALIPAY_PUBLIC_KEY_PEM)


def rsa2_verify(fields: dict) -> bool:
    """Whether `fields["sign"]` is the platform's RSA2 signature of the other fields."""
    if fields.get("sign_type") != "RSA2" or not isinstance(fields.get("sign"), str):
        return False
    try:
        raw = base64.b64decode(fields["sign"], validate=True)
        _public_key().verify(raw, sign_string(fields).encode("utf-8"), padding.PKCS1v15(),
                             hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


class AlipayAdapter(Adapter):
    kind = "alipay"
    ASYNC_PRODUCTS = frozenset({"platform"})
    REPLY_OPS = REPLY_OPS

    def pay(self, req_id: str, order: dict, agreement_no: str, now_ms: int, notify_to: str) -> dict:
        return {"type": "alipay.trade.precreate", "req_id": req_id,
                "out_trade_no": order["order_id"], "total_amount": order["amount"],
                "currency": order["currency"], "notify_url": notify_to,
                "time_expire": order["expire_ms"], "subject": f"order {order['order_id']}"}

    def query(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "alipay.trade.query", "req_id": pay_req_id,
                "out_trade_no": order["order_id"]}

    def close(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "alipay.trade.close", "req_id": pay_req_id,
                "out_trade_no": order["order_id"]}

    def refund(self, req_id: str, pay_req_id: str, refund: dict, order: dict) -> dict:
        body = {"type": "alipay.trade.refund", "req_id": req_id, "out_trade_no": order["order_id"],
                "out_request_no": refund["refund_id"], "refund_amount": refund["amount"]}
        if refund.get("charge_ref"):   # a compensation takes back one given charge
            body["trade_no"] = refund["charge_ref"]
        return body

    def statement(self, req_id: str, date: str) -> dict:
        """Download the bill of local business day `date` ("2026-11-02")."""
        return {"type": "alipay.data.bill.download", "req_id": req_id, "bill_type": "trade",
                "bill_date": date}

    def classify(self, op: str, reply: dict) -> Outcome:
        table = TABLES.get(op, {})
        key = _key(table, reply)
        code = str(reply.get("sub_code") or reply.get("code") or "")
        if key in NOTHING_DONE:
            return Outcome(REJECTED, code)
        if op == "bill":
            extra = None
            if key == OK and isinstance(reply.get("content"), str):
                extra = {"format": reply.get("format", "alipay"), "content": reply["content"]}
            elif key == OK:
                key = ""                          # a file without content: unknown
            return classify(BILL, key, code, extra=extra)
        if op == "pay":
            return classify(PRECREATE, key, code, "", extra={"code_url": reply.get("qr_code")
                                                              or ""})
        if op == "query":
            return self._query(key, code, reply)
        if op == "refund":
            return classify(REFUND, key, code, str(reply.get("refund_id") or ""))
        return classify(table, key, code)

    @staticmethod
    def _query(key: str, code: str, reply: dict) -> Outcome:
        if key == OK:
            key = str(reply.get("trade_status", ""))
            paid = as_amount(reply.get("buyer_pay_amount"))
            if key == "TRADE_CLOSED" and paid:
                key = "TRADE_CLOSED/PAID"
            code = key
        amount = as_amount(reply.get("buyer_pay_amount")) or as_amount(reply.get("total_amount"))
        return classify(QUERY, key, code, str(reply.get("trade_no") or ""), amount)

    def notification(self, body: dict, verify: bool = True) -> Notice:
        """The notification parsed; its RSA2 signature checked unless `verify` is False (the
        `no_signature_check` flaw). The answer is the literal "success", else "fail"."""
        order_id = body.get("out_trade_no") if isinstance(body.get("out_trade_no"), str) else ""
        ids = {"notify_id": body.get("notify_id"), "out_trade_no": order_id}
        valid = body.get("type") == "ali.notify" and (not verify or rsa2_verify(body))
        if not valid:
            return Notice(False, order_id, Outcome(UNKNOWN, "SIGN_ERROR"),
                          {"type": "ali.notify.reply", **ids, "body": NACK})
        status = str(body.get("trade_status", ""))
        outcome = classify(NOTIFY, status, status, str(body.get("trade_no") or ""),
                           as_amount(body.get("total_amount")))
        return Notice(True, order_id, outcome, {"type": "ali.notify.reply", **ids, "body": ACK})
