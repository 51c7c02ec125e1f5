"""Anti-replay: timestamp window and per-merchant nonce uniqueness, guarded by the database."""

import sqlite3

import pytest
import sqlite_utils

from paysys.errors import GatewayError
from paysys.replay import ReplayGuard, create_tables

NOW = 1_700_000_000_000
WINDOW = 300_000


@pytest.fixture
def db():
    database = sqlite_utils.Database(memory=True)
    create_tables(database)
    return database


def _replay(guard, conn, *args) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        guard.check(conn, *args)
    assert caught.value.code == "REPLAY"
    return caught.value


def test_create_tables_is_idempotent_and_keyed(db):
    create_tables(db)
    assert db["nonces"].pks == ["merchant_id", "nonce"]


def test_fresh_request_records_its_nonce(db):
    ReplayGuard().check(db.conn, "M001", "n1", NOW, NOW)
    assert list(db["nonces"].rows) == [{"merchant_id": "M001", "nonce": "n1", "at_ms": NOW}]


def test_reused_nonce_is_a_replay_but_only_for_the_same_merchant(db):
    guard = ReplayGuard()
    guard.check(db.conn, "M001", "n1", NOW, NOW)
    error = _replay(guard, db.conn, "M001", "n1", NOW + 1, NOW + 1)
    assert error.field == "nonce" and "n1" in error.message
    guard.check(db.conn, "M002", "n1", NOW, NOW)


@pytest.mark.parametrize("offset", [-WINDOW, 0, WINDOW])
def test_timestamp_at_the_window_edges_is_accepted(db, offset):
    ReplayGuard(WINDOW).check(db.conn, "M001", "n", NOW + offset, NOW)


@pytest.mark.parametrize("offset", [-WINDOW - 1, WINDOW + 1, -10 * WINDOW])
def test_timestamp_outside_the_window_is_refused_without_recording(db, offset):
    error = _replay(ReplayGuard(WINDOW), db.conn, "M001", "n", NOW + offset, NOW)
    assert error.field == "timestamp"
    assert db["nonces"].count == 0


def test_the_primary_key_is_the_guard(db):
    db.conn.execute("INSERT INTO nonces VALUES ('M001', 'n', 1)")
    with pytest.raises(sqlite3.IntegrityError):
        db.conn.execute("INSERT INTO nonces VALUES ('M001', 'n', 2)")


def test_check_never_commits(db):
    ReplayGuard().check(db.conn, "M001", "n1", NOW, NOW)
    assert db.conn.in_transaction
    db.conn.rollback()
    assert db["nonces"].count == 0


def test_prune_forgets_only_nonces_outside_the_window(db):
    guard = ReplayGuard(WINDOW)
    guard.check(db.conn, "M001", "old", NOW - WINDOW, NOW)
    guard.check(db.conn, "M001", "edge", NOW, NOW)
    assert guard.prune(db.conn, NOW + 1) == 1
    assert [row["nonce"] for row in db["nonces"].rows] == ["edge"]


def test_a_pruned_nonce_cannot_be_replayed(db):
    guard = ReplayGuard(WINDOW)
    # Sent early (timestamp ahead of the receiver's clock), then replayed later.
    guard.check(db.conn, "M001", "n", NOW + WINDOW, NOW)
    for later in (NOW + WINDOW, NOW + 2 * WINDOW, NOW + 2 * WINDOW + 1):
        guard.prune(db.conn, later)
        _replay(guard, db.conn, "M001", "n", NOW + WINDOW, later)


@pytest.mark.parametrize("window", [0, -1, True, 1.5])
def test_window_must_be_a_positive_integer(window):
    with pytest.raises(ValueError, match="window_ms"):
        ReplayGuard(window)
