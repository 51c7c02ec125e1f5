"""Pre-authorisations in paysys: the state tables, the flows against the mock bank (happy paths,
declines, unknown answers resolved by query, a request the bank never saw sent again, expiry),
the two-phase ledger, and a property: any sequence of operations never captures more than was
authorised nor resolves a pending entry twice."""

import random
import sqlite3

import pytest
from _node import CARD, Driver, events
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.fees import Fee
from paysys import ledger, orders
from paysys.orders import IllegalTransition
from paysys.products import preauth_ledger as pending
from paysys.products.preauth_tables import FINAL, TRANSITIONS, Status

HOUR = 3_600_000


class Rig:
    """paysys and the mock bank wired back to back (replies at once); `lose` drops bank replies."""

    def __init__(self, balance: int = 100_000, card: str = CARD) -> None:
        self.d = Driver()
        self.bank = Bank(name="bank", rng=random.Random(1), fee_rule=Fee(rate_bp=20),
                         capacity=4, max_queue_ms=1000, service_time=lambda rng: 50)
        self.bank.open_account("U00001", card, balance, 10**9)
        self.card = card
        self.answers: list[dict] = []
        self.lose = 0          # how many bank replies to lose next
        self.unseen = 0        # how many requests to paysys... never reach the bank

    @property
    def conn(self) -> sqlite3.Connection:
        return self.d.conn

    def pump(self, fx: list[tuple]) -> None:
        for e in fx:
            if e[0] == "send" and e[1] == "bank":
                if self.unseen:
                    self.unseen -= 1
                    continue
                for b in self.bank.handle("paysys", e[2], self.d.now):
                    if b[0] == "reply":
                        if self.lose:
                            self.lose -= 1
                            continue
                        self.pump(self.d.handle("bank", b[1]))
            elif e[0] == "reply" or (e[0] == "send" and e[1].startswith("merchant:")):
                self.answers.append(e[1] if e[0] == "reply" else e[2])

    def merchant(self, body: dict) -> dict:
        before = len(self.answers)
        self.pump(self.d.merchant(body))
        return self.answers[-1] if len(self.answers) > before else {}

    def advance(self, ms: int) -> None:
        end = self.d.now + ms
        while True:
            due = [t for t in (self.d.node.next_deadline(), self.bank.next_deadline())
                   if t is not None and t <= end]
            if not due:
                break
            self.d.now = max(self.d.now, min(due))
            self.pump(self.bank.on_timer(self.d.now))
            self.pump(self.d._keep(self.d.node.on_timer(self.d.now)))
        self.d.now = end

    def create(self, amount: int = 50_000, no: str = "H1") -> dict:
        return self.merchant({"type": "preauth.create", "idempotency_key": f"c-{no}",
                              "merchant_order_no": no, "user_id": "U00001", "amount": amount,
                              "currency": "CNY", "card_no": self.card,
                              "notify_url": "http://m/n"})

    def op(self, kind: str, preauth_id: str, key: str, **fields) -> dict:
        return self.merchant({"type": f"preauth.{kind}", "idempotency_key": key,
                              "preauth_id": preauth_id, **fields})

    def pre(self, preauth_id: str) -> dict:
        row = self.conn.execute("SELECT status, held, captured FROM preauth_orders WHERE "
                                "preauth_id=?", (preauth_id,)).fetchone()
        return dict(zip(("status", "held", "captured"), row, strict=True))

    def pendings(self, preauth_id: str) -> list[tuple]:
        return self.conn.execute("SELECT status, amount, posted FROM pending_entries WHERE "
                                 "ref=? ORDER BY pending_id", (preauth_id,)).fetchall()

    def channel_balance(self) -> int:
        return ledger.balance(self.conn, "asset:channel:bank", "CNY")


# -- the state tables ---------------------------------------------------------------------------


def test_the_tables_reach_every_status_and_refuse_what_they_do_not_list() -> None:
    reached = {new for moves in TRANSITIONS.values() for new in moves.values()}
    assert reached | {Status.CREATED} == set(Status)
    assert orders.fire("preauth", "AUTHORISED", "capture") == "CAPTURING"
    assert orders.fire("preauth", "UNCAPTURING", "done") == "AUTHORISED"
    with pytest.raises(IllegalTransition):
        orders.fire("preauth", "CANCELLED", "capture")
    with pytest.raises(IllegalTransition):
        orders.fire("preauth", "UNKNOWN", "timeout")     # unknown is never failure, nor looped
    assert all(not TRANSITIONS[s] for s in FINAL - {Status.CAPTURED})
    assert orders.fire("preauth_op", "UNKNOWN", "success") == "SUCCEEDED"
    assert "timeout" not in TRANSITIONS[Status.UNKNOWN]


# -- flows ---------------------------------------------------------------------------------------


def test_authorise_signs_first_then_holds_with_a_pending_entry_that_moves_nothing() -> None:
    r = Rig()
    reply = r.create()
    assert (reply["status"], reply["held"]) == ("AUTHORISED", 50_000)
    assert r.pendings(reply["preauth_id"]) == [("pending", 50_000, 0)]
    assert r.channel_balance() == 0
    kinds = [e[1] for e in r.d.log_effects() if e[0] == "event"]
    assert "ledger.pending" in kinds and "ledger.post" not in kinds
    second = r.create(10_000, "H2")         # the agreement is there now: no signing
    assert second["status"] == "AUTHORISED"
    ops = [e[2]["type"] for e in r.d.log_effects() if e[0] == "send" and e[1] == "bank"]
    assert ops.count("bank.sign") == 1


def test_capture_less_posts_it_and_resolves_the_pending_once() -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    reply = r.op("capture", pid, "k1", amount=30_000)
    assert (reply["status"], reply["captured"], reply["op_status"]) == ("CAPTURED", 30_000,
                                                                        "SUCCEEDED")
    assert r.pendings(pid) == [("posted", 50_000, 30_000)]
    assert r.channel_balance() == r.bank.truth.balance("platform", "CNY") == 30_000 - 60
    order = r.d.order(reply["capture_order_id"])
    assert (order["status"], order["amount"], order["parent_id"]) == ("SUCCEEDED", 30_000, pid)
    assert r.op("capture", pid, "k2", amount=1)["code"] == "BAD_STATE"      # once
    with pytest.raises(pending.PendingError):
        pending.resolve(r.d.node, 1, "voided", r.d.now, "test")
    with pytest.raises(sqlite3.IntegrityError):
        r.conn.execute("UPDATE pending_entries SET status='voided' WHERE pending_id=1")


def test_capture_more_than_held_is_refused_at_the_door() -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    reply = r.op("capture", pid, "k1", amount=50_001)
    assert (reply["ok"], reply["field"]) == (False, "amount")


def test_cancel_in_full_voids_the_pending_and_a_partial_cancel_is_refused() -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    assert r.op("cancel", pid, "k0", amount=10)["field"] == "amount"
    assert r.op("cancel", pid, "k1")["status"] == "CANCELLED"
    assert r.pendings(pid) == [("voided", 50_000, 0)]
    assert r.bank.truth.balance("card:" + CARD, "CNY") == 100_000


def test_capture_cancel_reverses_the_capture_and_the_preauth_may_be_captured_again() -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    first = r.op("capture", pid, "k1", amount=30_000)["capture_order_id"]
    reply = r.op("capture_cancel", pid, "k2")
    assert (reply["status"], reply["held"], reply["op_status"]) == ("AUTHORISED", 30_000,
                                                                    "SUCCEEDED")
    assert r.channel_balance() == 0 == r.bank.truth.balance("platform", "CNY")
    assert ledger.balance(r.conn, "income:fee", "CNY") == 0        # fees returned both ways
    assert r.d.order(first)["refunded"] == 30_000
    assert r.op("capture", pid, "k3", amount=30_000)["status"] == "CAPTURED"
    assert [s for s, _, _ in r.pendings(pid)] == ["posted", "posted"]
    assert r.pendings(pid)[1] == ("posted", 30_000, 30_000)


def test_a_hold_left_alone_expires_at_the_bank_and_then_in_paysys() -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    r.advance(2 * HOUR + 5 * 60_000)
    assert r.pre(pid)["status"] == "EXPIRED"
    assert r.pendings(pid) == [("expired", 50_000, 0)]
    assert r.bank.truth.balance("card:" + CARD, "CNY") == 100_000


def test_a_declined_card_fails_the_preauth_without_a_pending_entry() -> None:
    r = Rig(balance=1_000)
    reply = r.create()
    assert (reply["status"], reply["code"]) == ("FAILED", "INSUFFICIENT_FUNDS")
    assert r.pendings(reply["preauth_id"]) == []


def test_a_lost_hold_reply_is_unknown_then_resolved_by_query() -> None:
    r = Rig()
    r.create(no="H0")                   # signs the card
    r.lose = 1
    r.create(no="H1")
    r.advance(5_000)
    pid = r.conn.execute("SELECT preauth_id FROM preauth_orders WHERE merchant_order_no='H1'"
                         ).fetchone()[0]
    statuses = [d["to"] for d in events(r.d.log_effects(), "order.state", pid)]
    assert "UNKNOWN" in statuses and "FAILED" not in statuses
    assert r.pre(pid)["status"] == "AUTHORISED"


def test_an_operation_the_bank_never_saw_is_sent_again_under_its_id() -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    r.unseen = 1
    r.op("capture", pid, "k1", amount=20_000)
    assert r.pre(pid)["status"] == "CAPTURING"
    r.advance(60_000)
    assert r.pre(pid) == {"status": "CAPTURED", "held": 0, "captured": 20_000}
    sent = [e[2] for e in r.d.log_effects() if e[0] == "send" and e[1] == "bank"
            and e[2]["type"] == "bank.preauth.capture"]
    assert len(sent) == 2 and sent[0]["req_id"] == sent[1]["req_id"]
    assert r.channel_balance() == r.bank.truth.balance("platform", "CNY")


def test_a_lost_capture_reply_charges_once() -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    r.lose = 1
    assert r.op("capture", pid, "k1", amount=20_000) == {}     # the answer waits for the bank's
    r.advance(3_500)                                             # ... which times out: unknown
    assert (r.answers[-1]["op_status"], r.pre(pid)["status"]) == ("PROCESSING", "CAPTURING")
    r.advance(60_000)
    assert r.pre(pid)["status"] == "CAPTURED"
    pays = [t for t in r.bank.truth.txns() if t["kind"] == "pay"]
    assert len(pays) == 1 and r.channel_balance() == r.bank.truth.balance("platform", "CNY")


# -- the property ------------------------------------------------------------------------------

STEPS = st.lists(st.tuples(st.sampled_from(["capture", "cancel", "capture_cancel", "wait",
                                            "lose"]), st.integers(1, 60_000)), max_size=10)


@settings(max_examples=30, deadline=None)
@given(STEPS)
def test_no_sequence_captures_more_than_authorised_nor_resolves_a_pending_twice(steps) -> None:
    r = Rig()
    pid = r.create()["preauth_id"]
    for i, (kind, amount) in enumerate(steps):
        if kind == "wait":
            r.advance(amount * 60)           # up to an hour: the hold lives two
        elif kind == "lose":
            r.lose = 1
        else:
            fields = {"amount": amount} if kind == "capture" else {}
            r.op(kind, pid, f"k{i}", **fields)
        r.advance(1_000)
        pre = r.pre(pid)
        assert 0 <= pre["captured"] <= 50_000
        net = r.conn.execute(
            "SELECT COALESCE(SUM(o.amount - o.refunded), 0) FROM pay_orders o WHERE "
            "o.parent_id=? AND o.status='SUCCEEDED'", (pid,)).fetchone()[0]
        assert net == pre["captured"]
        rows = r.pendings(pid)
        assert sum(1 for s, _, _ in rows if s == "pending") <= 1
        assert all(posted <= amount for _, amount, posted in rows)
    r.advance(4 * HOUR)       # everything settles; the hold has lapsed unless captured
    resolutions = [d["pending_id"] for d in events(r.d.log_effects(), "ledger.pending", pid)
                   if d["status"] != "pending"]
    assert len(resolutions) == len(set(resolutions))
    assert all(s != "pending" for s, _, _ in r.pendings(pid))
    assert r.channel_balance() == r.bank.truth.balance("platform", "CNY")
    assert r.bank.truth.total("CNY") == r.bank.truth.initial_total("CNY")
