"""The order invariants of `sim.invariants`: orders and charges against the channels' ground truth.

A pay order's **kept charges** are its successful ground-truth 'pay' transactions
(`truth_txns.ref` = the order id) that no SUCCEEDED compensation refund takes back, a
compensation refund being a refund order with `reason <> 'merchant'`, the same `order_id` and
`charge_ref` = the charge's `channel_ref`. Every check compares what paysys recorded with what
the channels really did; none expects a fixed outcome, so an operation caught in flight by a
fault may end in any state as long as it agrees with the truth (see `sim.invariants`).

Every check is set-based SQL (GROUP BY, joins, window functions) and returns its violations
sorted by the order's creation time, then id.
"""

import sqlite3

SUCCESS = "SUCCESS"
PAY_UNPAID = ("FAILED", "CLOSED", "BLOCKED", "DUPLICATE")
KEEPERS = ("SUCCEEDED", "HELD")  # statuses allowed to keep a charge

Violation = dict

# CTEs `comp` (SUCCEEDED compensation refunds per taken-back charge) and `charges` (successful
# truth pays, `taken` = 1 when a compensation refund takes them back). Bind :ok = SUCCESS.
CHARGES = """
comp AS (SELECT order_id, charge_ref, COUNT(*) AS n FROM refund_orders
         WHERE status = 'SUCCEEDED' AND COALESCE(reason, 'merchant') <> 'merchant'
         GROUP BY order_id, charge_ref),
charges AS (SELECT t.node, t.ref, t.channel_ref, t.amount, t.currency, t.at_ms,
                   comp.order_id IS NOT NULL AS taken
            FROM truth_txns t LEFT JOIN comp
              ON comp.order_id = t.ref AND comp.charge_ref = t.channel_ref
            WHERE t.kind = 'pay' AND t.status = :ok)"""


def _rows(conn: sqlite3.Connection, sql: str, params: dict | tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# --- orders_match_truth -------------------------------------------------------------------------


def _pay_message(r: dict) -> tuple[str, int]:
    oid, status, amount, cur = r["order_id"], r["status"], r["amount"], r["currency"]
    node = r["node"] or r["channel"] or "the channel"
    kept = r["kept"] or 0
    if status == "SUCCEEDED":
        if not r["n"]:
            if r["charges"]:
                return (f"order {oid} is SUCCEEDED but every charge {node} made for it "
                        f"({r['charges']}) was taken back by a compensation refund", amount)
            return f"order {oid} is SUCCEEDED but {node} has no successful payment for it", amount
        if r["foreign_n"]:
            return (f"order {oid} is SUCCEEDED in {cur} but {node} keeps a charge for it in "
                    f"another currency", amount - kept)
        if kept != amount:
            return (f"order {oid} is SUCCEEDED for {amount} {cur} but the charges {node} keeps "
                    f"for it total {kept} {cur}", amount - kept)
        return (f"order {oid} is SUCCEEDED with channel_ref {r['channel_ref']} but {node} keeps "
                f"no charge {r['channel_ref']} for it", 0)
    if status == "HELD":
        received = r["received"] or 0
        if received <= 0:
            return f"order {oid} is HELD but received nothing", -kept
        return (f"order {oid} is HELD having received {received} {cur} but the charges {node} "
                f"keeps for it total {kept} {cur}", received - kept)
    return (f"order {oid} is {status} but {node} has a successful payment of {kept} {cur} for "
            f"it that no compensation refund took back", kept)


def pay_mismatches(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        f"""
        WITH {CHARGES},
        per AS (
            SELECT c.ref, COUNT(*) AS charges, SUM(NOT c.taken) AS n,
                   SUM(CASE WHEN NOT c.taken AND c.currency = o.currency THEN c.amount
                       ELSE 0 END) AS kept,
                   SUM(NOT c.taken AND c.currency <> o.currency) AS foreign_n,
                   MAX(NOT c.taken AND c.channel_ref = o.channel_ref) AS has_own,
                   MIN(c.node) AS node
            FROM charges c JOIN pay_orders o ON o.order_id = c.ref GROUP BY c.ref)
        SELECT o.order_id, o.status, o.amount, o.currency, o.channel, o.channel_ref,
               o.received, o.created_ms, per.charges, per.n, per.kept, per.foreign_n, per.node
        FROM pay_orders o LEFT JOIN per ON per.ref = o.order_id
        WHERE o.channel IN (SELECT node FROM truth_accounts UNION SELECT node FROM truth_txns)
          AND ((o.status = 'SUCCEEDED' AND (COALESCE(per.n, 0) = 0 OR per.kept <> o.amount
                 OR per.foreign_n > 0
                 OR (COALESCE(o.channel_ref, '') <> '' AND COALESCE(per.has_own, 0) = 0)))
           OR (o.status IN {_in(PAY_UNPAID)} AND per.n > 0)
           OR (o.status = 'HELD' AND (COALESCE(o.received, 0) <= 0
                 OR COALESCE(per.kept, 0) <> o.received OR per.foreign_n > 0)))
        ORDER BY o.created_ms, o.order_id
        """,
        {"ok": SUCCESS},
    )
    out = []
    for r in rows:
        message, diff = _pay_message(r)
        out.append({
            "ref": r["order_id"], "order_id": r["order_id"], "kind": "pay", "status": r["status"],
            "amount": r["amount"], "currency": r["currency"], "channel": r["channel"],
            "channel_ref": r["channel_ref"], "received": r["received"],
            "truth_paid": r["kept"] or 0, "charges": r["charges"] or 0, "kept_charges": r["n"] or 0,
            "diff": diff, "message": message,
        })
    return out


def refund_mismatches(conn: sqlite3.Connection) -> list[Violation]:
    """Merchant and compensation refunds alike: SUCCEEDED <=> a successful truth refund."""
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
               r.reason, r.charge_ref, agg.n, agg.refunded, agg.one_amount, agg.one_currency,
               agg.node
        FROM refund_orders r
        LEFT JOIN agg ON agg.ref = r.refund_id
        LEFT JOIN same ON same.ref = r.refund_id
        WHERE r.channel IN (SELECT node FROM truth_accounts UNION SELECT node FROM truth_txns)
          AND ((r.status = 'SUCCEEDED' AND same.ref IS NULL)
           OR (r.status = 'FAILED' AND agg.ref IS NOT NULL))
        ORDER BY r.created_ms, r.refund_id
        """,
        (SUCCESS,),
    )
    out = []
    for r in rows:
        rid, amount, cur = r["refund_id"], r["amount"], r["currency"]
        v = {"ref": rid, "refund_id": rid, "order_id": r["order_id"], "kind": "refund",
             "status": r["status"], "amount": amount, "currency": cur, "channel": r["channel"],
             "reason": r["reason"], "charge_ref": r["charge_ref"],
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
    """Pay orders by kept charges (SUCCEEDED: they pay the amount, one is `channel_ref`;
    FAILED/CLOSED/BLOCKED/DUPLICATE: none; HELD: they total `received` > 0), then refunds."""
    return pay_mismatches(conn) + refund_mismatches(conn)


# --- no_double_charge ---------------------------------------------------------------------------


def no_double_charge(conn: sqlite3.Connection) -> list[Violation]:
    """Per merchant order (all attempts) kept charges <= its amount, and per pay order charges
    minus every refund <= its amount. A HELD order that received more than its amount (a
    mismatch, waiting for a person) may hold what it received. Refunds count against an order
    through refund_orders, or directly if their truth ref is the order id."""
    rows = _rows(
        conn,
        f"""
        WITH {CHARGES},
        money AS (
            SELECT ref AS order_id, 1 AS pays, amount AS paid,
                   CASE WHEN taken THEN 0 ELSE amount END AS kept, 0 AS refunded, node
            FROM charges
            UNION ALL
            SELECT COALESCE(r.order_id, t.ref), 0, 0, 0, t.amount, NULL
            FROM truth_txns t LEFT JOIN refund_orders r ON r.refund_id = t.ref
            WHERE t.kind = 'refund' AND t.status = :ok),
        sums AS (SELECT order_id, SUM(pays) AS n, SUM(paid) AS paid, SUM(kept) AS kept,
                        SUM(refunded) AS refunded, MIN(node) AS node
                 FROM money GROUP BY order_id HAVING SUM(pays) > 0),
        per AS (SELECT o.order_id, o.merchant_id, o.merchant_order_no, o.amount, o.currency,
                       o.created_ms, o.status,
                       CASE WHEN o.status = 'HELD' AND o.received > o.amount THEN o.received
                            ELSE o.amount END AS bound,
                       s.n, s.paid, s.kept, s.node, s.refunded
                FROM sums s JOIN pay_orders o ON o.order_id = s.order_id),
        multi AS (SELECT DISTINCT merchant_id, merchant_order_no FROM pay_orders
                  WHERE attempt > 1),
        grp AS (SELECT per.merchant_id, per.merchant_order_no, SUM(per.kept) AS kept,
                       MAX(per.bound) AS bound, SUM(per.kept > 0) AS keepers
                FROM multi JOIN per ON per.merchant_id = multi.merchant_id
                                   AND per.merchant_order_no = multi.merchant_order_no
                GROUP BY per.merchant_id, per.merchant_order_no),
        both AS (SELECT per.*, COALESCE(grp.kept, per.kept) AS group_kept,
                        COALESCE(grp.bound, per.bound) AS group_bound,
                        COALESCE(grp.keepers, per.kept > 0) AS keepers
                 FROM per LEFT JOIN grp ON grp.merchant_id = per.merchant_id
                                       AND grp.merchant_order_no = per.merchant_order_no)
        SELECT * FROM both
        WHERE paid - refunded > bound OR (group_kept > group_bound AND kept > 0)
        ORDER BY created_ms, order_id
        """,
        {"ok": SUCCESS},
    )
    out = []
    for r in rows:
        oid, net, cur = r["order_id"], r["paid"] - r["refunded"], r["currency"]
        diff = max(net - r["bound"], r["group_kept"] - r["group_bound"])
        message = (f"order {oid} of {r['amount']} {cur} was charged {r['n']} time(s) at "
                   f"{r['node']} ({r['paid']}), refunded {r['refunded']}: net {net}")
        if r["group_kept"] > r["group_bound"]:
            message += (f"; merchant order {r['merchant_id']}/{r['merchant_order_no']} keeps "
                        f"{r['group_kept']} {cur} over {r['keepers']} attempt(s)")
        out.append({
            "ref": oid, "order_id": oid, "status": r["status"], "amount": r["amount"],
            "currency": cur, "merchant_id": r["merchant_id"],
            "merchant_order_no": r["merchant_order_no"], "payments": r["n"], "paid": r["paid"],
            "refunded": r["refunded"], "net": net, "kept": r["kept"],
            "merchant_order_kept": r["group_kept"], "diff": diff, "message": message,
        })
    return out


# --- duplicates_refunded ------------------------------------------------------------------------


def duplicates_refunded(conn: sqlite3.Connection) -> list[Violation]:
    """Every charge an order does not keep is refunded, and no compensation refund takes back
    the charge an order keeps. Problems (`problem`):

    - `own_charge_refunded`: a SUCCEEDED compensation refund takes back `channel_ref` of a
      SUCCEEDED order that has no other charge;
    - `duplicate_kept`: a DUPLICATE order still keeps a charge;
    - `extra_charge_kept`: a SUCCEEDED order keeps charges beyond its amount;
    - `refunded_twice`: one charge taken back by more than one SUCCEEDED compensation refund.
    """
    rows = _rows(
        conn,
        f"""
        WITH {CHARGES},
        per AS (SELECT ref, COUNT(*) AS charges, SUM(NOT taken) AS n,
                       SUM(CASE WHEN taken THEN 0 ELSE amount END) AS kept
                FROM charges GROUP BY ref),
        own AS (
            SELECT o.order_id, MIN(r.refund_id) AS refund_id, o.channel_ref AS charge_ref
            FROM pay_orders o JOIN refund_orders r
              ON r.order_id = o.order_id AND r.charge_ref = o.channel_ref
             AND r.status = 'SUCCEEDED' AND COALESCE(r.reason, 'merchant') <> 'merchant'
            WHERE o.status = 'SUCCEEDED' AND COALESCE(o.channel_ref, '') <> ''
              AND NOT EXISTS (SELECT 1 FROM charges c
                              WHERE c.ref = o.order_id AND c.channel_ref <> o.channel_ref)
            GROUP BY o.order_id)
        SELECT 'own_charge_refunded' AS problem, o.order_id, o.status, o.amount, o.currency,
               o.created_ms, own.refund_id, own.charge_ref, per.kept, per.n, o.amount AS diff
        FROM own JOIN pay_orders o ON o.order_id = own.order_id
        LEFT JOIN per ON per.ref = own.order_id
        UNION ALL
        SELECT 'duplicate_kept', o.order_id, o.status, o.amount, o.currency, o.created_ms,
               NULL, NULL, per.kept, per.n, per.kept
        FROM pay_orders o JOIN per ON per.ref = o.order_id
        WHERE o.status = 'DUPLICATE' AND per.n > 0
        UNION ALL
        SELECT 'extra_charge_kept', o.order_id, o.status, o.amount, o.currency, o.created_ms,
               NULL, NULL, per.kept, per.n, per.kept - o.amount
        FROM pay_orders o JOIN per ON per.ref = o.order_id
        WHERE o.status = 'SUCCEEDED' AND per.kept > o.amount
        UNION ALL
        SELECT 'refunded_twice', o.order_id, o.status, o.amount, o.currency, o.created_ms,
               NULL, comp.charge_ref, per.kept, per.n,
               (comp.n - 1) * COALESCE((SELECT MIN(c.amount) FROM charges c
                    WHERE c.ref = comp.order_id AND c.channel_ref = comp.charge_ref), 0)
        FROM comp JOIN pay_orders o ON o.order_id = comp.order_id
        LEFT JOIN per ON per.ref = comp.order_id
        WHERE comp.n > 1
        ORDER BY created_ms, order_id, problem
        """,
        {"ok": SUCCESS},
    )
    out = []
    for r in rows:
        oid, cur, kept = r["order_id"], r["currency"], r["kept"] or 0
        message = {
            "own_charge_refunded": f"order {oid} is SUCCEEDED but compensation refund "
                                   f"{r['refund_id']} took back its own charge {r['charge_ref']}",
            "duplicate_kept": f"order {oid} is DUPLICATE but still keeps {r['n']} charge(s) of "
                              f"{kept} {cur}: no compensation refund took them back",
            "extra_charge_kept": f"order {oid} is SUCCEEDED for {r['amount']} {cur} but keeps "
                                 f"{r['n']} charge(s) totalling {kept}: {kept - r['amount']} "
                                 f"was not refunded",
            "refunded_twice": f"charge {r['charge_ref']} of order {oid} was taken back by more "
                              f"than one compensation refund",
        }[r["problem"]]
        v = {"ref": oid, "order_id": oid, "problem": r["problem"], "status": r["status"],
             "amount": r["amount"], "currency": cur, "kept": kept, "kept_charges": r["n"] or 0,
             "diff": r["diff"] or 0, "message": message}
        if r["charge_ref"] is not None:
            v["charge_ref"] = r["charge_ref"]
        if r["refund_id"] is not None:
            v["refund_id"] = r["refund_id"]
        out.append(v)
    return out


# --- idempotency --------------------------------------------------------------------------------


def idempotency(conn: sqlite3.Connection) -> list[Violation]:
    """Each idempotency key has at most one effect: one pay order per (merchant_id,
    idempotency_key), one refund order per (merchant_id, refund_no), one SUCCEEDED attempt per
    merchant order. Each order after the first of its group is a violation (`first` names the
    first); `diff` is the money at stake (the extra order's amount)."""
    rows = _rows(
        conn,
        """
        WITH keyed AS (
            SELECT 'pay_key' AS problem, order_id AS ref, order_id, merchant_id,
                   idempotency_key AS key, amount, currency, created_ms,
                   ROW_NUMBER() OVER w AS k, FIRST_VALUE(order_id) OVER w AS first
            FROM pay_orders WHERE (merchant_id, idempotency_key) IN
                (SELECT merchant_id, idempotency_key FROM pay_orders
                 WHERE COALESCE(idempotency_key, '') <> ''
                 GROUP BY merchant_id, idempotency_key HAVING COUNT(*) > 1)
            WINDOW w AS (PARTITION BY merchant_id, idempotency_key
                         ORDER BY created_ms, order_id)),
        refunds AS (
            SELECT 'refund_no' AS problem, refund_id AS ref, order_id, merchant_id,
                   refund_no AS key, amount, currency, created_ms, ROW_NUMBER() OVER w AS k,
                   FIRST_VALUE(refund_id) OVER w AS first
            FROM refund_orders WHERE (merchant_id, refund_no) IN
                (SELECT merchant_id, refund_no FROM refund_orders
                 WHERE COALESCE(refund_no, '') <> ''
                 GROUP BY merchant_id, refund_no HAVING COUNT(*) > 1)
            WINDOW w AS (PARTITION BY merchant_id, refund_no ORDER BY created_ms, refund_id)),
        paid AS (
            SELECT 'attempts_succeeded' AS problem, order_id AS ref, order_id, merchant_id,
                   merchant_order_no AS key, amount, currency, created_ms,
                   ROW_NUMBER() OVER w AS k, FIRST_VALUE(order_id) OVER w AS first
            FROM pay_orders WHERE status = 'SUCCEEDED' AND (merchant_id, merchant_order_no) IN
                (SELECT merchant_id, merchant_order_no FROM pay_orders WHERE attempt > 1)
            WINDOW w AS (PARTITION BY merchant_id, merchant_order_no
                         ORDER BY created_ms, order_id))
        SELECT * FROM keyed WHERE k > 1
        UNION ALL SELECT * FROM refunds WHERE k > 1
        UNION ALL SELECT * FROM paid WHERE k > 1
        ORDER BY created_ms, ref, problem
        """,
    )
    what = {
        "pay_key": "pay order {ref} repeats idempotency key {key!r} of merchant {merchant_id} "
                   "(first used by {first})",
        "refund_no": "refund {ref} repeats refund number {key!r} of merchant {merchant_id} "
                     "(first used by {first})",
        "attempts_succeeded": "order {ref} is a second SUCCEEDED attempt of merchant order "
                              "{merchant_id}/{key} (the first is {first})",
    }
    return [{
        "ref": r["ref"], "order_id": r["order_id"], "problem": r["problem"],
        "merchant_id": r["merchant_id"], "key": r["key"], "first": r["first"],
        "amount": r["amount"], "currency": r["currency"], "diff": r["amount"],
        "message": what[r["problem"]].format(**r),
    } for r in rows]


# --- no_charge_without_order --------------------------------------------------------------------


def no_charge_without_order(conn: sqlite3.Connection) -> list[Violation]:
    """Every kept charge belongs to a SUCCEEDED or HELD order (a charge taken back by a
    compensation refund is accounted for), every successful truth refund to a SUCCEEDED
    refund order."""
    rows = _rows(
        conn,
        f"""
        WITH {CHARGES}
        SELECT c.node, c.ref, c.channel_ref, 'pay' AS kind, c.amount, c.currency, c.at_ms,
               o.status AS order_status
        FROM charges c LEFT JOIN pay_orders o ON o.order_id = c.ref
        WHERE NOT c.taken AND COALESCE(o.status, '') NOT IN {_in(KEEPERS)}
        UNION ALL
        SELECT t.node, t.ref, t.channel_ref, t.kind, t.amount, t.currency, t.at_ms,
               r.status AS order_status
        FROM truth_txns t LEFT JOIN refund_orders r ON r.refund_id = t.ref
        WHERE t.kind = 'refund' AND t.status = :ok AND COALESCE(r.status, '') <> 'SUCCEEDED'
        ORDER BY at_ms, ref, channel_ref
        """,
        {"ok": SUCCESS},
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
