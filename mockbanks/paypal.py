"""The simulated PayPal-like platform (sans-IO node): foreign buyers pay merchants' orders from
balances in the platform's settle currency; webhooks; refunds converted at the order's rate.

Owns the platform side of the "PayPal-like platform" protocol of docs/protocol.md and its
ground truth (`self.truth`): buyer balances `buyer:<user_id>`, the payment system's account
(`platform`) and the platform's fee account (`pp_fees`), all in the settle `currency` (USD by
default). Money moves when the buyer approves (`pp.user.approve`) or paysys refunds, at that
`now_ms`.

Currencies. paysys creates an order in the MERCHANT's currency (`amount`, `currency`) together
with what the platform captures (`settle_amount` in `settle_currency` at `fx_rate_ppm`, parts
per million), all computed by paysys (paysys/products/foreign.py); the platform checks them
against the same contract (mockbanks/paypal_records.py: half-up, at least 1 minor unit) and
answers 422 SETTLE_AMOUNT_MISMATCH / CURRENCY_NOT_SUPPORTED when they disagree. It records both
amounts; every answer and webhook repeats them. The fee is the fee rule on the order amount,
converted half-up. A refund names its amount in the order currency and gives back that amount
converted at the order's recorded rate, rounded DOWN (never more than was captured).
`truth_txns` rows are in the order's currency (what the merchant's order was, so the oracle
compares them with paysys's orders); the money moves in the settle currency (`pp.txn` events
carry both).

Requests (replies `<type>.reply` echo `req_id`, carry `status_code` and `name` = error or None):
- `pp.order.create` {out_trade_no, amount, currency, settle_amount, settle_currency,
  fx_rate_ppm, notify_url, time_expire} -> 201 {id, status CREATED, approve_url}; the same
  content again -> the same answer; other content -> 422 DUPLICATE_INVOICE_ID.
- `pp.user.approve` {token, user_id} (from the buyer) -> `result` COMPLETED (captured at once)
  / INSUFFICIENT_FUNDS / ORDER_NOT_APPROVABLE (voided or expired) / ORDER_ALREADY_CAPTURED /
  RESOURCE_NOT_FOUND, `capture_id`.
- `pp.order.get` {out_trade_no} -> 200 {status CREATED/COMPLETED/VOIDED, both amounts,
  capture_id...} or 404 RESOURCE_NOT_FOUND.
- `pp.order.void` {out_trade_no} -> 200 VOIDED (also for a number never seen: it is remembered
  voided) or 422 ORDER_ALREADY_CAPTURED.
- `pp.capture.refund` {out_trade_no, out_refund_no, amount, currency} -> 201 {refund_id,
  amount, settle_amount, status COMPLETED}; 404 RESOURCE_NOT_FOUND (not captured), 422
  REFUND_AMOUNT_EXCEEDED; a repeated out_refund_no gets the stored answer.
- An order not captured by `time_expire` is VOIDED (lazily, when touched).

Webhooks (mockbanks/paypal_webhooks.py): `pp.webhook` PAYMENT.CAPTURE.COMPLETED to the order's
notify_url, HMAC-SHA256 signed with `api_key`, retried on WEBHOOK_SCHEDULE_MS until a
`pp.webhook.reply` with status_code 200; sent twice with `duplicate_notify_probability`.

Faults (mockbanks/faults.py): maintenance (every request -> 503 SERVICE_UNAVAILABLE, the
buyer's approval too), rate_limit (paysys's requests over max_per_s -> 429
RATE_LIMIT_REACHED), notify_late, notify_lost, notify_duplicate; nothing done when refused.
BUGGIFY point: "paypal.notify_duplicate". No statement files (`statement_log` stays empty).
"""

import random
from collections.abc import Callable, Sequence

from mockbanks.faults import ChannelFault, ChannelFaults
from mockbanks.paypal_records import (
    APPROVE_REFUSAL,
    EXPONENTS,
    Capture,
    Order,
    convert,
    error,
    first_bad,
    invalid,
    ok,
    refund_settle_of,
    settle_of,
    text,
)
from mockbanks.paypal_webhooks import Webhooks
from mockbanks.truth import Truth, ref_of

FEE_ACCOUNT = "pp_fees"
FAULT_KINDS = ("maintenance", "rate_limit", "notify_late", "notify_lost", "notify_duplicate")
APPROVE_URL = "https://www.paypal.example/checkoutnow?token="


class PayPal(Webhooks):
    """A PayPal-like platform node: `handle`, `next_deadline`, `on_timer`."""

    def __init__(
        self, *, name: str, rng: random.Random, fee_rule, api_key: str, currency: str = "USD",
        duplicate_notify_probability: float = 0.0, platform_account: str = "platform",
        faults: Sequence[ChannelFault] = (), buggify: Callable[[str], bool] | None = None,
    ) -> None:
        if not 0.0 <= duplicate_notify_probability <= 1.0:
            raise ValueError("duplicate_notify_probability: expected a probability in [0, 1], "
                             f"got {duplicate_notify_probability!r}")
        self.name, self.rng, self.fee_rule, self.api_key = name, rng, fee_rule, api_key
        self.currency, self.platform_account = currency, platform_account
        self.duplicate_notify_probability = duplicate_notify_probability
        self.truth = Truth()
        self.truth.open(platform_account, currency, 0)
        self.truth.open(FEE_ACCOUNT, currency, 0)
        self.statement_log: list[dict] = []
        self._orders: dict[str, Order] = {}
        self._by_token: dict[str, Order] = {}
        self._captures: dict[str, Capture] = {}
        self._notifying: dict[str, Capture] = {}
        self._refunds: dict[str, dict] = {}
        self._seq = 0
        self._faults = ChannelFaults(faults, rng, FAULT_KINDS, f"paypal {name}")
        self._buggify = buggify
        self._ops = {"pp.order.create": self._create, "pp.user.approve": self._approve,
                     "pp.order.get": self._get, "pp.order.void": self._void,
                     "pp.capture.refund": self._refund}

    def open_buyer(self, user_id: str, balance: int) -> None:
        self.truth.open(f"buyer:{user_id}", self.currency, balance)

    # -- node contract ----------------------------------------------------------------------
    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        kind = body.get("type")
        if kind == "pp.webhook.reply":
            self._acknowledged(body)
            return []
        if kind == "net.error" or (isinstance(kind, str) and kind.endswith(".reply")):
            return []       # a refused webhook is a failed attempt: the schedule goes on
        op = self._ops.get(kind)
        if op is None:
            return [("reply", {"type": f"{kind}.reply", "req_id": body.get("req_id"),
                               **error(400, "UNKNOWN_TYPE")}, 0)]
        if self._faults and (refused := self._refusal(kind, body, now_ms)):
            return refused
        reply, effects = op(src, body, now_ms)
        return [("reply", {"type": f"{kind}.reply", "req_id": body.get("req_id"), **reply}, 0),
                *effects]

    def next_deadline(self) -> int | None:
        return min((c.next_at for c in self._notifying.values()), default=None)

    def on_timer(self, now_ms: int) -> list[tuple]:
        effects: list[tuple] = []
        due = sorted((c for c in self._notifying.values() if c.next_at <= now_ms),
                     key=lambda c: (c.next_at, c.capture_id))
        for capture in due:
            while capture.next_at is not None and capture.next_at <= now_ms:
                effects += self._webhook(capture, capture.next_at)
        return effects

    # -- helpers ----------------------------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:010d}"

    def _order(self, out_trade_no: object, now_ms: int) -> Order | None:
        """The order, voided first if it expired uncaptured."""
        order = self._orders.get(text(out_trade_no))
        if order is not None and order.status == "CREATED":
            expire = order.content[6]
            if expire is not None and now_ms >= expire:
                order.fire("expire")
        return order

    def _bug(self, point: str) -> bool:
        return self._buggify is not None and self._buggify(point)

    def _refusal(self, kind: str, body: dict, now_ms: int) -> list[tuple] | None:
        """Maintenance (anything) or rate limit (paysys's requests): refused, nothing done."""
        user = kind == "pp.user.approve"
        fault, reply = self._faults.acting("maintenance", now_ms), error(503,
                                                                        "SERVICE_UNAVAILABLE")
        if fault is None and not user:
            fault, reply = self._faults.limited(now_ms), error(429, "RATE_LIMIT_REACHED")
        if fault is None:
            return None
        if user:
            order = self._by_token.get(text(body.get("token")))
            out_trade_no = order.out_trade_no if order is not None else ""
            reply = {"token": body.get("token"), "user_id": body.get("user_id"),
                     "result": "SERVICE_UNAVAILABLE", "out_trade_no": out_trade_no,
                     "capture_id": None}
        else:
            out_trade_no = text(body.get("out_trade_no"))
            reply = {**reply, **{k: body[k] for k in ("out_trade_no", "out_refund_no")
                                 if k in body}}
        ref = text(body.get("out_refund_no")) or out_trade_no
        return [("reply", {"type": f"{kind}.reply", "req_id": body.get("req_id"), **reply}, 0),
                self._faults.fired(fault, ref_of(ref), type=kind, out_trade_no=out_trade_no)]

    # -- orders -----------------------------------------------------------------------------
    def _create(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        bad = first_bad(body, ("out_trade_no", "currency", "settle_currency", "notify_url"),
                        ("amount", "settle_amount", "fx_rate_ppm"))
        expire = body.get("time_expire")
        if bad is None and expire is not None and (isinstance(expire, bool)
                                                   or not isinstance(expire, int)):
            bad = invalid("time_expire", "an integer of ms or null", expire)
        if bad is None and body["currency"] not in EXPONENTS:
            bad = invalid("currency", f"one of {', '.join(EXPONENTS)}", body["currency"])
        ids = {"out_trade_no": body.get("out_trade_no")}
        if bad is not None:
            return {**bad, **ids}, []
        if body["settle_currency"] != self.currency:
            return error(422, "CURRENCY_NOT_SUPPORTED", f"settle_currency: expected "
                         f"{self.currency!r}, got {body['settle_currency']!r}",
                         field="settle_currency", **ids), []
        expected = settle_of(body["amount"], body["currency"], self.currency,
                             body["fx_rate_ppm"])
        if body["settle_amount"] != expected:
            return error(422, "SETTLE_AMOUNT_MISMATCH", f"settle_amount: expected {expected} "
                         f"for {body['amount']} {body['currency']} at {body['fx_rate_ppm']} ppm, "
                         f"got {body['settle_amount']}", field="settle_amount", **ids), []
        out_trade_no = body["out_trade_no"]
        content = (body["amount"], body["currency"], body["settle_amount"],
                   body["settle_currency"], body["fx_rate_ppm"], body["notify_url"], expire)
        order = self._orders.get(out_trade_no)
        if order is None:
            order = Order(self._next_id("PPO"), out_trade_no, content)
            self._orders[out_trade_no] = order
            self._by_token[order.pp_id] = order
        elif order.content != content:
            return error(422, "DUPLICATE_INVOICE_ID", f"out_trade_no: {out_trade_no} was "
                         "created with other content", field="out_trade_no", **ids), []
        return ok(201, out_trade_no=out_trade_no, id=order.pp_id, status=order.status,
                  approve_url=APPROVE_URL + order.pp_id, settle_amount=order.settle_amount,
                  settle_currency=order.settle_currency), []

    def _approve(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        user_id = text(body.get("user_id")) or src.removeprefix("user:")
        order = self._by_token.get(text(body.get("token")))
        answer = {"token": body.get("token"), "user_id": user_id, "result": "RESOURCE_NOT_FOUND",
                  "out_trade_no": None, "capture_id": None}
        if order is None:
            return answer, []
        order = self._order(order.out_trade_no, now_ms)
        answer["out_trade_no"] = order.out_trade_no
        if order.status in APPROVE_REFUSAL:
            return {**answer, "result": APPROVE_REFUSAL[order.status]}, []
        buyer = f"buyer:{user_id}"
        if not (self.truth.has(buyer, self.currency)
                and self.truth.balance(buyer, self.currency) >= order.settle_amount):
            return {**answer, "result": "INSUFFICIENT_FUNDS"}, []
        fee_order = self.fee_rule.fee(order.amount)
        fee = min(convert(fee_order, order.currency, self.currency, order.rate),
                  order.settle_amount)
        capture = Capture(self._next_id("PPC"), order.out_trade_no, order.settle_amount, fee,
                          user_id, now_ms)
        order.capture = capture
        order.fire("capture")
        self._captures[capture.capture_id] = capture
        ref = order.ref
        self.truth.move(buyer, self.platform_account, order.settle_amount - fee, self.currency,
                        now_ms, ref, capture.capture_id, "pay")
        self.truth.move(buyer, FEE_ACCOUNT, fee, self.currency, now_ms, ref, capture.capture_id,
                        "fee")
        txn = self.truth.record(ref, capture.capture_id, "pay", order.amount, fee_order,
                                order.currency, now_ms)
        event = ("event", "pp.txn", ref, {**txn, "out_trade_no": order.out_trade_no,
                                         "user_id": user_id, "account": buyer,
                                         "settle_amount": order.settle_amount,
                                         "settle_fee": fee, "settle_currency": self.currency,
                                         "fx_rate_ppm": order.rate})
        return ({**answer, "result": "COMPLETED", "capture_id": capture.capture_id},
                [event, *self._start_webhooks(capture, now_ms)])

    def _get(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("out_trade_no",), ()):
            return bad, []
        order = self._order(body["out_trade_no"], now_ms)
        if order is None or order.content is None:
            return error(404, "RESOURCE_NOT_FOUND", out_trade_no=body["out_trade_no"]), []
        return ok(200, **order.view()), []

    def _void(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("out_trade_no",), ()):
            return bad, []
        out_trade_no = body["out_trade_no"]
        order = self._order(out_trade_no, now_ms)
        if order is None:       # never seen: remember it voided so nobody can pay it later
            order = self._orders[out_trade_no] = Order("", out_trade_no, None, status="VOIDED")
        elif order.status == "COMPLETED":
            return error(422, "ORDER_ALREADY_CAPTURED", **order.view()), []
        elif order.status == "CREATED":
            order.fire("void")
        return ok(200, out_trade_no=out_trade_no, status="VOIDED"), []

    # -- refunds ----------------------------------------------------------------------------
    def _refund(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        ids = {"out_trade_no": body.get("out_trade_no"), "out_refund_no": body.get("out_refund_no")}
        if bad := first_bad(body, ("out_trade_no", "out_refund_no", "currency"), ("amount",)):
            return {**bad, **ids}, []
        out_refund_no, amount = body["out_refund_no"], body["amount"]
        if out_refund_no in self._refunds:
            return dict(self._refunds[out_refund_no]), []
        order = self._order(body["out_trade_no"], now_ms)
        if order is None or order.capture is None:
            answer = error(404, "RESOURCE_NOT_FOUND", "no capture for this order", **ids)
        elif body["currency"] != order.currency:
            return {**invalid("currency", repr(order.currency), body["currency"]), **ids}, []
        elif amount > order.amount - order.refunded:
            answer = error(422, "REFUND_AMOUNT_EXCEEDED", f"amount: {amount} exceeds the "
                           f"{order.amount - order.refunded} left to refund", **ids)
        else:
            answer = None
        settle = 0 if answer else refund_settle_of(amount, order.currency, self.currency,
                                                   order.rate)
        if answer is None and self.truth.balance(self.platform_account, self.currency) < settle:
            answer = error(422, "INSUFFICIENT_FUNDS", "the merchant account cannot pay it", **ids)
        if answer is not None:
            self._refunds[out_refund_no] = answer
            return dict(answer), []
        refund_id, ref = self._next_id("PPR"), ref_of(out_refund_no)
        order.fire("refund")
        order.refunded += amount
        order.refunded_settle += settle
        self.truth.move(self.platform_account, f"buyer:{order.capture.payer}", settle,
                        self.currency, now_ms, ref, refund_id, "refund")
        txn = self.truth.record(ref, refund_id, "refund", amount, 0, order.currency, now_ms)
        self._refunds[out_refund_no] = ok(201, **ids, refund_id=refund_id, status="COMPLETED",
                                          amount=amount, currency=order.currency,
                                          settle_amount=settle, settle_currency=self.currency)
        data = {**txn, "out_trade_no": order.out_trade_no, "out_refund_no": out_refund_no,
                "user_id": order.capture.payer, "account": f"buyer:{order.capture.payer}",
                "settle_amount": settle, "settle_currency": self.currency,
                "fx_rate_ppm": order.rate}
        return dict(self._refunds[out_refund_no]), [("event", "pp.txn", ref, data)]
