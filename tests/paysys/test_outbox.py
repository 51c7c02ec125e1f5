"""The transactional outbox: enqueue in the caller's transaction, pending oldest first,
idempotent delivery marks, deterministic JSON, nothing written on a rejected payload."""

import json
import re

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys import outbox
from paysys.outbox import OutboxError


def new_conn():
    db = sqlite_utils.Database(memory=True)
    outbox.create_tables(db)
    return db.conn


@pytest.fixture
def conn():
    conn = new_conn()
    yield conn
    conn.close()


def rows(conn):
    return conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()


def test_enqueue_stores_compact_sorted_json(conn):
    id_ = outbox.enqueue(
        conn,
        "order.state",
        "P0000000001",
        {"to": "SUCCEEDED", "amount": 100, "x": [1, None, True]},
        42,
    )
    assert rows(conn) == [
        (
            id_,
            "order.state",
            "P0000000001",
            '{"amount":100,"to":"SUCCEEDED","x":[1,null,true]}',
            42,
            None,
        )
    ]


def test_pending_oldest_first_with_limit(conn):
    ids = [outbox.enqueue(conn, "t", f"P{i}", {"i": i}, 1000 - i) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert outbox.pending(conn) == [(id_, "t", f"P{i}", {"i": i}) for i, id_ in enumerate(ids)]
    assert [p[0] for p in outbox.pending(conn, limit=2)] == ids[:2]


def test_mark_delivered_is_idempotent_and_keeps_first_time(conn):
    ids = [outbox.enqueue(conn, "t", "P", {"i": i}, 1) for i in range(4)]
    assert outbox.mark_delivered(conn, ids[:2], 50) == 2
    assert [p[0] for p in outbox.pending(conn)] == ids[2:]
    assert (
        outbox.mark_delivered(conn, [ids[0], ids[2], 999], 60) == 1
    )  # ids[0] already, 999 unknown
    delivered = dict(conn.execute("SELECT id, delivered_ms FROM outbox").fetchall())
    assert delivered == {ids[0]: 50, ids[1]: 50, ids[2]: 60, ids[3]: None}
    assert outbox.mark_delivered(conn, [], 70) == 0
    assert [p[0] for p in outbox.pending(conn)] == [ids[3]]


def test_enqueue_does_not_commit(conn):
    outbox.enqueue(conn, "t", "P", {}, 1)
    assert conn.in_transaction
    conn.rollback()
    assert rows(conn) == [] and outbox.pending(conn) == []


@pytest.mark.parametrize(
    "topic, ref, payload, now_ms, field",
    [
        ("t", "P", {"amount": 1.5}, 1, "payload.amount"),
        ("t", "P", {"a": [1, {"b": float("nan")}]}, 1, "payload.a[1].b"),
        ("t", "P", {1: "x"}, 1, "payload"),
        ("t", "P", {"when": object()}, 1, "payload.when"),
        ("t", "P", ["not", "a", "dict"], 1, "payload"),
        ("", "P", {}, 1, "topic"),
        ("t", None, {}, 1, "ref"),
        ("t", "P", {}, 1.0, "now_ms"),
        ("t", "P", {}, True, "now_ms"),
    ],
)
def test_rejected_message_writes_nothing(conn, topic, ref, payload, now_ms, field):
    outbox.enqueue(conn, "t", "P", {"ok": 1}, 1)
    before = rows(conn)
    with pytest.raises(OutboxError, match=f"^{re.escape(field)}"):
        outbox.enqueue(conn, topic, ref, payload, now_ms)
    assert rows(conn) == before


@pytest.mark.parametrize("args", [(["1"], 5), ([True], 5), ([1], -1), ([1], 2.0)])
def test_mark_delivered_rejects_bad_input(conn, args):
    outbox.enqueue(conn, "t", "P", {}, 1)
    with pytest.raises(OutboxError):
        outbox.mark_delivered(conn, *args)
    assert len(outbox.pending(conn)) == 1


@pytest.mark.parametrize("limit", [0, -1, True, 1.0])
def test_pending_rejects_bad_limit(conn, limit):
    with pytest.raises(OutboxError, match="limit"):
        outbox.pending(conn, limit)


def test_create_tables_is_idempotent(conn):
    id_ = outbox.enqueue(conn, "t", "P", {}, 1)
    outbox.create_tables(sqlite_utils.Database(conn))
    assert [p[0] for p in outbox.pending(conn)] == [id_]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=50, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_payload_round_trips_deterministically(payload):
    conn = new_conn()
    try:
        id_ = outbox.enqueue(conn, "t", "P", payload, 1)
        assert outbox.pending(conn) == [(id_, "t", "P", payload)]
        stored = conn.execute("SELECT payload FROM outbox").fetchone()[0]
        assert stored == json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        reordered = dict(reversed(list(payload.items())))
        assert outbox.encode(reordered) == stored  # key order does not matter
    finally:
        conn.close()
