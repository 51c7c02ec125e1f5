"""Idempotency keys: same key + same content -> stored reply; other content -> conflict."""

import sqlite3

import pytest
import sqlite_utils

from paysys import idempotency
from paysys.errors import GatewayError
from paysys.idempotency import create_tables, lookup, prune, remember, request_hash

BODY = {
    "type": "pay.create",
    "merchant_id": "M001",
    "idempotency_key": "k1",
    "amount": 100,
    "currency": "CNY",
    "timestamp": 1,
    "nonce": "a",
    "sign_type": "MD5",
    "sign": "X",
}
REPLY = {"type": "pay.create.reply", "ok": True, "order_id": "P0000000001", "status": "PROCESSING"}
NOW = 1_700_000_000_000


@pytest.fixture
def db():
    database = sqlite_utils.Database(memory=True)
    create_tables(database)
    create_tables(database)  # idempotent
    return database


def test_hash_ignores_the_per_attempt_fields_and_key_order():
    retry = {
        **BODY,
        "timestamp": 2,
        "nonce": "b",
        "sign_type": "HMAC-SHA256",
        "sign": "Y",
        "subject": None,
        "device_id": "",
    }
    assert request_hash(retry) == request_hash(BODY)
    assert request_hash(dict(reversed(list(BODY.items())))) == request_hash(BODY)
    assert len(request_hash(BODY)) == 64


@pytest.mark.parametrize(
    "change", [{"amount": 101}, {"currency": "USD"}, {"type": "refund.create"}, {"new": 1}]
)
def test_hash_changes_with_the_content(change):
    assert request_hash({**BODY, **change}) != request_hash(BODY)


def test_hash_distinguishes_int_from_string():
    assert request_hash({**BODY, "amount": "100"}) != request_hash(BODY)


def test_unknown_key_is_none(db):
    assert lookup(db.conn, "M001", "k1", request_hash(BODY)) is None


def test_remembered_reply_is_returned_for_the_same_content(db):
    h = request_hash(BODY)
    remember(db.conn, "M001", "k1", h, REPLY, NOW)
    assert lookup(db.conn, "M001", "k1", h) == REPLY
    row = db["idempotency_keys"].get(("M001", "k1"))
    assert row["created_ms"] == NOW and row["request_hash"] == h


def test_same_key_other_content_is_a_conflict(db):
    remember(db.conn, "M001", "k1", request_hash(BODY), REPLY, NOW)
    with pytest.raises(GatewayError) as caught:
        lookup(db.conn, "M001", "k1", request_hash({**BODY, "amount": 999}))
    assert caught.value.code == "IDEMPOTENCY_CONFLICT"
    assert caught.value.field == "idempotency_key"


def test_keys_are_scoped_per_merchant(db):
    remember(db.conn, "M001", "k1", request_hash(BODY), REPLY, NOW)
    assert lookup(db.conn, "M002", "k1", request_hash(BODY)) is None


def test_remember_again_keeps_the_first_reply_or_conflicts(db):
    h = request_hash(BODY)
    remember(db.conn, "M001", "k1", h, REPLY, NOW)
    remember(db.conn, "M001", "k1", h, {**REPLY, "status": "SUCCEEDED"}, NOW + 5)
    assert lookup(db.conn, "M001", "k1", h) == REPLY
    with pytest.raises(GatewayError, match="IDEMPOTENCY_CONFLICT"):
        remember(db.conn, "M001", "k1", "other-hash", REPLY, NOW)


def test_the_primary_key_is_the_guard(db):
    sql = "INSERT INTO idempotency_keys VALUES ('M001', 'k', 'h', '{}', 1)"
    db.conn.execute(sql)
    with pytest.raises(sqlite3.IntegrityError):
        db.conn.execute(sql)


def test_functions_never_commit(db):
    remember(db.conn, "M001", "k1", request_hash(BODY), REPLY, NOW)
    assert db.conn.in_transaction
    db.conn.rollback()
    assert lookup(db.conn, "M001", "k1", request_hash(BODY)) is None


def test_prune_keeps_a_day_by_default(db):
    remember(db.conn, "M001", "old", "h", REPLY, NOW - idempotency.DAY_MS - 1)
    remember(db.conn, "M001", "edge", "h", REPLY, NOW - idempotency.DAY_MS)
    assert prune(db.conn, NOW) == 1
    assert [row["key"] for row in db["idempotency_keys"].rows] == ["edge"]
    assert prune(db.conn, NOW, keep_ms=0) == 1
    assert db["idempotency_keys"].count == 0
