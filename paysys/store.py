"""Persistence of the payment system on SQLite.

Schema through sqlite-utils (`open_store` creates every paysys table, idempotently); the hot path
uses the underlying `sqlite3` connection with plain statements. The engine owns transactions: one
`BEGIN ... COMMIT` per handled message, so a state change, its ledger entry and its outbox rows
land together or not at all. State changes are compare-and-set: `UPDATE ... WHERE status = ?`
with the status the caller read; a lost race raises `CasConflict` instead of overwriting.
Uniqueness (one order per merchant order number, one refund per refund number, one idempotency
key) is a database constraint, not only a Python check.
"""

import functools
import sqlite3

import sqlite_utils

from paysys import dayend, idempotency, ledger, outbox, positions, replay, settlement
from paysys.orders import TABLES, fire
from paysys.recon import tables as recon_tables


class CasConflict(Exception):
    """The row was not in the status the caller read: someone else moved it first."""


PAY_COLUMNS = (
    "order_id", "merchant_id", "merchant_order_no", "user_id", "product", "channel", "amount",
    "currency", "status", "merchant_fee", "channel_cost", "refunded", "created_ms", "updated_ms",
    "channel_ref", "notify_url", "error_code", "card_no", "attempt", "idempotency_key", "received",
    "app_id", "parent_id", "mandate_no", "settle_amount", "settle_currency", "fx_rate_ppm",
)
REFUND_COLUMNS = (
    "refund_id", "order_id", "merchant_id", "refund_no", "amount", "currency", "status", "channel",
    "created_ms", "updated_ms", "error_code", "reason", "charge_ref", "method",
)


# The quality of service paysys observed per channel, from its own requests (a view, so it is
# always current and survives restarts): requests sent, answered, a definite answer (not
# "unknown"), timed out, refused; success rate = definite answers / requests closed; latency of
# the answered ones (average and worst, ms).
CHANNEL_QOS_VIEW = """
CREATE VIEW IF NOT EXISTS channel_qos AS
SELECT channel,
       COUNT(*) AS requests,
       SUM(status = 'answered') AS answered,
       SUM(status = 'answered' AND result != 'unknown') AS ok,
       SUM(status = 'timeout') AS timeouts,
       SUM(status = 'refused') AS refused,
       ROUND(1.0 * SUM(status = 'answered' AND result != 'unknown')
             / MAX(1, SUM(status != 'pending')), 4) AS success_rate,
       CAST(AVG(CASE WHEN status = 'answered' THEN answered_ms - sent_ms END) AS INTEGER)
           AS avg_latency_ms,
       MAX(CASE WHEN status = 'answered' THEN answered_ms - sent_ms END) AS max_latency_ms
  FROM channel_requests GROUP BY channel
"""


def create_tables(db: sqlite_utils.Database) -> None:
    db["merchants"].create(
        {"merchant_id": str, "name": str, "sign_type": str, "secret": str, "fee_rate_bp": int,
         "status": str},
        pk="merchant_id", if_not_exists=True,
    )
    # a merchant's business applications (应用): each signs with its own key, pays its own fee
    db["merchant_apps"].create(
        {"merchant_id": str, "app_id": str, "name": str, "sign_type": str, "secret": str,
         "fee_rate_bp": int, "status": str},
        pk=("merchant_id", "app_id"), if_not_exists=True,
    )
    # the channel contracts paysys works with (management data): its copy of each fee rule,
    # the per-payment and daily limits, and the maintenance windows the channel announced
    db["channels"].create(
        {"channel": str, "kind": str, "products": str, "priority": int, "fee_rate_bp": int,
         "fee_fixed": int, "fee_min": int, "fee_max": int, "min_amount": int, "max_amount": int,
         "timeout_ms": int, "daily_limit": int},
        pk="channel", defaults={"daily_limit": 0}, if_not_exists=True,
    )
    db["channel_windows"].create(
        {"channel": str, "start_ms": int, "end_ms": int},
        pk=("channel", "start_ms"), if_not_exists=True,
    )
    db["pay_orders"].create(
        {"order_id": str, "merchant_id": str, "merchant_order_no": str, "user_id": str,
         "product": str, "channel": str, "amount": int, "currency": str, "status": str,
         "merchant_fee": int, "channel_cost": int, "refunded": int, "created_ms": int,
         "updated_ms": int, "channel_ref": str, "notify_url": str, "error_code": str,
         "card_no": str, "attempt": int, "idempotency_key": str, "received": int,
         # the merchant's application; the combined order or trade this one is a leg of; the
         # withholding mandate; what a foreign channel settles (amount, currency, rate in ppm)
         "app_id": str, "parent_id": str, "mandate_no": str, "settle_amount": int,
         "settle_currency": str, "fx_rate_ppm": int},
        pk="order_id", not_null={"attempt"},
        defaults={"attempt": 1, "received": 0, "app_id": "", "parent_id": "", "mandate_no": "",
                  "settle_amount": 0, "settle_currency": "", "fx_rate_ppm": 0},
        if_not_exists=True,
    )
    # a merchant order may be paid in several attempts (numbered from 1)
    db["pay_orders"].create_index(["merchant_id", "merchant_order_no", "attempt"], unique=True,
                                  if_not_exists=True)
    db["refund_orders"].create(
        {"refund_id": str, "order_id": str, "merchant_id": str, "refund_no": str, "amount": int,
         "currency": str, "status": str, "channel": str, "created_ms": int, "updated_ms": int,
         "error_code": str, "reason": str, "charge_ref": str, "method": str},
        pk="refund_id", defaults={"reason": "merchant", "charge_ref": "", "method": "refund"},
        if_not_exists=True,
    )
    db["refund_orders"].create_index(["merchant_id", "refund_no"], unique=True, if_not_exists=True)
    db["refund_orders"].create_index(["order_id"], if_not_exists=True)
    # every charge a channel reported, once (a repeat of the same report changes nothing);
    # kept = 1 when a paid order keeps it, 0 while it waits in suspense to be refunded or held
    db["charges"].create(
        {"order_id": str, "channel_ref": str, "channel": str, "amount": int, "kept": int,
         "at_ms": int},
        pk=("order_id", "channel_ref"), if_not_exists=True,
    )
    db["transitions"].create(
        {"seq": int, "kind": str, "ref": str, "from_status": str, "to_status": str, "event": str,
         "at_ms": int},
        pk="seq", if_not_exists=True,
    )
    db["notifications"].create(
        {"notify_id": str, "ref": str, "merchant_id": str, "url": str, "payload": str,
         "attempts": int, "status": str, "next_at_ms": int, "last_at_ms": int},
        pk="notify_id", if_not_exists=True,
    )
    db["agreements"].create(
        {"user_id": str, "card_no": str, "channel": str, "agreement_no": str, "status": str},
        pk=("user_id", "card_no", "channel"), if_not_exists=True,
    )
    db["agreements"].create_index(["agreement_no"], if_not_exists=True)
    db["channel_requests"].create(
        {"req_id": str, "channel": str, "kind": str, "ref": str, "sent_ms": int, "status": str,
         "result": str, "answered_ms": int},
        pk="req_id", if_not_exists=True,
    )
    db["channel_requests"].create_index(["ref"], if_not_exists=True)
    db.execute(CHANNEL_QOS_VIEW)
    for module in (ledger, outbox, idempotency, replay, recon_tables, dayend, positions,
                   settlement):
        module.create_tables(db)


def open_store(path: str) -> sqlite3.Connection:
    """A connection to the run database at `path` (":memory:" for tests) with every paysys table.

    Durability is traded for speed (`synchronous=OFF`): the simulator models crashes by dropping
    the node's memory, not by killing the process, so committed transactions survive them.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    create_tables(sqlite_utils.Database(conn))
    return conn


def insert_merchant(conn, merchant_id, name, sign_type, secret, fee_rate_bp, status="active") -> None:
    conn.execute(
        "INSERT OR REPLACE INTO merchants VALUES (?,?,?,?,?,?)",
        (merchant_id, name, sign_type, secret, fee_rate_bp, status),
    )


def insert_merchant_apps(conn, merchant) -> None:
    """Record the business applications of `merchant` (a gateway.Merchant)."""
    conn.executemany("INSERT OR REPLACE INTO merchant_apps VALUES (?,?,?,?,?,?,?)", [
        (merchant.merchant_id, a.app_id, a.name, a.sign_type, a.secret, a.fee_rate_bp, a.status)
        for a in merchant.apps])


def insert_channel(conn, c) -> None:
    """Record channel contract `c` (a config.ChannelConfig) and its maintenance windows."""
    conn.execute("INSERT OR REPLACE INTO channels VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (c.id, c.kind, ",".join(c.products), c.priority, c.fee.rate_bp, c.fee.fixed,
                  c.fee.minimum, c.fee.maximum, c.min_amount, c.max_amount, c.timeout_ms,
                  getattr(c, "daily_limit", 0)))
    conn.executemany("INSERT OR REPLACE INTO channel_windows VALUES (?,?,?)",
                     [(c.id, start, end) for start, end in getattr(c, "maintenance", ())])


# statuses of a payment that succeeded or may still succeed (what a daily limit counts)
_LIVE = ("CREATED", "CHALLENGE", "PROCESSING", "UNKNOWN", "SUCCEEDED")
_ROUTED_SINCE = ("SELECT COALESCE(SUM(amount), 0) FROM pay_orders WHERE channel=? AND "
                 f"created_ms>=? AND status IN ({','.join(repr(s) for s in _LIVE)})")


def routed_since(conn, channel: str, since_ms: int) -> int:
    """The total of the channel's payments created since `since_ms` that succeeded or are still
    in flight (the router's daily-limit usage)."""
    (total,) = conn.execute(_ROUTED_SINCE, (channel, since_ms)).fetchone()
    return total


def _insert_sql(table: str, columns: tuple) -> str:
    return f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"


def _select_sql(table: str, columns: tuple, where: str) -> str:
    return f"SELECT {','.join(columns)} FROM {table} WHERE {where}"


# Statements are built once: the hot path only binds values.
_INSERT_PAY = _insert_sql("pay_orders", PAY_COLUMNS)
_INSERT_REFUND = _insert_sql("refund_orders", REFUND_COLUMNS)
_PAY_BY_ID = _select_sql("pay_orders", PAY_COLUMNS, "order_id=?")
_PAY_BY_MERCHANT_NO = _select_sql("pay_orders", PAY_COLUMNS,
                                  "merchant_id=? AND merchant_order_no=? ORDER BY attempt")
_REFUND_BY_ID = _select_sql("refund_orders", REFUND_COLUMNS, "refund_id=?")
_REFUND_BY_MERCHANT_NO = _select_sql("refund_orders", REFUND_COLUMNS, "merchant_id=? AND refund_no=?")


PAY_DEFAULTS = {"attempt": 1, "idempotency_key": "", "received": 0, "app_id": "", "parent_id": "",
                "mandate_no": "", "settle_amount": 0, "settle_currency": "", "fx_rate_ppm": 0}
REFUND_DEFAULTS = {"reason": "merchant", "charge_ref": "", "method": "refund"}


def insert_pay_order(conn: sqlite3.Connection, order: dict) -> None:
    row = {**PAY_DEFAULTS, **order}
    conn.execute(_INSERT_PAY, tuple(map(row.get, PAY_COLUMNS)))


def insert_refund_order(conn: sqlite3.Connection, refund: dict) -> None:
    row = {**REFUND_DEFAULTS, **refund}
    conn.execute(_INSERT_REFUND, tuple(map(row.get, REFUND_COLUMNS)))


def _one(conn: sqlite3.Connection, sql: str, columns: tuple, args: tuple) -> dict | None:
    row = conn.execute(sql, args).fetchone()
    return dict(zip(columns, row, strict=True)) if row else None


def pay_order(conn: sqlite3.Connection, order_id: str) -> dict | None:
    return _one(conn, _PAY_BY_ID, PAY_COLUMNS, (order_id,))


def count_requests(conn: sqlite3.Connection, ref: str, kind: str) -> int:
    (n,) = conn.execute("SELECT COUNT(*) FROM channel_requests WHERE ref=? AND kind=?",
                        (ref, kind)).fetchone()
    return n


def request_kind(conn: sqlite3.Connection, req_id: str) -> str:
    """The operation (`pay`, `query`, …) of a request paysys sent, or "" if it sent none."""
    row = conn.execute("SELECT kind FROM channel_requests WHERE req_id=?", (req_id,)).fetchone()
    return row[0] if row else ""


def pay_attempts(conn, merchant_id: str, merchant_order_no: str) -> list[dict]:
    """Every payment attempt of one merchant order, the first first."""
    return [dict(zip(PAY_COLUMNS, row, strict=True))
            for row in conn.execute(_PAY_BY_MERCHANT_NO, (merchant_id, merchant_order_no))]


def refund_order(conn: sqlite3.Connection, refund_id: str) -> dict | None:
    return _one(conn, _REFUND_BY_ID, REFUND_COLUMNS, (refund_id,))


def refund_by_merchant_no(conn, merchant_id: str, refund_no: str) -> dict | None:
    return _one(conn, _REFUND_BY_MERCHANT_NO, REFUND_COLUMNS, (merchant_id, refund_no))


_TABLE = {"pay": ("pay_orders", "order_id"), "refund": ("refund_orders", "refund_id")}


def order_key(kind: str) -> str:
    """The id column of orders of `kind`."""
    return _TABLE[kind][1]


def insert_order(conn: sqlite3.Connection, kind: str, row: dict) -> None:
    """Insert a new order of `kind` (its columns are the keys of `row`)."""
    if kind == "pay":
        insert_pay_order(conn, row)
    elif kind == "refund":
        insert_refund_order(conn, row)
    else:
        conn.execute(_insert_sql(_TABLE[kind][0], tuple(row)), tuple(row.values()))


def max_id(conn: sqlite3.Connection, prefix: str) -> int:
    """The largest number of an id `prefix` + 10 digits in any order table (0 when none)."""
    best = 0
    for table, key in _TABLE.values():
        (last,) = conn.execute(f"SELECT MAX({key}) FROM {table} WHERE {key} >= ? AND {key} < ?",
                               (prefix + "0", prefix + ":")).fetchone()
        if last and last[len(prefix):].isdigit():
            best = max(best, int(last[len(prefix):]))
    return best


def register_orders(kind: str, table: str, key: str) -> None:
    """Orders of `kind` live in `table`, keyed by `key` (a product's: paysys/products/)."""
    _TABLE[kind] = (table, key)


@functools.cache
def _cas_sql(kind: str, columns: tuple[str, ...]) -> str:
    """`UPDATE ... SET status, updated_ms, <columns> WHERE <key> = ? AND status = ?`."""
    table, key = _TABLE[kind]
    sets = ",".join(["status=?", "updated_ms=?", *(f"{c}=?" for c in columns)])
    return f"UPDATE {table} SET {sets} WHERE {key}=? AND status=?"


def transition(conn: sqlite3.Connection, kind: str, row: dict, event: str, now_ms: int, **changes) -> str:
    """Move the order `row` (as read) by `event`: CAS on its status, record the transition.

    `changes` are further columns to set in the same statement. Updates `row` in place and returns
    the new status; raises IllegalTransition (the table forbids it) or CasConflict (lost race).
    """
    key = _TABLE[kind][1]
    old = row["status"]
    new = fire(kind, old, event)
    values = (new, now_ms, *changes.values(), row[key], old)
    cur = conn.execute(_cas_sql(kind, tuple(changes)), values)
    if cur.rowcount != 1:
        raise CasConflict(f"{kind} order {row[key]} is no longer {old}")
    _record(conn, kind, row, old, new, event, now_ms, changes)
    return new


def blind_transition(conn: sqlite3.Connection, kind: str, row: dict, event: str, now_ms: int,
                     **changes) -> str:
    """The `no_cas` flaw: write the status `event` leads to, whatever the order's status is
    (`UPDATE ... WHERE id = ?`, no compare, no table check)."""
    table, key = _TABLE[kind]
    old = row["status"]
    new = next(moves[event] for moves in TABLES[kind].values() if event in moves).value
    sets = ",".join(["status=?", "updated_ms=?", *(f"{c}=?" for c in changes)])
    conn.execute(f"UPDATE {table} SET {sets} WHERE {key}=?",
                 (new, now_ms, *changes.values(), row[key]))
    _record(conn, kind, row, old, new, event, now_ms, changes)
    return new


def _record(conn, kind: str, row: dict, old: str, new: str, event: str, now_ms: int,
            changes: dict) -> None:
    key = _TABLE[kind][1]
    conn.execute(
        "INSERT INTO transitions (kind, ref, from_status, to_status, event, at_ms) VALUES (?,?,?,?,?,?)",
        (kind, row[key], old, new, event, now_ms),
    )
    row.update(changes, status=new, updated_ms=now_ms)


def record_creation(conn: sqlite3.Connection, kind: str, ref: str, status: str, now_ms: int) -> None:
    conn.execute(
        "INSERT INTO transitions (kind, ref, from_status, to_status, event, at_ms) VALUES (?,?,?,?,?,?)",
        (kind, ref, None, status, "create", now_ms),
    )


def add_refunded(conn: sqlite3.Connection, order_id: str, amount: int, now_ms: int) -> None:
    conn.execute(
        "UPDATE pay_orders SET refunded = refunded + ?, updated_ms=? WHERE order_id=?",
        (amount, now_ms, order_id),
    )


def pending_refund_total(conn: sqlite3.Connection, order_id: str) -> int:
    """Refunds of the order that succeeded or may still succeed."""
    (total,) = conn.execute(
        "SELECT COALESCE(SUM(amount),0) FROM refund_orders WHERE order_id=? AND status != 'FAILED' "
        "AND reason = 'merchant'",
        (order_id,),
    ).fetchone()
    return total


# Agreements (quick-pay card binding)

def agreement(conn, user_id: str, card_no: str, channel: str) -> dict | None:
    cur = conn.execute(
        "SELECT agreement_no, status FROM agreements WHERE user_id=? AND card_no=? AND channel=?",
        (user_id, card_no, channel),
    )
    row = cur.fetchone()
    return {"agreement_no": row[0], "status": row[1]} if row else None


def save_agreement(conn, user_id, card_no, channel, agreement_no, status) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO agreements VALUES (?,?,?,?,?)",
        (user_id, card_no, channel, agreement_no, status),
    )


# Channel requests

def record_request(conn, req_id, channel, kind, ref, now_ms) -> None:
    conn.execute(
        "INSERT INTO channel_requests (req_id, channel, kind, ref, sent_ms, status) VALUES (?,?,?,?,?,?)",
        (req_id, channel, kind, ref, now_ms, "pending"),
    )


def close_request(conn, req_id: str, status: str, result: str, now_ms: int) -> bool:
    """Mark a pending request answered/timeout; False if it was no longer pending."""
    cur = conn.execute(
        "UPDATE channel_requests SET status=?, result=?, answered_ms=? WHERE req_id=? AND status='pending'",
        (status, result, now_ms, req_id),
    )
    return cur.rowcount == 1


def pay_request_id(conn: sqlite3.Connection, order_id: str, channel: str | None = None) -> str:
    """The id of the order's latest pay request (at `channel`, when given: the charge a
    compensation refund takes back may be at a channel the order failed over from): queries,
    closes and refunds name it."""
    if channel is None:
        row = conn.execute(
            "SELECT req_id FROM channel_requests WHERE ref=? AND kind='pay' "
            "ORDER BY sent_ms DESC, req_id DESC LIMIT 1", (order_id,)).fetchone()
    else:
        row = conn.execute(
            "SELECT req_id FROM channel_requests WHERE ref=? AND kind='pay' AND channel=? "
            "ORDER BY sent_ms DESC, req_id DESC LIMIT 1", (order_id, channel)).fetchone()
    return row[0] if row else f"{order_id}.p1"


def pending_requests(conn) -> list[tuple]:
    return conn.execute(
        "SELECT req_id, channel, kind, ref, sent_ms FROM channel_requests WHERE status='pending'"
    ).fetchall()
