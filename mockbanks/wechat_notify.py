"""The WeChat-like platform's payment notifications: attempts, their schedule, acknowledgements.

Owns `Notifications`, a mixin of `WeChat` (mockbanks/wechat.py, whose docstring describes the
behaviour): it reads the platform's `_orders`, `_charges`, `_notifying`, `_faults`, `rng`,
`api_key`, `currency`, `duplicate_notify_probability` and `_bug`. Split out of wechat.py so each
file stays small.
"""

from mockbanks._sign import sign
from mockbanks.truth import ref_of
from mockbanks.wechat_records import Charge, text

_S, _M, _H = 1000, 60_000, 3_600_000
NOTIFY_SCHEDULE_MS = (15 * _S, 15 * _S, 30 * _S, 3 * _M, 10 * _M, 20 * _M, 30 * _M, 30 * _M,
                      30 * _M, 60 * _M, 3 * _H, 3 * _H, 3 * _H, 6 * _H, 6 * _H)


class Notifications:
    """Notification attempts of the platform's charges (a mixin of WeChat)."""

    def _acknowledged(self, body: dict, now_ms: int) -> Charge | None:
        """The charge whose notification this answer acknowledges."""
        txn_id = body.get("transaction_id")
        if isinstance(txn_id, str) and txn_id in self._charges:
            return self._charges[txn_id]
        order = self._orders.get(text(body.get("out_trade_no")))
        sent = [c for c in order.charges if not c.acked and c.last_at is not None
                and c.last_at <= now_ms] if order is not None else []
        return max(sent, key=lambda c: c.last_at, default=None)

    def _start_notify(self, charge: Charge, at_ms: int) -> list[tuple]:
        """The first notification attempt of a new charge (none under notify_lost)."""
        lost = self._faults.acting("notify_lost", at_ms) if self._faults else None
        if lost is not None:
            return [self._faults.fired(lost, ref_of(charge.out_trade_no),
                                       out_trade_no=charge.out_trade_no, txn_id=charge.txn_id)]
        self._notifying[charge.txn_id] = charge
        return self._notify(charge, at_ms)

    def _notify(self, charge: Charge, at_ms: int) -> list[tuple]:
        """One notification attempt scheduled at `at_ms`; schedules the next one."""
        order = self._orders[charge.out_trade_no]
        charge.attempts += 1
        charge.last_at = at_ms
        if charge.attempts <= len(NOTIFY_SCHEDULE_MS):
            charge.next_at = at_ms + NOTIFY_SCHEDULE_MS[charge.attempts - 1]
        else:
            charge.next_at = None
            self._notifying.pop(charge.txn_id, None)
        body = {"type": "wx.notify", "out_trade_no": order.out_trade_no,
                "transaction_id": charge.txn_id, "total_fee": charge.amount,
                "fee_type": self.currency, "result_code": "SUCCESS", "time_end": charge.paid_ms,
                "nonce_str": f"{self.rng.getrandbits(64):016x}"}
        body["sign"] = sign(body, self.api_key)
        p = self.duplicate_notify_probability
        copies = 2 if p > 0 and self.rng.random() < p else 1
        ref, extra, delay = ref_of(order.out_trade_no), [], 0
        if copies == 1 and self._faults and (dup := self._faults.acting("notify_duplicate",
                                                                        at_ms)):
            copies = 2
            extra.append(self._faults.fired(dup, ref, out_trade_no=order.out_trade_no,
                                            txn_id=charge.txn_id, n=charge.attempts))
        if copies == 1 and self._bug("wechat.notify_duplicate"):
            copies = 2
            extra.append(("event", "buggify.fired", ref, {"point": "wechat.notify_duplicate",
                                                          "out_trade_no": order.out_trade_no}))
        if self._faults and (late := self._faults.acting("notify_late", at_ms)):
            delay = self._faults.delay(late)
            extra.append(self._faults.fired(late, ref, out_trade_no=order.out_trade_no,
                                            txn_id=charge.txn_id, n=charge.attempts, delay=delay))
        event = ("event", "wx.notify.attempt", ref,
                 {"n": charge.attempts, "url": order.content[2], "duplicate": copies == 2,
                  "out_trade_no": order.out_trade_no})
        return [event, *extra] + [("send", order.content[2], dict(body), delay)
                                  for _ in range(copies)]
