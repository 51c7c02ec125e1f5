"""The simulated WeChat-like platform (sans-IO node): orders, wallet pays, notifications, refunds,
bills.

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

Charges. Each payment of an order is a charge (its own `transaction_id`, amount, payer, its own
notification series whose `total_fee` is what that charge took). A `wx.user.pay` may carry
`amount` (1..what is left to pay): a partial payment; the order stays NOTPAY until its charges
pay it all, then SUCCESS (`transaction_id`/`time_end` of an order are its first charge's, set when
it is fully paid). `wx.orderquery` adds `paid_fee` and `charges` only when they say more than
`total_fee`/`transaction_id` (not exactly one charge of the order's amount), so bodies without
faults stay as they were. A refund takes back the charge named by `transaction_id`, by default the
order's paying charges in order (each part goes back to its payer). A `wx.notify.reply` stops the
series of the `transaction_id` it carries; without one, the unacknowledged series of that order
whose last attempt left most recently (what an HTTP connection would tell).

Channel faults (`faults`, see mockbanks/faults.py; nothing is drawn when none is given):
- maintenance: every request (also the user's `wx.user.pay`, whose `result` is the code) is
  answered `result_code` FAIL / `err_code` SYSTEM_MAINTENANCE, nothing done.
- rate_limit: beyond `max_per_s` requests of paysys accepted in one second, FREQUENCY_LIMITED.
- cutoff: `wx.unifiedorder` is refused CUTOFF_IN_PROGRESS; the rest works.
- notify_late: a notification attempt leaves `delay(rng)` ms late (the send's delay).
- notify_lost: a payment made in the window is never notified.
- notify_duplicate: a notification attempt is sent twice.
- amount_mismatch: the charge takes its amount + `delta` (at least 1) and notifies that amount.
- double_charge: a payment is charged a second time 1-3 s later (a second `transaction_id`, no
  further credit to the order) with its own notification series; skipped if the wallet is short.
- pay_after_close: `wx.closeorder` of a NOTPAY order answers SUCCESS but leaves it payable (it
  does not expire either); 2-5 s later, if still unpaid, the platform charges what is left as if
  a payment already in flight completed, and notifies it. The payer is a wallet drawn from the
  fault's stream among those that can pay it (the platform does not know who scanned the code).
Each acting fault publishes `("event", "fault.fired", ref, {"fault_id", "kind", ...})`.

Bills. `wx.downloadbill` {req_id, bill_date "YYYYMMDD", bill_type "ALL"} answers the file of that
local day (`tz_offset_ms`, UTC+8) in `statement_format` ("wechat" bill or "alipay" CSV), ready
`statement_ready_ms` after the day's end, else return_code FAIL "No Bill Exist"; the `stmt_*`
faults act on it and are logged in `statement_log` (mockbanks/statements.py). Records:
mockbanks/wechat_records.py; notifications: wechat_notify.py; refunds: wechat_refunds.py.

BUGGIFY point (`buggify(point) -> bool`, None = never; a firing publishes `buggify.fired`):
- "wechat.notify_duplicate": this notification attempt is sent twice.
"""

import random
from collections.abc import Callable, Sequence

from mockbanks.bills import READY_MS, TZ_MS
from mockbanks.faults import STMT_KINDS, ChannelFault, ChannelFaults
from mockbanks.statements import Statements, day_from, lines_of
from mockbanks.truth import Truth, ref_of
from mockbanks.wechat_notify import Notifications
from mockbanks.wechat_payout import WalletPayouts
from mockbanks.wechat_records import (
    USER_PAY_REFUSAL,
    Charge,
    Order,
    fail,
    first_bad,
    ok,
    param_error,
    text,
)
from mockbanks.wechat_refunds import Refunds

FEE_ACCOUNT = "wx_fees"
FAULT_KINDS = ("maintenance", "rate_limit", "cutoff", "notify_late", "notify_lost",
               "notify_duplicate", "amount_mismatch", "double_charge", "pay_after_close",
               *STMT_KINDS)
DOUBLE_GAP_MS = (1_000, 3_000)     # the second charge of a double charge, after the first
IN_FLIGHT_MS = (2_000, 5_000)      # pay_after_close: the payment "in flight" completes after


class WeChat(Notifications, Refunds):
    """A WeChat-like platform node: `handle`, `next_deadline`, `on_timer`."""

    def __init__(
        self, *, name: str, rng: random.Random, fee_rule, api_key: str,
        duplicate_notify_probability: float = 0.0, currency: str = "CNY",
        platform_account: str = "platform", platform_balance: int = 0,
        faults: Sequence[ChannelFault] = (), buggify: Callable[[str], bool] | None = None,
        tz_offset_ms: int = TZ_MS, statement_format: str = "wechat",
        statement_ready_ms: int = READY_MS,
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
        self._orders: dict[str, Order] = {}
        self._by_prepay: dict[str, Order] = {}
        self._notifying: dict[str, Charge] = {}    # txn_id -> charge with an attempt to come
        self._charges: dict[str, Charge] = {}       # txn_id -> charge
        self._refunds: dict[str, dict] = {}          # out_refund_no -> stored answer
        self._in_flight: dict[str, tuple[int, ChannelFault]] = {}   # pay_after_close charges due
        self._seq = 0
        self._faults = ChannelFaults(faults, rng, FAULT_KINDS, f"wechat {name}")
        self._buggify = buggify
        self._refund_info: dict[str, dict] = {}     # refund_id -> Line fields of its bill row
        if statement_format not in ("wechat", "alipay"):
            raise ValueError("statement_format: expected 'wechat' or 'alipay', "
                             f"got {statement_format!r}")
        self._statements = Statements(
            channel=name, fmt=statement_format, faults=self._faults, ready_ms=statement_ready_ms,
            rows=lambda day: lines_of(self.truth.txns(), day, tz_offset_ms, self._line_info),
            tz_offset_ms=tz_offset_ms, currency=currency, fee_rule=fee_rule,
            rate_bp=getattr(fee_rule, "rate_bp", 0))
        self.statement_log = self._statements.log   # every statement fault injected, in order
        self._ops = {"wx.unifiedorder": self._unifiedorder, "wx.user.pay": self._user_pay,
                     "wx.orderquery": self._orderquery, "wx.closeorder": self._closeorder,
                     "wx.refund": self._refund, "wx.downloadbill": self._downloadbill,
                     **WalletPayouts(self).ops()}   # wx.transfer: payouts to a wallet

    def open_wallet(self, user_id: str, balance: int) -> None:
        self.truth.open(f"wallet:{user_id}", self.currency, balance)

    # -- node contract ----------------------------------------------------------------------
    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        kind = body.get("type")
        if kind == "wx.notify.reply":
            charge = self._acknowledged(body, now_ms)
            if charge is not None and body.get("return_code") == "SUCCESS":
                charge.acked, charge.next_at = True, None
                self._notifying.pop(charge.txn_id, None)
            return []
        if kind == "net.error" or (isinstance(kind, str) and kind.endswith(".reply")):
            return []       # a refused notification is a failed attempt: the schedule goes on
        op = self._ops.get(kind)
        if op is None:
            return [("reply", {"type": f"{kind}.reply", **fail("UNKNOWN_TYPE", "FAIL")}, 0)]
        if self._faults and (refused := self._refusal(kind, body, now_ms)):
            return refused
        reply, effects = op(src, body, now_ms)
        return [("reply", {"type": f"{kind}.reply", **reply}, 0), *effects]

    def next_deadline(self) -> int | None:
        due = min((c.next_at for c in self._notifying.values()), default=None)
        if self._in_flight:
            first = min(at for at, _ in self._in_flight.values())
            due = first if due is None else min(due, first)
        return due

    def on_timer(self, now_ms: int) -> list[tuple]:
        effects: list[tuple] = []
        if self._in_flight:
            effects += self._complete_in_flight(now_ms)
        due = sorted((c for c in self._notifying.values() if c.next_at <= now_ms),
                     key=lambda c: c.next_at)
        for charge in due:
            while charge.next_at is not None and charge.next_at <= now_ms:
                effects += self._notify(charge, charge.next_at)
        return effects

    # -- helpers ----------------------------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:010d}"

    def _order(self, out_trade_no: object, now_ms: int) -> Order | None:
        """The order, closed first if it expired unpaid."""
        order = self._orders.get(out_trade_no)
        if order is not None and order.state == "NOTPAY" and not order.payable_after_close:
            time_expire = order.content[3]
            if time_expire is not None and now_ms >= time_expire:
                order.fire("expire")
        return order

    # -- faults -----------------------------------------------------------------------------
    def _refusal(self, kind: str, body: dict, now_ms: int) -> list[tuple] | None:
        """The effects of refusing this request under maintenance, rate limit or cutoff."""
        faults, code, user = self._faults, "SYSTEM_MAINTENANCE", kind == "wx.user.pay"
        fault = faults.acting("maintenance", now_ms)
        if fault is None and not user:
            fault, code = faults.limited(now_ms), "FREQUENCY_LIMITED"
        if fault is None and kind == "wx.unifiedorder":
            fault, code = faults.acting("cutoff", now_ms), "CUTOFF_IN_PROGRESS"
        if fault is None:
            return None
        if user:
            order = self._by_prepay.get(text(body.get("prepay_id")))
            out_trade_no = order.out_trade_no if order is not None else None
            reply = {"prepay_id": body.get("prepay_id"), "user_id": body.get("user_id"),
                     "result": code, "out_trade_no": out_trade_no, "transaction_id": None}
        else:
            out_trade_no = body.get("out_trade_no")
            keys = ("req_id", "bill_date") if kind == "wx.downloadbill" else (
                "out_trade_no", "out_refund_no")
            ids = {k: body.get(k) for k in keys if k in body}
            reply = fail(code, **ids)
        ref = text(body.get("out_refund_no")) or text(out_trade_no)
        return [("reply", {"type": f"{kind}.reply", **reply}, 0),
                self._faults.fired(fault, ref_of(ref), type=kind, out_trade_no=out_trade_no)]

    def _bug(self, point: str) -> bool:
        return self._buggify is not None and self._buggify(point)

    # -- orders -----------------------------------------------------------------------------
    def _unifiedorder(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        bad = first_bad(body, ("out_trade_no", "notify_url"), ("total_fee",))
        if bad is None and body.get("fee_type") != self.currency:
            bad = "fee_type", f"expected {self.currency!r}, got {body.get('fee_type')!r}"
        expire = body.get("time_expire")
        if bad is None and expire is not None and (isinstance(expire, bool)
                                                   or not isinstance(expire, int)):
            bad = "time_expire", f"expected an integer of ms or null, got {expire!r}"
        if bad:
            return param_error(body, bad)
        out_trade_no = body["out_trade_no"]
        content = (body["total_fee"], body["fee_type"], body["notify_url"], expire)
        order = self._orders.get(out_trade_no)
        if order is None:
            order = Order(out_trade_no, content, self._next_id("wx"))
            self._orders[out_trade_no] = order
            self._by_prepay[order.prepay_id] = order
        elif order.content != content:
            return fail("OUTTRADENO_USED", out_trade_no=out_trade_no), []
        return ok(out_trade_no=out_trade_no, prepay_id=order.prepay_id,
                        code_url=f"weixin://wxpay/bizpayurl?pr={order.prepay_id}"), []

    def _user_pay(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        user_id = body.get("user_id") or src.removeprefix("user:")
        order = self._by_prepay.get(text(body.get("prepay_id")))
        answer = {"prepay_id": body.get("prepay_id"), "user_id": user_id, "result": "NOT_FOUND",
                  "out_trade_no": None, "transaction_id": None}
        if order is None:
            return answer, []
        order = self._order(order.out_trade_no, now_ms)
        answer["out_trade_no"] = order.out_trade_no
        if order.state in USER_PAY_REFUSAL:
            return {**answer, "result": USER_PAY_REFUSAL[order.state]}, []
        credit = order.left
        if body.get("amount") is not None:          # a partial payment
            credit = body["amount"]
            if isinstance(credit, bool) or not isinstance(credit, int) or not (
                    1 <= credit <= order.left):
                return {**answer, "result": "PARAM_ERROR", "field": "amount",
                        "message": f"amount: expected an integer in 1..{order.left}, "
                                   f"got {credit!r}"}, []
        amount, events = credit, []
        mismatch = self._faults.acting("amount_mismatch", now_ms) if self._faults else None
        if mismatch is not None:
            amount = max(1, credit + int(mismatch.params.get("delta", -1)))
        if not self._can_pay(user_id, amount):
            return {**answer, "result": "NOTENOUGH"}, []
        if mismatch is not None:
            events.append(self._faults.fired(mismatch, ref_of(order.out_trade_no),
                                             out_trade_no=order.out_trade_no, asked=credit,
                                             charged=amount))
        charge, txn = self._take(order, user_id, amount, credit, now_ms)
        events += [txn, *self._start_notify(charge, now_ms)]
        double = self._faults.acting("double_charge", now_ms) if self._faults else None
        if double is not None:
            events += self._charge_again(order, charge, double, now_ms)
        return {**answer, "result": "SUCCESS", "transaction_id": charge.txn_id}, events

    def _can_pay(self, user_id: str, amount: int) -> bool:
        wallet = f"wallet:{user_id}"
        return self.truth.has(wallet, self.currency) and self.truth.balance(
            wallet, self.currency) >= amount

    def _take(self, order: Order, user_id: str, amount: int, credit: int,
              at_ms: int) -> tuple[Charge, tuple]:
        """Take `amount` from the user's wallet for `order` (paying `credit` of it)."""
        charge = Charge(self._next_id("WXT"), order.out_trade_no, amount, credit, user_id, at_ms)
        order.charges.append(charge)
        self._charges[charge.txn_id] = charge
        if credit and order.left == 0:
            order.fire("pay")
            order.transaction_id, order.paid_ms = order.charges[0].txn_id, at_ms
        wallet, ref, fee = f"wallet:{user_id}", ref_of(order.out_trade_no), self.fee_rule.fee(amount)
        self.truth.move(wallet, self.platform_account, amount - fee, self.currency, at_ms, ref,
                        charge.txn_id, "pay")
        self.truth.move(wallet, FEE_ACCOUNT, fee, self.currency, at_ms, ref, charge.txn_id, "fee")
        txn = self.truth.record(ref, charge.txn_id, "pay", amount, fee, self.currency, at_ms)
        return charge, ("event", "wx.txn", ref, {**txn, "out_trade_no": order.out_trade_no,
                                                 "user_id": user_id, "account": wallet})

    def _charge_again(self, order: Order, first: Charge, fault: ChannelFault,
                      now_ms: int) -> list[tuple]:
        """double_charge: a second charge of the same amount 1-3 s later, notified on its own."""
        at = now_ms + self._faults.randint(fault, *DOUBLE_GAP_MS)
        if not self._can_pay(first.user_id, first.amount):
            return []
        charge, txn = self._take(order, first.user_id, first.amount, 0, at)
        charge.next_at = at                             # its first attempt, by the timer
        self._notifying[charge.txn_id] = charge
        return [self._faults.fired(fault, ref_of(order.out_trade_no),
                                   out_trade_no=order.out_trade_no, first_txn_id=first.txn_id,
                                   second_txn_id=charge.txn_id), txn]

    def _complete_in_flight(self, now_ms: int) -> list[tuple]:
        """pay_after_close: the payments "in flight" when an order was closed complete now."""
        effects: list[tuple] = []
        due = sorted((at, no) for no, (at, _) in self._in_flight.items() if at <= now_ms)
        for at, out_trade_no in due:
            _, fault = self._in_flight.pop(out_trade_no)
            order = self._orders[out_trade_no]
            if order.state != "NOTPAY":
                continue                                # paid meanwhile: nothing in flight
            left = order.left
            payers = [r["account"].removeprefix("wallet:") for r in self.truth.accounts()
                      if r["currency"] == self.currency and r["account"].startswith("wallet:")
                      and r["balance"] >= left]
            if not payers:
                order.fire("close")                     # nobody could have paid it after all
                continue
            user_id = self._faults.rng(fault).choice(payers)
            charge, txn = self._take(order, user_id, left, left, at)
            effects += [self._faults.fired(fault, ref_of(out_trade_no), out_trade_no=out_trade_no,
                                           txn_id=charge.txn_id, user_id=user_id),
                        txn, *self._start_notify(charge, at)]
        return effects

    def _orderquery(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("out_trade_no",), ()):
            return param_error(body, bad)
        order = self._order(body["out_trade_no"], now_ms)
        if order is None:
            return fail("ORDERNOTEXIST", out_trade_no=body["out_trade_no"]), []
        answer = ok(out_trade_no=order.out_trade_no, trade_state=order.state,
                          total_fee=order.total_fee, transaction_id=order.transaction_id,
                          time_end=order.paid_ms)
        charges = order.charges
        if charges and (len(charges) > 1 or charges[0].amount != order.total_fee):
            answer["paid_fee"] = sum(c.amount for c in charges)
            answer["charges"] = [{"txn_id": c.txn_id, "amount": c.amount} for c in charges]
        return answer, []

    def _closeorder(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("out_trade_no",), ()):
            return param_error(body, bad)
        out_trade_no = body["out_trade_no"]
        order = self._order(out_trade_no, now_ms)
        events = []
        if order is None:           # never seen: remember it closed so nobody can pay it later
            self._orders[out_trade_no] = Order(out_trade_no, None, None, state="CLOSED")
        elif order.state in ("SUCCESS", "REFUND"):
            return fail("ORDERPAID", out_trade_no=out_trade_no), []
        elif order.state == "NOTPAY" and not order.payable_after_close:
            fault = self._faults.acting("pay_after_close", now_ms) if self._faults else None
            if fault is None:
                order.fire("close")
            else:                   # said closed, still payable; a payment "in flight" lands
                order.payable_after_close = True
                at = now_ms + self._faults.randint(fault, *IN_FLIGHT_MS)
                self._in_flight[out_trade_no] = (at, fault)
                events.append(self._faults.fired(fault, ref_of(out_trade_no),
                                                 out_trade_no=out_trade_no, lands_at=at))
        return ok(out_trade_no=out_trade_no), events

    # -- bills --------------------------------------------------------------------------------
    def _downloadbill(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        day = day_from(body.get("bill_date"), compact=True)
        problem = None if body.get("bill_type", "ALL") == "ALL" else (
            "bill_type", f"expected 'ALL', got {body.get('bill_type')!r}")
        if day is None:
            problem = "bill_date", f"expected a date 'YYYYMMDD', got {body.get('bill_date')!r}"
        ids = {"req_id": body.get("req_id"), "bill_date": body.get("bill_date"),
               "format": self._statements.fmt}
        if problem:
            return {**param_error(body, problem)[0], **ids}, []
        content, events = self._statements.fetch(day, now_ms)
        if content is None:
            return {**fail(None, "FAIL", **ids), "return_msg": "No Bill Exist",
                    "content": None}, events
        return ok(**ids, content=content), events

    def _line_info(self, txn: dict) -> dict:
        """The Line fields of a truth txn's bill row that the truth does not hold."""
        if txn["kind"] == "refund":
            return self._refund_info.get(txn["channel_ref"], {})
        charge = self._charges[txn["channel_ref"]]
        return {"user": charge.user_id, "order_amount": self._orders[charge.out_trade_no].total_fee}
