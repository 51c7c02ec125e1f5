"""The charge invariants on real paysys tables (paysys.store.open_store on a file): kept charges,
compensation refunds, attempts, idempotency keys and the outbox.

Each case builds a small run the way paysys and the channels would record it, checks which
invariants fire (all of them are computed, so a case also shows what does NOT fire) and that
the violation names the order.
"""

import sqlite3

import pytest

from paysys.store import insert_pay_order, insert_refund_order, open_store
from sim.invariants import CHECKS, PAY_FINAL

START_MS = 1_700_000_000_000


class Run:
    """A run database with the paysys schema plus the simulator's truth and events tables."""

    def __init__(self, path: str):
        self.conn = open_store(path)
        self.conn.execute("CREATE TABLE truth_accounts (node TEXT, account TEXT, currency TEXT, "
                          "initial INTEGER, balance INTEGER, PRIMARY KEY (node, account, currency))")
        self.conn.execute("CREATE TABLE truth_txns (node TEXT, ref TEXT, channel_ref TEXT, "
                          "kind TEXT, amount INTEGER, fee INTEGER, currency TEXT, status TEXT, "
                          "at_ms INTEGER)")
        self.conn.execute("CREATE INDEX truth_txns_ref ON truth_txns(ref)")
        self.conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, at_ms INTEGER, "
                          "kind TEXT, ref TEXT, src TEXT, dst TEXT, data TEXT)")
        self.now = START_MS
        self.n = 0

    def tick(self) -> int:
        self.now += 1000
        return self.now

    def order(self, status: str = "SUCCEEDED", amount: int = 10_000, order_no: str = "",
              attempt: int = 1, key: str = "", channel_ref: str = "", received: int = 0,
              merchant: str = "M001") -> str:
        self.n += 1
        oid = f"P{self.n:010d}"
        now = self.tick()
        insert_pay_order(self.conn, {
            "order_id": oid, "merchant_id": merchant, "merchant_order_no": order_no or f"MO{self.n}",
            "user_id": "U1", "product": "quick", "channel": "bank", "amount": amount,
            "currency": "CNY", "status": status, "merchant_fee": 0, "channel_cost": 0,
            "refunded": 0, "created_ms": now, "updated_ms": now, "channel_ref": channel_ref,
            "notify_url": "", "error_code": "", "attempt": attempt, "idempotency_key": key,
            "received": received})
        self.published(oid, now)
        return oid

    def published(self, ref: str, now: int) -> None:
        """The domain event every final order publishes (events_published)."""
        self.conn.execute("INSERT INTO events (at_ms, kind, ref, src, dst, data) "
                          "VALUES (?, 'publish', ?, 'paysys', '', '{}')", (now, ref))

    def charge(self, oid: str, txn: str, amount: int = 10_000, currency: str = "CNY") -> str:
        """A successful charge at the bank (ground truth)."""
        self.conn.execute("INSERT INTO truth_txns VALUES ('bank', ?, ?, 'pay', ?, 0, ?, "
                          "'SUCCESS', ?)", (oid, txn, amount, currency, self.tick()))
        return txn

    def refund(self, oid: str, amount: int = 10_000, reason: str = "merchant",
               charge_ref: str = "", status: str = "SUCCEEDED", truth: bool = True,
               refund_no: str = "") -> str:
        """A refund order; SUCCEEDED ones also get their truth refund unless `truth` is False."""
        self.n += 1
        rid = f"R{self.n:010d}"
        now = self.tick()
        insert_refund_order(self.conn, {
            "refund_id": rid, "order_id": oid, "merchant_id": "M001",
            "refund_no": refund_no or f"RN{self.n}", "amount": amount, "currency": "CNY",
            "status": status, "channel": "bank", "created_ms": now, "updated_ms": now,
            "error_code": "", "reason": reason, "charge_ref": charge_ref})
        self.published(rid, now)
        if status == "SUCCEEDED" and truth:
            self.conn.execute("INSERT INTO truth_txns VALUES ('bank', ?, ?, 'refund', ?, 0, "
                              "'CNY', 'SUCCESS', ?)", (rid, f"B{rid}", amount, self.tick()))
        return rid

    def outbox(self, ref: str, delivered: bool = True) -> None:
        now = self.tick()
        self.conn.execute("INSERT INTO outbox (topic, ref, payload, created_ms, delivered_ms) "
                          "VALUES ('order.final', ?, '{}', ?, ?)",
                          (ref, now, now + 5 if delivered else None))


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(str(tmp_path / "run.db"))


def fired(run: Run) -> dict[str, list[dict]]:
    return {name: v for name, check in CHECKS.items() if (v := check(run.conn))}


def only(run: Run, *names: str) -> dict[str, list[dict]]:
    found = fired(run)
    assert sorted(found) == sorted(names), {k: [x["message"] for x in v] for k, v in found.items()}
    return found


def paid(run: Run, **kw) -> str:
    """A SUCCEEDED order with its one charge T<order>."""
    oid = run.order(channel_ref="", **kw)
    txn = run.charge(oid, f"T{oid}", kw.get("amount", 10_000))
    run.conn.execute("UPDATE pay_orders SET channel_ref = ? WHERE order_id = ?", (txn, oid))
    return oid


# --- correct runs -------------------------------------------------------------------------------


def test_held_and_duplicate_are_final():
    assert {"HELD", "DUPLICATE"} <= set(PAY_FINAL)


def test_every_compensated_situation_holds(run):
    p = paid(run)
    run.refund(p, 3_000)                                               # a merchant refund
    p = paid(run)                                                      # double charge, refunded
    run.charge(p, "T2")
    run.refund(p, reason="double_charge", charge_ref="T2")
    paid(run, order_no="MO", attempt=1, key="k1")                      # pay twice: DUPLICATE
    dup = run.order("DUPLICATE", order_no="MO", attempt=2, key="k2")
    run.charge(dup, "T3")
    run.refund(dup, reason="duplicate", charge_ref="T3")
    late = run.order("FAILED")                                         # late success, refunded
    run.charge(late, "T4")
    run.refund(late, reason="late_success", charge_ref="T4")
    run.order("CLOSED", order_no="MO5", attempt=1)                     # a second attempt paid
    paid(run, order_no="MO5", attempt=2)
    held = run.order("HELD", received=4_000)                           # partial, held
    run.charge(held, "T5", 4_000)
    over = run.order("HELD", received=10_001)                          # mismatch over, held
    run.charge(over, "T6", 10_001)
    done = run.order("SUCCEEDED", channel_ref="T8")                    # partial, completed
    run.charge(done, "T7", 4_000)
    run.charge(done, "T8", 6_000)
    gone = run.order("CLOSED")                                         # partial, refunded
    run.charge(gone, "T9", 4_000)
    run.refund(gone, 4_000, reason="partial", charge_ref="T9")
    run.order("FAILED", key="k1", merchant="M002")                     # same key, other merchant
    run.order("FAILED")
    run.order("FAILED")                                                # empty keys never clash
    run.outbox(p)
    assert fired(run) == {}


# --- orders_match_truth -------------------------------------------------------------------------


def test_succeeded_order_whose_only_charge_was_taken_back(run):
    p = paid(run)
    rid = run.refund(p, reason="double_charge", charge_ref=f"T{p}")
    found = only(run, "orders_match_truth", "duplicates_refunded")
    (v,) = found["orders_match_truth"]
    assert v["ref"] == p and v["diff"] == 10_000 and "taken back" in v["message"]
    (d,) = found["duplicates_refunded"]
    assert (d["ref"], d["problem"], d["refund_id"]) == (p, "own_charge_refunded", rid)


def test_succeeded_order_whose_channel_ref_is_not_a_kept_charge(run):
    p = run.order(channel_ref="T9")
    run.charge(p, "T1")
    (v,) = only(run, "orders_match_truth")["orders_match_truth"]
    assert v["ref"] == p and v["diff"] == 0 and "no charge T9" in v["message"]


def test_succeeded_order_kept_in_another_currency(run):
    p = run.order()
    run.charge(p, "T1", currency="USD")
    v = fired(run)["orders_match_truth"][0]
    assert v["ref"] == p and "another currency" in v["message"]


def test_partial_charges_that_do_not_add_up(run):
    p = run.order(channel_ref="T2")
    run.charge(p, "T1", 4_000)
    run.charge(p, "T2", 5_000)
    (v,) = only(run, "orders_match_truth")["orders_match_truth"]
    assert v["ref"] == p and v["diff"] == 1_000 and v["kept_charges"] == 2


def test_duplicate_order_still_keeping_its_charge(run):
    first = paid(run, order_no="MO", attempt=1)
    dup = run.order("DUPLICATE", order_no="MO", attempt=2)
    run.charge(dup, "T2")
    found = only(run, "orders_match_truth", "no_double_charge", "duplicates_refunded",
                 "no_charge_without_order")
    (v,) = found["orders_match_truth"]
    assert v["ref"] == dup and v["status"] == "DUPLICATE" and v["diff"] == 10_000
    (d,) = found["duplicates_refunded"]
    assert (d["ref"], d["problem"], d["diff"]) == (dup, "duplicate_kept", 10_000)
    # the merchant order keeps two charges: both attempts are named
    assert [x["ref"] for x in found["no_double_charge"]] == [first, dup]
    assert all(x["merchant_order_kept"] == 20_000 for x in found["no_double_charge"])


def test_failed_order_whose_compensation_refund_failed(run):
    p = run.order("FAILED")
    run.charge(p, "T1")
    run.refund(p, reason="late_success", charge_ref="T1", status="FAILED")
    found = only(run, "orders_match_truth", "no_charge_without_order")
    assert found["orders_match_truth"][0]["ref"] == p
    assert found["no_charge_without_order"][0]["ref"] == p


def test_held_order_keeping_other_than_received(run):
    short = run.order("HELD", received=4_000)
    run.charge(short, "T1", 3_000)
    empty = run.order("HELD", received=0)
    vs = only(run, "orders_match_truth")["orders_match_truth"]
    assert [(v["ref"], v["diff"]) for v in vs] == [(short, 1_000), (empty, 0)]
    assert "received nothing" in vs[1]["message"]


def test_compensation_refund_succeeded_without_truth_refund(run):
    p = paid(run)
    run.charge(p, "T2")
    rid = run.refund(p, reason="double_charge", charge_ref="T2", truth=False)
    found = only(run, "orders_match_truth", "no_double_charge")
    (v,) = found["orders_match_truth"]
    assert (v["ref"], v["order_id"], v["reason"], v["charge_ref"]) == (
        rid, p, "double_charge", "T2")
    # paysys believes T2 went back, so it is not kept; but the user's net is 20 000
    (n,) = found["no_double_charge"]
    assert (n["ref"], n["kept"], n["net"], n["diff"]) == (p, 10_000, 20_000, 10_000)


# --- no_double_charge ---------------------------------------------------------------------------


def test_two_attempts_of_one_merchant_order_keep_a_charge_each(run):
    first = paid(run, order_no="MO", attempt=1)
    second = run.order("CLOSED", order_no="MO", attempt=2)
    run.charge(second, "T2")
    found = only(run, "orders_match_truth", "no_double_charge", "no_charge_without_order")
    vs = found["no_double_charge"]
    assert [v["ref"] for v in vs] == [first, second]
    assert all(v["diff"] == 10_000 and "keeps 20000 CNY over 2 attempt(s)" in v["message"]
               for v in vs)


def test_double_charge_not_refunded(run):
    p = paid(run)
    run.charge(p, "T2")
    found = only(run, "orders_match_truth", "no_double_charge", "duplicates_refunded")
    (v,) = found["no_double_charge"]
    assert (v["ref"], v["payments"], v["net"], v["diff"]) == (p, 2, 20_000, 10_000)
    (d,) = found["duplicates_refunded"]
    assert (d["ref"], d["problem"], d["diff"]) == (p, "extra_charge_kept", 10_000)


def test_merchant_refund_does_not_excuse_a_kept_double_charge(run):
    p = paid(run)
    run.charge(p, "T2")
    run.refund(p, 10_000)  # net is back to the amount, but both charges are still kept
    found = fired(run)
    (v,) = found["no_double_charge"]
    assert v["ref"] == p and v["net"] == 10_000 and v["kept"] == 20_000
    assert found["duplicates_refunded"][0]["problem"] == "extra_charge_kept"


def test_held_mismatch_may_hold_what_it_received_but_not_more(run):
    p = run.order("HELD", received=10_001)
    run.charge(p, "T1", 10_001)
    assert fired(run) == {}
    run.charge(p, "T2", 10_001)
    assert "no_double_charge" in fired(run)


# --- duplicates_refunded ------------------------------------------------------------------------


def test_a_charge_refunded_twice(run):
    p = paid(run)
    run.charge(p, "T2")
    run.refund(p, reason="double_charge", charge_ref="T2")
    run.refund(p, reason="double_charge", charge_ref="T2")
    (d,) = only(run, "duplicates_refunded")["duplicates_refunded"]
    assert (d["ref"], d["problem"], d["charge_ref"], d["diff"]) == (
        p, "refunded_twice", "T2", 10_000)


def test_order_with_two_charges_may_give_back_the_one_named(run):
    """Not `own_charge_refunded`: the order has another charge (orders_match_truth still sees
    that channel_ref is not kept)."""
    p = paid(run)
    run.charge(p, "T2")
    run.refund(p, reason="double_charge", charge_ref=f"T{p}")
    assert sorted(fired(run)) == ["orders_match_truth"]


# --- idempotency --------------------------------------------------------------------------------


def test_one_idempotency_key_two_pay_orders(run):
    first = run.order("FAILED", key="k1")
    second = run.order("FAILED", key="k1")
    (v,) = only(run, "idempotency")["idempotency"]
    assert (v["ref"], v["problem"], v["first"], v["key"]) == (second, "pay_key", first, "k1")
    assert first in v["message"] and second in v["message"]


def test_one_refund_number_two_refund_orders(run):
    p = paid(run)
    run.conn.execute("DROP INDEX idx_refund_orders_merchant_id_refund_no")  # paysys forbids it
    r1 = run.refund(p, 1_000, refund_no="RN")
    r2 = run.refund(p, 1_000, refund_no="RN")
    (v,) = only(run, "idempotency")["idempotency"]
    assert (v["ref"], v["order_id"], v["problem"], v["first"]) == (r2, p, "refund_no", r1)


def test_two_attempts_both_succeeded(run):
    first = paid(run, order_no="MO", attempt=1)
    second = paid(run, order_no="MO", attempt=2)
    found = only(run, "idempotency", "no_double_charge")
    (v,) = found["idempotency"]
    assert (v["ref"], v["problem"], v["first"]) == (second, "attempts_succeeded", first)


# --- outbox_drained -----------------------------------------------------------------------------


def test_outbox_message_never_delivered(run):
    p = paid(run)
    run.outbox(p)
    run.outbox(p, delivered=False)
    (v,) = only(run, "outbox_drained")["outbox_drained"]
    assert v["ref"] == p and v["topic"] == "order.final" and "never delivered" in v["message"]


# --- no_charge_without_order --------------------------------------------------------------------


def test_charge_taken_back_needs_no_paid_order_but_a_kept_one_does(run):
    p = run.order("CLOSED")
    run.charge(p, "T1", 4_000)
    rid = run.refund(p, 4_000, reason="partial", charge_ref="T1")
    assert fired(run) == {}
    run.conn.execute("DELETE FROM refund_orders WHERE refund_id = ?", (rid,))
    found = fired(run)
    refs = [(v["ref"], v["kind"]) for v in found["no_charge_without_order"]]
    assert refs == [(p, "pay"), (rid, "refund")]


def test_database_on_disk_is_a_plain_sqlite_file(run, tmp_path):
    paid(run)
    run.conn.close()
    conn = sqlite3.connect(tmp_path / "run.db")
    assert all(not check(conn) for check in CHECKS.values())


def test_final_order_or_refund_that_never_published_its_event(run):
    oid = paid(run)
    rid = run.refund(oid, 4_000)
    run.conn.execute("DELETE FROM events WHERE kind = 'publish'")
    violations = fired(run)["events_published"]
    assert [v["ref"] for v in violations] == [oid, rid]
    assert "order.final event was never published" in violations[0]["message"]
    assert "refund.final event was never published" in violations[1]["message"]
