"""The PayPal-like platform adapter: foreign card payments (product "foreign") settled in
another currency.

paysys records, before the pay leaves (`order_columns`), what the platform will capture: the
settle amount, its currency and the rate (paysys/products/foreign.py, from
`cfg.products["foreign"]`), and sends both amounts with `pp.order.create`. The platform answers
with an approval link (`code_url`); the buyer approves in the platform, which captures in the
settle currency and sends a webhook (HMAC-SHA256 over the sorted fields with the channel's API
key as the webhook secret) until paysys acknowledges it with a 200. Outcomes report the amount
in the ORDER's currency (what the order asked), the charge reference is the capture id.

Ledger: `payment_lines` and `refund_lines` book both currencies through the FX position
(paysys/products/foreign.py). Wire protocol: docs/protocol.md and mockbanks/paypal.py.
"""

import hashlib
import hmac

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
)

# pp.order.get status -> outcome of a query
QUERY = {"COMPLETED": SUCCESS, "CREATED": PENDING, "APPROVED": PENDING, "VOIDED": CLOSED}
# error names that say "definitely not done" for a create or a refund
DECLINED = frozenset({"INVALID_REQUEST", "DUPLICATE_INVOICE_ID", "CURRENCY_NOT_SUPPORTED",
                      "SETTLE_AMOUNT_MISMATCH", "REFUND_AMOUNT_EXCEEDED", "RESOURCE_NOT_FOUND",
                      "INSUFFICIENT_FUNDS"})
# refused before anything was done (any operation)
NOTHING_DONE = frozenset({"SERVICE_UNAVAILABLE", "RATE_LIMIT_REACHED"})
WEBHOOK_EVENT = "PAYMENT.CAPTURE.COMPLETED"
# queries and voids carry the id of the pay they are about (paysys's query and close are
# matched by their type and out_trade_no, as the engine does for WeChat)
REPLY_OPS = {"pp.order.get.reply": "query", "pp.order.void.reply": "close"}


def _foreign():
    """paysys/products/foreign.py, imported when first used: the product catalogue imports the
    store, which the channels package must not need at import time (a cycle)."""
    from paysys.products import foreign
    return foreign


def webhook_signature(fields: dict, secret: str) -> str:
    """Lower-case hex HMAC-SHA256 of the sorted `k=v&...` string of every field but
    `signature` (None and "" left out; booleans true/false)."""
    def show(v: object) -> str:
        return "true" if v is True else "false" if v is False else str(v)
    text = "&".join(f"{k}={show(fields[k])}" for k in sorted(fields)
                    if k != "signature" and fields[k] is not None and fields[k] != "")
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class PayPalAdapter(Adapter):
    kind = "paypal"
    ASYNC_PRODUCTS = frozenset({"foreign"})

    def order_columns(self, order: dict, cfg) -> dict:
        """settle_amount, settle_currency, fx_rate_ppm of the order (none when the settings
        hold no rate for its currency: the platform then refuses the order)."""
        foreign = _foreign()
        settings = (getattr(cfg, "products", None) or {}).get(foreign.PRODUCT)
        if settings is None:
            settings = foreign.ForeignSettings.parse("USD", foreign.DEFAULT_RATES)
        try:
            return foreign.settlement_columns(order, settings)
        except foreign.ForeignError:
            return {}

    def pay(self, req_id: str, order: dict, agreement_no: str, now_ms: int, notify_to: str) -> dict:
        return {"type": "pp.order.create", "req_id": req_id, "out_trade_no": order["order_id"],
                "amount": order["amount"], "currency": order["currency"],
                "settle_amount": order.get("settle_amount") or None,
                "settle_currency": order.get("settle_currency") or None,
                "fx_rate_ppm": order.get("fx_rate_ppm") or None,
                "notify_url": notify_to, "time_expire": order.get("expire_ms")}

    def query(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "pp.order.get", "req_id": pay_req_id, "out_trade_no": order["order_id"]}

    def close(self, pay_req_id: str, order: dict) -> dict:
        return {"type": "pp.order.void", "req_id": pay_req_id, "out_trade_no": order["order_id"]}

    def refund(self, req_id: str, pay_req_id: str, refund: dict, order: dict) -> dict:
        return {"type": "pp.capture.refund", "req_id": req_id, "out_trade_no": order["order_id"],
                "out_refund_no": refund["refund_id"], "amount": refund["amount"],
                "currency": refund["currency"]}

    def classify(self, op: str, reply: dict) -> Outcome:
        code, name = reply.get("status_code"), reply.get("name") or ""
        if name in NOTHING_DONE:
            return Outcome(REJECTED, name)
        if op == "pay":
            if code == 201 and reply.get("status") == "CREATED":
                return Outcome(PENDING, "CREATED", reply.get("id", ""),
                               extra={"code_url": reply.get("approve_url", "")})
            return Outcome(FAILURE if name in DECLINED else UNKNOWN, name or str(code))
        if op == "query":
            if code == 404:
                return Outcome(NOT_FOUND, name)
            status = reply.get("status", "") if code == 200 else ""
            kind = QUERY.get(status, UNKNOWN)
            return Outcome(kind, status or name, reply.get("capture_id") or "",
                           as_amount(reply.get("amount")) if kind == SUCCESS else None)
        if op == "close":
            if code == 200 and reply.get("status") == "VOIDED":
                return Outcome(CLOSED, "VOIDED")
            if name == "ORDER_ALREADY_CAPTURED":
                return Outcome(SUCCESS, name, reply.get("capture_id") or "",
                               as_amount(reply.get("amount")))
            return Outcome(UNKNOWN, name or str(code))
        if code == 201 and reply.get("status") == "COMPLETED":
            return Outcome(SUCCESS, "COMPLETED", reply.get("refund_id", ""),
                           as_amount(reply.get("amount")))
        return Outcome(FAILURE if name in DECLINED else UNKNOWN, name or str(code))

    def notification(self, body: dict, verify: bool = True) -> Notice:
        """A webhook parsed; its signature checked unless `verify` is False (the
        `no_signature_check` flaw)."""
        order_id = body.get("out_trade_no", "")
        given = body.get("signature")
        valid = not verify or (isinstance(given, str) and hmac.compare_digest(
            given, webhook_signature(body, self.api_key)))
        base = {"type": "pp.webhook.reply", "out_trade_no": order_id,
                "event_id": body.get("event_id"), "capture_id": body.get("capture_id")}
        if not valid:
            return Notice(False, order_id, Outcome(UNKNOWN, "INVALID_SIGNATURE"),
                          {**base, "status_code": 401})
        kind = SUCCESS if body.get("event_type") == WEBHOOK_EVENT else UNKNOWN
        outcome = Outcome(kind, body.get("event_type", ""), body.get("capture_id", ""),
                          as_amount(body.get("amount")))
        return Notice(True, order_id, outcome, {**base, "status_code": 200})

    def payment_lines(self, order: dict, merchant_fee: int, channel_cost: int) -> list:
        """Both currencies through the FX position (paysys/products/foreign.py)."""
        return _foreign().payment_lines(self.channel_id, order, merchant_fee, channel_cost)

    def refund_lines(self, refund: dict, order: dict) -> list:
        return _foreign().refund_lines(self.channel_id, refund, order)
