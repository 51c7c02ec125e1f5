"""Hand-built run databases for the oracle's tests.

`schema(conn)` creates the tables of docs/run-database.md with plain SQL (no paysys code), and
`World` fills them with a consistent little world: every call records an order the way a correct
payment system and correct mocks would (order row, transitions, ground-truth transaction and
balances, ledger entry, external balance). Tests then corrupt one thing and look for it.
"""

import json
import sqlite3

SCHEMA = """
CREATE TABLE merchants (merchant_id TEXT PRIMARY KEY, name TEXT, sign_type TEXT, secret TEXT,
    fee_rate_bp INTEGER, status TEXT);
CREATE TABLE pay_orders (order_id TEXT PRIMARY KEY, merchant_id TEXT, merchant_order_no TEXT,
    user_id TEXT, product TEXT, channel TEXT, amount INTEGER, currency TEXT, status TEXT,
    merchant_fee INTEGER, channel_cost INTEGER, refunded INTEGER, created_ms INTEGER,
    updated_ms INTEGER, channel_ref TEXT, notify_url TEXT, error_code TEXT, card_no TEXT,
    attempt INTEGER NOT NULL DEFAULT 1, idempotency_key TEXT DEFAULT '', received INTEGER DEFAULT 0,
    UNIQUE (merchant_id, merchant_order_no, attempt));
CREATE TABLE refund_orders (refund_id TEXT PRIMARY KEY, order_id TEXT, merchant_id TEXT,
    refund_no TEXT, amount INTEGER, currency TEXT, status TEXT, channel TEXT, created_ms INTEGER,
    updated_ms INTEGER, error_code TEXT, reason TEXT DEFAULT 'merchant', charge_ref TEXT DEFAULT '',
    UNIQUE (merchant_id, refund_no));
CREATE TABLE transitions (seq INTEGER PRIMARY KEY, kind TEXT, ref TEXT, from_status TEXT,
    to_status TEXT, event TEXT, at_ms INTEGER);
CREATE TABLE journal_entries (entry_id INTEGER PRIMARY KEY, at_ms INTEGER, ref TEXT, memo TEXT);
CREATE TABLE postings (posting_id INTEGER PRIMARY KEY, entry_id INTEGER, account TEXT,
    currency TEXT, debit INTEGER, credit INTEGER);
CREATE TABLE ext_balances (account TEXT, currency TEXT, balance INTEGER, updated_ms INTEGER,
    PRIMARY KEY (account, currency));
CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic TEXT, ref TEXT, payload TEXT,
    created_ms INTEGER, delivered_ms INTEGER);
CREATE TABLE notifications (notify_id TEXT PRIMARY KEY, ref TEXT, merchant_id TEXT, url TEXT,
    payload TEXT, attempts INTEGER, status TEXT, next_at_ms INTEGER, last_at_ms INTEGER);
CREATE TABLE channel_requests (req_id TEXT PRIMARY KEY, channel TEXT, kind TEXT, ref TEXT,
    sent_ms INTEGER, status TEXT, result TEXT);
CREATE TABLE run (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE events (seq INTEGER PRIMARY KEY, at_ms INTEGER, kind TEXT, ref TEXT, src TEXT,
    dst TEXT, data TEXT);
CREATE TABLE faults (fault_id INTEGER PRIMARY KEY, kind TEXT, target TEXT, start_ms INTEGER,
    end_ms INTEGER, probability REAL, params TEXT);
CREATE TABLE truth_accounts (node TEXT, account TEXT, currency TEXT, initial INTEGER,
    balance INTEGER, PRIMARY KEY (node, account, currency));
CREATE TABLE truth_txns (node TEXT, ref TEXT, channel_ref TEXT, kind TEXT, amount INTEGER,
    fee INTEGER, currency TEXT, status TEXT, at_ms INTEGER);
"""

START_MS = 1_700_000_000_000
CUR = "CNY"
FEE_BP = 60  # merchant fee
COST_BP = 25  # channel fee


def schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def bp(amount: int, rate_bp: int) -> int:
    return (2 * amount * rate_bp + 10000) // 20000


class World:
    """A consistent run database in memory; `conn` is open for tests to corrupt."""

    def __init__(self, channels: tuple[str, ...] = ("bank", "wechat")):
        self.conn = sqlite3.connect(":memory:")
        schema(self.conn)
        self.channels = channels
        self.now = START_MS
        self.count = 0
        for node in channels:
            for account, initial in (("user", 10**12), ("platform", 0), ("fees", 0)):
                self.conn.execute("INSERT INTO truth_accounts VALUES (?, ?, ?, ?, ?)",
                                  (node, account, CUR, initial, initial))

    # --- low-level writers -------------------------------------------------------------------
    def tick(self) -> int:
        self.now += 1000
        return self.now

    def transition(self, kind: str, ref: str, path: list[str]) -> None:
        for a, b in zip(path, path[1:], strict=False):
            self.conn.execute(
                "INSERT INTO transitions (kind, ref, from_status, to_status, event, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)", (kind, ref, a, b, "e", self.tick()))

    def move(self, node: str, debit: str, credit: str, amount: int) -> None:
        self.conn.execute("UPDATE truth_accounts SET balance = balance - ? "
                          "WHERE node = ? AND account = ?", (amount, node, debit))
        self.conn.execute("UPDATE truth_accounts SET balance = balance + ? "
                          "WHERE node = ? AND account = ?", (amount, node, credit))

    def truth_txn(self, node: str, ref: str, kind: str, amount: int, fee: int = 0,
                  status: str = "SUCCESS") -> None:
        self.conn.execute("INSERT INTO truth_txns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (node, ref, f"T{ref}", kind, amount, fee, CUR, status, self.tick()))

    def post(self, ref: str, memo: str, lines: list[tuple[str, int, int]]) -> int:
        cur = self.conn.execute("INSERT INTO journal_entries (at_ms, ref, memo) VALUES (?, ?, ?)",
                                (self.tick(), ref, memo))
        entry_id = cur.lastrowid
        for account, debit, credit in lines:
            if debit == 0 and credit == 0:
                continue
            self.conn.execute("INSERT INTO postings (entry_id, account, currency, debit, credit) "
                              "VALUES (?, ?, ?, ?, ?)", (entry_id, account, CUR, debit, credit))
            if account.startswith("liability:merchant:"):
                ext = "merchant:" + account.removeprefix("liability:merchant:")
                self.conn.execute(
                    "INSERT INTO ext_balances VALUES (?, ?, ?, ?) ON CONFLICT (account, currency)"
                    " DO UPDATE SET balance = balance + excluded.balance",
                    (ext, CUR, credit - debit, self.now))
        return entry_id

    def event(self, kind: str, ref: str = "", **data) -> None:
        self.conn.execute(
            "INSERT INTO events (at_ms, kind, ref, src, dst, data) VALUES (?, ?, ?, ?, ?, ?)",
            (self.tick(), kind, ref, "paysys", "", json.dumps(data, sort_keys=True)))

    # --- consistent business records -----------------------------------------------------------
    def pay(self, amount: int = 10_000, status: str = "SUCCEEDED", channel: str = "bank",
            merchant: str = "M001", order_id: str | None = None, path: list[str] | None = None,
            error_code: str | None = None) -> str:
        """A payment order that ended in `status`, with everything a correct run records."""
        self.count += 1
        order_id = order_id or f"P{self.count:010d}"
        fee, cost = bp(amount, FEE_BP), bp(amount, COST_BP)
        created = self.tick()
        routed = channel if status != "BLOCKED" else None
        self.conn.execute(
            "INSERT INTO pay_orders (order_id, merchant_id, merchant_order_no, user_id, product, "
            "channel, amount, currency, status, merchant_fee, channel_cost, refunded, created_ms, "
            "updated_ms, channel_ref, notify_url, error_code) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order_id, merchant, f"MO{self.count}", "U1", "quick", routed, amount, CUR, status,
             fee, cost, 0, created, created + 500, None, "merchant:" + merchant, error_code))
        if path is None:
            path = {"SUCCEEDED": ["CREATED", "PROCESSING", "SUCCEEDED"],
                    "FAILED": ["CREATED", "PROCESSING", "FAILED"],
                    "CLOSED": ["CREATED", "PROCESSING", "CLOSED"],
                    "BLOCKED": ["CREATED", "BLOCKED"]}.get(status, ["CREATED", status])
        self.transition("pay", order_id, path)
        if status == "SUCCEEDED":
            self.truth_txn(channel, order_id, "pay", amount, cost)
            self.move(channel, "user", "platform", amount - cost)
            self.move(channel, "user", "fees", cost)
            self.post(order_id, "payment", [
                (f"asset:channel:{channel}", amount, 0),
                (f"liability:merchant:{merchant}", 0, amount - fee),
                ("income:fee", 0, fee),
                (f"expense:channel:{channel}", cost, 0),
                (f"asset:channel:{channel}", 0, cost),
            ])
        elif status == "FAILED":
            self.truth_txn(channel, order_id, "pay", amount, 0, status="DECLINED")
        self.event("publish", order_id, topic="order.final", status=status)
        return order_id

    def refund(self, order_id: str, amount: int, status: str = "SUCCEEDED",
               refund_id: str | None = None) -> str:
        self.count += 1
        refund_id = refund_id or f"R{self.count:010d}"
        channel, merchant = self.conn.execute(
            "SELECT channel, merchant_id FROM pay_orders WHERE order_id = ?", (order_id,)
        ).fetchone()
        created = self.tick()
        self.conn.execute(
            "INSERT INTO refund_orders (refund_id, order_id, merchant_id, refund_no, amount, "
            "currency, status, channel, created_ms, updated_ms, error_code) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (refund_id, order_id, merchant, f"RN{self.count}", amount, CUR, status, channel,
             created, created + 500, None))
        self.transition("refund", refund_id, ["CREATED", "PROCESSING", status])
        if status == "SUCCEEDED":
            self.truth_txn(channel, refund_id, "refund", amount)
            self.move(channel, "platform", "user", amount)
            self.post(refund_id, "refund", [
                (f"liability:merchant:{merchant}", amount, 0),
                (f"asset:channel:{channel}", 0, amount),
            ])
            self.conn.execute("UPDATE pay_orders SET refunded = refunded + ? WHERE order_id = ?",
                              (amount, order_id))
        self.event("publish", refund_id, topic="refund.final", status=status)
        return refund_id

    def notification(self, ref: str, status: str = "acked", attempts: int = 1,
                     merchant: str = "M001") -> str:
        notify_id = f"N{ref}.{attempts}.{status}"
        self.conn.execute(
            "INSERT INTO notifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (notify_id, ref, merchant, "merchant:" + merchant, "{}", attempts, status,
             self.now + 60_000, self.tick()))
        return notify_id

    def request(self, ref: str, kind: str, n: int, channel: str = "bank") -> None:
        self.conn.execute("INSERT INTO channel_requests VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (f"{ref}.{n}", channel, kind, ref, self.tick(), "answered", "SUCCESS"))


def standard_world() -> World:
    """A small correct run: payments in every final status, refunds, notifications."""
    w = World()
    p1 = w.pay(10_000)
    p2 = w.pay(25_000, channel="wechat", merchant="M002")
    w.pay(5_000, status="FAILED")
    w.pay(7_000, status="CLOSED", channel="wechat")
    w.pay(900_000, status="BLOCKED")
    w.refund(p1, 4_000)
    w.refund(p2, 25_000, status="FAILED")
    w.notification(p1)
    w.notification(p2, status="dead", attempts=16)
    return w
