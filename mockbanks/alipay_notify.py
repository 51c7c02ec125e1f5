"""The Alipay-like platform's payment notifications (`ali.notify`): attempts, their schedule,
acknowledgements.

Owns `Notifications`, a mixin of `Alipay` (mockbanks/alipay.py, whose docstring describes the
behaviour): it reads the platform's `_trades`, `_by_notify`, `_notifying`, `rng`, `app_id`,
`currency`, `duplicate_notify_probability` and `_bug`. Split out of alipay.py so each file stays
small.

Schedule (Alipay's real one): 8 tries within 25 h, the first at once, then after 4 m, 10 m, 10 m,
1 h, 2 h, 6 h and 15 h, each interval counted from the previous attempt's scheduled instant. Only
the literal acknowledgement "success" stops it (`{"type": "ali.notify.reply", "notify_id",
"body": "success"}`); any other answer, a refused connection or silence is a failed attempt and
the schedule goes on. Every attempt of a series carries the same `notify_id`.
"""

from mockbanks.alipay_records import Trade, rsa2_sign, text
from mockbanks.truth import ref_of

_M, _H = 60_000, 3_600_000
NOTIFY_SCHEDULE_MS = (4 * _M, 10 * _M, 10 * _M, 1 * _H, 2 * _H, 6 * _H, 15 * _H)
NOTIFY_TRIES = 1 + len(NOTIFY_SCHEDULE_MS)
ACK = "success"


class Notifications:
    """Notification attempts of the platform's paid trades (a mixin of Alipay)."""

    def _acknowledged(self, body: dict, now_ms: int) -> list[tuple]:
        """A `ali.notify.reply` from the notify_url: "success" stops the series it names (by
        notify_id, else by out_trade_no); anything else is a failed attempt (logged)."""
        notify_id = body.get("notify_id")
        if notify_id is not None:       # an answer to a notification that is not ours: ignored
            trade = self._by_notify.get(text(notify_id))
        else:
            trade = self._trades.get(text(body.get("out_trade_no")))
        if trade is None or trade.notify_id is None or trade.acked:
            return []
        ref = ref_of(trade.out_trade_no)
        if body.get("body") != ACK:
            return [("event", "ali.notify.refused", ref,
                     {"out_trade_no": trade.out_trade_no, "n": trade.attempts,
                      "answer": str(body.get("body"))})]
        trade.acked, trade.next_at = True, None
        self._notifying.pop(trade.out_trade_no, None)
        return []

    def _start_notify(self, trade: Trade, at_ms: int) -> list[tuple]:
        """The first attempt of a new payment's notification series."""
        trade.notify_id = f"{self.name}-n-{trade.trade_no}"
        self._by_notify[trade.notify_id] = trade
        self._notifying[trade.out_trade_no] = trade
        return self._notify(trade, at_ms)

    def _notify(self, trade: Trade, at_ms: int) -> list[tuple]:
        """One attempt scheduled at `at_ms`; schedules the next one (none after the 8th)."""
        trade.attempts += 1
        if trade.attempts < NOTIFY_TRIES:
            trade.next_at = at_ms + NOTIFY_SCHEDULE_MS[trade.attempts - 1]
        else:
            trade.next_at = None
            self._notifying.pop(trade.out_trade_no, None)
        body = {"type": "ali.notify", "notify_id": trade.notify_id, "notify_time": at_ms,
                "notify_type": "trade_status_sync", "app_id": self.app_id,
                "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no,
                "trade_status": "TRADE_SUCCESS", "total_amount": trade.total_amount,
                "currency": self.currency, "buyer_id": trade.buyer, "gmt_payment": trade.paid_ms,
                "sign_type": "RSA2"}
        body["sign"] = rsa2_sign(body)
        p = self.duplicate_notify_probability
        copies = 2 if p > 0 and self.rng.random() < p else 1
        ref, extra = ref_of(trade.out_trade_no), []
        if copies == 1 and self._bug("alipay.notify_duplicate"):
            copies = 2
            extra.append(("event", "buggify.fired", ref, {"point": "alipay.notify_duplicate",
                                                          "out_trade_no": trade.out_trade_no}))
        event = ("event", "ali.notify.attempt", ref,
                 {"n": trade.attempts, "url": trade.notify_url, "duplicate": copies == 2,
                  "out_trade_no": trade.out_trade_no, "notify_id": trade.notify_id})
        return [event, *extra] + [("send", trade.notify_url, dict(body), 0)
                                  for _ in range(copies)]
