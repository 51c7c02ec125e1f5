"""Netbank (网银支付) at the quick-pay bank: pages the user pays on, notifications, closes.

Owns `Netbank`, a part of the bank (mockbanks/bank.py), and its messages (docs/protocol.md):
- `bank.netbank` {req_id, out_trade_no, amount, currency, notify_url, time_expire} from paysys:
  the bank opens a payment page and answers {req_id, result PROCESSING, page_id, code_url,
  amount}. A repeated req_id gets the same page; a req_id the bank already closed (a `bank.close`
  of a request never seen) is DECLINED/CLOSED.
- `bank.user.netbank` {page_id, user_id} from the user (the page's "pay" button): the bank takes
  the amount from the user's card and accepts the payment (result SUCCESS, bank_txn_id); the
  debit is confirmed `confirm_ms` later (5-30 s, drawn), when the page is PAID and the bank starts
  notifying. Refused: CLOSED (the page was closed or expired: `time_expire` passed), PAID (paid
  already), NOT_FOUND, DECLINED with the card's code (INSUFFICIENT_FUNDS, LIMIT_EXCEEDED,
  CARD_FROZEN, INVALID_CARD: no card of that user), ERROR/PROCESSING_ERROR (magic card 0119).
- `bank.query` / `bank.close` of the page's req_id: the page is a `Pay` of the bank's `_pays`, so
  queries and refunds work as for a quick pay (PROCESSING until the debit is confirmed, then
  SUCCESS; CLOSED once closed). A close of an OPEN page closes it (CLOSED). A close that comes
  while an accepted debit is being confirmed also answers CLOSED -- the bank's order system
  closes the page -- but the debit the bank accepted completes and is notified anyway: the
  payment system learns of a charge after the close (a late success it must refund).
- `bank.notify` {req_id, out_trade_no, bank_txn_id, amount, currency, result SUCCESS, paid_ms,
  nonce, sign} to the page's notify_url, signed HMAC-SHA256 (upper-case hex, over the sorted
  `k=v&...` string without `sign`) with the channel's api key (`bank.api_key`), sent at the
  confirmation and then after each NOTIFY_SCHEDULE_MS interval until paysys answers
  `bank.notify.reply` {req_id, result SUCCESS}; after the last attempt the bank gives up.

Page states are PAGE_TRANSITIONS. Money moves when the user pays (`_charge` of the bank: card ->
platform less the fee, truth kind `pay`, ref = the paysys order). Draws (confirmation delays)
come from a stream seeded from the bank's at the first page payment, so a bank that serves no
netbank payment draws nothing more than before.
"""

import hashlib
import hmac
import random
from dataclasses import dataclass

from mockbanks.bank_records import MAGIC_FAILURES, Pay, first_bad, invalid
from mockbanks.truth import ref_of

_S, _M, _H = 1000, 60_000, 3_600_000
NOTIFY_SCHEDULE_MS = (5 * _S, 15 * _S, 30 * _S, 2 * _M, 10 * _M, 30 * _M, 1 * _H, 2 * _H, 6 * _H)
CONFIRM_MS = (5_000, 30_000)     # from the user's pay to the confirmed debit
# page status -> {event: new status}; absent event = refused
PAGE_TRANSITIONS: dict[str, dict[str, str]] = {
    "OPEN": {"pay": "PAYING", "close": "CLOSED", "expire": "CLOSED"},
    "PAYING": {"confirm": "PAID", "close": "PAYING"},
    "PAID": {},
    "CLOSED": {},
}
# how a page reads in the bank's pay record (bank.query / bank.close)
PAY_STATUS = {"OPEN": "PROCESSING", "PAYING": "PROCESSING", "PAID": "SUCCESS",
              "CLOSED": "CLOSED"}
USER_REFUSAL = {"PAYING": "PAID", "PAID": "PAID", "CLOSED": "CLOSED"}


@dataclass(slots=True)
class Page:
    page_id: str
    req_id: str
    out_trade_no: str
    amount: int
    notify_url: str
    time_expire: int | None
    status: str = "OPEN"
    closed_early: bool = False      # a close came while the debit was being confirmed
    confirm_at: int | None = None
    paid_ms: int | None = None
    attempts: int = 0
    next_at: int | None = None      # the next notification attempt (None: none to come)
    acked: bool = False

    def fire(self, event: str) -> None:
        try:
            self.status = PAGE_TRANSITIONS[self.status][event]
        except KeyError:
            raise ValueError(f"page {self.page_id}: no transition {event!r} from "
                             f"{self.status}") from None


def sign_hmac(fields: dict, key: str) -> str:
    """HMAC-SHA256 of the sorted `k=v&...` string (no `sign`, None or "" values), upper hex."""
    parts = []
    for name in sorted(fields):
        value = fields[name]
        if name == "sign" or value is None or value == "":
            continue
        text = "true" if value is True else "false" if value is False else str(value)
        parts.append(f"{name}={text}")
    return hmac.new(key.encode(), "&".join(parts).encode(), hashlib.sha256).hexdigest().upper()


class Netbank:
    """The netbank pages of one bank (a part of mockbanks/bank.py)."""

    def __init__(self, bank) -> None:
        self.bank = bank
        self._pages: dict[str, Page] = {}       # page_id -> page
        self._by_req: dict[str, Page] = {}      # req_id -> page
        self._timed: dict[str, Page] = {}      # req_id -> page with a confirmation or attempt due
        self._cards: dict[str, object] = {}     # user_id -> card (built when first needed)
        self._rng: random.Random | None = None
        self._query = self._close = None        # the bank's own handlers, wrapped

    def ops(self) -> dict:
        """request type -> handler `(body, now_ms, done_ms) -> (reply, effects)`."""
        self._query, self._close = self.bank._ops["bank.query"], self.bank._ops["bank.close"]
        return {"bank.netbank": self._open, "bank.user.netbank": self._user_pay,
                "bank.query": self._query_page, "bank.close": self._close_page}

    def acks(self) -> dict:
        """reply type -> handler: paysys acknowledging a notification."""
        return {"bank.notify.reply": self.acknowledge}

    def next_deadline(self) -> int | None:
        due = [p.confirm_at if p.confirm_at is not None else p.next_at
               for p in self._timed.values()]
        return min((d for d in due if d is not None), default=None)

    def on_timer(self, now_ms: int) -> list[tuple]:
        effects: list[tuple] = []
        for page in sorted(self._timed.values(), key=lambda p: p.page_id):
            if page.confirm_at is not None and page.confirm_at <= now_ms:
                effects += self._confirm(page)
            while page.next_at is not None and page.next_at <= now_ms:
                effects += self._notify(page, page.next_at)
            if page.confirm_at is None and page.next_at is None:
                del self._timed[page.req_id]
        return effects

    def page(self, page_id: str) -> Page | None:
        return self._pages.get(page_id)

    # -- paysys's requests ------------------------------------------------------------------
    def _open(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        bank = self.bank
        bad = first_bad(body, ("req_id", "out_trade_no", "notify_url"), True, bank.currency)
        expire = body.get("time_expire")
        if bad is None and expire is not None and (isinstance(expire, bool)
                                                   or not isinstance(expire, int)):
            bad = "time_expire", f"expected an integer of ms or null, got {expire!r}"
        if bad:
            return invalid(body, bad)
        req_id = body["req_id"]
        page = self._by_req.get(req_id)
        if page is None:
            if req_id in bank._pays:        # closed before it was ever seen: never payable
                return {"req_id": req_id, "result": "DECLINED", "code": "CLOSED",
                        "page_id": None, "code_url": None, "amount": body["amount"]}, []
            page = Page(bank._next_id("NB"), req_id, body["out_trade_no"], body["amount"],
                        body["notify_url"], expire)
            self._pages[page.page_id] = page
            self._by_req[req_id] = page
            bank._pays[req_id] = Pay(req_id, "PROCESSING", None, body["amount"])
        return self._answer(page), []

    def _answer(self, page: Page) -> dict:
        return {"req_id": page.req_id, "result": "PROCESSING", "code": None,
                "page_id": page.page_id, "amount": page.amount,
                "code_url": f"https://{self.bank.name}.bank/netbank/pay?page={page.page_id}"}

    def _expire(self, page: Page, now_ms: int) -> None:
        """An OPEN page past its time_expire closes by itself (applied when touched)."""
        if page.status == "OPEN" and page.time_expire is not None and now_ms >= page.time_expire:
            self._set(page, "expire")

    def _set(self, page: Page, event: str) -> None:
        page.fire(event)
        pay = self.bank._pays[page.req_id]
        pay.status = PAY_STATUS[page.status]
        if page.status == "CLOSED":
            pay.code = "CLOSED"

    def _query_page(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        page = self._by_req.get(body.get("req_id"))
        if page is not None:
            self._expire(page, now_ms)
        return self._query(body, now_ms, done_ms)

    def _close_page(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        page = self._by_req.get(body.get("req_id"))
        if page is None:
            return self._close(body, now_ms, done_ms)
        self._expire(page, now_ms)
        if page.status in ("OPEN", "PAYING"):
            if page.status == "PAYING":
                page.closed_early = True
            self._set(page, "close")
        if page.status == "PAYING":      # closed while the debit is confirmed: it lands anyway
            return {"req_id": page.req_id, "result": "CLOSED", "code": "CLOSED", "amount": None,
                    "bank_txn_id": None}, [("event", "bank.netbank.closed_paying",
                                            ref_of(page.req_id), {"page_id": page.page_id})]
        return self._close(body, now_ms, done_ms)

    # -- the user on the page ---------------------------------------------------------------
    def _user_pay(self, body: dict, now_ms: int, done_ms: int) -> tuple[dict, list]:
        bank = self.bank
        if bad := first_bad(body, ("page_id", "user_id"), False, bank.currency):
            return invalid(body, bad)
        page = self._pages.get(body["page_id"])
        answer = {"page_id": body["page_id"], "user_id": body["user_id"], "result": "NOT_FOUND",
                  "code": None, "bank_txn_id": None}
        if page is None:
            return answer, []
        self._expire(page, now_ms)
        ref = ref_of(page.req_id)
        if page.status in USER_REFUSAL or page.closed_early:
            result = "CLOSED" if page.closed_early else USER_REFUSAL[page.status]
            return {**answer, "result": result}, [("event", "bank.netbank.refused", ref,
                                                   {"page_id": page.page_id, "result": result})]
        card = self._card_of(body["user_id"])
        code = "INVALID_CARD" if card is None else None
        if card is not None and card.card_no[-4:] in MAGIC_FAILURES:
            result, code = MAGIC_FAILURES[card.card_no[-4:]]
            return {**answer, "result": result, "code": code}, []
        day = bank.local_day(now_ms)
        if code is None and not card.card_no.endswith(("4242", "3220")):
            code = bank._decline_code(card, page.amount, day)
        if code is not None:
            return {**answer, "result": "DECLINED", "code": code}, []
        if not card.card_no.endswith(("4242", "3220")):
            card.day, card.used = day, (card.used if card.day == day else 0) + page.amount
        pay = bank._pays[page.req_id]
        pay.card_no, pay.bank_txn_id = card.card_no, bank._next_id("BT")
        self._set(page, "pay")
        txn = bank._charge(pay, card, pay.bank_txn_id, page.amount, done_ms)
        page.paid_ms = done_ms
        page.confirm_at = done_ms + self._draws().randint(*CONFIRM_MS)
        self._timed[page.req_id] = page
        return {**answer, "result": "SUCCESS", "bank_txn_id": pay.bank_txn_id}, [txn]

    def _card_of(self, user_id: str):
        """The user's card at the bank (the first opened), or None."""
        if user_id not in self._cards:
            for card in self.bank._cards.values():
                self._cards.setdefault(card.user_id, card)
        return self._cards.get(user_id)

    def _draws(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(self.bank.rng.getrandbits(64))
        return self._rng

    # -- confirmation and notifications -----------------------------------------------------
    def _confirm(self, page: Page) -> list[tuple]:
        at = page.confirm_at
        page.confirm_at = None
        page.fire("confirm")
        self.bank._pays[page.req_id].status = "SUCCESS"
        self.bank._pays[page.req_id].code = None
        return self._notify(page, at)

    def _notify(self, page: Page, at_ms: int) -> list[tuple]:
        page.attempts += 1
        if page.attempts <= len(NOTIFY_SCHEDULE_MS):
            page.next_at = at_ms + NOTIFY_SCHEDULE_MS[page.attempts - 1]
        else:
            page.next_at = None
        pay = self.bank._pays[page.req_id]
        body = {"type": "bank.notify", "req_id": page.req_id, "out_trade_no": page.out_trade_no,
                "bank_txn_id": pay.bank_txn_id, "amount": page.amount,
                "currency": self.bank.currency, "result": "SUCCESS", "paid_ms": page.paid_ms,
                "nonce": f"{page.page_id}.{page.attempts}"}
        body["sign"] = sign_hmac(body, getattr(self.bank, "api_key", ""))
        event = ("event", "bank.notify.attempt", ref_of(page.req_id),
                 {"n": page.attempts, "page_id": page.page_id, "url": page.notify_url})
        return [event, ("send", page.notify_url, body, 0)]

    def acknowledge(self, body: dict) -> list[tuple]:
        """paysys's answer to a notification: SUCCESS stops the page's series."""
        page = self._by_req.get(body.get("req_id"))
        if page is not None and body.get("result") == "SUCCESS" and page.status == "PAID":
            page.acked, page.next_at = True, None
            self._timed.pop(page.req_id, None)
        return []
