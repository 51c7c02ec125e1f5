"""The simulated Alipay-like platform (sans-IO node): QR trades paid from the users' wallets,
RSA2-signed notifications, refunds, bills.

Owns the platform side of the "Alipay-like platform" protocol of docs/protocol.md and its ground
truth (`self.truth`): user wallets `wallet:<user_id>`, the payment system's merchant account
(`platform`, the account the oracle's channel_matches_truth compares with paysys's
`asset:channel:<id>`) and the platform's fee account (`ali_fees`). Everything happens at
arrival (no queueing model): money moves when `ali.user.pay` / `alipay.trade.refund` is handled.

Messages (every reply: `code` "10000" Success / "40004" Business Failed with `sub_code` /
"40002" Invalid Arguments with `field` / "20000" Service Currently Unavailable with `sub_code`;
replies to paysys echo its `req_id` and the `out_trade_no`):
- `alipay.trade.precreate` {out_trade_no, total_amount, currency, notify_url, time_expire (ms or
  None), subject}: a trade WAIT_BUYER_PAY and its `qr_code`. The same number with the same
  content gets the same answer; with other content ACQ.CONTEXT_INCONSISTENT; a number closed
  before the platform saw it ACQ.TRADE_HAS_CLOSE.
- `ali.user.pay` {qr_code, user_id, optional amount (must be the whole amount: no partial
  payments)} from the user: `result` SUCCESS (with `trade_no`), BALANCE_NOT_ENOUGH, TRADE_CLOSED,
  TRADE_HAS_SUCCESS, TRADE_NOT_EXIST, INVALID_PARAMETER (`field`), SYSTEM_MAINTENANCE.
- `alipay.trade.query` {out_trade_no}: `trade_status` WAIT_BUYER_PAY / TRADE_SUCCESS /
  TRADE_CLOSED / TRADE_FINISHED, `trade_no`, `total_amount`, `buyer_pay_amount` (what the buyer
  paid: a fully refunded trade is TRADE_CLOSED with its buyer_pay_amount), `refund_amount`,
  `send_pay_date`; or ACQ.TRADE_NOT_EXIST.
- `alipay.trade.close` {out_trade_no}: closes an unpaid trade (again: same answer); a paid one is
  ACQ.TRADE_STATUS_ERROR; an unknown number is ACQ.TRADE_NOT_EXIST and remembered closed (a
  late precreate for it is refused, nobody can pay it).
- `alipay.trade.refund`: mockbanks/alipay_refunds.py.
- `alipay.data.bill.download` {req_id, bill_type "trade", bill_date "2026-11-02"}: the file of
  that local day (`tz_offset_ms`, UTC+8) in the "alipay" CSV (mockbanks/statements.py, bills.py),
  ready `statement_ready_ms` after the day's end, else ACQ.BILL_NOT_EXIST (`content` None); the
  `stmt_*` faults act on it and are logged in `statement_log`.
- `ali.notify` to the trade's notify_url when the buyer pays: mockbanks/alipay_notify.py (8 tries
  within 25 h until the literal answer "success"), RSA2-signed (mockbanks/alipay_records.py).
  With probability `duplicate_notify_probability` an attempt is sent twice.

Trades follow TRADE_TRANSITIONS (alipay_records.py): WAIT_BUYER_PAY -> TRADE_SUCCESS (paid) ->
TRADE_CLOSED (fully refunded) or TRADE_FINISHED (`refund_window_ms` after the payment, when
given: no refund any more); WAIT_BUYER_PAY -> TRADE_CLOSED (closed, or unpaid at `time_expire`).
Expiry and finishing are applied lazily whenever the trade is touched. A trade has one charge.

Channel faults (`faults`, mockbanks/faults.py; nothing is drawn when none is given), each
refusal answered code "20000" with the sub_code below, nothing done, `fault.fired` published:
- maintenance: every request (the user's `ali.user.pay` gets `result` SYSTEM_MAINTENANCE):
  ACQ.SYSTEM_MAINTENANCE.
- rate_limit: beyond `max_per_s` requests of paysys accepted in one second: ACQ.FREQUENCY_LIMITED.
- cutoff: `alipay.trade.precreate` only: ACQ.CUTOFF_IN_PROGRESS.

BUGGIFY point (`buggify(point) -> bool`, None = never): "alipay.notify_duplicate".
"""

import random
from collections.abc import Callable, Sequence

from mockbanks.alipay_notify import Notifications
from mockbanks.alipay_records import (
    UNAVAILABLE,
    USER_PAY_REFUSAL,
    Trade,
    fail,
    first_bad,
    invalid,
    ok,
    text,
)
from mockbanks.alipay_refunds import Refunds
from mockbanks.bills import READY_MS, TZ_MS
from mockbanks.faults import STMT_KINDS, ChannelFault, ChannelFaults
from mockbanks.statements import Statements, day_from, lines_of
from mockbanks.truth import Truth, ref_of

FEE_ACCOUNT = "ali_fees"
FAULT_KINDS = ("maintenance", "rate_limit", "cutoff", *STMT_KINDS)
QR_PREFIX = "https://qr.alipay.com/"
REFUSALS = {"maintenance": "ACQ.SYSTEM_MAINTENANCE", "rate_limit": "ACQ.FREQUENCY_LIMITED",
            "cutoff": "ACQ.CUTOFF_IN_PROGRESS"}


class Alipay(Notifications, Refunds):
    """An Alipay-like platform node: `handle`, `next_deadline`, `on_timer`."""

    def __init__(
        self, *, name: str, rng: random.Random, fee_rule, app_id: str = "2021000000000000",
        duplicate_notify_probability: float = 0.0, currency: str = "CNY",
        platform_account: str = "platform", platform_balance: int = 0,
        faults: Sequence[ChannelFault] = (), buggify: Callable[[str], bool] | None = None,
        tz_offset_ms: int = TZ_MS, statement_ready_ms: int = READY_MS,
        refund_window_ms: int | None = None,
    ) -> None:
        if not 0.0 <= duplicate_notify_probability <= 1.0:
            raise ValueError("duplicate_notify_probability: expected a probability in [0, 1], "
                             f"got {duplicate_notify_probability!r}")
        if refund_window_ms is not None and (isinstance(refund_window_ms, bool) or not isinstance(
                refund_window_ms, int) or refund_window_ms <= 0):
            raise ValueError("refund_window_ms: expected a positive integer of ms or None, "
                             f"got {refund_window_ms!r}")
        self.name, self.rng, self.fee_rule, self.app_id = name, rng, fee_rule, app_id
        self.duplicate_notify_probability = duplicate_notify_probability
        self.currency, self.platform_account = currency, platform_account
        self.refund_window_ms = refund_window_ms
        self.truth = Truth()
        self.truth.open(platform_account, currency, platform_balance)
        self.truth.open(FEE_ACCOUNT, currency, 0)
        self._trades: dict[str, Trade] = {}
        self._by_qr: dict[str, Trade] = {}
        self._by_trade_no: dict[str, Trade] = {}
        self._by_notify: dict[str, Trade] = {}
        self._notifying: dict[str, Trade] = {}      # out_trade_no -> trade with an attempt to come
        self._refunds: dict[str, dict] = {}          # out_request_no -> stored answer
        self._refund_info: dict[str, dict] = {}      # refund_id -> Line fields of its bill row
        self._seq = 0
        self._faults = ChannelFaults(faults, rng, FAULT_KINDS, f"alipay {name}")
        self._buggify = buggify
        self._statements = Statements(
            channel=name, fmt="alipay", faults=self._faults, ready_ms=statement_ready_ms,
            rows=lambda day: lines_of(self.truth.txns(), day, tz_offset_ms, self._line_info),
            tz_offset_ms=tz_offset_ms, currency=currency, fee_rule=fee_rule,
            rate_bp=getattr(fee_rule, "rate_bp", 0))
        self.statement_log = self._statements.log   # every statement fault injected, in order
        self._ops = {"alipay.trade.precreate": self._precreate, "ali.user.pay": self._user_pay,
                     "alipay.trade.query": self._query, "alipay.trade.close": self._close,
                     "alipay.trade.refund": self._refund,
                     "alipay.data.bill.download": self._bill}

    def open_wallet(self, user_id: str, balance: int) -> None:
        self.truth.open(f"wallet:{user_id}", self.currency, balance)

    # -- node contract ----------------------------------------------------------------------
    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        kind = body.get("type")
        if kind == "ali.notify.reply":
            return self._acknowledged(body, now_ms)
        if kind == "net.error" or (isinstance(kind, str) and kind.endswith(".reply")):
            return []       # a refused notification is a failed attempt: the schedule goes on
        op = self._ops.get(kind)
        if op is None:
            reply = invalid(("type", f"expected one of {', '.join(self._ops)}, got {kind!r}"))
            return [("reply", {"type": f"{kind}.reply", **reply}, 0)]
        if self._faults and (refused := self._refusal(kind, body, now_ms)):
            return refused
        reply, effects = op(src, body, now_ms)
        if "req_id" in body:
            reply = {**reply, "req_id": body["req_id"]}
        return [("reply", {"type": f"{kind}.reply", **reply}, 0), *effects]

    def next_deadline(self) -> int | None:
        return min((t.next_at for t in self._notifying.values()), default=None)

    def on_timer(self, now_ms: int) -> list[tuple]:
        effects: list[tuple] = []
        due = sorted((t for t in self._notifying.values() if t.next_at <= now_ms),
                     key=lambda t: (t.next_at, t.out_trade_no))
        for trade in due:
            while trade.next_at is not None and trade.next_at <= now_ms:
                effects += self._notify(trade, trade.next_at)
        return effects

    # -- helpers ----------------------------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:010d}"

    def _trade(self, out_trade_no: object, now_ms: int) -> Trade | None:
        """The trade, expired or finished first when its time has come."""
        trade = self._trades.get(text(out_trade_no))
        if trade is None or trade.content is None:
            return trade
        if trade.state == "WAIT_BUYER_PAY":
            expire = trade.content[3]
            if expire is not None and now_ms >= expire:
                trade.fire("expire")
        elif trade.state == "TRADE_SUCCESS" and self.refund_window_ms is not None and \
                now_ms >= trade.paid_ms + self.refund_window_ms:
            trade.fire("finish")
        return trade

    def _bug(self, point: str) -> bool:
        return self._buggify is not None and self._buggify(point)

    def _refusal(self, kind: str, body: dict, now_ms: int) -> list[tuple] | None:
        """The effects of refusing this request under maintenance, rate limit or cutoff."""
        faults, user = self._faults, kind == "ali.user.pay"
        fault = faults.acting("maintenance", now_ms)
        if fault is None and not user:
            fault = faults.limited(now_ms)
        if fault is None and kind == "alipay.trade.precreate":
            fault = faults.acting("cutoff", now_ms)
        if fault is None:
            return None
        code = REFUSALS[fault.kind]
        if user:
            trade = self._by_qr.get(text(body.get("qr_code")))
            out_trade_no = trade.out_trade_no if trade is not None else None
            reply = {"qr_code": body.get("qr_code"), "user_id": body.get("user_id"),
                     "result": "SYSTEM_MAINTENANCE", "out_trade_no": out_trade_no,
                     "trade_no": None}
        else:
            out_trade_no = body.get("out_trade_no")
            keys = ("req_id", "bill_date") if kind == "alipay.data.bill.download" else (
                "req_id", "out_trade_no", "out_request_no")
            reply = fail(code, UNAVAILABLE, **{k: body.get(k) for k in keys if k in body})
        ref = text(body.get("out_request_no")) or text(out_trade_no)
        return [("reply", {"type": f"{kind}.reply", **reply}, 0),
                faults.fired(fault, ref_of(ref), type=kind, out_trade_no=out_trade_no)]

    # -- trades -----------------------------------------------------------------------------
    def _precreate(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        bad = first_bad(body, ("out_trade_no", "notify_url"), ("total_amount",))
        if bad is None and body.get("currency", self.currency) != self.currency:
            bad = "currency", f"expected {self.currency!r}, got {body.get('currency')!r}"
        expire = body.get("time_expire")
        if bad is None and expire is not None and (isinstance(expire, bool)
                                                   or not isinstance(expire, int)):
            bad = "time_expire", f"expected an integer of ms or null, got {expire!r}"
        no = body.get("out_trade_no")
        if bad:
            return invalid(bad, out_trade_no=no), []
        content = (body["total_amount"], self.currency, body["notify_url"], expire)
        trade = self._trades.get(no)
        if trade is None:
            trade = Trade(no, content, self._next_id("bax"))
            self._trades[no] = trade
            self._by_qr[trade.qr_token] = trade
        elif trade.content is None:
            return fail("ACQ.TRADE_HAS_CLOSE", out_trade_no=no), []
        elif trade.content != content:
            return fail("ACQ.CONTEXT_INCONSISTENT", out_trade_no=no), []
        return ok(out_trade_no=no, qr_code=QR_PREFIX + trade.qr_token), []

    def _user_pay(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        user_id = body.get("user_id") or src.removeprefix("user:")
        qr = text(body.get("qr_code")).removeprefix(QR_PREFIX)
        trade = self._by_qr.get(qr)
        answer = {"qr_code": body.get("qr_code"), "user_id": user_id, "result": "TRADE_NOT_EXIST",
                  "out_trade_no": None, "trade_no": None}
        if trade is None:
            return answer, []
        trade = self._trade(trade.out_trade_no, now_ms)
        answer["out_trade_no"] = trade.out_trade_no
        if trade.state in USER_PAY_REFUSAL:
            return {**answer, "result": USER_PAY_REFUSAL[trade.state]}, []
        amount = trade.total_amount
        if body.get("amount") is not None and body["amount"] != amount:
            return {**answer, "result": "INVALID_PARAMETER", "field": "amount",
                    "message": f"amount: expected {amount} (the whole trade: no partial "
                               f"payments), got {body['amount']!r}"}, []
        wallet = f"wallet:{user_id}"
        if not self.truth.has(wallet, self.currency) or \
                self.truth.balance(wallet, self.currency) < amount:
            return {**answer, "result": "BALANCE_NOT_ENOUGH"}, []
        trade.trade_no, trade.buyer, trade.paid_ms = self._next_id("ALT"), user_id, now_ms
        trade.fire("pay")
        self._by_trade_no[trade.trade_no] = trade
        ref, fee = ref_of(trade.out_trade_no), self.fee_rule.fee(amount)
        self.truth.move(wallet, self.platform_account, amount - fee, self.currency, now_ms, ref,
                        trade.trade_no, "pay")
        self.truth.move(wallet, FEE_ACCOUNT, fee, self.currency, now_ms, ref, trade.trade_no,
                        "fee")
        txn = self.truth.record(ref, trade.trade_no, "pay", amount, fee, self.currency, now_ms)
        event = ("event", "ali.txn", ref, {**txn, "out_trade_no": trade.out_trade_no,
                                           "user_id": user_id, "account": wallet})
        return {**answer, "result": "SUCCESS", "trade_no": trade.trade_no}, [
            event, *self._start_notify(trade, now_ms)]

    def _query(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        no = body.get("out_trade_no")
        if bad := first_bad(body, ("out_trade_no",), ()):
            return invalid(bad, out_trade_no=no), []
        trade = self._trade(no, now_ms)
        if trade is None or trade.content is None:
            return fail("ACQ.TRADE_NOT_EXIST", out_trade_no=no), []
        return ok(out_trade_no=no, trade_no=trade.trade_no, trade_status=trade.state,
                  total_amount=trade.total_amount,
                  buyer_pay_amount=trade.total_amount if trade.paid else 0,
                  refund_amount=trade.refunded, send_pay_date=trade.paid_ms,
                  buyer_user_id=trade.buyer), []

    def _close(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        no = body.get("out_trade_no")
        if bad := first_bad(body, ("out_trade_no",), ()):
            return invalid(bad, out_trade_no=no), []
        trade = self._trade(no, now_ms)
        if trade is None or trade.content is None:   # never seen: nobody may pay it later
            self._trades.setdefault(no, Trade(no, None, None, state="TRADE_CLOSED"))
            return fail("ACQ.TRADE_NOT_EXIST", out_trade_no=no), []
        if trade.paid:
            return fail("ACQ.TRADE_STATUS_ERROR", out_trade_no=no, trade_no=trade.trade_no), []
        if trade.state == "WAIT_BUYER_PAY":
            trade.fire("close")
        return ok(out_trade_no=no, trade_no=None), []

    # -- bills --------------------------------------------------------------------------------
    def _bill(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        day = day_from(body.get("bill_date"))
        ids = {"bill_date": body.get("bill_date"), "format": "alipay"}
        if body.get("bill_type", "trade") != "trade":
            bad = "bill_type", f"expected 'trade', got {body.get('bill_type')!r}"
            return invalid(bad, **ids), []
        if day is None:
            bad = "bill_date", f"expected a date 'YYYY-MM-DD', got {body.get('bill_date')!r}"
            return invalid(bad, **ids), []
        content, events = self._statements.fetch(day, now_ms)
        if content is None:
            return fail("ACQ.BILL_NOT_EXIST", **ids, content=None), events
        return ok(**ids, content=content), events

    def _line_info(self, txn: dict) -> dict:
        """The Line fields of a truth txn's bill row that the truth does not hold."""
        if txn["kind"] == "refund":
            return self._refund_info.get(txn["channel_ref"], {})
        trade = self._by_trade_no[txn["channel_ref"]]
        return {"user": trade.buyer, "order_amount": trade.total_amount}
