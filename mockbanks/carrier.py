"""The simulated mobile carrier (话费支付, carrier billing) as a sans-IO node: a charge goes onto
the subscriber's phone bill, within a monthly cap per phone number.

Protocol (every answer echoes `req_id`; amounts in minor units):

| type | fields | reply fields |
|---|---|---|
| `carrier.charge` | `req_id`, `user_id` (or `phone`), `amount`, `currency` | `result` (`SUCCESS`/`DECLINED`/`REJECTED`/`ERROR`), `code`, `txn_id`, `amount` |
| `carrier.query` | `req_id` (of the charge) | `result` (`SUCCESS`/`DECLINED`/`NOT_FOUND`/`CLOSED`), `code`, `txn_id`, `amount` |
| `carrier.close` | `req_id` (of the charge) | `CLOSED` when never seen (a later charge under that id is declined `CLOSED`), else as `carrier.query` |
| `carrier.refund` | `req_id`, `orig_req_id`, `amount`, `currency` | `result` (`SUCCESS`/`DECLINED`), `code` (`NOT_FOUND`, `EXCEEDS_REFUNDABLE`, `INSUFFICIENT_FUNDS`) |

The carrier knows each subscriber's phone number (`open_line(user_id, phone)`), so a charge may
name the user instead of the number. Declines: `UNKNOWN_SUBSCRIBER` (no line), `LINE_SUSPENDED`,
`AMOUNT_OVER_LIMIT` (more than `per_charge_max` in one charge), `MONTHLY_CAP_EXCEEDED` (the
phone's net charges of the billing month, this one included, would exceed `monthly_cap`; the month
is the local calendar month, UTC+8), `CLOSED`.

Ground truth. Each line has a bill account `bill:<phone>` (overdraft allowed: its balance is minus
what the subscriber owes the carrier; the monthly cap bounds it per month), the platform's
settlement account `platform` (compared by channel_matches_truth with paysys's
`asset:channel:<id>`) and the carrier's fee account `carrier_fees`. A SUCCESS charge moves amount -
fee from the bill to `platform` and the fee to `carrier_fees` (truth txn `pay`); a refund moves the
amount from `platform` back to the bill (fee not returned; truth txn `refund`) and gives the room
back to the cap of the charge's month. Every SUCCESS charge or refund publishes
`("event", "carrier.txn", ref, {txn..., req_id, phone, month, used, cap})` where `used` is the
phone's net charges of that month afterwards.

A repeated `req_id` is answered from the record and never moves money twice; invalid requests
are `ERROR`/`INVALID_PARAM` with `field`, nothing recorded. Reply delay: one `service_time` draw.
Channel faults: `maintenance` (`REJECTED`/`SYSTEM_MAINTENANCE`) and `rate_limit`
(`REJECTED`/`RATE_LIMITED`), nothing done, each publishing `fault.fired`. No statements.
"""

import random
from collections.abc import Callable, Sequence

from mockbanks.carrier_records import (
    DEFAULT_MONTHLY_CAP,
    DEFAULT_PER_CHARGE_MAX,
    FEE_ACCOUNT,
    Charge,
    Line,
    answer,
    bad_field,
    bill_account,
    billing_month,
    invalid,
    view,
)
from mockbanks.faults import ChannelFault, ChannelFaults
from mockbanks.truth import Truth, ref_of

FAULT_KINDS = ("maintenance", "rate_limit")
PLATFORM_ACCOUNT = "platform"


class Carrier:
    """A carrier node: `handle(src, body, now_ms)`, `next_deadline()`, `on_timer(now_ms)`."""

    def __init__(self, *, name: str, rng: random.Random, fee_rule,
                 service_time: Callable[[random.Random], int], currency: str = "CNY",
                 monthly_cap: int = DEFAULT_MONTHLY_CAP,
                 per_charge_max: int = DEFAULT_PER_CHARGE_MAX,
                 tz_offset_ms: int = 8 * 3600 * 1000, faults: Sequence[ChannelFault] = (),
                 platform_balance: int = 0) -> None:
        for field, value in (("monthly_cap", monthly_cap), ("per_charge_max", per_charge_max)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: expected a positive integer of minor units, "
                                 f"got {value!r}")
        self.name, self.rng, self.fee_rule, self.currency = name, rng, fee_rule, currency
        self.service_time, self.tz_offset_ms = service_time, tz_offset_ms
        self.monthly_cap, self.per_charge_max = monthly_cap, per_charge_max
        self.truth = Truth()
        self.truth.open(PLATFORM_ACCOUNT, currency, platform_balance)
        self.truth.open(FEE_ACCOUNT, currency, 0)
        self.statement_log: list[dict] = []     # no statements: stays empty
        self._lines: dict[str, Line] = {}       # phone -> line
        self._phones: dict[str, str] = {}       # user_id -> phone
        self._used: dict[tuple[str, int], int] = {}   # (phone, month) -> net charges
        self._charges: dict[str, Charge] = {}
        self._refunds: dict[str, Charge] = {}
        self._seq = 0
        self._faults = ChannelFaults(faults, rng, FAULT_KINDS, f"carrier {name}")
        self._ops = {"carrier.charge": self._charge, "carrier.query": self._query,
                     "carrier.close": self._close, "carrier.refund": self._refund}

    # -- population -------------------------------------------------------------------------
    def open_line(self, user_id: str, phone: str, suspended: bool = False) -> None:
        """Open the phone line `phone` of `user_id` (its bill starts at 0)."""
        if not isinstance(phone, str) or not phone.isdigit():
            raise ValueError(f"phone: expected a string of digits, got {phone!r}")
        if phone in self._lines or user_id in self._phones:
            raise ValueError(f"phone: {phone} (user {user_id}) is already open")
        account = bill_account(phone)
        self.truth.open(account, self.currency, 0, overdraft=True)
        self._lines[phone] = Line(user_id, phone, account, suspended)
        self._phones[user_id] = phone

    def used(self, phone: str, month: int) -> int:
        """The net charges of `phone` in billing `month` (202611)."""
        return self._used.get((phone, month), 0)

    # -- node contract ----------------------------------------------------------------------
    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        kind = body.get("type")
        if kind == "net.error" or (isinstance(kind, str) and kind.endswith(".reply")):
            return []
        req_id = body.get("req_id") if isinstance(body.get("req_id"), str) else None
        op = self._ops.get(kind)
        if op is None:
            return [("reply", {"type": f"{kind}.reply", "req_id": req_id, "result": "ERROR",
                               "code": "UNKNOWN_TYPE"}, 0)]
        if self._faults:
            fault, code = self._faults.acting("maintenance", now_ms), "SYSTEM_MAINTENANCE"
            if fault is None:
                fault, code = self._faults.limited(now_ms), "RATE_LIMITED"
            if fault is not None:
                reply = {"type": f"{kind}.reply", "req_id": req_id, "result": "REJECTED",
                         "code": code}
                return [self._faults.fired(fault, ref_of(req_id or ""), type=kind,
                                           req_id=req_id), ("reply", reply, 0)]
        delay = max(0, int(self.service_time(self.rng)))
        reply, events = op(body, now_ms, now_ms + delay)
        return events + [("reply", {"type": f"{kind}.reply", **reply}, delay)]

    def next_deadline(self) -> int | None:
        return None

    def on_timer(self, now_ms: int) -> list[tuple]:
        return []

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:010d}"

    def _event(self, ref: str, txn: dict, charge: Charge, req_id: str) -> tuple:
        return ("event", "carrier.txn", ref, {
            **txn, "req_id": req_id, "phone": charge.phone, "month": charge.month,
            "used": self.used(charge.phone, charge.month), "cap": self.monthly_cap})

    # -- charges ----------------------------------------------------------------------------
    def _line_of(self, body: dict) -> Line | None:
        phone = body.get("phone") or self._phones.get(body.get("user_id"))
        return self._lines.get(phone) if isinstance(phone, str) else None

    def _decline_code(self, line: Line | None, amount: int, month: int) -> str | None:
        if line is None:
            return "UNKNOWN_SUBSCRIBER"
        if line.suspended:
            return "LINE_SUSPENDED"
        if amount > self.per_charge_max:
            return "AMOUNT_OVER_LIMIT"
        if self.used(line.phone, month) + amount > self.monthly_cap:
            return "MONTHLY_CAP_EXCEEDED"
        return None

    def _charge(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        who = "phone" if body.get("phone") is not None else "user_id"
        if bad := bad_field(body, ("req_id", who), True, self.currency):
            return invalid(body, bad), []
        req_id, amount = body["req_id"], body["amount"]
        if req_id in self._charges:
            return answer(self._charges[req_id]), []
        line, month = self._line_of(body), billing_month(now_ms, self.tz_offset_ms)
        code = self._decline_code(line, amount, month)
        charge = self._charges[req_id] = Charge(req_id, "DECLINED", code, amount,
                                                line.phone if line else None, month)
        if code is not None:
            return answer(charge), []
        charge.status, charge.txn_id = "SUCCESS", self._next_id("CB")
        self._used[(line.phone, month)] = self.used(line.phone, month) + amount
        ref, cur, fee = ref_of(req_id), self.currency, self.fee_rule.fee(amount)
        self.truth.move(line.account, PLATFORM_ACCOUNT, amount - fee, cur, done_ms, ref,
                        charge.txn_id, "pay")
        self.truth.move(line.account, FEE_ACCOUNT, fee, cur, done_ms, ref, charge.txn_id, "fee")
        txn = self.truth.record(ref, charge.txn_id, "pay", amount, fee, cur, done_ms)
        return answer(charge), [self._event(ref, txn, charge, req_id)]

    def _query(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := bad_field(body, ("req_id",), False, self.currency):
            return invalid(body, bad), []
        return view(self._charges.get(body["req_id"]), body["req_id"]), []

    def _close(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := bad_field(body, ("req_id",), False, self.currency):
            return invalid(body, bad), []
        req_id = body["req_id"]
        if req_id not in self._charges:   # never seen: a later charge under this id is declined
            self._charges[req_id] = Charge(req_id, "CLOSED", "CLOSED", None)
        return view(self._charges[req_id], req_id), []

    # -- refunds ----------------------------------------------------------------------------
    def _refund(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := bad_field(body, ("req_id", "orig_req_id"), True, self.currency):
            return invalid(body, bad), []
        req_id, amount = body["req_id"], body["amount"]
        if req_id in self._refunds:
            return answer(self._refunds[req_id]), []
        charge = self._charges.get(body["orig_req_id"])
        code = None
        if charge is None or charge.status != "SUCCESS":
            code = "NOT_FOUND"
        elif charge.refunded + amount > charge.amount:
            code = "EXCEEDS_REFUNDABLE"
        elif self.truth.balance(PLATFORM_ACCOUNT, self.currency) < amount:
            code = "INSUFFICIENT_FUNDS"
        phone, month = (charge.phone, charge.month) if charge else (None, None)
        refund = self._refunds[req_id] = Charge(req_id, "DECLINED", code, amount, phone, month)
        if code is not None:
            return answer(refund), []
        refund.status, refund.txn_id = "SUCCESS", self._next_id("CR")
        charge.refunded += amount
        self._used[(phone, month)] = self.used(phone, month) - amount
        ref = ref_of(req_id)
        self.truth.move(PLATFORM_ACCOUNT, self._lines[phone].account, amount, self.currency,
                        done_ms, ref, refund.txn_id, "refund")
        txn = self.truth.record(ref, refund.txn_id, "refund", amount, 0, self.currency, done_ms)
        event = self._event(ref, txn, refund, req_id)
        event[3]["orig_req_id"] = charge.req_id
        return answer(refund), [event]
