"""paysys/recon/tables.py (and the day helpers of paysys/recon): paysys's own rows of a day from a
small in-memory store, the buffer round trip, breaks numbered in order, the file rows."""

import json

import pytest
import sqlite_utils

from paysys import store
from paysys.money import FeeRule
from paysys.recon import day_bounds, local_date, next_date
from paysys.recon import tables as recon
from paysys.recon.formats import Row
from paysys.recon.match import LISTED, Break, Buffered
from paysys.recon.policy import decide

D0 = "2026-11-02"
START, END = day_bounds(D0)
FEE = FeeRule(rate_bp=30)   # 0.3 %


@pytest.fixture
def conn():
    conn = store.open_store(":memory:")
    recon.create_tables(sqlite_utils.Database(conn))
    recon.create_tables(sqlite_utils.Database(conn))   # idempotent
    return conn


def test_day_helpers_are_utc_plus_8():
    assert START == 1_793_577_600_000 - 8 * 3_600_000      # 2026-11-02T00:00Z minus 8 h
    assert END - START == 86_400_000
    assert local_date(START) == D0 and local_date(END - 1) == D0
    assert local_date(START - 1) == "2026-11-01" and local_date(END) == "2026-11-03"
    assert next_date("2026-12-31") == "2027-01-01"


def add_order(conn, order_id, channel="bank", amount=10_000, currency="CNY"):
    store.insert_pay_order(conn, {
        "order_id": order_id, "merchant_id": "M001", "merchant_order_no": order_id,
        "user_id": "U1", "product": "p", "channel": channel, "amount": amount,
        "currency": currency, "status": "SUCCEEDED", "merchant_fee": 0, "channel_cost": 0,
        "refunded": 0, "created_ms": START, "updated_ms": START, "channel_ref": "",
        "notify_url": "", "error_code": "", "card_no": ""})


def add_charge(conn, order_id, channel_ref, at_ms, amount=10_000, channel="bank", kept=1):
    conn.execute("INSERT INTO charges VALUES (?,?,?,?,?,?)",
                 (order_id, channel_ref, channel, amount, kept, at_ms))


def add_refund(conn, refund_id, order_id, at_ms, status="SUCCEEDED", channel="bank", amount=500):
    store.insert_refund_order(conn, {
        "refund_id": refund_id, "order_id": order_id, "merchant_id": "M001",
        "refund_no": refund_id, "amount": amount, "currency": "CNY", "status": status,
        "channel": channel, "created_ms": at_ms - 10, "updated_ms": at_ms, "error_code": ""})


@pytest.fixture
def books(conn):
    add_order(conn, "P1")
    add_charge(conn, "P1", "T1", START)                       # day D0, first instant
    add_order(conn, "P2", amount=2_001, currency="USD")
    add_charge(conn, "P2", "T2", END - 1, amount=2_001)       # day D0, last instant
    add_charge(conn, "P2", "T2b", START + 5, amount=2_001, kept=0)   # a second charge: listed too
    add_order(conn, "P3")
    add_charge(conn, "P3", "T3", END)                         # the next day
    add_order(conn, "P4", channel="wechat")
    add_charge(conn, "P4", "W4", START + 1, channel="wechat")   # another channel
    add_refund(conn, "R1", "P1", START + 100)
    add_refund(conn, "R2", "P1", START + 200, status="PROCESSING")   # not a success: not listed
    add_refund(conn, "R3", "P3", END + 100)                   # the next day
    add_refund(conn, "R4", "P4", START + 300, channel="wechat")
    return conn


def test_ours_lists_the_days_charges_and_successful_refunds(books):
    rows = recon.ours(books, "bank", START, END, FEE)
    assert rows == {
        "pay:T1": Row("pay:T1", "pay", "P1", "T1", 10_000, 30, "CNY", "SUCCESS", D0),
        "pay:T2": Row("pay:T2", "pay", "P2", "T2", 2_001, 6, "USD", "SUCCESS", D0),
        "pay:T2b": Row("pay:T2b", "pay", "P2", "T2b", 2_001, 6, "USD", "SUCCESS", D0),
        "refund:R1": Row("refund:R1", "refund", "R1", "", 500, 0, "CNY", "SUCCESS", D0),
    }
    assert list(rows) == sorted(rows)
    next_day = recon.ours(books, "bank", *day_bounds(next_date(D0)), FEE)
    assert set(next_day) == {"pay:T3", "refund:R3"}
    assert set(recon.ours(books, "wechat", START, END, FEE)) == {"pay:W4", "refund:R4"}


def test_known_finds_rows_of_any_day_with_their_own_date(books):
    found = recon.known(books, "bank", ["pay:T3", "refund:R3", "pay:T1", "pay:W4", "refund:R2",
                                        "pay:nope", "refund:R4", "odd"], FEE)
    assert {k: (r.date, r.fee) for k, r in found.items()} == {
        "pay:T1": (D0, 30), "pay:T3": (next_date(D0), 30), "refund:R3": (next_date(D0), 0)}
    assert recon.known(books, "bank", ["pay:T1"])["pay:T1"].fee == 0   # no fee rule: fee 0


def test_ref_known(books):
    pay = Row("pay:X", "pay", "P3", "X", 1, 0, "CNY", "SUCCESS", D0)
    assert recon.ref_known(books, pay)
    assert not recon.ref_known(books, pay._replace(ref="X0000000001"))
    refund = pay._replace(kind="refund", ref="R2")
    assert recon.ref_known(books, refund)
    assert not recon.ref_known(books, refund._replace(ref="P1"))


def row(n, date=D0):
    return Row(f"pay:T{n}", "pay", f"P{n}", f"T{n}", 100 * n, n, "CNY", "SUCCESS", date)


def test_buffer_round_trip_keeps_since(conn):
    first = {row(2).key: Buffered(row(2), 0), row(1).key: Buffered(row(1, "2026-11-03"), LISTED)}
    recon.save_buffer(conn, "bank", first, 1_000)
    recon.save_buffer(conn, "wechat", {row(9).key: Buffered(row(9), 1)}, 1_500)
    assert recon.load_buffer(conn, "bank") == dict(sorted(first.items()))
    second = {row(2).key: Buffered(row(2), 1), row(3).key: Buffered(row(3), 0)}
    recon.save_buffer(conn, "bank", second, 2_000)
    assert recon.load_buffer(conn, "bank") == second
    stored = conn.execute("SELECT key, date, since_ms, files_seen FROM recon_buffer "
                          "WHERE channel='bank' ORDER BY key").fetchall()
    assert stored == [("pay:T2", D0, 1_000, 1), ("pay:T3", D0, 2_000, 0)]
    assert recon.load_buffer(conn, "wechat") == {row(9).key: Buffered(row(9), 1)}
    recon.save_buffer(conn, "bank", {}, 3_000)
    assert recon.load_buffer(conn, "bank") == {}


def test_breaks_are_numbered_in_order_and_resolved(conn):
    amount = Break("amount_over", row(1).key, row(1), row(1)._replace(amount=200), "amount x")
    cross = Break("cross_day", row(2).key, row(2), row(2), "listed late")
    late = Break("late_file", f"file:{D0}", None, None, "received at 15:00")
    ids = [recon.add_break(conn, "statement", "bank", recon.item_date(b, D0), b,
                           decide(b, True), 5_000 + i) for i, b in enumerate((amount, cross, late))]
    assert ids == ["B000001", "B000002", "B000003"]
    first = recon.get_break(conn, "B000001")
    assert first["ours"] == row(1) and first["theirs"].amount == 200
    assert (first["cls"], first["ref"], first["channel_ref"], first["status"],
            first["resolution"], first["resolved_ms"]) == (
        "amount_over", "P1", "T1", "manual", "statement_error", None)
    stored = conn.execute("SELECT theirs FROM recon_breaks WHERE break_id='B000001'").fetchone()
    assert json.loads(stored[0])["amount"] == 200
    second = recon.get_break(conn, "B000002")
    assert (second["status"], second["resolution"], second["resolved_ms"]) == (
        "resolved", "matched_next_file", 5_001)
    third = recon.get_break(conn, "B000003")
    assert (third["key"], third["ref"], third["ours"], third["theirs"], third["date"]) == (
        f"file:{D0}", None, None, None, D0)
    recon.resolve_break(conn, "B000001", "resolved", "refund", "refunded", "E7", 9_000)
    after = recon.get_break(conn, "B000001")
    assert (after["status"], after["resolution"], after["reason"], after["entry_id"],
            after["resolved_ms"]) == ("resolved", "refund", "refunded", "E7", 9_000)
    with pytest.raises(KeyError, match="B000009"):
        recon.resolve_break(conn, "B000009", "resolved", "refund", "", None, 1)
    assert recon.add_break(conn, "stream", "bank", D0, amount, decide(amount, True), 1) == "B000004"


def test_item_date_prefers_our_row():
    ours, theirs = row(1, "2026-11-01"), row(1, D0)
    assert recon.item_date(Break("cross_day", ours.key, ours, theirs, ""), D0) == "2026-11-01"
    assert recon.item_date(Break("channel_only", ours.key, None, theirs, ""), "x") == D0
    assert recon.item_date(Break("missing_file", "file:x", None, None, ""), "2026-11-05") == (
        "2026-11-05")


def test_file_rows(conn):
    assert recon.file_row(conn, "bank", D0) is None
    created = recon.upsert_file(conn, "bank", D0, attempts=1, first_try_ms=100)
    assert created == {"channel": "bank", "date": D0, "status": "waiting", "attempts": 1,
                       "first_try_ms": 100, "received_ms": None, "format": "", "rows": 0,
                       "error": "", "reconciled_ms": None}
    recon.upsert_file(conn, "bank", D0, status="reconciled", received_ms=200, format="mt940",
                      rows=7, reconciled_ms=300)
    assert recon.file_row(conn, "bank", D0) == {**created, "status": "reconciled",
                                                "received_ms": 200, "format": "mt940",
                                                "rows": 7, "reconciled_ms": 300}
    assert recon.file_row(conn, "wechat", D0) is None
    with pytest.raises(KeyError, match="colour: not a column"):
        recon.upsert_file(conn, "bank", D0, colour="red")
