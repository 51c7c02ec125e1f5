"""The invariants the oracle checks on a finished run database, as a table.

`CHECKS` maps every name of `sim.catalogue.INVARIANTS` to a function `(conn) -> violations`. A
check reads the run database (docs/run-database.md) with set-based SQL only (GROUP BY and joins,
no per-row queries) so that it stays well under a second on 100 000 orders, and returns a list
of violations, each a JSON-able dict with at least:

- `ref`: the order or refund id it concerns, else the account, node or currency;
- `message`: what is wrong, in plain words;
- the numbers involved, and `diff` (signed minor units) when money is involved: the oracle picks
  the violation with the largest `abs(diff)` as the worst.

Violations come in a deterministic order (by time where there is one, then by id), so `first`
and `last` are stable. Ground-truth transactions count as successful when `status = 'SUCCESS'`.
"""

import sqlite3
from collections.abc import Callable

SUCCESS = "SUCCESS"
PAY_FINAL = ("SUCCEEDED", "FAILED", "CLOSED", "BLOCKED")
PAY_UNPAID = ("FAILED", "CLOSED", "BLOCKED")
REFUND_FINAL = ("SUCCEEDED", "FAILED")
PLATFORM_ACCOUNT = "platform"

Violation = dict


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# --- ledger -------------------------------------------------------------------------------------


def entries_balanced(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT p.entry_id, e.ref, e.memo, e.at_ms, p.currency,
               SUM(COALESCE(p.debit, 0)) AS debits, SUM(COALESCE(p.credit, 0)) AS credits
        FROM postings p LEFT JOIN journal_entries e ON e.entry_id = p.entry_id
        GROUP BY p.entry_id, p.currency
        HAVING SUM(COALESCE(debit, 0)) <> SUM(COALESCE(credit, 0))
        ORDER BY p.entry_id, p.currency
        """,
    )
    out = []
    for r in rows:
        ref = r["ref"] or f"entry:{r['entry_id']}"
        out.append({
            "ref": ref, "entry_id": r["entry_id"], "memo": r["memo"], "at_ms": r["at_ms"],
            "currency": r["currency"], "debits": r["debits"], "credits": r["credits"],
            "diff": r["debits"] - r["credits"],
            "message": f"journal entry {r['entry_id']} ({ref}, {r['memo']}) is unbalanced in "
                       f"{r['currency']}: debits {r['debits']} != credits {r['credits']}",
        })
    return out


def trial_balance_zero(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT currency, SUM(COALESCE(debit, 0)) AS debits, SUM(COALESCE(credit, 0)) AS credits
        FROM postings GROUP BY currency
        HAVING SUM(COALESCE(debit, 0)) <> SUM(COALESCE(credit, 0)) ORDER BY currency
        """,
    )
    return [{
        "ref": r["currency"], "currency": r["currency"], "debits": r["debits"],
        "credits": r["credits"], "diff": r["debits"] - r["credits"],
        "message": f"the trial balance in {r['currency']} is not zero: debits {r['debits']}, "
                   f"credits {r['credits']}",
    } for r in rows]


def external_matches_ledger(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        WITH led AS (
            SELECT substr(account, length('liability:merchant:') + 1) AS merchant, currency,
                   SUM(COALESCE(credit, 0)) - SUM(COALESCE(debit, 0)) AS balance
            FROM postings WHERE account LIKE 'liability:merchant:%'
            GROUP BY account, currency),
        ext AS (
            SELECT substr(account, length('merchant:') + 1) AS merchant, currency,
                   SUM(balance) AS balance
            FROM ext_balances WHERE account LIKE 'merchant:%' GROUP BY account, currency),
        keys AS (SELECT merchant, currency FROM led UNION SELECT merchant, currency FROM ext)
        SELECT k.merchant, k.currency, ext.balance AS external, led.balance AS ledger
        FROM keys k
        LEFT JOIN led ON led.merchant = k.merchant AND led.currency = k.currency
        LEFT JOIN ext ON ext.merchant = k.merchant AND ext.currency = k.currency
        WHERE COALESCE(ext.balance, 0) <> COALESCE(led.balance, 0)
        ORDER BY k.merchant, k.currency
        """,
    )
    out = []
    for r in rows:
        external, ledger = r["external"] or 0, r["ledger"] or 0
        what = "has no external balance" if r["external"] is None else f"external balance {external}"
        out.append({
            "ref": f"merchant:{r['merchant']}", "merchant_id": r["merchant"],
            "currency": r["currency"], "external": external, "ledger": ledger,
            "diff": external - ledger,
            "message": f"merchant {r['merchant']}: {what} {r['currency']} but the ledger account "
                       f"liability:merchant:{r['merchant']} holds {ledger}",
        })
    return out


# --- ground truth -------------------------------------------------------------------------------


def conservation(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT node, currency, SUM(initial) AS start, SUM(balance) AS end
        FROM truth_accounts GROUP BY node, currency HAVING SUM(initial) <> SUM(balance)
        ORDER BY node, currency
        """,
    )
    return [{
        "ref": r["node"], "node": r["node"], "currency": r["currency"], "initial": r["start"],
        "balance": r["end"], "diff": r["end"] - r["start"],
        "message": f"money was {'created' if r['end'] > r['start'] else 'destroyed'} at "
                   f"{r['node']}: its accounts held {r['start']} {r['currency']} at the start "
                   f"and {r['end']} at the end",
    } for r in rows]


def channel_matches_truth(conn: sqlite3.Connection) -> list[Violation]:
    """Per truth node and currency, and for any other `asset:channel:*` account with money."""
    rows = _rows(
        conn,
        """
        WITH nodes AS (SELECT DISTINCT node FROM truth_accounts),
        truth AS (
            SELECT node, currency, SUM(balance) - SUM(initial) AS delta
            FROM truth_accounts WHERE account = ? GROUP BY node, currency),
        led AS (
            SELECT substr(account, length('asset:channel:') + 1) AS node, currency,
                   SUM(COALESCE(debit, 0)) - SUM(COALESCE(credit, 0)) AS balance
            FROM postings WHERE account LIKE 'asset:channel:%' GROUP BY account, currency),
        keys AS (SELECT node, currency FROM truth UNION SELECT node, currency FROM led)
        SELECT k.node, k.currency, led.balance AS ledger, truth.delta AS truth,
               k.node IN (SELECT node FROM nodes) AS known
        FROM keys k
        LEFT JOIN led ON led.node = k.node AND led.currency = k.currency
        LEFT JOIN truth ON truth.node = k.node AND truth.currency = k.currency
        WHERE COALESCE(led.balance, 0) <> COALESCE(truth.delta, 0)
        ORDER BY k.node, k.currency
        """,
        (PLATFORM_ACCOUNT,),
    )
    out = []
    for r in rows:
        ledger, truth = r["ledger"] or 0, r["truth"] or 0
        if r["known"]:
            message = (f"paysys believes it gained {ledger} {r['currency']} at channel {r['node']}"
                       f" but its account there gained {truth}")
        else:
            message = (f"paysys believes it holds {ledger} {r['currency']} at channel "
                       f"{r['node']}, which has no ground truth")
        out.append({
            "ref": f"asset:channel:{r['node']}", "node": r["node"], "currency": r["currency"],
            "ledger": ledger, "truth": truth, "diff": ledger - truth, "message": message,
        })
    return out


def _pay_mismatches(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        f"""
        WITH ok AS (SELECT node, ref, amount, currency FROM truth_txns
                    WHERE kind = 'pay' AND status = ?),
        agg AS (SELECT ref, COUNT(*) AS n, SUM(amount) AS paid, MIN(amount) AS one_amount,
                       MIN(currency) AS one_currency, MIN(node) AS node
                FROM ok GROUP BY ref),
        same AS (SELECT DISTINCT ok.ref FROM ok JOIN pay_orders o
                 ON o.order_id = ok.ref AND o.amount = ok.amount AND o.currency = ok.currency)
        SELECT o.order_id, o.status, o.amount, o.currency, o.channel, o.created_ms,
               agg.n, agg.paid, agg.one_amount, agg.one_currency, agg.node
        FROM pay_orders o
        LEFT JOIN agg ON agg.ref = o.order_id
        LEFT JOIN same ON same.ref = o.order_id
        WHERE (o.status = 'SUCCEEDED' AND same.ref IS NULL)
           OR (o.status IN {_in(PAY_UNPAID)} AND agg.ref IS NOT NULL)
        ORDER BY o.created_ms, o.order_id
        """,
        (SUCCESS,),
    )
    out = []
    for r in rows:
        oid, amount, cur = r["order_id"], r["amount"], r["currency"]
        v = {"ref": oid, "order_id": oid, "kind": "pay", "status": r["status"], "amount": amount,
             "currency": cur, "channel": r["channel"], "truth_paid": r["paid"] or 0}
        if r["status"] == "SUCCEEDED" and r["n"] is None:
            v["diff"] = amount
            v["message"] = (f"order {oid} is SUCCEEDED but {r['channel'] or 'the channel'} has "
                            f"no successful payment for it")
        elif r["status"] == "SUCCEEDED":
            v["diff"] = amount - r["one_amount"]
            v["message"] = (f"order {oid} is SUCCEEDED for {amount} {cur} but {r['node']}'s "
                            f"successful payment is {r['one_amount']} {r['one_currency']}")
        else:
            v["diff"] = r["paid"]
            v["message"] = (f"order {oid} is {r['status']} but {r['node']} has a successful "
                            f"payment of {r['paid']} {r['one_currency']} for it")
        out.append(v)
    return out


def _refund_mismatches(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        WITH ok AS (SELECT node, ref, amount, currency FROM truth_txns
                    WHERE kind = 'refund' AND status = ?),
        agg AS (SELECT ref, COUNT(*) AS n, SUM(amount) AS refunded, MIN(amount) AS one_amount,
                       MIN(currency) AS one_currency, MIN(node) AS node
                FROM ok GROUP BY ref),
        same AS (SELECT DISTINCT ok.ref FROM ok JOIN refund_orders r
                 ON r.refund_id = ok.ref AND r.amount = ok.amount AND r.currency = ok.currency)
        SELECT r.refund_id, r.order_id, r.status, r.amount, r.currency, r.channel, r.created_ms,
               agg.n, agg.refunded, agg.one_amount, agg.one_currency, agg.node
        FROM refund_orders r
        LEFT JOIN agg ON agg.ref = r.refund_id
        LEFT JOIN same ON same.ref = r.refund_id
        WHERE (r.status = 'SUCCEEDED' AND same.ref IS NULL)
           OR (r.status = 'FAILED' AND agg.ref IS NOT NULL)
        ORDER BY r.created_ms, r.refund_id
        """,
        (SUCCESS,),
    )
    out = []
    for r in rows:
        rid, amount, cur = r["refund_id"], r["amount"], r["currency"]
        v = {"ref": rid, "refund_id": rid, "order_id": r["order_id"], "kind": "refund",
             "status": r["status"], "amount": amount, "currency": cur, "channel": r["channel"],
             "truth_refunded": r["refunded"] or 0}
        if r["status"] == "SUCCEEDED" and r["n"] is None:
            v["diff"] = amount
            v["message"] = (f"refund {rid} of order {r['order_id']} is SUCCEEDED but "
                            f"{r['channel'] or 'the channel'} has no successful refund for it")
        elif r["status"] == "SUCCEEDED":
            v["diff"] = amount - r["one_amount"]
            v["message"] = (f"refund {rid} is SUCCEEDED for {amount} {cur} but {r['node']}'s "
                            f"successful refund is {r['one_amount']} {r['one_currency']}")
        else:
            v["diff"] = r["refunded"]
            v["message"] = (f"refund {rid} is FAILED but {r['node']} has a successful refund of "
                            f"{r['refunded']} {r['one_currency']} for it")
        out.append(v)
    return out


def orders_match_truth(conn: sqlite3.Connection) -> list[Violation]:
    return _pay_mismatches(conn) + _refund_mismatches(conn)


def no_double_charge(conn: sqlite3.Connection) -> list[Violation]:
    """Refunds count against an order through refund_orders, or directly if their ref is it."""
    rows = _rows(
        conn,
        """
        WITH money AS (
            SELECT ref AS order_id, 1 AS pays, amount AS paid, 0 AS refunded, node
            FROM truth_txns WHERE kind = 'pay' AND status = ?
            UNION ALL
            SELECT COALESCE(r.order_id, t.ref), 0, 0, t.amount, t.node
            FROM truth_txns t LEFT JOIN refund_orders r ON r.refund_id = t.ref
            WHERE t.kind = 'refund' AND t.status = ?),
        per AS (
            SELECT order_id, SUM(pays) AS n, SUM(paid) AS paid, SUM(refunded) AS refunded,
                   MIN(CASE WHEN pays = 1 THEN node END) AS node
            FROM money GROUP BY order_id)
        SELECT o.order_id, o.amount, o.currency, o.created_ms, per.n, per.paid, per.node,
               per.refunded
        FROM per JOIN pay_orders o ON o.order_id = per.order_id
        WHERE per.n > 1 OR per.paid - per.refunded > o.amount
        ORDER BY o.created_ms, o.order_id
        """,
        (SUCCESS, SUCCESS),
    )
    out = []
    for r in rows:
        oid, net = r["order_id"], r["paid"] - r["refunded"]
        diff = net - r["amount"] if net > r["amount"] else r["paid"] - r["amount"]
        out.append({
            "ref": oid, "order_id": oid, "amount": r["amount"], "currency": r["currency"],
            "payments": r["n"], "paid": r["paid"], "refunded": r["refunded"], "net": net,
            "diff": diff,
            "message": f"order {oid} of {r['amount']} {r['currency']} was paid {r['n']} time(s) "
                       f"at {r['node']} ({r['paid']}), refunded {r['refunded']}: net {net}",
        })
    return out


def no_charge_without_order(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT t.node, t.ref, t.channel_ref, t.kind, t.amount, t.currency, t.at_ms,
               o.status AS order_status
        FROM truth_txns t LEFT JOIN pay_orders o ON o.order_id = t.ref
        WHERE t.kind = 'pay' AND t.status = ? AND COALESCE(o.status, '') <> 'SUCCEEDED'
        UNION ALL
        SELECT t.node, t.ref, t.channel_ref, t.kind, t.amount, t.currency, t.at_ms,
               r.status AS order_status
        FROM truth_txns t LEFT JOIN refund_orders r ON r.refund_id = t.ref
        WHERE t.kind = 'refund' AND t.status = ? AND COALESCE(r.status, '') <> 'SUCCEEDED'
        ORDER BY at_ms, ref, channel_ref
        """,
        (SUCCESS, SUCCESS),
    )
    out = []
    for r in rows:
        noun = "payment" if r["kind"] == "pay" else "refund"
        order = "order" if r["kind"] == "pay" else "refund order"
        state = (f"paysys has no {order} {r['ref']}" if r["order_status"] is None
                 else f"{order} {r['ref']} is {r['order_status']}")
        out.append({
            "ref": r["ref"], "node": r["node"], "kind": r["kind"], "channel_ref": r["channel_ref"],
            "amount": r["amount"], "currency": r["currency"], "at_ms": r["at_ms"],
            "order_status": r["order_status"], "diff": r["amount"],
            "message": f"{r['node']} made a successful {noun} of {r['amount']} {r['currency']} "
                       f"for {r['ref']} ({r['channel_ref']}) but {state}",
        })
    return out


# --- liveness -----------------------------------------------------------------------------------


def orders_final(conn: sqlite3.Connection) -> list[Violation]:
    """`diff` is the money at stake (the order's amount)."""
    rows = _rows(
        conn,
        f"""
        SELECT 'pay' AS kind, order_id AS ref, order_id, status, amount, currency, updated_ms
        FROM pay_orders WHERE status NOT IN {_in(PAY_FINAL)}
        UNION ALL
        SELECT 'refund', refund_id, order_id, status, amount, currency, updated_ms
        FROM refund_orders WHERE status NOT IN {_in(REFUND_FINAL)}
        ORDER BY updated_ms, ref
        """,
    )
    return [{
        "ref": r["ref"], "kind": r["kind"], "order_id": r["order_id"], "status": r["status"],
        "amount": r["amount"], "currency": r["currency"], "updated_ms": r["updated_ms"],
        "diff": r["amount"],
        "message": f"{'order' if r['kind'] == 'pay' else 'refund'} {r['ref']} is still "
                   f"{r['status']} at the end of the run (last change at {r['updated_ms']} ms)",
    } for r in rows]


def notifications_settled(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT notify_id, ref, merchant_id, url, attempts, next_at_ms, last_at_ms
        FROM notifications WHERE status = 'pending' ORDER BY notify_id
        """,
    )
    return [{
        "ref": r["ref"], "notify_id": r["notify_id"], "merchant_id": r["merchant_id"],
        "url": r["url"], "attempts": r["attempts"], "next_at_ms": r["next_at_ms"],
        "last_at_ms": r["last_at_ms"],
        "message": f"notification {r['notify_id']} of {r['ref']} to merchant {r['merchant_id']} "
                   f"is still pending after {r['attempts']} attempt(s)",
    } for r in rows]


CHECKS: dict[str, Callable[[sqlite3.Connection], list[Violation]]] = {
    "entries_balanced": entries_balanced,
    "trial_balance_zero": trial_balance_zero,
    "external_matches_ledger": external_matches_ledger,
    "conservation": conservation,
    "channel_matches_truth": channel_matches_truth,
    "orders_match_truth": orders_match_truth,
    "no_double_charge": no_double_charge,
    "no_charge_without_order": no_charge_without_order,
    "orders_final": orders_final,
    "notifications_settled": notifications_settled,
}

# Tables each check reads: the oracle names the missing ones instead of failing on SQL.
TABLES: dict[str, tuple[str, ...]] = {
    "entries_balanced": ("postings", "journal_entries"),
    "trial_balance_zero": ("postings",),
    "external_matches_ledger": ("postings", "ext_balances"),
    "conservation": ("truth_accounts",),
    "channel_matches_truth": ("truth_accounts", "postings"),
    "orders_match_truth": ("truth_txns", "pay_orders", "refund_orders"),
    "no_double_charge": ("truth_txns", "pay_orders", "refund_orders"),
    "no_charge_without_order": ("truth_txns", "pay_orders", "refund_orders"),
    "orders_final": ("pay_orders", "refund_orders"),
    "notifications_settled": ("notifications",),
}
