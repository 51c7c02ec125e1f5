"""Merchant notifications (异步通知): signed, retried on a schedule until acknowledged or dead.

A notification is a durable row (table `notifications`), created in the same transaction as the
order's final state. Attempt n is sent at its due time; the next one is due `schedule[n-1]` later.
Only the merchant's literal "success" acknowledges. After the last attempt the notification waits
`reply_wait_ms` for an answer, then is dead-lettered for manual follow-up.
"""

import sqlite3

import orjson

PENDING, ACKED, DEAD = "pending", "acked", "dead"


def create(conn: sqlite3.Connection, notify_id: str, ref: str, merchant_id: str, url: str,
           payload: dict, now_ms: int, schedule: tuple[int, ...]) -> dict:
    """Record a notification whose first attempt leaves now; returns that attempt as
    `next_attempt` does."""
    next_at = now_ms + schedule[0]
    conn.execute(
        "INSERT INTO notifications (notify_id, ref, merchant_id, url, payload, attempts, status, "
        "next_at_ms, last_at_ms) VALUES (?,?,?,?,?,1,?,?,?)",
        (notify_id, ref, merchant_id, url, orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode(),
         PENDING, next_at, now_ms),
    )
    return {"url": url, "merchant_id": merchant_id, "payload": payload, "attempt": 1,
            "next_at_ms": next_at}


def next_attempt(conn: sqlite3.Connection, notify_id: str, now_ms: int, schedule: tuple[int, ...],
                 reply_wait_ms: int) -> dict | None:
    """Book the attempt due now. Returns {url, merchant_id, payload, attempt, next_at_ms}, or
    {"dead": True} when every attempt has been made, or None when nothing is due (acked/dead)."""
    row = conn.execute(
        "SELECT url, merchant_id, payload, attempts, status FROM notifications WHERE notify_id=?",
        (notify_id,),
    ).fetchone()
    if row is None or row[4] != PENDING:
        return None
    url, merchant_id, payload, attempts, _ = row
    if attempts > len(schedule):
        conn.execute("UPDATE notifications SET status=? WHERE notify_id=? AND status=?",
                     (DEAD, notify_id, PENDING))
        return {"dead": True, "attempt": attempts}
    attempt = attempts + 1
    wait = schedule[attempt - 1] if attempt <= len(schedule) else reply_wait_ms
    conn.execute(
        "UPDATE notifications SET attempts=?, last_at_ms=?, next_at_ms=? WHERE notify_id=?",
        (attempt, now_ms, now_ms + wait, notify_id),
    )
    return {"url": url, "merchant_id": merchant_id, "payload": orjson.loads(payload),
            "attempt": attempt, "next_at_ms": now_ms + wait}


def acknowledge(conn: sqlite3.Connection, notify_id: str) -> bool:
    """Mark acknowledged; False if it was not pending (a duplicate or late acknowledgement)."""
    cur = conn.execute("UPDATE notifications SET status=? WHERE notify_id=? AND status=?",
                       (ACKED, notify_id, PENDING))
    return cur.rowcount == 1


def pending(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(notify_id, next_at_ms) of every notification still pending: to re-arm after a restart."""
    return conn.execute(
        "SELECT notify_id, next_at_ms FROM notifications WHERE status=?", (PENDING,)
    ).fetchall()
