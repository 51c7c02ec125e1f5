"""The simulated quick-pay bank (sans-IO node): agreements, pays, queries, closes, refunds,
statements, payouts and reserve transfers.

Owns the bank side of the "Quick-pay bank" protocol of docs/protocol.md and the bank's ground
truth (`self.truth`): card accounts `card:<card_no>`, the platform's account (`platform`) and its
`reserve` (opened with `reserve_balance`), merchants' accounts `merchant:<id>` (payouts), the
bank's fee account (`bank_fees`) and the `magic` account (the only one allowed to go negative)
that funds magic cards 4242 and 3220 whatever their balance, so conservation still holds.
Records and validation: mockbanks/bank_records.py; refunds, payouts and transfers:
mockbanks/bank_ops.py; `bank.statement` (MT940 of a local day, ready `statement_ready_ms` after
its end, and the `stmt_*` faults logged in `statement_log`): mockbanks/statements.py.

Timing model. The bank is an M/G/c queue: `capacity` servers, each free from some instant. A
request starts at max(now, earliest free server); if it would wait more than `max_queue_ms` it is
answered at once with ERROR/SYSTEM_BUSY and nothing is done (not even de-duplication). Otherwise
the reply leaves when service ends (delay = wait + service time). **The outcome and the money
movement are decided at arrival** (so a `bank.query` arriving during the service of a pay already
sees it), and the ground truth records `at_ms` = the completion instant of that request. A 3220
pay answers PROCESSING and settles as SUCCESS 30 s after its completion: the money moves then
(`next_deadline`/`on_timer`; also applied lazily at the start of `handle`).

De-duplication: a repeated pay, sign, unsign or refund `req_id` is answered from what the bank
recorded and never moves money twice (a repeated pay of a settled 3220 says SUCCESS). An ERROR pay
(card 0119) moved no money and never will: `bank.query` shows it DECLINED/PROCESSING_ERROR.
A refund needs a SUCCESS pay (else NOT_FOUND, also while a 3220 pay is PROCESSING) and enough
money on the platform's account (else DECLINED/INSUFFICIENT_FUNDS); the fee is not returned.
Daily limits are per card per local day (`tz_offset_ms`, UTC+8 by default); magic cards skip them.

Charges. A SUCCESS pay holds one charge (`bank_txn_id`, `amount`), or two under `double_charge`.
`bank.query`/`bank.close` list them in `charges` only when there are several (one charge is said
by `bank_txn_id`/`amount` already: bodies without faults stay as they were). A refund takes back
the charge `orig_txn_id` names, by default the pay's first charge.

Channel faults (`faults`, see mockbanks/faults.py; nothing is drawn when none is given):
- maintenance: every request is answered `REJECTED`/`SYSTEM_MAINTENANCE` at once, nothing done.
- rate_limit: beyond `max_per_s` requests accepted in one second, `REJECTED`/`RATE_LIMITED`.
- cutoff: a new `bank.pay` or `bank.sign` is `REJECTED`/`CUTOFF_IN_PROGRESS` (a req_id the bank
  already answered gets its stored answer); queries, closes, refunds, unsigns, statements,
  payouts and transfers work.
  `REJECTED` says that this request did nothing, not that an earlier send of the same req_id did
  nothing (a pay retried during maintenance may have been charged by its first send).
- amount_mismatch: the pay charges amount + `delta` (at least 1) and reports that `amount`.
- double_charge: a SUCCESS pay is charged a second time 1-3 s after the first (second
  `bank_txn_id`, second truth txn with the same ref) and a second `bank.pay.reply` with the same
  req_id and the new `bank_txn_id` leaves 1-3 s after the first reply. Not for 3220 (PROCESSING),
  nor when the card cannot pay it twice.
- pay_after_close: `bank.close` of a req_id never seen answers CLOSED but keeps no tombstone: a
  pay arriving later under that req_id is charged and answered SUCCESS.
Each acting fault publishes `("event", "fault.fired", ref, {"fault_id", "kind", ...})`.

BUGGIFY points (`buggify(point) -> bool`, None = never; a firing publishes `buggify.fired`):
- "bank.reply_lost": the request is carried out but no reply is sent.
- "bank.slow": the request takes 1-5 s longer (the server is freed on time).
"""

import heapq
import random
from collections.abc import Callable, Sequence

from mockbanks.bank_cardpayout import CardPayouts
from mockbanks.bank_mandates import Mandates
from mockbanks.bank_netbank import Netbank
from mockbanks.bank_ops import RESERVE_ACCOUNT, Outflows
from mockbanks.bank_preauth import Preauth
from mockbanks.bank_records import (
    FEE_ACCOUNT,
    FUNDED_MAGIC,
    MAGIC_ACCOUNT,
    MAGIC_FAILURES,
    MAGIC_SUFFIXES,
    QUERY_RESULT,
    Card,
    Charge,
    Pay,
    first_bad,
    invalid,
)
from mockbanks.bills import READY_MS
from mockbanks.faults import STMT_KINDS, ChannelFault, ChannelFaults
from mockbanks.statements import Statements, day_from, lines_of
from mockbanks.truth import Truth, ref_of

DAY_MS = 86_400_000
SETTLE_DELAY_MS = 30_000
FAULT_KINDS = ("maintenance", "rate_limit", "cutoff", "amount_mismatch", "double_charge",
               "pay_after_close", *STMT_KINDS)
CUTOFF_TYPES = ("bank.pay", "bank.sign")
DOUBLE_GAP_MS = (1_000, 3_000)     # the second charge of a double charge, after the first
SLOW_MS = (1_000, 5_000)           # BUGGIFY "bank.slow"

class Bank:
    """A quick-pay bank node: `handle(src, body, now_ms)`, `next_deadline()`, `on_timer(now_ms)`."""

    def __init__(
        self, *, name: str, rng: random.Random, fee_rule, capacity: int, max_queue_ms: int,
        service_time: Callable[[random.Random], int], platform_account: str = "platform",
        currency: str = "CNY", tz_offset_ms: int = 8 * 3600 * 1000, platform_balance: int = 0,
        faults: Sequence[ChannelFault] = (), buggify: Callable[[str], bool] | None = None,
        reserve_balance: int = 0, statement_ready_ms: int = READY_MS,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity: expected an integer >= 1, got {capacity!r}")
        if isinstance(max_queue_ms, bool) or not isinstance(max_queue_ms, int) or max_queue_ms < 0:
            raise ValueError(f"max_queue_ms: expected an integer >= 0, got {max_queue_ms!r}")
        self.name, self.rng, self.fee_rule = name, rng, fee_rule
        self.capacity, self.max_queue_ms, self.service_time = capacity, max_queue_ms, service_time
        self.platform_account, self.currency, self.tz_offset_ms = platform_account, currency, tz_offset_ms
        self.truth = Truth()
        self.truth.open(platform_account, currency, platform_balance)
        self.truth.open(FEE_ACCOUNT, currency, 0)
        self.truth.open(MAGIC_ACCOUNT, currency, 0, overdraft=True)
        self.truth.open(RESERVE_ACCOUNT, currency, reserve_balance)
        self._free = [0] * capacity            # instant each server becomes free (a min-heap)
        self._cards: dict[str, Card] = {}
        self._agreements: dict[str, str | None] = {}   # agreement_no -> card_no (None = revoked)
        self._active: dict[str, str] = {}      # card_no -> its active agreement_no
        self._signs: dict[str, dict] = {}      # req_id -> stored answer (bank.sign / bank.unsign)
        self._pays: dict[str, Pay] = {}
        self._refunds: dict[str, Pay] = {}
        self._pending: dict[str, Pay] = {}    # PROCESSING pays awaiting settlement
        self._seq = 0
        self._faults = ChannelFaults(faults, rng, FAULT_KINDS, f"bank {name}")
        self._buggify = buggify
        self._chaos: random.Random | None = None   # BUGGIFY's draws, made at its first firing
        self._statements = Statements(
            channel=name, fmt="mt940", faults=self._faults, ready_ms=statement_ready_ms,
            rows=lambda day: lines_of(self.truth.txns(), day, tz_offset_ms),
            tz_offset_ms=tz_offset_ms, currency=currency, fee_rule=fee_rule)
        self.statement_log = self._statements.log   # every statement fault injected, in order
        moves = Outflows(self.truth, platform_account, currency, self._next_id, self._pays,
                         self._refunds, self._cards)
        self._ops = {"bank.sign": self._sign, "bank.unsign": self._unsign, "bank.pay": self._pay,
                     "bank.query": self._query, "bank.close": self._close,
                     "bank.refund": moves.refund, "bank.statement": self._statement,
                     "bank.payout": moves.payout, "bank.transfer": moves.transfer}
        # the product parts: netbank pages, withholding mandates, pre-authorisations, card payouts
        self._parts = (Netbank(self), Mandates(self), Preauth(self), CardPayouts(self))
        self._acks = {}    # reply type -> the part's handler (a notification acknowledged)
        for part in self._parts:
            self._ops.update(part.ops())
            self._acks.update(getattr(part, "acks", dict)())

    # -- population -------------------------------------------------------------------------
    def open_account(self, user_id: str, card_no: str, balance: int, daily_limit: int,
                     frozen: bool = False) -> None:
        """Open the card `card_no` of `user_id` holding `balance` minor units."""
        if card_no in self._cards:
            raise ValueError(f"card_no: {card_no} is already open")
        account = f"card:{card_no}"
        self.truth.open(account, self.currency, balance)
        self._cards[card_no] = Card(user_id, card_no, account, daily_limit, frozen)

    def set_frozen(self, card_no: str, frozen: bool = True) -> None:
        self._cards[card_no].frozen = frozen

    def local_day(self, now_ms: int) -> int:
        """Number of the bank's local calendar day containing `now_ms`."""
        return (now_ms + self.tz_offset_ms) // DAY_MS

    # -- node contract ----------------------------------------------------------------------
    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        effects = self._settle_due(now_ms)
        kind = body.get("type")
        if kind in self._acks:
            return effects + self._acks[kind](body)
        if kind == "net.error" or (isinstance(kind, str) and kind.endswith(".reply")):
            return effects          # nothing else of ours waits for an answer
        op = self._ops.get(kind)
        if op is None:
            return effects + [("reply", {"type": f"{kind}.reply", "req_id": body.get("req_id"),
                                         "result": "ERROR", "code": "UNKNOWN_TYPE"}, 0)]
        if self._faults and (refused := self._refusal(kind, body, now_ms)):
            return effects + refused
        delay = self._admit(now_ms)
        if delay is None:
            busy = {"type": f"{kind}.reply", "req_id": body.get("req_id"), "result": "ERROR",
                    "code": "SYSTEM_BUSY"}
            return effects + [("reply", busy, 0)]
        if self._buggify is not None and self._buggify("bank.slow"):
            delay += self._chaos_rng().randint(*SLOW_MS)
            effects.append(self._bug("bank.slow", body))
        reply, events = op(body, now_ms, now_ms + delay)
        later = [e for e in events if e[0] == "reply"]      # a double charge's second reply
        events = [e for e in events if e[0] != "reply"]
        if self._buggify is not None and self._buggify("bank.reply_lost"):
            return effects + events + [self._bug("bank.reply_lost", body)]
        return effects + events + [("reply", {"type": f"{kind}.reply", **reply}, delay)] + later

    def next_deadline(self) -> int | None:
        due = [p.settle_at for p in self._pending.values()]
        due += [d for part in self._parts if (d := part.next_deadline()) is not None]
        return min(due, default=None)

    def on_timer(self, now_ms: int) -> list[tuple]:
        effects = self._settle_due(now_ms)
        for part in self._parts:
            effects += part.on_timer(now_ms)
        return effects

    def _admit(self, now_ms: int) -> int | None:
        """Reply delay of a request arriving now, or None when its queue wait is too long."""
        start = max(now_ms, self._free[0])      # the server that is free first (a heap)
        if start - now_ms > self.max_queue_ms:
            return None
        done = start + max(0, int(self.service_time(self.rng)))
        heapq.heapreplace(self._free, done)
        return done - now_ms

    # -- faults -----------------------------------------------------------------------------
    def _refusal(self, kind: str, body: dict, now_ms: int) -> list[tuple] | None:
        """The effects of refusing this request under maintenance, rate limit or cutoff."""
        faults, code = self._faults, "SYSTEM_MAINTENANCE"
        fault = faults.acting("maintenance", now_ms)
        if fault is None:
            fault, code = faults.limited(now_ms), "RATE_LIMITED"
        if fault is None and kind in CUTOFF_TYPES and not self._answered(kind, body):
            fault, code = faults.acting("cutoff", now_ms), "CUTOFF_IN_PROGRESS"
        if fault is None:
            return None
        req_id = body.get("req_id") if isinstance(body.get("req_id"), str) else None
        reply = {"type": f"{kind}.reply", "req_id": req_id, "result": "REJECTED", "code": code}
        return [faults.fired(fault, ref_of(req_id or ""), type=kind, req_id=req_id),
                ("reply", reply, 0)]

    def _answered(self, kind: str, body: dict) -> bool:
        """Whether the bank already recorded an answer for this pay's or sign's req_id."""
        req_id = body.get("req_id")
        return isinstance(req_id, str) and req_id in (self._pays if kind == "bank.pay"
                                                      else self._signs)

    def _chaos_rng(self) -> random.Random:
        if self._chaos is None:
            self._chaos = random.Random(self.rng.getrandbits(64))
        return self._chaos

    @staticmethod
    def _bug(point: str, body: dict) -> tuple:
        req_id = body.get("req_id") if isinstance(body.get("req_id"), str) else ""
        return ("event", "buggify.fired", ref_of(req_id), {"point": point, "type": body["type"],
                                                           "req_id": req_id})

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:010d}"

    # -- agreements -------------------------------------------------------------------------
    def _sign(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("req_id", "user_id", "card_no"), False, self.currency):
            return invalid(body, bad)
        req_id, user_id, card_no = body["req_id"], body["user_id"], body["card_no"]
        if req_id in self._signs:
            return dict(self._signs[req_id]), []
        if card_no not in self._cards and card_no.endswith(MAGIC_SUFFIXES):
            self.open_account(user_id, card_no, 0, 0)   # magic cards need no prior account
        card = self._cards.get(card_no)
        if card is None or card.user_id != user_id:
            answer = {"req_id": req_id, "result": "DECLINED", "code": "INVALID_CARD",
                      "agreement_no": None}
        else:
            if card_no not in self._active:
                self._active[card_no] = self._next_id("AG")
                self._agreements[self._active[card_no]] = card_no
            answer = {"req_id": req_id, "result": "OK", "code": None,
                      "agreement_no": self._active[card_no]}
        self._signs[req_id] = answer
        return dict(answer), []

    def _unsign(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("req_id", "agreement_no"), False, self.currency):
            return invalid(body, bad)
        req_id, agreement_no = body["req_id"], body["agreement_no"]
        if req_id not in self._signs:
            result = "NOT_FOUND"
            if agreement_no in self._agreements:
                result = "OK"
                card_no = self._agreements[agreement_no]
                if card_no is not None:
                    self._agreements[agreement_no] = None
                    del self._active[card_no]
            self._signs[req_id] = {"req_id": req_id, "result": result, "code": None,
                                   "agreement_no": agreement_no}
        return dict(self._signs[req_id]), []

    # -- pays -------------------------------------------------------------------------------
    @staticmethod
    def _pay_answer(pay: Pay) -> dict:
        result, code = pay.status, pay.code
        if pay.status == "CLOSED":
            result = "DECLINED"
        return {"req_id": pay.req_id, "result": result, "code": code,
                "bank_txn_id": pay.bank_txn_id, "amount": pay.amount}

    def _pay(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("req_id", "agreement_no"), True, self.currency):
            return invalid(body, bad)
        req_id, amount = body["req_id"], body["amount"]
        if req_id in self._pays:
            return self._pay_answer(self._pays[req_id]), []
        card_no = self._agreements.get(body["agreement_no"])
        card = self._cards.get(card_no) if card_no else None
        pay = Pay(req_id, "DECLINED", "AGREEMENT_INVALID", amount, card_no)
        self._pays[req_id] = pay
        if card is None:
            return self._pay_answer(pay), []
        suffix = card_no[-4:]
        if suffix in MAGIC_FAILURES:
            pay.status, pay.code = MAGIC_FAILURES[suffix]
            return self._pay_answer(pay), []
        mismatch = self._faults.acting("amount_mismatch", now_ms) if self._faults else None
        if mismatch is not None:
            amount = pay.amount = max(1, amount + int(mismatch.params.get("delta", -1)))
        if suffix not in FUNDED_MAGIC:
            day = self.local_day(now_ms)   # the limit of the day the pay arrives
            pay.code = self._decline_code(card, amount, day)
            if pay.code is not None:
                return self._pay_answer(pay), []
            card.day, card.used = day, (card.used if card.day == day else 0) + amount
        pay.code, pay.bank_txn_id = None, self._next_id("BT")
        events = []
        if mismatch is not None:
            events.append(self._faults.fired(mismatch, ref_of(req_id), req_id=req_id,
                                             asked=body["amount"], charged=amount))
        if suffix == "3220":
            pay.status, pay.settle_at = "PROCESSING", done_ms + SETTLE_DELAY_MS
            self._pending[req_id] = pay
            return self._pay_answer(pay), events
        pay.status = "SUCCESS"
        events.append(self._charge(pay, card, pay.bank_txn_id, amount, done_ms))
        double = self._faults.acting("double_charge", now_ms) if self._faults else None
        if double is not None:
            events += self._charge_again(pay, card, double, now_ms, done_ms)
        return self._pay_answer(pay), events

    def _decline_code(self, card: Card, amount: int, day: int) -> str | None:
        """Why an ordinary card cannot pay `amount` on local `day`, or None."""
        if card.frozen:
            return "CARD_FROZEN"
        if (card.used if card.day == day else 0) + amount > card.daily_limit:
            return "LIMIT_EXCEEDED"
        if self.truth.balance(card.account, self.currency) < amount:
            return "INSUFFICIENT_FUNDS"
        return None

    def _charge(self, pay: Pay, card: Card, txn_id: str, amount: int, at_ms: int) -> tuple:
        """Take `amount` from the card for `pay` as charge `txn_id`; returns its bank.txn event."""
        ref, cur = ref_of(pay.req_id), self.currency
        fee = self.fee_rule.fee(amount)
        short = amount - self.truth.balance(card.account, cur)
        if short > 0 and card.card_no.endswith(FUNDED_MAGIC):
            self.truth.move(MAGIC_ACCOUNT, card.account, short, cur, at_ms, ref, txn_id, "magic")
        self.truth.move(card.account, self.platform_account, amount - fee, cur, at_ms, ref,
                        txn_id, "pay")
        self.truth.move(card.account, FEE_ACCOUNT, fee, cur, at_ms, ref, txn_id, "fee")
        txn = self.truth.record(ref, txn_id, "pay", amount, fee, cur, at_ms)
        pay.charges.append(Charge(txn_id, amount))
        return ("event", "bank.txn", ref, {**txn, "req_id": pay.req_id, "account": card.account,
                                           "user_id": card.user_id})

    def _charge_again(self, pay: Pay, card: Card, fault: ChannelFault, now_ms: int,
                      done_ms: int) -> list[tuple]:
        """double_charge: the second charge of `pay` and its second reply, 1-3 s later."""
        gap = self._faults.randint(fault, *DOUBLE_GAP_MS)
        if not card.card_no.endswith(FUNDED_MAGIC) and self.truth.balance(
                card.account, self.currency) < pay.amount:
            return []       # the card cannot pay twice: the fault does not act
        txn_id = self._next_id("BT")
        charged = self._charge(pay, card, txn_id, pay.amount, done_ms + gap)
        reply = {"type": "bank.pay.reply", "req_id": pay.req_id, "result": "SUCCESS",
                 "code": None, "bank_txn_id": txn_id, "amount": pay.amount}
        return [self._faults.fired(fault, ref_of(pay.req_id), req_id=pay.req_id,
                                   first_txn_id=pay.bank_txn_id, second_txn_id=txn_id),
                charged, ("reply", reply, done_ms - now_ms + gap)]

    def _settle_due(self, now_ms: int) -> list[tuple]:
        due = sorted((p for p in self._pending.values() if p.settle_at <= now_ms),
                     key=lambda p: p.settle_at)
        events = []
        for pay in due:
            del self._pending[pay.req_id]
            pay.fire("settle")
            events.append(self._charge(pay, self._cards[pay.card_no], pay.bank_txn_id,
                                       pay.amount, pay.settle_at))
        return events

    # -- query, close -----------------------------------------------------------------------
    def _view(self, req_id: str) -> dict | None:
        record = self._pays.get(req_id) or self._refunds.get(req_id)
        if record is None:
            return None
        code = "CLOSED" if record.status == "CLOSED" else record.code
        view = {"req_id": req_id, "result": QUERY_RESULT[record.status], "code": code,
                "amount": record.amount, "bank_txn_id": record.bank_txn_id}
        if len(record.charges) > 1:
            view["charges"] = [{"txn_id": c.txn_id, "amount": c.amount} for c in record.charges]
        return view

    def _query(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("req_id",), False, self.currency):
            return invalid(body, bad)
        view = self._view(body["req_id"])
        if view is None:
            view = {"req_id": body["req_id"], "result": "NOT_FOUND", "code": None,
                    "amount": None, "bank_txn_id": None}
        return view, []

    def _close(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := first_bad(body, ("req_id",), False, self.currency):
            return invalid(body, bad)
        req_id = body["req_id"]
        if self._view(req_id) is None:   # never seen: a later pay with this req_id is declined
            fault = self._faults.acting("pay_after_close", now_ms) if self._faults else None
            if fault is not None:        # ... unless the bank forgets it said so
                return {"req_id": req_id, "result": "CLOSED", "code": "CLOSED", "amount": None,
                        "bank_txn_id": None}, [self._faults.fired(fault, ref_of(req_id),
                                                                  req_id=req_id)]
            self._pays[req_id] = Pay(req_id, "CLOSED", "CLOSED", None)
        return self._view(req_id), []

    # -- statements -------------------------------------------------------------------------
    def _statement(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        problem = first_bad(body, ("req_id",), False, self.currency)
        day = day_from(body.get("date"))
        if problem is None and day is None:
            problem = "date", f"expected a date 'YYYY-MM-DD', got {body.get('date')!r}"
        if problem:
            return invalid(body, problem)
        content, events = self._statements.fetch(day, now_ms)
        return {"req_id": body["req_id"], "result": "SUCCESS" if content else "NOT_READY",
                "code": None, "date": body["date"], "format": "mt940", "content": content}, events
