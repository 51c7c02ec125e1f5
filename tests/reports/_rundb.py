"""Hand-built run databases for the report tests (plain SQL, schema of docs/run-database.md).

`build(path)` writes a small finished run: six payment orders in every kind of outcome, one refund,
an event log with real stories (a lost bank reply resolved by a query, a ledger posting), one
fault window, one failed invariant naming P0000000004. `skip=` leaves tables out, as a crashed
run would. `many_orders(path, n)` adds `n` plain orders for sampling tests.
"""

from __future__ import annotations

import json
import sqlite3

START = 1_718_676_000_000  # 2024-06-18 10:00:00 UTC+8 (02:00 UTC)
END = START + 10 * 60_000
FLAGGED = "P0000000004"

SCHEMA = {
    "run": "key TEXT PRIMARY KEY, value TEXT",
    "merchants": "merchant_id TEXT PRIMARY KEY, name TEXT, sign_type TEXT, secret TEXT, "
                 "fee_rate_bp INTEGER, status TEXT",
    "pay_orders": "order_id TEXT PRIMARY KEY, merchant_id TEXT, merchant_order_no TEXT, "
                  "user_id TEXT, product TEXT, channel TEXT, amount INTEGER, currency TEXT, "
                  "status TEXT, merchant_fee INTEGER, channel_cost INTEGER, refunded INTEGER, "
                  "created_ms INTEGER, updated_ms INTEGER, channel_ref TEXT, notify_url TEXT, "
                  "error_code TEXT, UNIQUE (merchant_id, merchant_order_no)",
    "refund_orders": "refund_id TEXT PRIMARY KEY, order_id TEXT, merchant_id TEXT, "
                     "refund_no TEXT, amount INTEGER, currency TEXT, status TEXT, channel TEXT, "
                     "created_ms INTEGER, updated_ms INTEGER, error_code TEXT, "
                     "UNIQUE (merchant_id, refund_no)",
    "transitions": "seq INTEGER PRIMARY KEY, kind TEXT, ref TEXT, from_status TEXT, "
                   "to_status TEXT, event TEXT, at_ms INTEGER",
    "journal_entries": "entry_id INTEGER PRIMARY KEY, at_ms INTEGER, ref TEXT, memo TEXT",
    "postings": "posting_id INTEGER PRIMARY KEY, entry_id INTEGER, account TEXT, "
                "currency TEXT, debit INTEGER, credit INTEGER",
    "events": "seq INTEGER PRIMARY KEY, at_ms INTEGER, kind TEXT, ref TEXT, src TEXT, "
              "dst TEXT, data TEXT",
    "faults": "fault_id TEXT PRIMARY KEY, kind TEXT, target TEXT, start_ms INTEGER, "
              "end_ms INTEGER, probability REAL, params TEXT",
    "invariants": "name TEXT PRIMARY KEY, ok INTEGER, violations INTEGER, first TEXT, "
                  "last TEXT, refs TEXT",
    "expectations": "name TEXT PRIMARY KEY, ok INTEGER, detail TEXT",
    "metrics": "name TEXT PRIMARY KEY, value",
}

# order_id, status, channel, product, amount, created (s after START), error_code
ORDERS = [
    ("P0000000001", "SUCCEEDED", "bank", "quick", 10_000, 30, None),
    ("P0000000002", "FAILED", "bank", "quick", 2_500, 95, "INSUFFICIENT_FUNDS"),
    ("P0000000003", "SUCCEEDED", "wechat", "platform", 8_800, 140, None),
    (FLAGGED, "SUCCEEDED", "bank", "quick", 12_345, 200, None),
    ("P0000000005", "UNKNOWN", "bank", "quick", 4_200, 260, None),
    ("P0000000006", "BLOCKED", None, "quick", 990_000, 400, "RISK_BLOCKED"),
]

VIOLATION = {"ref": FLAGGED, "message": f"order {FLAGGED} is SUCCEEDED but the bank has no "
                                        "successful payment for it", "amount": 12_345}
POSTING_4 = [["asset:channel:bank", "CNY", 12_345, 0], ["liability:merchant:M001", "CNY", 0, 12_271],
             ["income:fee", "CNY", 0, 74], ["expense:channel:bank", "CNY", 37, 0],
             ["asset:channel:bank", "CNY", 0, 37]]


CREATE_4 = {"type": "pay.create", "merchant_id": "M001", "merchant_order_no": "MO-004",
            "amount": 12_345, "currency": "CNY"}
OTHER = dict(CREATE_4, merchant_id="M002")  # same merchant order number, another merchant


def create(conn: sqlite3.Connection, skip: tuple[str, ...] = ()) -> None:
    for table, cols in SCHEMA.items():
        if table not in skip:
            conn.execute(f"CREATE TABLE {table} ({cols})")


def _events(conn: sqlite3.Connection) -> None:
    t = START + 200_000
    ev = [  # (dt ms, kind, ref, src, dst, data)
        # pay.create has no order id yet: ref is empty, the body names the merchant's order
        (0, "msg.send", "", "merchant:M001", "paysys", {"type": "pay.create", "body": CREATE_4}),
        (3, "msg.deliver", "", "merchant:M001", "paysys", {"type": "pay.create", "body": CREATE_4}),
        (4, "msg.deliver", "", "merchant:M001", "paysys", {"type": "pay.create", "body": OTHER}),
        (3, "risk.decision", FLAGGED, "paysys", "", {"outcome": "allow", "rule": None, "detail": ""}),
        (3, "route.decision", FLAGGED, "paysys", "", {"channel": "bank", "reason": "cheapest",
                                                      "rejected": ["wechat"]}),
        (3, "order.state", FLAGGED, "paysys", "", {"kind": "pay", "from": "CREATED",
                                                   "to": "PROCESSING", "event": "route.ok"}),
        (3, "channel.request", FLAGGED, "paysys", "", {"channel": "bank", "op": "pay",
                                                       "req_id": FLAGGED + ".1"}),
        (3, "msg.send", FLAGGED, "paysys", "bank", {"type": "bank.pay", "msg_id": 8}),
        (180, "msg.send", FLAGGED, "bank", "paysys", {"type": "bank.pay.reply", "msg_id": 9}),
        (180, "msg.drop", FLAGGED, "bank", "paysys", {"type": "bank.pay.reply", "msg_id": 9}),
        (10_003, "channel.timeout", FLAGGED, "paysys", "", {"channel": "bank", "op": "pay",
                                                            "req_id": FLAGGED + ".1"}),
        (10_003, "order.state", FLAGGED, "paysys", "", {"kind": "pay", "from": "PROCESSING",
                                                        "to": "UNKNOWN", "event": "bank.pay timeout"}),
        (15_000, "channel.request", FLAGGED, "paysys", "", {"channel": "bank", "op": "query",
                                                            "req_id": FLAGGED + ".2"}),
        (15_090, "channel.reply", FLAGGED, "paysys", "", {"channel": "bank", "op": "query",
                                                          "req_id": FLAGGED + ".2",
                                                          "outcome": "success", "code": ""}),
        (15_090, "order.state", FLAGGED, "paysys", "", {"kind": "pay", "from": "UNKNOWN",
                                                        "to": "SUCCEEDED", "event": "bank.query success"}),
        (15_090, "ledger.post", FLAGGED, "paysys", "", {"entry_id": 4, "memo": "pay succeeded",
                                                        "postings": POSTING_4}),
        (15_100, "notify.attempt", FLAGGED, "paysys", "merchant:M001",
         {"notify_id": "N4", "attempt": 1, "url": "https://m001.example/notify"}),
        (15_150, "notify.result", FLAGGED, "paysys", "", {"notify_id": "N4", "outcome": "acked"}),
    ]
    t1 = START + 30_000
    ev += [(t1 - t + dt, kind, "P0000000001", "paysys", dst, data) for dt, kind, dst, data in [
        (0, "channel.request", "", {"channel": "bank", "op": "pay", "req_id": "P0000000001.1"}),
        (120, "channel.reply", "", {"channel": "bank", "op": "pay", "req_id": "P0000000001.1",
                                    "outcome": "success", "code": ""}),
        (120, "order.state", "", {"kind": "pay", "from": "PROCESSING", "to": "SUCCEEDED",
                                  "event": "bank.pay success"}),
    ]]
    t3 = START + 140_000
    ev += [(t3 - t + dt, kind, ref, "paysys", "", data) for dt, kind, ref, data in [
        (0, "channel.request", "P0000000003", {"channel": "wechat", "op": "pay",
                                               "req_id": "P0000000003.1"}),
        (300, "channel.reply", "P0000000003", {"channel": "wechat", "op": "pay", "outcome": "pending",
                                               "req_id": "P0000000003.1", "code": ""}),
        (60_000, "order.state", "R0000000001", {"kind": "refund", "from": "PROCESSING",
                                                "to": "SUCCEEDED", "event": "wx.refund success"}),
    ]]
    ev.append((-80_000, "fault.start", "F1", "sim", "", {"kind": "drop"}))
    ev.sort(key=lambda e: e[0])
    conn.executemany("INSERT INTO events (at_ms, kind, ref, src, dst, data) VALUES (?,?,?,?,?,?)",
                     [(t + dt, k, r, s, d, json.dumps(data, sort_keys=True))
                      for dt, k, r, s, d, data in ev])


def _fill(conn: sqlite3.Connection, present: set[str], ok: bool) -> None:
    def put(table: str, rows: list[tuple]) -> None:
        if table in present and rows:
            marks = ",".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

    put("run", [("scenario", "bank-outage"), ("scenario_file", "scenarios/bank-outage.toml"),
                ("seed", "42"), ("digest", "9f" * 32), ("start_ms", str(START)),
                ("traffic_end_ms", str(START + 480_000)), ("faults_end_ms", str(START + 300_000)),
                ("end_ms", str(END)), ("ok", "1" if ok else "0"), ("wall_s", "1.25"),
                ("paysim_version", "0.1.0")])
    put("merchants", [("M001", "Acme <Shop>", "MD5", "s3cret", 60, "active")])
    put("pay_orders", [
        (oid, "M001", f"MO-{oid[-3:]}", "U00001", product, channel, amount, "CNY", status,
         amount * 60 // 10_000 if status == "SUCCEEDED" else 0,
         amount * 30 // 10_000 if status == "SUCCEEDED" else 0, 5_000 if oid == "P0000000003" else 0,
         START + s * 1000, START + s * 1000 + 15_090, None, "https://m001.example/notify", err)
        for oid, status, channel, product, amount, s, err in ORDERS])
    put("refund_orders", [("R0000000001", "P0000000003", "M001", "RF-1", 5_000, "CNY", "SUCCEEDED",
                           "wechat", START + 200_000, START + 200_300, None)])
    put("transitions", [
        (1, "pay", FLAGGED, "CREATED", "PROCESSING", "route.ok", START + 200_003),
        (2, "pay", FLAGGED, "PROCESSING", "UNKNOWN", "bank.pay timeout", START + 210_003),
        (3, "pay", FLAGGED, "UNKNOWN", "SUCCEEDED", "bank.query success", START + 215_090),
        (4, "pay", "P0000000005", "PROCESSING", "UNKNOWN", "bank.pay timeout", START + 270_000)])
    put("journal_entries", [(4, START + 215_090, FLAGGED, "pay succeeded")])
    put("postings", [(i + 1, 4, *p) for i, p in enumerate(POSTING_4)])
    put("faults", [("F1", "drop", "bank->paysys", START + 120_000, START + 300_000, 0.5,
                    json.dumps({"direction": "reply"}))])
    put("invariants", [
        ("orders_match_truth", 0, 1, json.dumps(VIOLATION), json.dumps(VIOLATION),
         json.dumps([FLAGGED])),
        ("entries_balanced", 1, 0, None, None, "[]")])
    put("expectations", [
        ("invariant orders_match_truth", 0, f"1 violations; first: {VIOLATION['message']}"),
        ("invariant entries_balanced", 1, "holds"),
        ("metric success_rate >= 0.5", 1, "success_rate = 0.6 <script>alert(1)</script>")])
    put("metrics", [("payments", 6), ("success_rate", 0.6), ("unknown", 2)])
    if "events" in present:
        _events(conn)


def build(path: str, skip: tuple[str, ...] = (), ok: bool = False) -> str:
    """Write the fixture run database to `path` (without the tables in `skip`); return `path`."""
    conn = sqlite3.connect(path)
    with conn:
        create(conn, skip)
        _fill(conn, set(SCHEMA) - set(skip), ok)
    conn.close()
    return path


def many_orders(path: str, n: int) -> None:
    """Add `n` orders spread over the run with a mix of statuses (for sampling/size tests)."""
    statuses = ["SUCCEEDED"] * 7 + ["FAILED", "CLOSED", "BLOCKED"]
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO pay_orders (order_id, merchant_id, merchant_order_no, user_id, product, "
            "channel, amount, currency, status, merchant_fee, channel_cost, refunded, created_ms, "
            "updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(f"P{1000 + i:010d}", "M001", f"BULK-{i}", "U00002", "quick", "bank", 100 + i, "CNY",
              statuses[i % len(statuses)], 1, 0, 0, START + i * (END - START) // n,
              START + i * (END - START) // n + 100) for i in range(n)])
    conn.close()
