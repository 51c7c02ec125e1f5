"""The payment-system node: one sans-IO object that takes messages and time, and returns effects.

    effects = node.handle(src, body, now_ms)
    node.next_deadline()  /  node.on_timer(now_ms)

Each call is one database transaction: the state changes, ledger entries, notification rows and
outbox rows it makes commit together, and only then are its effects released. Requests to
channels go through the transactional outbox: a request leaves only after the order that
explains it is committed, and one not yet marked delivered is sent again after a restart (the
channels de-duplicate on the request id). Timers (channel timeouts, query compensation, order
expiry, notification retries) live in a heap rebuilt from the database by `recover()`.

The flows themselves live in `payments.py`, `refunds.py` and `agreements.py`; this module is the
mechanism they share.
"""

import heapq
import itertools
import random
import sqlite3
import sys

from paysys import (
    agreements,
    backoffice,
    compensation,
    notify,
    outbox,
    payments,
    products,
    refunds,
    restart,
    store,
)
from paysys.channels import ADAPTERS
from paysys.config import PaySysConfig
from paysys.errors import GatewayError
from paysys.gateway import Gateway, reject_event, replay_event
from paysys.idempotency import prune as prune_idempotency
from paysys.replay import ReplayGuard
from paysys.risk import Risk
from paysys.routing import ChannelHealth, ChannelInfo, Router
from paysys.signing import signed

HOUSEKEEPING_MS = 3_600_000
MARK_DELIVERED_BATCH = 64     # outbox rows marked delivered together (re-sent after a crash)

MERCHANT_API = {
    "pay.create": payments.create,
    "pay.confirm_otp": payments.confirm_otp,
    "pay.query": payments.query,
    "refund.create": refunds.create,
    "agreement.unsign": agreements.unsign,
}

# (channel reply type) -> operation, for answers that do not carry our own request id: WeChat's,
# and the bank's query/close answers (they carry the id of the pay they are about)
REPLY_OPS = {
    "bank.query.reply": "query", "bank.close.reply": "close",
    "wx.unifiedorder.reply": "pay", "wx.orderquery.reply": "query",
    "wx.closeorder.reply": "close", "wx.refund.reply": "refund",
}


class PaySys:
    name = "paysys"

    def __init__(self, conn: sqlite3.Connection, config: PaySysConfig, rng: random.Random):
        self.conn = conn
        self.cfg = config
        self.rng = rng
        self.merchants = {m.merchant_id: m for m in config.merchants}
        self.channels = {c.id: c for c in config.channels}
        self.adapters = {c.id: ADAPTERS[c.kind](c.id, c.api_key, c.options)
                         for c in config.channels}
        self.internal = products.merged("INTERNAL")   # products served inside paysys
        self.parents = products.merged("PARENTS")     # id prefix -> on_child_final
        self.classifiers = products.merged("CLASSIFY")   # a family's own operations
        # what a merchant may ask to be paid with: what a channel serves, or paysys itself
        self.products = frozenset(p for c in config.channels for p in c.products) | set(
            self.internal)
        self.gateway = Gateway(self.merchants, ReplayGuard(config.replay_window_ms), config.order_ttl_ms)
        self.risk = Risk(config.risk, rng)
        self.health = ChannelHealth()
        self.router = Router(
            [ChannelInfo.of(c) for c in config.channels], config.routing_policy, self.health,
            usage=lambda channel, since_ms: store.routed_since(conn, channel, since_ms),
        )
        for m in config.merchants:
            store.insert_merchant(conn, m.merchant_id, m.merchant_id, m.sign_type, m.secret,
                                  m.fee_rate_bp, m.status)
            store.insert_merchant_apps(conn, m)
        for c in config.channels:
            store.insert_channel(conn, c)
        for sql in products.schema():
            conn.execute(sql)
        self._timers: list[tuple] = []
        self._tseq = itertools.count()
        self.inflight: dict[str, tuple[str, str, str]] = {}   # req_id -> (channel, op, ref)
        self._by_key: dict[tuple[str, str, str], str] = {}     # (channel, op, ref) -> req_id
        self._deadline: dict[str, int] = {}                    # req_id -> its current timeout
        self._awaiting: dict[str, tuple[str, dict]] = {}       # order id -> (src, request)
        self.otps: dict[str, str] = {}                         # order id -> one-time password sent
        self._req_n: dict[tuple[str, str], itertools.count] = {}
        self._reserved: dict[str, int] = {}                    # merchant -> refunds in flight
        self._relay: list[tuple[int, str, dict]] = []
        self._delivered: list[int] = []
        self._new_timers: list[tuple] = []
        self._fx: list[tuple] = []
        self._escaped: list[tuple] = []   # sends that left at once (no_outbox flaw)
        self._abort = False
        self.dead = False
        self.janitor_armed = False
        self.backoffice_armed = False
        self._last_ms: int | None = None
        self._units = 0
        self._notifying: set[str] = set()    # notifications still pending (cache of the table)
        self._housekeeping_at: int | None = None
        self.query_attempts: dict[str, int] = {}
        self.refund_attempts: dict[str, int] = {}
        self.sign_attempts: dict[str, int] = {}
        self._ids = {"P": self._max_id("pay_orders", "order_id"),
                     "R": self._max_id("refund_orders", "refund_id")}

    def classify(self, channel: str, op: str, body: dict):
        """What a channel's answer to `op` means: the product family's reading of its own
        operation, else the channel adapter's table."""
        own = self.classifiers.get(op)
        return own(body) if own is not None else self.adapters[channel].classify(op, body)

    def merchant_fee(self, order: dict, amount: int) -> int:
        """The merchant's fee on `amount` of `order`, at the rate of the order's application
        (the merchant's own rate when it names none)."""
        return self.merchants[order["merchant_id"]].fee_rule(order.get("app_id") or None).fee(amount)

    def flawed(self, flaw: str) -> bool:
        """Whether the deliberate flaw `flaw` (paysys/flaws.py) is switched on."""
        return flaw in self.cfg.flaws

    def _max_id(self, table: str, column: str) -> int:
        (last,) = self.conn.execute(f"SELECT MAX({column}) FROM {table}").fetchone()
        return int(last[1:]) if last else 0

    def new_id(self, prefix: str) -> str:
        """The next id with `prefix` ("P" pay orders, "R" refunds, a product family's own
        letter): the prefix and 10 digits, counting on from the database after a restart."""
        if prefix not in self._ids:
            self._ids[prefix] = store.max_id(self.conn, prefix)
        self._ids[prefix] += 1
        return f"{prefix}{self._ids[prefix]:010d}"

    # -- the node protocol --------------------------------------------------------------------

    def handle(self, src: str, body: dict, now_ms: int) -> list[tuple]:
        return self._transaction(self._dispatch, src, body, now_ms)

    def next_deadline(self) -> int | None:
        timers = self._timers
        while timers and self._stale(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def on_timer(self, now_ms: int) -> list[tuple]:
        due = self.next_deadline()
        if due is None or due > now_ms:
            return []
        return self._transaction(self._fire_timers, now_ms)

    def _stale(self, timer: tuple) -> bool:
        """A timer with nothing left to do (its request was answered, its notification
        acknowledged): dropped unseen, so the node is not woken for it."""
        kind = timer[2]
        if kind == "timeout":  # answered, or sent again since (a newer deadline)
            return self._deadline.get(timer[3]) != timer[4]
        if kind == "notify":
            return timer[3] not in self._notifying
        return False

    def _transaction(self, fn, *args) -> list[tuple]:
        """Run `fn` as one atomic unit of work: all of its writes, or none of them.

        Units are savepoints inside a longer transaction that commits every `cfg.commit_every`
        units and at `flush()` (group commit, as databases batch their log writes): a unit that
        fails rolls back alone. Effects are released only once the unit is done.
        """
        self._fx = fx = []
        self._escaped = []
        self._last_ms = args[-1]
        conn = self.conn
        if not conn.in_transaction:
            conn.execute("BEGIN")
        conn.execute("SAVEPOINT unit")
        try:
            if len(self._delivered) >= MARK_DELIVERED_BATCH:
                outbox.mark_delivered(conn, self._delivered, args[-1])
                self._delivered = []
            fn(*args)
            if self._abort:
                return self._die()
            conn.execute("RELEASE unit")
        except BaseException:
            conn.execute("ROLLBACK TO unit")
            conn.execute("RELEASE unit")
            self._relay.clear()
            self._new_timers.clear()
            raise
        self._units += 1
        if self._units % self.cfg.commit_every == 0:
            conn.execute("COMMIT")
        for oid, dst, body in self._relay:
            self._delivered.append(oid)
            if dst is None:
                fx.append(("event", "publish", body["ref"], body))
            else:
                fx.append(("send", dst, body, 0))
        self._relay.clear()
        for timer in self._new_timers:
            heapq.heappush(self._timers, timer)
        self._new_timers.clear()
        return fx

    def abort_next_unit(self) -> None:
        """Crash injection (sim/world.py): the process dies during its next unit of work, before
        the commit. Everything not committed is lost; the unit returns only what had already
        left (requests sent at once, without the outbox: the `no_outbox` flaw). The node is dead
        afterwards: the simulator starts a new one on the same database and calls `recover()`."""
        self._abort = True

    def _die(self) -> list[tuple]:
        self.conn.execute("ROLLBACK")
        self._relay.clear()
        self._new_timers.clear()
        self.dead = True
        return self._escaped

    def flush(self) -> None:
        """Commit every finished unit of work, with the outbox rows delivered so far (before
        others read the database)."""
        if self._delivered and self._last_ms is not None:
            if not self.conn.in_transaction:
                self.conn.execute("BEGIN")
            outbox.mark_delivered(self.conn, self._delivered, self._last_ms)
            self._delivered = []
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    # -- what flows use -----------------------------------------------------------------------

    def event(self, kind: str, ref: str, data: dict) -> None:
        self._fx.append(("event", kind, ref, data))

    def send(self, dst: str, body: dict) -> None:
        self._fx.append(("send", dst, body, 0))

    def reply(self, body: dict) -> None:
        self._fx.append(("reply", body, 0))

    def at(self, due_ms: int, kind: str, key: str, arg: int = 0) -> None:
        self._new_timers.append((due_ms, next(self._tseq), kind, key, arg))

    def req_id(self, ref: str, op: str) -> str:
        """A new request id for `op` on `ref`: `P0000000042.q3` is its third query. The
        counters of finished orders are forgotten: a new request for one (a last check, a
        compensation) counts on from the requests in the database."""
        counter = self._req_n.get((ref, op))
        if counter is None:
            first = 1 + store.count_requests(self.conn, ref, op)
            counter = self._req_n[(ref, op)] = itertools.count(first)
        return f"{ref}.{op[0]}{next(counter)}"

    def call_channel(self, channel: str, op: str, ref: str, req_id: str, body: dict, now_ms: int) -> None:
        """Send `body` to `channel` through the outbox, and arm its timeout."""
        store.record_request(self.conn, req_id, channel, op, ref, now_ms)
        self._send_via_outbox(channel, op, ref, req_id, body, now_ms)

    def resend_channel(self, channel: str, op: str, ref: str, req_id: str, body: dict, now_ms: int) -> None:
        """Send a request again under the same id (the channel answers it once)."""
        self.conn.execute(
            "UPDATE channel_requests SET status='pending', sent_ms=?, answered_ms=NULL WHERE req_id=?",
            (now_ms, req_id),
        )
        self._send_via_outbox(channel, op, ref, req_id, body, now_ms)

    def _send_via_outbox(self, channel, op, ref, req_id, body, now_ms) -> None:
        if self.flawed("no_outbox"):   # fire and forget: on the wire before the commit
            send = ("send", channel, body, 0)
            self._fx.append(send)
            self._escaped.append(send)
        else:
            oid = outbox.enqueue(self.conn, "channel", ref, {"dst": channel, "body": body}, now_ms)
            self._relay.append((oid, channel, body))
        self.inflight[req_id] = (channel, op, ref)
        self._by_key[(channel, op, ref)] = req_id
        due = now_ms + self.channels[channel].timeout_ms
        self._deadline[req_id] = due
        self.at(due, "timeout", req_id, due)
        self.event("channel.request", ref, {"channel": channel, "req_id": req_id, "op": op})

    def answer(self, src: str, request: dict, reply: dict, now_ms: int, deferred: bool) -> None:
        """The final answer to a merchant request: remembered for its idempotency key, then sent.

        The answer echoes the request's idempotency key, as Stripe's Idempotency-Key header does:
        it is how a merchant matches an answer that comes after it stopped waiting."""
        if request.get("idempotency_key"):
            reply = dict(reply, idempotency_key=request["idempotency_key"])
        if not self.flawed("no_idempotency"):
            self.gateway.remember(self.conn, request, reply, now_ms)
        if deferred:
            self.send(src, reply)
        else:
            self.reply(reply)

    def create_order(self, kind: str, row: dict, now_ms: int) -> None:
        """Insert a new order of `kind` (pay, refund, or a product's: paysys/products/) and
        record its creation."""
        store.insert_order(self.conn, kind, row)
        ref = row[store.order_key(kind)]
        store.record_creation(self.conn, kind, ref, row["status"], now_ms)
        self.event("order.state", ref, {"kind": kind, "from": None, "to": row["status"],
                                        "event": "create"})

    def move(self, kind: str, row: dict, event: str, now_ms: int, **changes) -> None:
        """Fire `event` on an order of `kind` (compare-and-set) and publish the change."""
        old = row["status"]
        write = store.blind_transition if self.flawed("no_cas") else store.transition
        write(self.conn, kind, row, event, now_ms, **changes)
        ref = row[store.order_key(kind)]
        self.event("order.state", ref, {"kind": kind, "from": old, "to": row["status"],
                                        "event": event})

    def forget(self, ref: str, ops: tuple[str, ...]) -> None:
        """Drop the in-memory bookkeeping of a pay or refund order that reached a final state."""
        for op in ops:
            self._req_n.pop((ref, op), None)
        self.query_attempts.pop(ref, None)
        self.sign_attempts.pop(ref, None)
        self.refund_attempts.pop(ref, None)

    def defer_answer(self, order_id: str, src: str, request: dict) -> None:
        self._awaiting[order_id] = (src, request)

    def release_answer(self, order_id: str, reply_for, now_ms: int) -> None:
        """Send the deferred answer of the request waiting on `order_id`, if any."""
        waiting = self._awaiting.pop(order_id, None)
        if waiting:
            src, request = waiting
            self.answer(src, request, reply_for(request["type"]), now_ms, deferred=True)

    def notify_merchant(self, kind: str, ref: str, merchant_id: str, url: str | None,
                        payload: dict, now_ms: int) -> None:
        if not url:
            return
        # one notification per final status of an order: a reopened order tells its new status
        (sent,) = self.conn.execute("SELECT COUNT(*) FROM notifications WHERE ref=?",
                                    (ref,)).fetchone()
        notify_id = f"{ref}.n" if not sent else f"{ref}.n{sent + 1}"
        attempt = notify.create(self.conn, notify_id, ref, merchant_id, url,
                                {"type": kind, **payload}, now_ms, self.cfg.notify_schedule_ms)
        self._notifying.add(notify_id)
        self._send_notification(notify_id, attempt, now_ms)  # leaves with this unit of work

    def publish(self, topic: str, ref: str, payload: dict, now_ms: int) -> None:
        """A domain event for other systems (risk, BI, credit), delivered through the outbox:
        published on the bus, which the simulator records as a `publish` event."""
        if self.flawed("no_outbox"):   # fire and forget: lost if the process dies now
            self._fx.append(("event", "publish", ref, {"topic": topic, "ref": ref, **payload}))
            return
        oid = outbox.enqueue(self.conn, topic, ref, payload, now_ms)
        self._relay.append((oid, None, {"topic": topic, "ref": ref, **payload}))

    def reserve(self, merchant_id: str, amount: int) -> None:
        self._reserved[merchant_id] = self._reserved.get(merchant_id, 0) + amount

    def reserved(self, merchant_id: str) -> int:
        return self._reserved.get(merchant_id, 0)

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, src: str, body: dict, now_ms: int) -> None:
        self._housekeeping(now_ms)
        kind = body.get("type")
        if kind in MERCHANT_API:
            self._merchant_request(src, body, now_ms)
        elif src in self.adapters:
            if kind == "net.error":
                self._channel_refused(src, body.get("request") or {}, now_ms,
                                      body.get("error") == "reset")
            elif isinstance(kind, str) and kind.endswith(".reply"):
                self._channel_reply(src, body, now_ms)
            else:
                payments.on_notification(self, src, body, now_ms)
        elif kind in ("notify.payment.reply", "notify.refund.reply"):
            self._merchant_ack(body, now_ms)
        elif kind == "net.error":
            self.event("notify.result", (body.get("request") or {}).get("notify_id", ""),
                       {"notify_id": (body.get("request") or {}).get("notify_id", ""),
                        "outcome": "failed", "error": body.get("error", "")})
        else:
            self.event("paysys.unexpected", "", {"src": src, "type": str(kind)})

    def _merchant_request(self, src: str, body: dict, now_ms: int) -> None:
        kind = body["type"]
        try:
            cached = self.gateway.admit(self.conn, body, now_ms,
                                        idempotent=not self.flawed("no_idempotency"))
            if cached is not None:
                self._fx.append(replay_event(body, cached))
                self.reply(cached)
                return
            MERCHANT_API[kind](self, src, body, now_ms)
        except GatewayError as err:
            self._fx.append(reject_event(body, err))
            reply = err.to_reply(kind)
            if err.code in ("BAD_SIGNATURE", "REPLAY", "INVALID_PARAM", "IDEMPOTENCY_CONFLICT",
                            "IN_PROGRESS", "MERCHANT_DISABLED", "ORDER_EXPIRED"):
                self.reply(reply)  # refused at the door: nothing to remember
            else:
                self.answer(src, body, reply, now_ms, deferred=False)

    def _match(self, channel: str, body: dict) -> tuple[str | None, str, str]:
        """The request a channel's answer belongs to: (req_id or None if none is waiting, op,
        ref). Answers that name the operation by their type (WeChat's; the bank's query and
        close, which carry the id of the pay they are about) are matched by (op, ref) first."""
        req_id = body.get("req_id")
        op = REPLY_OPS.get(body["type"])
        if op:
            ref = (body.get("out_refund_no") or body.get("out_trade_no")
                   or str(req_id or "").split(".", 1)[0])
            waiting = self._by_key.get((channel, op, ref))
            return (waiting if waiting in self.inflight else None), op, ref
        if req_id in self.inflight:
            _, op, ref = self.inflight[req_id]
            return req_id, op, ref
        return None, "", str(req_id or "").split(".", 1)[0]

    def _forget(self, req_id: str) -> tuple[str, str, str]:
        channel, op, ref = self.inflight.pop(req_id)
        self._deadline.pop(req_id, None)
        if self._by_key.get((channel, op, ref)) == req_id:
            del self._by_key[(channel, op, ref)]
        return channel, op, ref

    def _channel_reply(self, channel: str, body: dict, now_ms: int) -> None:
        req_id, op, ref = self._match(channel, body)
        if req_id is None:
            self.event("channel.late_reply", ref, {"channel": channel, "req_id": str(body.get("req_id", ""))})
            op = op or store.request_kind(self.conn, str(body.get("req_id", "")))
            if op in ("pay", "query", "close"):   # it may report a charge nobody expects now
                payments.on_late_answer(self, channel, ref, self.classify(channel, op, body),
                                        now_ms)
            return
        self._forget(req_id)
        outcome = self.classify(channel, op, body)
        store.close_request(self.conn, req_id, "answered", outcome.kind, now_ms)
        self.router.record(channel, outcome.kind != "unknown", now_ms)
        self.event("channel.reply", ref, {"channel": channel, "req_id": req_id, "op": op,
                                          "outcome": outcome.kind, "code": outcome.code})
        FLOWS[op](self, channel, ref, req_id, outcome, now_ms)

    def _channel_refused(self, channel: str, request: dict, now_ms: int, reset: bool) -> None:
        """The network refused our request: it never reached the channel. A connection reset
        after the request left is no refusal: the channel may have done it, so it is unknown,
        like a timeout."""
        req_id = request.get("req_id") or self._by_key.get(
            (channel, REPLY_OPS.get(f"{request.get('type')}.reply", ""),
             request.get("out_refund_no") or request.get("out_trade_no") or ""))
        if req_id not in self.inflight:
            return
        if reset:
            self._timeout(req_id, self._deadline[req_id], now_ms)
            return
        channel, op, ref = self._forget(req_id)
        store.close_request(self.conn, req_id, "refused", "refused", now_ms)
        self.router.record(channel, False, now_ms)
        self.event("channel.reply", ref, {"channel": channel, "req_id": req_id, "op": op,
                                          "outcome": "refused", "code": "CONNECTION_REFUSED"})
        REFUSED[op](self, channel, ref, req_id, now_ms)

    def _merchant_ack(self, body: dict, now_ms: int) -> None:
        notify_id = str(body.get("notify_id", ""))
        if body.get("body") == "success":
            if notify.acknowledge(self.conn, notify_id):
                self._notifying.discard(notify_id)
                self.event("notify.result", notify_id.rsplit(".", 1)[0],
                           {"notify_id": notify_id, "outcome": "acked"})
        else:
            self.event("notify.result", notify_id.rsplit(".", 1)[0],
                       {"notify_id": notify_id, "outcome": "failed",
                        "answer": str(body.get("body", ""))[:40]})

    # -- timers -------------------------------------------------------------------------------

    def _fire_timers(self, now_ms: int) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now_ms:
            _, _, kind, key, arg = heapq.heappop(timers)
            TIMERS[kind](self, key, arg, now_ms)

    def _timeout(self, req_id: str, due: int, now_ms: int) -> None:
        if self._deadline.get(req_id) != due:
            return
        channel, op, ref = self._forget(req_id)
        store.close_request(self.conn, req_id, "timeout", "", now_ms)
        self.router.record(channel, False, now_ms)
        self.event("channel.timeout", ref, {"channel": channel, "req_id": req_id, "op": op})
        TIMEOUTS[op](self, channel, ref, req_id, now_ms)

    def _notify(self, notify_id: str, arg: int, now_ms: int) -> None:
        cfg = self.cfg
        attempt = notify.next_attempt(self.conn, notify_id, now_ms, cfg.notify_schedule_ms,
                                      cfg.notify_reply_wait_ms)
        ref = notify_id.rsplit(".", 1)[0]
        if attempt is None:
            self._notifying.discard(notify_id)
            return
        if attempt.get("dead"):
            self._notifying.discard(notify_id)
            self.event("notify.result", ref, {"notify_id": notify_id, "outcome": "dead"})
            return
        self._send_notification(notify_id, attempt, now_ms)

    def _send_notification(self, notify_id: str, attempt: dict, now_ms: int) -> None:
        ref = notify_id.rsplit(".", 1)[0]
        merchant = self.merchants[attempt["merchant_id"]]
        body = signed(dict(attempt["payload"], notify_id=notify_id, timestamp=now_ms,
                           nonce=f"{notify_id}.{attempt['attempt']}"),
                      merchant.secret, merchant.sign_type)
        self.event("notify.attempt", ref, {"notify_id": notify_id, "attempt": attempt["attempt"],
                                           "url": attempt["url"]})
        self.send(attempt["url"], body)
        self.at(attempt["next_at_ms"], "notify", notify_id)

    def arm_janitor(self, now_ms: int) -> None:
        self.janitor_armed = True
        self.at(now_ms + compensation.JANITOR_MS, "janitor", "")

    def _housekeeping(self, now_ms: int) -> None:
        if not self.janitor_armed:
            self.arm_janitor(now_ms)
        if not self.backoffice_armed:
            self.backoffice_armed = True
            backoffice.arm(self, now_ms)
            for arm in products.every("arm"):
                arm(self, now_ms)
        if self._housekeeping_at is None:
            self._housekeeping_at = now_ms + HOUSEKEEPING_MS
        elif now_ms >= self._housekeeping_at:
            self._housekeeping_at = now_ms + HOUSEKEEPING_MS
            prune_idempotency(self.conn, now_ms)
            self.gateway.replay.prune(self.conn, now_ms)

    # -- restart ------------------------------------------------------------------------------

    def recover(self, now_ms: int) -> list[tuple]:
        """Rebuild the in-memory state from the database after a restart (memory was lost)."""
        return self._transaction(self._recover, now_ms)

    def _recover(self, now_ms: int) -> None:
        restart.recover(self, now_ms)


FLOWS = {
    "pay": payments.on_pay, "query": payments.on_query, "close": payments.on_query,
    "sign": payments.on_sign, "refund": refunds.on_refund, "unsign": agreements.on_unsign,
}
TIMEOUTS = {
    "pay": payments.on_pay_timeout, "query": payments.on_query_timeout,
    "close": payments.on_query_timeout, "sign": payments.on_sign_timeout,
    "refund": refunds.on_refund_timeout, "unsign": agreements.on_unsign_timeout,
}
REFUSED = {  # the request never reached the channel
    "pay": payments.on_pay_refused, "query": payments.on_query_timeout,
    "close": payments.on_query_timeout, "sign": payments.on_pay_refused,
    "refund": refunds.on_refund_refused, "unsign": agreements.on_unsign_timeout,
}
TIMERS = {
    "timeout": PaySys._timeout, "notify": PaySys._notify, "query": payments.on_query_due,
    "expire": payments.on_expire_due, "otp_expire": payments.on_otp_expire,
    "refund_retry": refunds.on_retry_due, "unsign_retry": agreements.on_retry_due,
    "janitor": compensation.on_janitor_due,
}
for _ours, _theirs in ((FLOWS, backoffice.FLOWS), (TIMEOUTS, backoffice.TIMEOUTS),
                       (REFUSED, backoffice.REFUSED), (TIMERS, backoffice.TIMERS),
                       (FLOWS, products.merged("FLOWS")), (TIMEOUTS, products.merged("TIMEOUTS")),
                       (REFUSED, products.merged("REFUSED")), (TIMERS, products.merged("TIMERS")),
                       (MERCHANT_API, products.merged("API")),
                       (REPLY_OPS, products.merged("REPLY_OPS")),
                       (REPLY_OPS, {t: op for a in ADAPTERS.values()   # each adapter module's
                                    for t, op in getattr(sys.modules[a.__module__], "REPLY_OPS",
                                                         {}).items()})):
    if set(_ours) & set(_theirs):
        raise RuntimeError(f"engine: {sorted(set(_ours) & set(_theirs))} defined twice")
    _ours.update(_theirs)
