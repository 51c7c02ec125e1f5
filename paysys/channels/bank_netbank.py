"""Netbank (网银支付) at the bank, the paysys side: the page request, its classification and the
bank's payment notifications (docs/protocol.md, "Netbank").

Owns `NetbankOps`, mixed into the bank adapter (paysys/channels/bank.py). A netbank payment is
asynchronous: `bank.netbank` opens a page on the bank's site and is answered PROCESSING with its
`code_url` (the merchant shows it, the user pays there); the bank then notifies `bank.notify`,
signed HMAC-SHA256 with the channel's api key, and retries until paysys answers
`bank.notify.reply` with result SUCCESS. Queries, closes and refunds are the bank's ordinary
`bank.query` / `bank.close` / `bank.refund` with the page's request id. The generic async flow
(paysys/payments.py) closes an unpaid page when the order expires; a charge the bank reports
after that close is a late success (paysys/compensation.py refunds it).
"""

import hmac

from paysys import signing
from paysys.channels.base import PENDING, SUCCESS, UNKNOWN, Notice, Outcome, as_amount


class NetbankOps:
    """The netbank operations of the bank adapter (mixed into paysys/channels/bank.py)."""

    def netbank_pay(self, req_id: str, order: dict, notify_to: str) -> dict:
        """Open the bank's payment page for `order` (the request of op `pay`)."""
        return {"type": "bank.netbank", "req_id": req_id, "out_trade_no": order["order_id"],
                "amount": order["amount"], "currency": order["currency"],
                "notify_url": notify_to, "time_expire": order["expire_ms"]}

    def classify_pay(self, reply: dict) -> Outcome:
        """A pay-like answer: a netbank page's gets its `code_url`; the others (bank.pay,
        bank.debit, a product part's `bank.<x>.reply` with a `classify_pay_<x>` method) are
        classified by their own rules."""
        kind = str(reply.get("type", "")).removeprefix("bank.").removesuffix(".reply")
        if kind != "netbank":
            own = getattr(self, f"classify_pay_{kind}", None)
            return own(reply) if own is not None else self.classify_plain_pay(reply)
        outcome = self.classify_plain_pay(reply)
        if outcome.kind != PENDING or not reply.get("code_url"):
            return outcome if outcome.kind != PENDING else Outcome(UNKNOWN, "NO_CODE_URL")
        return Outcome(PENDING, outcome.code, str(reply.get("page_id") or ""),
                       as_amount(reply.get("amount")), extra={"code_url": reply["code_url"]})

    def classify_plain_pay(self, reply: dict) -> Outcome:
        """The bank adapter's own table for `bank.pay` answers."""
        from paysys.channels import bank  # (the module that mixes this class in)
        return bank.classify(bank.PAY, bank._key(bank.PAY, reply), reply.get("code", ""),
                             reply.get("bank_txn_id", ""), as_amount(reply.get("amount")))

    def notification(self, body: dict, verify: bool = True) -> Notice | None:
        """A `bank.notify`, parsed; its HMAC-SHA256 signature checked unless `verify` is False
        (the `no_signature_check` flaw). Any other message is no notification (None)."""
        if body.get("type") != "bank.notify":
            return None
        order_id = str(body.get("out_trade_no") or "")
        ack = {"type": "bank.notify.reply", "req_id": body.get("req_id"),
               "bank_txn_id": body.get("bank_txn_id"), "result": "SUCCESS"}
        expected = signing.sign({k: v for k, v in body.items() if k != "sign"}, self.api_key,
                                "HMAC-SHA256")
        if verify and not (isinstance(body.get("sign"), str)
                           and hmac.compare_digest(body["sign"], expected)):
            return Notice(False, order_id, Outcome(UNKNOWN, "SIGNERROR"),
                          dict(ack, result="FAIL"))
        kind = SUCCESS if body.get("result") == "SUCCESS" else UNKNOWN
        outcome = Outcome(kind, str(body.get("result") or ""), str(body.get("bank_txn_id") or ""),
                          as_amount(body.get("amount")))
        return Notice(True, order_id, outcome, ack)
