"""Withholding mandates (协议支付/代扣) at the bank, the paysys side: sign, revoke, debit.

Owns `MandatesOps`, mixed into the bank adapter (paysys/channels/bank.py): the bodies of
`bank.mandate.sign` (op `mandate_sign`), `bank.mandate.revoke` (op `revoke_mandate`) and
`bank.debit` (op `pay` of a `withhold` order: the generic pay flow sends it), and the
classification of the mandate answers. A debit is answered like a `bank.pay` (the adapter's own
PAY table classifies it): SUCCESS, DECLINED with MANDATE_REVOKED or INSUFFICIENT_FUNDS...
"""

from paysys.channels.base import FAILURE, REJECTED, SUCCESS, UNKNOWN, Outcome, classify

# bank.mandate.sign result (or result/code) -> outcome; SYSTEM_BUSY: nothing was done
MANDATE_SIGN = {"OK": SUCCESS, "DECLINED": FAILURE, "REJECTED": REJECTED,
                "ERROR/SYSTEM_BUSY": REJECTED}
# bank.mandate.revoke: revoked now, or there was nothing to revoke (either way: revoked)
MANDATE_REVOKE = {"OK": SUCCESS, "NOT_FOUND": SUCCESS}


class MandatesOps:
    """The mandate operations of the bank adapter (mixed into paysys/channels/bank.py)."""

    def mandate_sign(self, req_id: str, mandate: dict) -> dict:
        """Sign `mandate` (a row of table mandates) at the bank, once per (user, merchant)."""
        return {"type": "bank.mandate.sign", "req_id": req_id,
                "mandate_ref": mandate["mandate_no"], "user_id": mandate["user_id"],
                "card_no": mandate["card_no"], "merchant_id": mandate["merchant_id"]}

    def mandate_revoke(self, req_id: str, mandate: dict) -> dict:
        return {"type": "bank.mandate.revoke", "req_id": req_id,
                "mandate_no": mandate["bank_mandate_no"]}

    def debit(self, req_id: str, order: dict) -> dict:
        """Debit a `withhold` order under its mandate (the request of op `pay`)."""
        return {"type": "bank.debit", "req_id": req_id, "mandate_ref": order["mandate_no"],
                "merchant_id": order["merchant_id"], "user_id": order["user_id"],
                "amount": order["amount"], "currency": order["currency"]}

    def classify_mandate_sign(self, reply: dict) -> Outcome:
        result, code = reply.get("result", ""), reply.get("code") or ""
        key = f"{result}/{code}" if f"{result}/{code}" in MANDATE_SIGN else result
        return classify(MANDATE_SIGN, key, code, reply.get("mandate_no") or "")

    def classify_revoke_mandate(self, reply: dict) -> Outcome:
        outcome = classify(MANDATE_REVOKE, reply.get("result", ""), reply.get("code") or "")
        return outcome if reply.get("result") != "REJECTED" else Outcome(UNKNOWN, "REJECTED")
