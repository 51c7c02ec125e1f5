"""The simulated WeChat-like platform (sans-IO node): orders, wallet pays, notifications, refunds.

Owns the platform side of the "WeChat-like platform" protocol of docs/protocol.md and its ground
truth (`self.truth`): user wallets `wallet:<user_id>`, the payment system's merchant account
(`platform`) and the platform's fee account (`wx_fees`). Everything happens at arrival (no
queueing model): money moves when `wx.user.pay` / `wx.refund` is handled, at that `now_ms`.

Orders follow TRADE_TRANSITIONS. An order unpaid at `time_expire` (now >= time_expire) is CLOSED,
applied lazily whenever the order is touched. `wx.closeorder` of a number the platform never saw
records it as CLOSED (so a late `wx.unifiedorder` for it gets OUTTRADENO_USED and nobody can pay
it), mirroring the bank's `bank.close`. A refund of an order that is not paid is ORDERNOTEXIST; a
`total_fee` differing from the order's is PARAM_ERROR. Every answered refund is stored under its
`out_refund_no` (a repeat gets the stored answer, even NOTENOUGH: retry with a new number).

Payment notifications go to the order's `notify_url` (a node name or URL): the first attempt when
the user pays, then after each NOTIFY_SCHEDULE_MS interval counted from the previous attempt's
scheduled instant, until a `wx.notify.reply` with return_code SUCCESS (correlated by
out_trade_no) arrives; after the last attempt the platform gives up. A `net.error` for a
notification is a failed attempt (the schedule goes on). With probability
`duplicate_notify_probability` an attempt is sent twice. Notifications are MD5-signed with
`api_key` (mockbanks._sign).
"""

import random
from dataclasses import dataclass

from mockbanks._sign import sign
from mockbanks.truth import Truth, ref_of

FEE_ACCOUNT = "wx_fees"
_S, _M, _H = 1000, 60_000, 3_600_000
NOTIFY_SCHEDULE_MS = (15 * _S, 15 * _S, 30 * _S, 3 * _M, 10 * _M, 20 * _M, 30 * _M, 30 * _M,
                      30 * _M, 60 * _M, 3 * _H, 3 * _H, 3 * _H, 6 * _H, 6 * _H)
# trade_state -> {event: new trade_state}; CLOSED is final
TRADE_TRANSITIONS: dict[str, dict[str, str]] = {
    "NOTPAY": {"pay": "SUCCESS", "close": "CLOSED", "expire": "CLOSED"},
    "SUCCESS": {"refund": "REFUND"},
    "REFUND": {"refund": "REFUND"},
    "CLOSED": {},
}
# what a user's wx.user.pay gets for an order that is not payable, by trade_state
USER_PAY_REFUSAL = {"CLOSED": "ORDERCLOSED", "SUCCESS": "ORDERPAID", "REFUND": "ORDERPAID"}


@dataclass(slots=True)
class _Order:
    out_trade_no: str
    content: tuple | None           # (total_fee, fee_type, notify_url, time_expire); None: tombstone
    prepay_id: str | None
    state: str = "NOTPAY"
    transaction_id: str | None = None
    user_id: str | None = None
    paid_ms: int | None = None
    refunded: int = 0
    attempts: int = 0               # notification attempts made
    next_at: int | None = None      # instant of the next notification attempt
    acked: bool = False

    def fire(self, event: str) -> None:
        try:
            self.state = TRADE_TRANSITIONS[self.state][event]
        except KeyError:
            raise ValueError(f"order {self.out_trade_no}: no {event!r} from {self.state}") from None

    @property
    def total_fee(self) -> int | None:
        return self.content[0] if self.content else None


def _text(value: object) -> str:
    """`value` if it is a string, else "" (never a key of the tables)."""
    return value if isinstance(value, str) else ""


def _bad(body: dict, strs: tuple[str, ...], ints: tuple[str, ...]) -> tuple[str, str] | None:
    for field in strs:
        if not isinstance(body.get(field), str) or not body[field]:
            return field, f"expected a non-empty string, got {body.get(field)!r}"
    for field in ints:
        value = body.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return field, f"expected a positive integer, got {value!r}"
    return None


class WeChat:
    """A WeChat-like platform node: `handle`, `next_deadline`, `on_timer`."""

    def __init__(
        self, *, name: str, rng: random.Random, fee_rule, api_key: str,
        duplicate_notify_probability: float = 0.0, currency: str = "CNY",
        platform_account: str = "platform", platform_balance: int = 0,
    ) -> None:
        if not 0.0 <= duplicate_notify_probability <= 1.0:
            raise ValueError("duplicate_notify_probability: expected a probability in [0, 1], "
                             f"got {duplicate_notify_probability!r}")
        self.name, self.rng, self.fee_rule, self.api_key = name, rng, fee_rule, api_key
        self.duplicate_notify_probability = duplicate_notify_probability
        self.currency, self.platform_account = currency, platform_account
        self.truth = Truth()
        self.truth.open(platform_account, currency, platform_balance)
        self.truth.open(FEE_ACCOUNT, currency, 0)
        self._orders: dict[str, _Order] = {}
        self._by_prepay: dict[str, _Order] = {}
        self._notifying: dict[str, _Order] = {}     # orders with a notification attempt to come
        self._refunds: dict[str, dict] = {}          # out_refund_no -> stored answer
        self._seq = 0
        self._ops = {"wx.unifiedorder": self._unifiedorder, "wx.user.pay": self._user_pay,
                     "wx.orderquery": self._orderquery, "wx.closeorder": self._closeorder,
                     "wx.refund": self._refund}

    def open_wallet(self, user_id: str, balance: int) -> None:
        self.truth.open(f"wallet:{user_id}", self.currency, balance)

    # -- node contract ----------------------------------------------------------------------
    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        kind = body.get("type")
        if kind == "wx.notify.reply":
            order = self._orders.get(_text(body.get("out_trade_no")))
            if order is not None and body.get("return_code") == "SUCCESS":
                order.acked, order.next_at = True, None
                self._notifying.pop(order.out_trade_no, None)
            return []
        if kind == "net.error" or (isinstance(kind, str) and kind.endswith(".reply")):
            return []       # a refused notification is a failed attempt: the schedule goes on
        op = self._ops.get(kind)
        if op is None:
            return [("reply", {"type": f"{kind}.reply", **self._fail("UNKNOWN_TYPE", "FAIL")}, 0)]
        reply, effects = op(src, body, now_ms)
        return [("reply", {"type": f"{kind}.reply", **reply}, 0), *effects]

    def next_deadline(self) -> int | None:
        return min((o.next_at for o in self._notifying.values()), default=None)

    def on_timer(self, now_ms: int) -> list[tuple]:
        effects: list[tuple] = []
        due = sorted((o for o in self._notifying.values() if o.next_at <= now_ms),
                     key=lambda o: o.next_at)
        for order in due:
            while order.next_at is not None and order.next_at <= now_ms:
                effects += self._notify(order, order.next_at)
        return effects

    # -- helpers ----------------------------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:010d}"

    @staticmethod
    def _fail(err_code: str, return_code: str = "SUCCESS", **extra) -> dict:
        return {"return_code": return_code, "result_code": "FAIL", "err_code": err_code, **extra}

    @staticmethod
    def _param_error(body: dict, bad: tuple[str, str]) -> tuple[dict, list]:
        return {"return_code": "FAIL", "result_code": "FAIL", "err_code": "PARAM_ERROR",
                "field": bad[0], "return_msg": f"{bad[0]}: {bad[1]}",
                "out_trade_no": body.get("out_trade_no")}, []

    @staticmethod
    def _ok(**fields) -> dict:
        return {"return_code": "SUCCESS", "result_code": "SUCCESS", "err_code": None, **fields}

    def _order(self, out_trade_no: object, now_ms: int) -> _Order | None:
        """The order, closed first if it expired unpaid."""
        order = self._orders.get(out_trade_no)
        if order is not None and order.state == "NOTPAY":
            time_expire = order.content[3]
            if time_expire is not None and now_ms >= time_expire:
                order.fire("expire")
        return order

    # -- orders -----------------------------------------------------------------------------
    def _unifiedorder(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        bad = _bad(body, ("out_trade_no", "notify_url"), ("total_fee",))
        if bad is None and body.get("fee_type") != self.currency:
            bad = "fee_type", f"expected {self.currency!r}, got {body.get('fee_type')!r}"
        expire = body.get("time_expire")
        if bad is None and expire is not None and (isinstance(expire, bool)
                                                   or not isinstance(expire, int)):
            bad = "time_expire", f"expected an integer of ms or null, got {expire!r}"
        if bad:
            return self._param_error(body, bad)
        out_trade_no = body["out_trade_no"]
        content = (body["total_fee"], body["fee_type"], body["notify_url"], expire)
        order = self._orders.get(out_trade_no)
        if order is None:
            order = _Order(out_trade_no, content, self._next_id("wx"))
            self._orders[out_trade_no] = order
            self._by_prepay[order.prepay_id] = order
        elif order.content != content:
            return self._fail("OUTTRADENO_USED", out_trade_no=out_trade_no), []
        return self._ok(out_trade_no=out_trade_no, prepay_id=order.prepay_id,
                        code_url=f"weixin://wxpay/bizpayurl?pr={order.prepay_id}"), []

    def _user_pay(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        user_id = body.get("user_id") or src.removeprefix("user:")
        order = self._by_prepay.get(_text(body.get("prepay_id")))
        answer = {"prepay_id": body.get("prepay_id"), "user_id": user_id, "result": "NOT_FOUND",
                  "out_trade_no": None, "transaction_id": None}
        if order is None:
            return answer, []
        order = self._order(order.out_trade_no, now_ms)
        answer["out_trade_no"] = order.out_trade_no
        if order.state in USER_PAY_REFUSAL:
            return {**answer, "result": USER_PAY_REFUSAL[order.state]}, []
        wallet, amount = f"wallet:{user_id}", order.total_fee
        if not self.truth.has(wallet, self.currency) or self.truth.balance(
                wallet, self.currency) < amount:
            return {**answer, "result": "NOTENOUGH"}, []
        order.fire("pay")
        order.transaction_id, order.user_id, order.paid_ms = self._next_id("WXT"), user_id, now_ms
        ref, fee, txn_id = ref_of(order.out_trade_no), self.fee_rule.fee(amount), order.transaction_id
        self.truth.move(wallet, self.platform_account, amount - fee, self.currency, now_ms, ref,
                        txn_id, "pay")
        self.truth.move(wallet, FEE_ACCOUNT, fee, self.currency, now_ms, ref, txn_id, "fee")
        txn = self.truth.record(ref, txn_id, "pay", amount, fee, self.currency, now_ms)
        event = ("event", "wx.txn", ref, {**txn, "out_trade_no": order.out_trade_no,
                                          "user_id": user_id, "account": wallet})
        self._notifying[order.out_trade_no] = order
        notify = self._notify(order, now_ms)
        return {**answer, "result": "SUCCESS", "transaction_id": txn_id}, [event, *notify]

    def _orderquery(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        if bad := _bad(body, ("out_trade_no",), ()):
            return self._param_error(body, bad)
        order = self._order(body["out_trade_no"], now_ms)
        if order is None:
            return self._fail("ORDERNOTEXIST", out_trade_no=body["out_trade_no"]), []
        return self._ok(out_trade_no=order.out_trade_no, trade_state=order.state,
                        total_fee=order.total_fee, transaction_id=order.transaction_id,
                        time_end=order.paid_ms), []

    def _closeorder(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        if bad := _bad(body, ("out_trade_no",), ()):
            return self._param_error(body, bad)
        out_trade_no = body["out_trade_no"]
        order = self._order(out_trade_no, now_ms)
        if order is None:           # never seen: remember it closed so nobody can pay it later
            self._orders[out_trade_no] = _Order(out_trade_no, None, None, state="CLOSED")
        elif order.state in ("SUCCESS", "REFUND"):
            return self._fail("ORDERPAID", out_trade_no=out_trade_no), []
        elif order.state == "NOTPAY":
            order.fire("close")
        return self._ok(out_trade_no=out_trade_no), []

    # -- notifications ----------------------------------------------------------------------
    def _notify(self, order: _Order, at_ms: int) -> list[tuple]:
        """One notification attempt scheduled at `at_ms`; schedules the next one."""
        order.attempts += 1
        if order.attempts <= len(NOTIFY_SCHEDULE_MS):
            order.next_at = at_ms + NOTIFY_SCHEDULE_MS[order.attempts - 1]
        else:
            order.next_at = None
            self._notifying.pop(order.out_trade_no, None)
        body = {"type": "wx.notify", "out_trade_no": order.out_trade_no,
                "transaction_id": order.transaction_id, "total_fee": order.total_fee,
                "fee_type": self.currency, "result_code": "SUCCESS", "time_end": order.paid_ms,
                "nonce_str": f"{self.rng.getrandbits(64):016x}"}
        body["sign"] = sign(body, self.api_key)
        p = self.duplicate_notify_probability
        copies = 2 if p > 0 and self.rng.random() < p else 1
        event = ("event", "wx.notify.attempt", ref_of(order.out_trade_no),
                 {"n": order.attempts, "url": order.content[2], "duplicate": copies == 2,
                  "out_trade_no": order.out_trade_no})
        return [event] + [("send", order.content[2], dict(body), 0) for _ in range(copies)]

    # -- refunds ----------------------------------------------------------------------------
    def _refund(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        bad = _bad(body, ("out_trade_no", "out_refund_no"), ("total_fee", "refund_fee"))
        if bad:
            return self._param_error(body, bad)
        out_refund_no, amount = body["out_refund_no"], body["refund_fee"]
        if out_refund_no in self._refunds:
            return dict(self._refunds[out_refund_no]), []
        order = self._order(body["out_trade_no"], now_ms)
        ids = {"out_trade_no": body["out_trade_no"], "out_refund_no": out_refund_no}
        err = None
        if order is None or order.state not in ("SUCCESS", "REFUND"):
            err = "ORDERNOTEXIST"
        elif body["total_fee"] != order.total_fee:
            return self._param_error(body, ("total_fee", f"expected {order.total_fee}, "
                                                         f"got {body['total_fee']}"))
        elif order.refunded + amount > order.total_fee:
            err = "REFUND_FEE_INVALID"
        elif self.truth.balance(self.platform_account, self.currency) < amount:
            err = "NOTENOUGH"
        if err is not None:
            self._refunds[out_refund_no] = self._fail(err, **ids)
            return dict(self._refunds[out_refund_no]), []
        refund_id, ref, wallet = self._next_id("WXR"), ref_of(out_refund_no), f"wallet:{order.user_id}"
        order.fire("refund")
        order.refunded += amount
        self.truth.move(self.platform_account, wallet, amount, self.currency, now_ms, ref,
                        refund_id, "refund")
        txn = self.truth.record(ref, refund_id, "refund", amount, 0, self.currency, now_ms)
        self._refunds[out_refund_no] = self._ok(**ids, refund_id=refund_id, refund_fee=amount)
        event = ("event", "wx.txn", ref, {**txn, "out_trade_no": order.out_trade_no,
                                          "out_refund_no": out_refund_no, "user_id": order.user_id,
                                          "account": wallet})
        return dict(self._refunds[out_refund_no]), [event]
