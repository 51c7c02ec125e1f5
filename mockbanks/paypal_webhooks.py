"""The PayPal-like platform's webhooks: PAYMENT.CAPTURE.COMPLETED attempts, their retry
schedule, acknowledgements, and the notification faults.

Owns `Webhooks`, a mixin of `PayPal` (mockbanks/paypal.py, whose docstring describes the
behaviour): it reads the platform's `_orders`, `_captures`, `_notifying`, `_faults`, `rng`,
`api_key`, `duplicate_notify_probability` and `_bug`.
"""

from mockbanks.paypal_records import Capture, signature
from mockbanks.truth import ref_of

_S, _M, _H = 1000, 60_000, 3_600_000
# after each attempt, the wait before the next (the last one is followed by none)
WEBHOOK_SCHEDULE_MS = (30 * _S, 1 * _M, 2 * _M, 5 * _M, 10 * _M, 30 * _M, 1 * _H, 2 * _H,
                       4 * _H, 8 * _H, 12 * _H, 24 * _H)
EVENT = "PAYMENT.CAPTURE.COMPLETED"


class Webhooks:
    """Webhook attempts of the platform's captures (a mixin of PayPal)."""

    def _acknowledged(self, body: dict) -> None:
        """paysys answered a webhook: a 200 stops the series of its capture."""
        capture = self._captures.get(body.get("capture_id"))
        if capture is None:
            order = self._orders.get(body.get("out_trade_no"))
            capture = order.capture if order is not None else None
        if capture is not None and body.get("status_code") == 200:
            capture.acked, capture.next_at = True, None
            self._notifying.pop(capture.capture_id, None)

    def _start_webhooks(self, capture: Capture, at_ms: int) -> list[tuple]:
        """The first attempt of a new capture's series (none under notify_lost)."""
        lost = self._faults.acting("notify_lost", at_ms) if self._faults else None
        if lost is not None:
            return [self._faults.fired(lost, ref_of(capture.out_trade_no),
                                       out_trade_no=capture.out_trade_no,
                                       capture_id=capture.capture_id)]
        self._notifying[capture.capture_id] = capture
        return self._webhook(capture, at_ms)

    def _webhook(self, capture: Capture, at_ms: int) -> list[tuple]:
        """One attempt scheduled at `at_ms`; schedules the next one."""
        order = self._orders[capture.out_trade_no]
        capture.attempts += 1
        capture.last_at = at_ms
        if capture.attempts <= len(WEBHOOK_SCHEDULE_MS):
            capture.next_at = at_ms + WEBHOOK_SCHEDULE_MS[capture.attempts - 1]
        else:
            capture.next_at = None
            self._notifying.pop(capture.capture_id, None)
        body = {"type": "pp.webhook", "event_type": EVENT,
                "event_id": f"WH-{capture.capture_id}-{capture.attempts}",
                "out_trade_no": order.out_trade_no, "order_id": order.pp_id,
                "capture_id": capture.capture_id, "amount": order.amount,
                "currency": order.currency, "settle_amount": capture.settle_amount,
                "settle_currency": order.settle_currency, "fx_rate_ppm": order.rate,
                "fee": capture.fee, "create_time": capture.at_ms,
                "nonce": f"{self.rng.getrandbits(64):016x}"}
        body["signature"] = signature(body, self.api_key)
        p = self.duplicate_notify_probability
        copies = 2 if p > 0 and self.rng.random() < p else 1
        ref, extra, delay = ref_of(order.out_trade_no), [], 0
        if copies == 1 and self._faults and (dup := self._faults.acting("notify_duplicate",
                                                                        at_ms)):
            copies = 2
            extra.append(self._faults.fired(dup, ref, out_trade_no=order.out_trade_no,
                                            capture_id=capture.capture_id, n=capture.attempts))
        if copies == 1 and self._bug("paypal.notify_duplicate"):
            copies = 2
            extra.append(("event", "buggify.fired", ref, {"point": "paypal.notify_duplicate",
                                                          "out_trade_no": order.out_trade_no}))
        if self._faults and (late := self._faults.acting("notify_late", at_ms)):
            delay = self._faults.delay(late)
            extra.append(self._faults.fired(late, ref, out_trade_no=order.out_trade_no,
                                            capture_id=capture.capture_id, n=capture.attempts,
                                            delay=delay))
        url = order.content[5]
        event = ("event", "pp.webhook.attempt", ref,
                 {"n": capture.attempts, "url": url, "duplicate": copies == 2,
                  "out_trade_no": order.out_trade_no, "capture_id": capture.capture_id})
        return [event, *extra] + [("send", url, dict(body), delay) for _ in range(copies)]
