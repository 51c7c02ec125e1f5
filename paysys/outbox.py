"""The transactional outbox: messages to publish, written in the same transaction as the state
change that caused them, so a change is never committed without its message (nor the reverse).

Everything about the `outbox` table lives here. The engine calls `enqueue()` inside its
transaction; a relay later reads `pending()` (oldest first), delivers, then `mark_delivered()`.
Delivery is at-least-once: consumers de-duplicate by the row `id`. The caller owns the
transaction: nothing here commits or rolls back, and a rejected payload writes nothing.

The payload is stored as compact JSON with sorted keys (deterministic bytes for the run digest);
like every message body it holds str, int, bool, None, lists and dicts with str keys, never a
float.
"""

import sqlite3

import orjson
import sqlite_utils


class OutboxError(ValueError):
    """A message refused before anything was written; the message names the field."""


def _check_json(value: object, path: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise OutboxError(f"{path}: keys must be str, got {key!r}")
            _check_json(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    raise OutboxError(
        f"{path}: expected str, int, bool, None, list or dict (never a float), got {value!r}"
    )


def encode(payload: dict) -> str:
    """The stored form of a payload: compact JSON, sorted keys. Raises OutboxError."""
    if not isinstance(payload, dict):
        raise OutboxError(f"payload: expected a dict, got {payload!r}")
    _check_json(payload, "payload")
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def enqueue(conn: sqlite3.Connection, topic: str, ref: str, payload: dict, now_ms: int) -> int:
    """Queue one message; returns its id (increasing: ids give the order). Does not commit."""
    if not isinstance(topic, str) or not topic:
        raise OutboxError(f"topic: expected a non-empty str, got {topic!r}")
    if not isinstance(ref, str):
        raise OutboxError(f"ref: expected a str, got {ref!r}")
    if isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < 0:
        raise OutboxError(f"now_ms: expected an int of ms >= 0, got {now_ms!r}")
    text = encode(payload)
    return conn.execute(
        "INSERT INTO outbox (topic, ref, payload, created_ms, delivered_ms) "
        "VALUES (?, ?, ?, ?, NULL)",
        (topic, ref, text, now_ms),
    ).lastrowid


def pending(conn: sqlite3.Connection, limit: int = 100) -> list[tuple[int, str, str, dict]]:
    """Up to `limit` undelivered messages, oldest first, as (id, topic, ref, payload)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise OutboxError(f"limit: expected an int >= 1, got {limit!r}")
    rows = conn.execute(
        "SELECT id, topic, ref, payload FROM outbox WHERE delivered_ms IS NULL ORDER BY id LIMIT ?",
        (limit,),
    ).fetchall()
    return [(id_, topic, ref, orjson.loads(text)) for id_, topic, ref, text in rows]


def mark_delivered(conn: sqlite3.Connection, ids, now_ms: int) -> int:
    """Mark messages `ids` delivered at `now_ms`; returns how many were newly marked. Idempotent:
    an already delivered message keeps its first delivery time; unknown ids are ignored."""
    if isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < 0:
        raise OutboxError(f"now_ms: expected an int of ms >= 0, got {now_ms!r}")
    ids = list(ids)
    for i, id_ in enumerate(ids):
        if isinstance(id_, bool) or not isinstance(id_, int):
            raise OutboxError(f"ids[{i}]: expected an int, got {id_!r}")
    before = conn.total_changes
    conn.executemany(
        "UPDATE outbox SET delivered_ms = ? WHERE id = ? AND delivered_ms IS NULL",
        [(now_ms, id_) for id_ in ids],
    )
    return conn.total_changes - before


def create_tables(db: sqlite_utils.Database) -> None:
    """Create the outbox table and its index for `pending()` (idempotent)."""
    db.table("outbox").create(
        {
            "id": int,
            "topic": str,
            "ref": str,
            "payload": str,
            "created_ms": int,
            "delivered_ms": int,
        },
        pk="id",
        not_null={"topic", "ref", "payload", "created_ms"},
        if_not_exists=True,
    )
    db.table("outbox").create_index(["delivered_ms", "id"], if_not_exists=True)
