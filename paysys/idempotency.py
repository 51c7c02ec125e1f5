"""Idempotency keys: the first response to a keyed merchant request, replayed for retries.

A merchant retries a request (same `idempotency_key`) with a new nonce, timestamp and signature,
so the request's identity is `request_hash(body)`: the SHA-256 of its canonical JSON without
`sign`, `sign_type`, `nonce` and `timestamp` (and without None/"" values, which the signature
ignores as well). Same key + same hash -> the stored response; same key + another hash ->
IDEMPOTENCY_CONFLICT (Stripe's `idempotency_error`, Formance's 409). The key is reserved
(`reserve`, response NULL) as soon as the request is admitted, so the same key arriving while the
first request is still being processed gets IN_PROGRESS, and other content a conflict, instead of
starting a second piece of work; the answer fills the reservation (`remember`).

Table `idempotency_keys`, PRIMARY KEY (merchant_id, key): the database constraint, not only this
code, guarantees one stored response per key. Keys are scoped per merchant, across request types
(the type is part of the hash). Kept `keep_ms` (default 24 h) then pruned.

The engine owns the transaction: these functions execute statements and never commit.
"""

import hashlib
import sqlite3

import orjson
import sqlite_utils

from paysys.errors import GatewayError

VOLATILE = frozenset({"sign", "sign_type", "nonce", "timestamp"})
DAY_MS = 24 * 3600 * 1000


def create_tables(db: sqlite_utils.Database) -> None:
    """Create the `idempotency_keys` table if it does not exist."""
    db["idempotency_keys"].create(
        {
            "merchant_id": str,
            "key": str,
            "request_hash": str,
            "response": str,
            "created_ms": int,
        },
        pk=("merchant_id", "key"),
        not_null={"request_hash", "created_ms"},  # response is NULL while the key is reserved
        if_not_exists=True,
    )
    db["idempotency_keys"].create_index(["created_ms"], if_not_exists=True)


def request_hash(body: dict) -> str:
    """Hex SHA-256 of the canonical JSON of `body` without the per-attempt fields."""
    content = {
        key: value
        for key, value in body.items()
        if key not in VOLATILE and value is not None and value != ""
    }
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _conflict(merchant_id: str, key: str) -> GatewayError:
    return GatewayError(
        "IDEMPOTENCY_CONFLICT",
        f"idempotency_key: expected the same request content as the first use of {key!r} "
        f"by {merchant_id}, got different content",
        "idempotency_key",
    )


def lookup(conn: sqlite3.Connection, merchant_id: str, key: str, req_hash: str) -> dict | None:
    """The stored response for this key and content, None if the key is new. A key stored with
    other content raises IDEMPOTENCY_CONFLICT; a key whose first request is still being
    processed (reserved, no response yet) raises IN_PROGRESS: retry later."""
    row = conn.execute(
        "SELECT request_hash, response FROM idempotency_keys WHERE merchant_id = ? AND key = ?",
        (merchant_id, key),
    ).fetchone()
    if row is None:
        return None
    if row[0] != req_hash:
        raise _conflict(merchant_id, key)
    if row[1] is None:
        raise GatewayError(
            "IN_PROGRESS",
            f"idempotency_key: the first request with {key!r} is still being processed; "
            "retry later",
            "idempotency_key",
        )
    return orjson.loads(row[1])


def reserve(conn: sqlite3.Connection, merchant_id: str, key: str, req_hash: str,
            now_ms: int) -> None:
    """Claim (merchant_id, key) for a request being processed, before its answer exists, so
    that the same key cannot start a second piece of work meanwhile."""
    conn.execute(
        "INSERT INTO idempotency_keys (merchant_id, key, request_hash, response, created_ms) "
        "VALUES (?, ?, ?, NULL, ?)",
        (merchant_id, key, req_hash, now_ms),
    )


def remember(
    conn: sqlite3.Connection,
    merchant_id: str,
    key: str,
    req_hash: str,
    response: dict,
    now_ms: int,
) -> None:
    """Store the response for (merchant_id, key): it fills a reservation of the same content,
    or is stored anew. Storing again with the same content keeps the first response; with
    other content raises IDEMPOTENCY_CONFLICT."""
    payload = orjson.dumps(response, option=orjson.OPT_SORT_KEYS).decode()
    filled = conn.execute(
        "UPDATE idempotency_keys SET response = ? WHERE merchant_id = ? AND key = ? "
        "AND request_hash = ? AND response IS NULL",
        (payload, merchant_id, key, req_hash),
    ).rowcount
    if filled:
        return
    try:
        conn.execute(
            "INSERT INTO idempotency_keys (merchant_id, key, request_hash, response, created_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (merchant_id, key, req_hash, payload, now_ms),
        )
    except sqlite3.IntegrityError:
        # Same key already stored: same content keeps the first response, other content is a
        # conflict; no stored row means another constraint failed, which must not be hidden.
        if lookup(conn, merchant_id, key, req_hash) is None:
            raise


def prune(conn: sqlite3.Connection, now_ms: int, keep_ms: int = DAY_MS) -> int:
    """Delete keys created more than `keep_ms` before `now_ms`; return how many."""
    cursor = conn.execute("DELETE FROM idempotency_keys WHERE created_ms < ?", (now_ms - keep_ms,))
    return cursor.rowcount
