"""Hand-built run databases for the report tests (plain SQL, schema of docs/run-database.md).

`build(path)` writes a small finished run: six payment orders in every kind of outcome, one refund,
an event log with real stories (a lost bank reply resolved by a query, a ledger posting), one
fault window, one failed invariant naming P0000000004. `skip=` leaves tables out, as a crashed
run would. `many_orders(path, n)` adds `n` plain orders for sampling tests. `backoffice(path)`
adds the issue-5 tables (reconciliation, settlement, accounting days) with a small story, or
empty with `empty=True`.
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


# --- back office (issue 5): reconciliation, settlement, accounting days ------------------------

DAY = "2024-06-18"
NEXT_DAY = "2024-06-19"
DAY_END = 1_718_726_400_000  # 2024-06-19 00:00:00 UTC+8
MISSED_FAULT = "F9"  # an injected stmt_fee nobody found
LINKED_BREAK = "B000001"  # amount_over on FLAGGED, which has a trace

BACKOFFICE_SCHEMA = {
    "recon_files": "channel TEXT, date TEXT, status TEXT, attempts INTEGER, first_try_ms INTEGER, "
                   "received_ms INTEGER, format TEXT, rows INTEGER, error TEXT, "
                   "reconciled_ms INTEGER, PRIMARY KEY (channel, date)",
    "recon_breaks": "break_id TEXT PRIMARY KEY, phase TEXT, channel TEXT, date TEXT, cls TEXT, "
                    "key TEXT, ref TEXT, channel_ref TEXT, ours TEXT, theirs TEXT, "
                    "found_ms INTEGER, status TEXT, resolution TEXT, reason TEXT, "
                    "entry_id INTEGER, resolved_ms INTEGER",
    "recon_buffer": "channel TEXT, key TEXT, date TEXT, row TEXT, since_ms INTEGER, "
                    "files_seen INTEGER, PRIMARY KEY (channel, key)",
    "stmt_injected": "node TEXT, fault_id TEXT, kind TEXT, channel TEXT, date TEXT, cls TEXT, "
                     "key TEXT, ref TEXT, detail TEXT",
    "settlement_rules": "merchant_id TEXT PRIMARY KEY, cycle TEXT, min_amount INTEGER, splits TEXT",
    "settlements": "settlement_id TEXT PRIMARY KEY, batch_id TEXT, merchant_id TEXT, "
                   "through_ms INTEGER, amount INTEGER, status TEXT, req_id TEXT, "
                   "created_ms INTEGER, paid_ms INTEGER, entry_id INTEGER, payments INTEGER, "
                   "refunds INTEGER, fees INTEGER, splits_out INTEGER, splits_in INTEGER, "
                   "carried_in INTEGER, net INTEGER",
    "settlement_batches": "batch_id TEXT PRIMARY KEY, date TEXT, created_ms INTEGER, "
                          "merchants INTEGER, total INTEGER",
    "positions": "date TEXT, channel TEXT, balance INTEGER, needed INTEGER, topped_up INTEGER, "
                 "PRIMARY KEY (date, channel)",
    "accounting_days": "date TEXT PRIMARY KEY, cutoff_ms INTEGER, closed_ms INTEGER, "
                       "entries INTEGER, first_entry INTEGER, last_entry INTEGER, "
                       "balanced INTEGER, debits TEXT, credits TEXT, income TEXT, costs TEXT, "
                       "profit TEXT, digest TEXT",
    "trial_balances": "date TEXT, account TEXT, currency TEXT, debits INTEGER, credits INTEGER, "
                      "balance INTEGER, PRIMARY KEY (date, account, currency)",
}


def stmt_row(key: str, ref: str, channel_ref: str, amount: int, fee: int = 0,
             status: str = "SUCCESS", date: str = DAY, currency: str = "CNY") -> str:
    kind = key.split(":")[0]
    return json.dumps({"key": key, "kind": kind, "ref": ref, "channel_ref": channel_ref,
                       "amount": amount, "fee": fee, "currency": currency, "status": status,
                       "date": date})


def _break(bid, channel, cls, key, ref, ours, theirs, status, resolution, reason,
           phase="statement", date=DAY, entry_id=None):
    found = DAY_END + 10 * 3_600_000
    return (bid, phase, channel, date, cls, key, ref, key.split(":", 1)[1], ours, theirs, found,
            status, resolution, reason, entry_id, found + 60_000 if status == "resolved" else None)


def _backoffice_rows() -> dict[str, list[tuple]]:
    t = DAY_END + 10 * 3_600_000  # 10:00 local on the next day: reconciliation time
    p4 = ("pay:BT0000000004", FLAGGED, "BT0000000004")
    p1 = ("pay:BT0000000001", "P0000000001", "BT0000000001")
    return {
        "recon_files": [
            ("bank", DAY, "reconciled", 1, t, t + 50, "mt940", 3, "", t + 90),
            ("wechat", DAY, "reconciled", 2, t, t + 3_600_000, "wechat", 2, "", t + 3_600_100),
            ("bank", NEXT_DAY, "missing", 25, t + 86_400_000, None, "", 0, "", None),
            ("wechat", NEXT_DAY, "waiting", 1, t + 86_400_000, None, "", 0,
             "line 7: 应结订单金额: expected a decimal amount, got 'x'", None)],
        "recon_breaks": [
            _break(LINKED_BREAK, "bank", "amount_over", p4[0], FLAGGED,
                   stmt_row(*p4, 12_345, 37), stmt_row(*p4, 12_445, 37), "manual",
                   "statement_error", "the bank's own reply says 123.45; corrected file asked"),
            _break("B000002", "bank", "channel_only", "pay:XT0000000001", "X0000000001", None,
                   stmt_row("pay:XT0000000001", "X0000000001", "XT0000000001", 5_000), "manual",
                   "manual", "unknown ref"),
            _break("B000003", "wechat", "cross_day", "refund:R0000000001", "R0000000001",
                   stmt_row("refund:R0000000001", "R0000000001", "50000000001", 5_000),
                   stmt_row("refund:R0000000001", "R0000000001", "50000000001", 5_000,
                            date=DAY), "resolved", "matched_next_file", "in the next file"),
            _break("B000004", "bank", "missing_file", f"file:{NEXT_DAY}", "", None, None,
                   "manual", "no_file", "no file 24 h after the first try", date=NEXT_DAY),
            _break("B000005", "bank", "platform_only", p1[0], p1[1], stmt_row(*p1, 10_000, 30),
                   None, "open", "", "not in the stream yet", phase="stream"),
            _break("B000006", "bank", "fee", p1[0], p1[1], stmt_row(*p1, 10_000, 30),
                   stmt_row(*p1, 10_000, 31), "manual", "statement_error", "fee differs"),
            _break("B000007", "wechat", "channel_only", "pay:4200000099", "P0000000003", None,
                   stmt_row("pay:4200000099", "P0000000003", "4200000099", 8_800), "resolved",
                   "refund", "a second charge, refunded", entry_id=9)],
        "stmt_injected": [
            ("bank", "F7", "stmt_amount", "bank", DAY, "amount_over", p4[0], FLAGGED,
             json.dumps({"field": "amount", "true": 12_345, "file": 12_445})),
            ("bank", "F8", "stmt_extra_row", "bank", DAY, "channel_only", "pay:XT0000000001",
             "X0000000001", json.dumps({"amount": 5_000})),
            ("wechat", MISSED_FAULT, "stmt_fee", "wechat", DAY, "fee", "pay:4200000003",
             "P0000000003", json.dumps({"field": "fee", "true": 53, "file": 54})),
            ("bank", "F10", "stmt_none", "bank", NEXT_DAY, "missing_file", f"file:{NEXT_DAY}",
             "", "{}"),
            ("wechat", "F11", "stmt_next_day", "wechat", DAY, "cross_day", "refund:R0000000001",
             "R0000000001", "{}"),
            ("bank", "F12", "stmt_status", "bank", DAY, "status", p1[0], p1[1],
             json.dumps({"field": "status", "true": "SUCCESS", "file": "REVERSED"})),
            # their files were never reconciled: not reached (waiting) / file missing
            ("wechat", "F13", "stmt_amount", "wechat", NEXT_DAY, "amount_under", "pay:4200000013",
             "P0000000013", "{}"),
            ("bank", "F14", "stmt_missing_row", "bank", NEXT_DAY, "platform_only",
             "pay:BT0000000014", "P0000000014", "{}")],
        "settlement_rules": [("M001", "T+1", 10_000, json.dumps({"M002": 500})),
                             ("M002", "D+0", 0, "{}")],
        "settlements": [
            ("S000001", "SB000001", "M001", DAY_END, 16_094, "paid", "S000001.b1", t, t + 500, 11,
             22_345, 5_000, 134, 1_117, 0, 0, 16_094),
            ("S000002", "SB000001", "M002", DAY_END, 1_117, "failed", "S000002.b1", t, None, None,
             0, 0, 0, 0, 1_117, 0, 1_117)],
        "settlement_batches": [("SB000001", NEXT_DAY, t, 2, 17_211)],
        "positions": [(NEXT_DAY, "bank", 10_000, 17_211, 7_211)],
        "accounting_days": [
            (DAY, DAY_END, DAY_END + 60_000, 1, 4, 4, 1, json.dumps({"CNY": 12_382}),
             json.dumps({"CNY": 12_382}), json.dumps({"CNY": 74}), json.dumps({"CNY": 37}),
             json.dumps({"CNY": 37}), "ab" * 32),
            (NEXT_DAY, DAY_END + 86_400_000, DAY_END + 86_460_000, 0, None, None, 0,
             json.dumps({"CNY": 100}), json.dumps({"CNY": 99}), "{}", "{}", "{}", "cd" * 32)],
        "trial_balances": [
            (DAY, "asset:channel:bank", "CNY", 12_345, 37, 12_308),
            (DAY, "liability:merchant:M001", "CNY", 0, 12_271, -12_271),
            (DAY, "income:fee", "CNY", 0, 74, -74),
            (DAY, "expense:channel:bank", "CNY", 37, 0, 37)],
        "metrics": [("recon_precision", 0.8333), ("recon_recall", 0.6667),
                    ("recon_unresolved", 3)],
    }


def backoffice(path: str, empty: bool = False, skip: tuple[str, ...] = ()) -> str:
    """Add the back-office tables to the run database at `path` (empty ones with `empty`);
    the recon metrics go into `metrics` unless `empty`."""
    conn = sqlite3.connect(path)
    with conn:
        for table, cols in BACKOFFICE_SCHEMA.items():
            if table not in skip:
                conn.execute(f"CREATE TABLE {table} ({cols})")
        for table, rows in ({} if empty else _backoffice_rows()).items():
            if table not in skip and rows:
                marks = ",".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    conn.close()
    return path
