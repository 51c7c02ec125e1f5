"""The simulated UnionPay-like card network (sans-IO node): one node routing each card payment
to one of several issuing banks by the card's BIN range.

Protocol (docs/protocol.md style; every answer echoes `req_id`, amounts in minor units):

| type | fields | reply fields |
|---|---|---|
| `up.pay` | `req_id`, `card_no`, `amount`, `currency` | `result` (`SUCCESS`/`DECLINED`/`ERROR`/`REJECTED`), `code`, `txn_id`, `amount`, `issuer` |
| `up.query` | `req_id` (of the pay) | `result` (`SUCCESS`/`DECLINED`/`NOT_FOUND`/`CLOSED`), `code`, `txn_id`, `amount`, `issuer` |
| `up.close` | `req_id` (of the pay) | `CLOSED` when the network never saw it (a later pay under that id is declined `CLOSED`), else as `up.query` |
| `up.refund` | `req_id`, `orig_req_id`, `amount`, `currency` | `result` (`SUCCESS`/`DECLINED`/`REJECTED`), `code` (`NOT_FOUND`, `EXCEEDS_REFUNDABLE`, `INSUFFICIENT_FUNDS`) |

Issuers. The channel declares its issuers (`issuers`, in order); a card belongs to
`issuers[int(card_no[6:12]) % len(issuers)]` (mockbanks/unionpay_records.py). Each issuer keeps
its cards in the node's ground truth as `issuer:<issuer>:card:<card_no>`. The platform's
settlement account at the network is `platform` (so the oracle's channel_matches_truth compares
paysys's `asset:channel:<id>` with it), the network's fee account `network_fees`, and `magic`
(the only overdraft account) funds magic card 4242 whatever its balance.

Decisions, at arrival (the reply leaves after one `service_time` draw; no queue):
- A repeated `req_id` is answered from the record and never moves money twice.
- An issuer in an outage window (`issuer_down`: issuer -> [Window]): a pay or refund of its cards
  is answered `REJECTED`/`ISSUER_UNAVAILABLE` at once, nothing done and nothing recorded (not even
  the req_id), so paysys may fail the pay over to another channel, and retries the refund later;
  each such refusal publishes `("event", "unionpay.issuer_down", ref, {issuer, req_id, type})`.
- Declines: `INVALID_CARD` (no such card), `CARD_FROZEN`, `INSUFFICIENT_FUNDS`, `CLOSED` (closed
  before it arrived); magic last four digits: 4242 always succeeds, 0002 `CARD_FROZEN`, 9995
  `INSUFFICIENT_FUNDS`, 0119 `ERROR`/`PROCESSING_ERROR` without moving money (a query then says
  `DECLINED`).
- A SUCCESS pay moves amount - fee from the card to `platform` and the fee to `network_fees`
  (truth txn kind `pay`, `channel_ref` = `txn_id`) and publishes `unionpay.txn`. A refund moves
  the amount back from `platform` to the card (fee not returned), needs a SUCCESS pay with enough
  left to refund, and enough money on `platform`.
- Invalid requests: `ERROR`/`INVALID_PARAM` with `field`, nothing recorded.

Channel faults (mockbanks/faults.py): `maintenance` (every request `REJECTED`/`SYSTEM_MAINTENANCE`)
and `rate_limit` (`REJECTED`/`RATE_LIMITED` beyond `max_per_s`), nothing done; each publishes
`fault.fired`. Statements are not served (a scenario with `[recon]` may not use this kind).
"""

import random
from collections.abc import Callable, Mapping, Sequence

from mockbanks.faults import ChannelFault, ChannelFaults
from mockbanks.truth import Truth, ref_of
from mockbanks.unionpay_records import (
    FEE_ACCOUNT,
    FUNDED_MAGIC,
    ISSUER_DOWN,
    MAGIC_ACCOUNT,
    MAGIC_FAILURES,
    Card,
    Pay,
    Window,
    answer,
    bad_field,
    card_account,
    invalid,
    issuer_index,
    view,
)

FAULT_KINDS = ("maintenance", "rate_limit")
PLATFORM_ACCOUNT = "platform"


class UnionPay:
    """A card network node: `handle(src, body, now_ms)`, `next_deadline()`, `on_timer(now_ms)`."""

    def __init__(self, *, name: str, rng: random.Random, fee_rule, issuers: Sequence[str],
                 service_time: Callable[[random.Random], int], currency: str = "CNY",
                 issuer_down: Mapping[str, Sequence[Window]] | None = None,
                 faults: Sequence[ChannelFault] = (), platform_balance: int = 0) -> None:
        issuers = tuple(issuers)
        if not issuers or len(set(issuers)) != len(issuers) or not all(
                isinstance(i, str) and i for i in issuers):
            raise ValueError(f"issuers: expected distinct non-empty names, got {issuers!r}")
        down = dict(issuer_down or {})
        for issuer, windows in down.items():
            if issuer not in issuers:
                raise ValueError(f"issuer_down.{issuer}: not an issuer of this network "
                                 f"({', '.join(issuers)})")
            if not all(isinstance(w, Window) for w in windows):
                raise ValueError(f"issuer_down.{issuer}: expected Window items")
        self.name, self.rng, self.fee_rule, self.currency = name, rng, fee_rule, currency
        self.issuers, self.issuer_down = issuers, {k: tuple(v) for k, v in down.items()}
        self.service_time = service_time
        self.truth = Truth()
        self.truth.open(PLATFORM_ACCOUNT, currency, platform_balance)
        self.truth.open(FEE_ACCOUNT, currency, 0)
        self.truth.open(MAGIC_ACCOUNT, currency, 0, overdraft=True)
        self.statement_log: list[dict] = []     # no statements: stays empty
        self._cards: dict[str, Card] = {}
        self._pays: dict[str, Pay] = {}
        self._refunds: dict[str, Pay] = {}
        self._seq = 0
        self._faults = ChannelFaults(faults, rng, FAULT_KINDS, f"unionpay {name}")
        self._ops = {"up.pay": self._pay, "up.query": self._query, "up.close": self._close,
                     "up.refund": self._refund}

    # -- population -------------------------------------------------------------------------
    def issuer_of(self, card_no: str) -> str:
        """The issuer of `card_no` (digits 7-12 modulo the number of issuers)."""
        return self.issuers[issuer_index(card_no, len(self.issuers))]

    def open_card(self, user_id: str, card_no: str, balance: int, frozen: bool = False) -> None:
        """Open `card_no` of `user_id` at its issuer holding `balance` minor units."""
        if card_no in self._cards:
            raise ValueError(f"card_no: {card_no} is already open")
        issuer = self.issuer_of(card_no)
        account = card_account(issuer, card_no)
        self.truth.open(account, self.currency, balance)
        self._cards[card_no] = Card(user_id, card_no, issuer, account, frozen)

    def issuer_is_down(self, issuer: str, now_ms: int) -> bool:
        return any(w.covers(now_ms) for w in self.issuer_down.get(issuer, ()))

    # -- node contract ----------------------------------------------------------------------
    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        kind = body.get("type")
        if kind == "net.error" or (isinstance(kind, str) and kind.endswith(".reply")):
            return []       # the network sends no requests of its own
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

    def _down(self, body: dict, issuer: str) -> tuple[dict, list]:
        """The issuer is in an outage: rejected, nothing done, nothing recorded."""
        req_id = body["req_id"]
        event = ("event", "unionpay.issuer_down", ref_of(req_id),
                 {"issuer": issuer, "req_id": req_id, "type": body["type"]})
        return {"req_id": req_id, "result": "REJECTED", "code": ISSUER_DOWN,
                "issuer": issuer}, [event]

    # -- pays -------------------------------------------------------------------------------
    def _pay(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := bad_field(body, ("req_id", "card_no"), True, self.currency):
            return invalid(body, bad), []
        req_id, card_no, amount = body["req_id"], body["card_no"], body["amount"]
        if req_id in self._pays:
            return answer(self._pays[req_id]), []
        issuer = self.issuer_of(card_no)
        if self.issuer_is_down(issuer, now_ms):
            return self._down(body, issuer)
        card = self._cards.get(card_no)
        pay = self._pays[req_id] = Pay(req_id, "DECLINED", None, amount, card_no, issuer)
        suffix = card_no[-4:]
        if suffix in MAGIC_FAILURES:
            pay.status, pay.code = MAGIC_FAILURES[suffix]
        elif card is None:
            pay.code = "INVALID_CARD"
        elif suffix not in FUNDED_MAGIC and card.frozen:
            pay.code = "CARD_FROZEN"
        elif suffix not in FUNDED_MAGIC and self.truth.balance(card.account,
                                                                self.currency) < amount:
            pay.code = "INSUFFICIENT_FUNDS"
        if pay.code is not None:
            return answer(pay), []
        pay.status, pay.txn_id = "SUCCESS", self._next_id("UP")
        ref, cur, fee = ref_of(req_id), self.currency, self.fee_rule.fee(amount)
        short = amount - self.truth.balance(card.account, cur)
        if short > 0:   # only a funded magic card gets here short
            self.truth.move(MAGIC_ACCOUNT, card.account, short, cur, done_ms, ref, pay.txn_id,
                            "magic")
        self.truth.move(card.account, PLATFORM_ACCOUNT, amount - fee, cur, done_ms, ref,
                        pay.txn_id, "pay")
        self.truth.move(card.account, FEE_ACCOUNT, fee, cur, done_ms, ref, pay.txn_id, "fee")
        txn = self.truth.record(ref, pay.txn_id, "pay", amount, fee, cur, done_ms)
        return answer(pay), [("event", "unionpay.txn", ref, {
            **txn, "req_id": req_id, "issuer": issuer, "account": card.account,
            "user_id": card.user_id})]

    def _query(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := bad_field(body, ("req_id",), False, self.currency):
            return invalid(body, bad), []
        return view(self._pays.get(body["req_id"]), body["req_id"]), []

    def _close(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := bad_field(body, ("req_id",), False, self.currency):
            return invalid(body, bad), []
        req_id = body["req_id"]
        if req_id not in self._pays:   # never seen: a later pay under this id is declined
            self._pays[req_id] = Pay(req_id, "CLOSED", "CLOSED", None)
        return view(self._pays[req_id], req_id), []

    # -- refunds ----------------------------------------------------------------------------
    def _refund(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        if bad := bad_field(body, ("req_id", "orig_req_id"), True, self.currency):
            return invalid(body, bad), []
        req_id, amount = body["req_id"], body["amount"]
        if req_id in self._refunds:
            return answer(self._refunds[req_id]), []
        pay = self._pays.get(body["orig_req_id"])
        if pay is not None and pay.status == "SUCCESS" and self.issuer_is_down(pay.issuer, now_ms):
            return self._down(body, pay.issuer)
        code = None
        if pay is None or pay.status != "SUCCESS":
            code = "NOT_FOUND"
        elif pay.refunded + amount > pay.amount:
            code = "EXCEEDS_REFUNDABLE"
        elif self.truth.balance(PLATFORM_ACCOUNT, self.currency) < amount:
            code = "INSUFFICIENT_FUNDS"
        refund = self._refunds[req_id] = Pay(req_id, "DECLINED", code, amount,
                                             pay.card_no if pay else None,
                                             pay.issuer if pay else None)
        if code is not None:
            return answer(refund), []
        refund.status, refund.txn_id = "SUCCESS", self._next_id("UR")
        pay.refunded += amount
        card, ref = self._cards[pay.card_no], ref_of(req_id)
        self.truth.move(PLATFORM_ACCOUNT, card.account, amount, self.currency, done_ms, ref,
                        refund.txn_id, "refund")
        txn = self.truth.record(ref, refund.txn_id, "refund", amount, 0, self.currency, done_ms)
        return answer(refund), [("event", "unionpay.txn", ref, {
            **txn, "req_id": req_id, "issuer": pay.issuer, "account": card.account,
            "user_id": card.user_id, "orig_req_id": pay.req_id})]
