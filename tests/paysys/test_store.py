"""paysys.store: compare-and-set transitions and the uniqueness constraints of the database."""

import sqlite3

import pytest

from paysys import store
from paysys.orders import IllegalTransition

NOW = 1_700_000_000_000


@pytest.fixture
def conn():
    connection = store.open_store(":memory:")
    yield connection
    connection.close()


def pay_row(order_id="P0000000001", merchant_order_no="MO1", status="CREATED") -> dict:
    return {
        "order_id": order_id, "merchant_id": "M001", "merchant_order_no": merchant_order_no,
        "user_id": "U00001", "product": "quick", "channel": "bank", "amount": 1000,
        "currency": "CNY", "status": status, "merchant_fee": 0, "channel_cost": 0, "refunded": 0,
        "created_ms": NOW, "updated_ms": NOW, "channel_ref": "", "notify_url": "",
        "error_code": "", "card_no": "6222020000000001",
    }


def refund_row(refund_id="R0000000001", refund_no="RN1") -> dict:
    return {"refund_id": refund_id, "order_id": "P0000000001", "merchant_id": "M001",
            "refund_no": refund_no, "amount": 100, "currency": "CNY", "status": "CREATED",
            "channel": "bank", "created_ms": NOW, "updated_ms": NOW, "error_code": ""}


def transitions(conn) -> list[tuple]:
    return conn.execute(
        "SELECT kind, ref, from_status, to_status, event, at_ms FROM transitions ORDER BY seq"
    ).fetchall()


def test_open_store_creates_every_documented_table(conn):
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"merchants", "pay_orders", "refund_orders", "transitions", "journal_entries",
            "postings", "ext_balances", "ledger_totals", "outbox", "notifications",
            "idempotency_keys", "nonces", "agreements", "channel_requests"} <= names


def test_open_store_twice_on_one_file_keeps_the_rows(tmp_path):
    path = str(tmp_path / "run.db")
    first = store.open_store(path)
    store.insert_pay_order(first, pay_row())
    first.close()
    again = store.open_store(path)
    assert store.pay_order(again, "P0000000001")["status"] == "CREATED"
    again.close()


def test_transition_moves_the_row_and_records_it(conn):
    store.insert_pay_order(conn, pay_row())
    row = store.pay_order(conn, "P0000000001")
    new = store.transition(conn, "pay", row, "submit", NOW + 5, error_code="X")
    assert new == "PROCESSING"
    assert row["status"] == "PROCESSING" and row["updated_ms"] == NOW + 5  # updated in place
    stored = store.pay_order(conn, "P0000000001")
    assert (stored["status"], stored["updated_ms"], stored["error_code"]) == ("PROCESSING", NOW + 5, "X")
    assert transitions(conn) == [("pay", "P0000000001", "CREATED", "PROCESSING", "submit", NOW + 5)]


def test_a_second_transition_from_the_stale_status_conflicts_and_changes_nothing(conn):
    store.insert_pay_order(conn, pay_row())
    first = store.pay_order(conn, "P0000000001")
    stale = dict(first)
    store.transition(conn, "pay", first, "submit", NOW + 1)
    before_rows = transitions(conn)
    with pytest.raises(store.CasConflict, match="P0000000001 is no longer CREATED"):
        store.transition(conn, "pay", stale, "block", NOW + 2, error_code="RISK_BLOCKED")
    stored = store.pay_order(conn, "P0000000001")
    assert (stored["status"], stored["updated_ms"], stored["error_code"]) == ("PROCESSING", NOW + 1, "")
    assert transitions(conn) == before_rows
    assert stale["status"] == "CREATED"  # the caller's copy is not touched either


def test_cas_applies_to_refunds_too(conn):
    store.insert_refund_order(conn, refund_row())
    a = store.refund_order(conn, "R0000000001")
    b = dict(a)
    assert store.transition(conn, "refund", a, "submit", NOW) == "PROCESSING"
    with pytest.raises(store.CasConflict):
        store.transition(conn, "refund", b, "decline", NOW)
    assert store.refund_order(conn, "R0000000001")["status"] == "PROCESSING"


def test_an_illegal_transition_writes_nothing(conn):
    store.insert_pay_order(conn, pay_row(status="SUCCEEDED"))
    row = store.pay_order(conn, "P0000000001")
    with pytest.raises(IllegalTransition):
        store.transition(conn, "pay", row, "decline", NOW + 1)
    assert store.pay_order(conn, "P0000000001")["status"] == "SUCCEEDED"
    assert transitions(conn) == []


def test_a_missing_row_is_a_conflict(conn):
    with pytest.raises(store.CasConflict):
        store.transition(conn, "pay", pay_row(), "submit", NOW)
    assert transitions(conn) == []


def test_merchant_order_no_is_unique_per_merchant_in_the_database(conn):
    store.insert_pay_order(conn, pay_row("P0000000001", "MO1"))
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_pay_order(conn, pay_row("P0000000002", "MO1"))
    # enforced by SQLite itself, not only by the Python path
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO pay_orders (order_id, merchant_id, merchant_order_no) "
                     "VALUES ('P0000000003', 'M001', 'MO1')")
    other = dict(pay_row("P0000000004", "MO1"), merchant_id="M002")
    store.insert_pay_order(conn, other)  # another merchant may use the same number
    assert conn.execute("SELECT COUNT(*) FROM pay_orders").fetchone() == (2,)


def test_refund_no_is_unique_per_merchant_in_the_database(conn):
    store.insert_refund_order(conn, refund_row("R0000000001", "RN1"))
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_refund_order(conn, refund_row("R0000000002", "RN1"))


def test_record_creation_and_request_bookkeeping(conn):
    store.record_creation(conn, "pay", "P0000000001", "CREATED", NOW)
    assert transitions(conn) == [("pay", "P0000000001", None, "CREATED", "create", NOW)]
    store.record_request(conn, "P0000000001.p1", "bank", "pay", "P0000000001", NOW)
    assert store.pending_requests(conn) == [("P0000000001.p1", "bank", "pay", "P0000000001", NOW)]
    assert store.close_request(conn, "P0000000001.p1", "timeout", "", NOW + 3000)
    assert not store.close_request(conn, "P0000000001.p1", "answered", "success", NOW + 4000)
    assert store.pending_requests(conn) == []
    with pytest.raises(sqlite3.IntegrityError):
        store.record_request(conn, "P0000000001.p1", "bank", "pay", "P0000000001", NOW)
