"""Hand-built run databases for the oracle's tests.

`schema(conn)` creates the tables of docs/run-database.md with plain SQL (no paysys code), and
`World` fills them with a consistent little world: every call records an order the way a correct
payment system and correct mocks would (order row, transitions, ground-truth transaction and
balances, ledger entry, external balance). Tests then corrupt one thing and look for it.

`backoffice(conn)` adds the back-office tables of issue 5 (charges, statement faults,
reconciliation, settlement, positions, accounting days); `World.backoffice()` does it for a world
and its builders (`charge`, `recon_file`, `injected`, `recon_break`, `settle`, `close_day`)
record them the way a correct paysys would. `close_day` computes the digest with its own copy of
the recipe of `sim._invariants_books`, so a test of the oracle's digest is not circular.
"""

import hashlib
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

BACKOFFICE_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (order_id TEXT, channel_ref TEXT, channel TEXT,
    amount INTEGER, kept INTEGER, at_ms INTEGER, PRIMARY KEY (order_id, channel_ref));
CREATE TABLE IF NOT EXISTS stmt_injected (node TEXT, fault_id INTEGER, kind TEXT, channel TEXT,
    date TEXT, cls TEXT, key TEXT, ref TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS recon_files (channel TEXT, date TEXT, status TEXT, attempts INTEGER,
    first_try_ms INTEGER, received_ms INTEGER, format TEXT, rows INTEGER, error TEXT,
    reconciled_ms INTEGER, PRIMARY KEY (channel, date));
CREATE TABLE IF NOT EXISTS recon_breaks (break_id TEXT PRIMARY KEY, phase TEXT, channel TEXT,
    date TEXT, cls TEXT, key TEXT, ref TEXT, channel_ref TEXT, ours TEXT, theirs TEXT,
    found_ms INTEGER, status TEXT, resolution TEXT, reason TEXT, entry_id INTEGER,
    resolved_ms INTEGER);
CREATE TABLE IF NOT EXISTS recon_buffer (channel TEXT, key TEXT, date TEXT, row TEXT,
    since_ms INTEGER, files_seen INTEGER, PRIMARY KEY (channel, key));
CREATE TABLE IF NOT EXISTS settlement_rules (merchant_id TEXT PRIMARY KEY, cycle TEXT,
    min_amount INTEGER, splits TEXT);
CREATE TABLE IF NOT EXISTS settlements (settlement_id TEXT PRIMARY KEY, batch_id TEXT,
    merchant_id TEXT, through_ms INTEGER, amount INTEGER, status TEXT, req_id TEXT,
    created_ms INTEGER, paid_ms INTEGER, entry_id INTEGER, payments INTEGER, refunds INTEGER,
    fees INTEGER, splits_out INTEGER, splits_in INTEGER, carried_in INTEGER, net INTEGER);
CREATE TABLE IF NOT EXISTS settlement_batches (batch_id TEXT PRIMARY KEY, date TEXT,
    created_ms INTEGER, merchants INTEGER, total INTEGER);
CREATE TABLE IF NOT EXISTS positions (date TEXT, channel TEXT, balance INTEGER, needed INTEGER,
    topped_up INTEGER, PRIMARY KEY (date, channel));
CREATE TABLE IF NOT EXISTS accounting_days (date TEXT PRIMARY KEY, cutoff_ms INTEGER,
    closed_ms INTEGER, entries INTEGER, first_entry INTEGER, last_entry INTEGER,
    balanced INTEGER, debits TEXT, credits TEXT, income TEXT, costs TEXT, profit TEXT,
    digest TEXT);
CREATE TABLE IF NOT EXISTS trial_balances (date TEXT, account TEXT, currency TEXT,
    debits INTEGER, credits INTEGER, balance INTEGER, PRIMARY KEY (date, account, currency));
"""

START_MS = 1_700_000_000_000
CUR = "CNY"
FEE_BP = 60  # merchant fee
COST_BP = 25  # channel fee


def schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def backoffice(conn: sqlite3.Connection) -> None:
    """The back-office tables of issue 5 (empty), if absent."""
    conn.executescript(BACKOFFICE_SCHEMA)


def day_digest(conn: sqlite3.Connection, since_ms: int | None, cutoff_ms: int) -> str:
    """The digest recipe, written again independently of sim._invariants_books."""
    low = -1 if since_ms is None else since_ms
    h = hashlib.sha256()
    ids = [r[0] for r in conn.execute("SELECT entry_id FROM journal_entries WHERE at_ms >= ? "
                                      "AND at_ms < ? ORDER BY entry_id", (low, cutoff_ms))]
    for entry_id in ids:
        at_ms, ref, memo = conn.execute("SELECT at_ms, ref, memo FROM journal_entries "
                                        "WHERE entry_id = ?", (entry_id,)).fetchone()
        h.update(f"{entry_id}|{at_ms}|{ref or ''}|{memo or ''}\n".encode())
    for row in conn.execute(
            "SELECT posting_id, entry_id, account, currency, debit, credit FROM postings "
            f"WHERE entry_id IN ({', '.join(map(str, ids)) or 'NULL'}) ORDER BY posting_id"):
        pid, entry_id, account, currency, debit, credit = row
        h.update(f"{pid}|{entry_id}|{account}|{currency}|{debit or 0}|{credit or 0}\n".encode())
    return h.hexdigest()


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

    # --- back office (issue 5) ------------------------------------------------------------------
    def backoffice(self) -> "World":
        backoffice(self.conn)
        return self

    def charge(self, order_id: str, at_ms: int | None = None) -> str:
        """paysys's `charges` row of a paid order (its truth pay); returns the statement key."""
        node, channel_ref, amount, truth_ms = self.conn.execute(
            "SELECT node, channel_ref, amount, at_ms FROM truth_txns WHERE ref = ? "
            "AND kind = 'pay'", (order_id,)).fetchone()
        self.conn.execute("INSERT INTO charges VALUES (?, ?, ?, ?, 1, ?)",
                          (order_id, channel_ref, node, amount,
                           truth_ms if at_ms is None else at_ms))
        return f"pay:{channel_ref}"

    def recon_file(self, channel: str, day: str, status: str = "reconciled",
                   received_ms: int | None = None, reconciled_ms: int | None = None) -> None:
        """A statement file; received and reconciled by default at D+1 10:00 local."""
        from paysys.days import DAY_MS, day_bounds
        at = day_bounds(day)[0] + DAY_MS + 10 * 3_600_000
        received = received_ms if received_ms is not None else (
            at if status == "reconciled" else None)
        reconciled = reconciled_ms if reconciled_ms is not None else (
            received if status == "reconciled" else None)
        self.conn.execute(
            "INSERT OR REPLACE INTO recon_files VALUES (?, ?, ?, 1, ?, ?, 'mt940', 0, '', ?)",
            (channel, day, status, at, received, reconciled))

    def injected(self, channel: str, day: str, kind: str, cls: str, key: str, ref: str = "",
                 fault_id: int = 1) -> None:
        self.conn.execute("INSERT INTO stmt_injected VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                          (channel, fault_id, kind, channel, day, cls, key, ref))

    def recon_break(self, channel: str, day: str, cls: str, key: str, ref: str = "",
                    status: str | None = None, resolution: str | None = None,
                    entry_id: int | None = None, phase: str = "statement") -> str:
        """A break; resolved by default as the contract's policy says for its class."""
        default = {"cross_day": ("resolved", "matched_next_file"),
                   "malformed_file": ("resolved", "redownloaded"),
                   "late_file": ("resolved", "late_file_received"),
                   "missing_file": ("manual", "no_file")}.get(cls, ("manual", "statement_error"))
        n = self.conn.execute("SELECT COUNT(*) FROM recon_breaks").fetchone()[0] + 1
        break_id = f"B{n:06d}"
        self.conn.execute(
            "INSERT INTO recon_breaks VALUES (?, ?, ?, ?, ?, ?, ?, '', NULL, NULL, ?, ?, ?, '', "
            "?, ?)", (break_id, phase, channel, day, cls, key, ref, self.tick(),
                      status or default[0], resolution or default[1], entry_id, self.now))
        return break_id

    def settle(self, merchant: str, amount: int, channel: str = "bank", status: str = "paid",
               **statement: int) -> str:
        """A settlement of `amount` to `merchant` out of `channel`: when paid, its ledger entry
        and the money arriving in the truth account merchant:<id> at `channel`."""
        n = self.conn.execute("SELECT COUNT(*) FROM settlements").fetchone()[0] + 1
        sid = f"S{n:06d}"
        entry_id = None
        if status == "paid":
            entry_id = self.post(sid, "settlement", [(f"liability:merchant:{merchant}", amount, 0),
                                                    (f"asset:channel:{channel}", 0, amount)])
            self.conn.execute("INSERT OR IGNORE INTO truth_accounts VALUES (?, ?, ?, 0, 0)",
                              (channel, f"merchant:{merchant}", CUR))
            self.move(channel, "platform", f"merchant:{merchant}", amount)
        cols = {"payments": 0, "refunds": 0, "fees": 0, "splits_out": 0, "splits_in": 0,
                "carried_in": 0, "net": amount, **statement}
        self.conn.execute(
            "INSERT INTO settlements VALUES (?, 'SB000001', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)", (sid, merchant, self.now, amount, status, f"{sid}.p1", self.tick(),
                      self.now if status == "paid" else None, entry_id, cols["payments"],
                      cols["refunds"], cols["fees"], cols["splits_out"], cols["splits_in"],
                      cols["carried_in"], cols["net"]))
        return sid

    def close_day(self, day: str, cutoff_ms: int | None = None) -> None:
        """Close accounting day `day` at `cutoff_ms` (default: now + 1) the way a correct paysys
        would: cumulative debits/credits, the day's income, costs and profit, its digest."""
        cutoff = self.now + 1 if cutoff_ms is None else cutoff_ms
        since = self.conn.execute("SELECT MAX(cutoff_ms) FROM accounting_days").fetchone()[0]
        low = -1 if since is None else since

        def per_currency(sql: str, params: tuple) -> str:
            return json.dumps({c: a for c, a in self.conn.execute(sql, params) if a})

        join = "FROM postings p JOIN journal_entries e ON e.entry_id = p.entry_id"
        debits = per_currency(f"SELECT currency, SUM(debit) {join} WHERE e.at_ms < ? "
                              "GROUP BY currency", (cutoff,))
        credits = per_currency(f"SELECT currency, SUM(credit) {join} WHERE e.at_ms < ? "
                               "GROUP BY currency", (cutoff,))
        day_range = "e.at_ms >= ? AND e.at_ms < ?"
        income = per_currency(f"SELECT currency, SUM(credit - debit) {join} WHERE {day_range} "
                              "AND account = 'income:fee' GROUP BY currency", (low, cutoff))
        costs = per_currency(f"SELECT currency, SUM(debit - credit) {join} WHERE {day_range} "
                             "AND account LIKE 'expense:channel:%' GROUP BY currency",
                             (low, cutoff))
        inc, cst = json.loads(income), json.loads(costs)
        profit = json.dumps({c: inc.get(c, 0) - cst.get(c, 0) for c in sorted(inc | cst)})
        n, first, last = self.conn.execute(
            "SELECT COUNT(*), MIN(entry_id), MAX(entry_id) FROM journal_entries e "
            f"WHERE {day_range}", (low, cutoff)).fetchone()
        self.conn.execute(
            "INSERT INTO accounting_days VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (day, cutoff, cutoff + 1, n, first, last, debits, credits, income, costs, profit,
             day_digest(self.conn, since, cutoff)))


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
