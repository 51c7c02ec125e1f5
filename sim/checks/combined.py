"""The oracle's checks of combined payment, coupons and trades (paysys/products/combined.py,
coupons.py, trade.py). Each passes vacuously on a run without their tables or rows.

- coupons_conserved: every coupon issued is in the table once (issued = available + locked +
  used + expired), a USED coupon belongs to a SUCCEEDED order, none stays LOCKED for an order
  that is over, and no coupon is kept by two paid orders.
- combined_legs_consistent: a SUCCEEDED combined order kept every leg, its legs add up to its
  amount and its card leg is a SUCCEEDED child of that amount; a FAILED one has every leg it
  took REVERSED; no money of a finished order stays in `liability:combined`.
- trade_paid_exactly: a PAID trade kept exactly its amount (attempts paid minus the excess
  refunded), a CLOSED one kept nothing, and every trade is PAID or CLOSED at the end.
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table

IN_FLIGHT = ("CREATED", "CHALLENGE", "PROCESSING", "UNKNOWN")


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def coupons_conserved(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "coupons"):
        return []
    out = []
    (issued,) = conn.execute("SELECT COUNT(*) FROM transitions WHERE kind='coupon' AND "
                             "event='create'").fetchone()
    counts = dict(conn.execute("SELECT status, COUNT(*) FROM coupons GROUP BY status"))
    if issued != sum(counts.values()):
        out.append({"ref": "coupons", "issued": issued, **counts,
                    "diff": sum(counts.values()) - issued,
                    "message": f"{issued} coupons were issued but the table holds "
                               f"{sum(counts.values())} ({counts})"})
    for r in _rows(conn, f"""
            SELECT c.coupon_id, c.status, c.order_id, o.status AS order_status
            FROM coupons c LEFT JOIN pay_orders o ON o.order_id = c.order_id
            WHERE (c.status = 'USED' AND COALESCE(o.status, '') <> 'SUCCEEDED')
               OR (c.status = 'LOCKED' AND COALESCE(o.status, '') NOT IN
                   ({",".join(f"'{s}'" for s in IN_FLIGHT)}))
            ORDER BY c.coupon_id"""):
        what = "used by" if r["status"] == "USED" else "still locked for"
        out.append({"ref": r["coupon_id"], "coupon_id": r["coupon_id"], "status": r["status"],
                    "order_id": r["order_id"], "order_status": r["order_status"],
                    "message": f"coupon {r['coupon_id']} is {r['status']}, {what} order "
                               f"{r['order_id'] or '(none)'} which is "
                               f"{r['order_status'] or 'missing'}"})
    if has_table(conn, "combined_legs"):
        for r in _rows(conn, """
                SELECT l.ref AS coupon_id, COUNT(*) AS n, GROUP_CONCAT(l.order_id) AS orders
                FROM combined_legs l JOIN pay_orders o ON o.order_id = l.order_id
                WHERE l.leg = 'coupon' AND o.status = 'SUCCEEDED' AND o.refunded < o.amount
                GROUP BY l.ref HAVING COUNT(*) > 1 ORDER BY l.ref"""):
            out.append({"ref": r["coupon_id"], "coupon_id": r["coupon_id"], "orders": r["orders"],
                        "message": f"coupon {r['coupon_id']} paid {r['n']} orders "
                                   f"({r['orders']})"})
    return out


def combined_legs_consistent(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "combined_legs"):
        return []
    rows = _rows(conn, """
        WITH legs AS (
            SELECT order_id, SUM(amount) AS total, SUM(status <> 'KEPT') AS not_kept,
                   SUM(status IN ('TAKEN', 'KEPT')) AS not_reversed,
                   MAX(CASE WHEN leg = 'card' THEN ref END) AS child,
                   MAX(CASE WHEN leg = 'card' THEN amount END) AS card
            FROM combined_legs GROUP BY order_id),
        transit AS (
            SELECT e.ref, SUM(p.credit) - SUM(p.debit) AS held
            FROM postings p JOIN journal_entries e ON e.entry_id = p.entry_id
            WHERE p.account = 'liability:combined' GROUP BY e.ref)
        SELECT o.order_id, o.status, o.amount, o.created_ms, l.total, l.not_kept,
               l.not_reversed, l.child, l.card, c.status AS child_status,
               c.amount AS child_amount, COALESCE(t.held, 0) AS held
        FROM pay_orders o JOIN legs l ON l.order_id = o.order_id
        LEFT JOIN pay_orders c ON c.order_id = l.child
        LEFT JOIN transit t ON t.ref = o.order_id
        WHERE o.product = 'combined' AND (
              (o.status = 'SUCCEEDED' AND (l.total <> o.amount OR l.not_kept > 0
                  OR (l.child IS NOT NULL AND (COALESCE(c.status, '') <> 'SUCCEEDED'
                                               OR c.amount <> l.card))))
           OR (o.status IN ('FAILED', 'CLOSED', 'BLOCKED') AND l.not_reversed > 0)
           OR (o.status NOT IN ('CREATED', 'CHALLENGE', 'PROCESSING', 'UNKNOWN') AND t.held <> 0))
        ORDER BY o.created_ms, o.order_id""")
    out = []
    for r in rows:
        if r["held"]:
            why, diff = f"{r['held']} of its legs is still held in liability:combined", r["held"]
        elif r["status"] == "SUCCEEDED" and r["total"] != r["amount"]:
            why, diff = f"its legs total {r['total']}", r["amount"] - r["total"]
        elif r["status"] == "SUCCEEDED" and r["not_kept"]:
            why, diff = f"{r['not_kept']} leg(s) were not kept", 0
        elif r["status"] == "SUCCEEDED":
            why = (f"its card leg {r['child']} is {r['child_status']} for {r['child_amount']} "
                   f"(leg: {r['card']})")
            diff = (r["card"] or 0) - (r["child_amount"] or 0)
        else:
            why, diff = f"{r['not_reversed']} leg(s) it took were not reversed", 0
        out.append({"ref": r["order_id"], "order_id": r["order_id"], "status": r["status"],
                    "amount": r["amount"], "diff": diff,
                    "message": f"combined order {r['order_id']} is {r['status']} for "
                               f"{r['amount']} but {why}"})
    return out


def trade_paid_exactly(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "trade_orders"):
        return []
    rows = _rows(conn, """
        WITH paid AS (SELECT parent_id, SUM(amount) AS paid FROM pay_orders
                      WHERE status = 'SUCCEEDED' AND parent_id <> '' GROUP BY parent_id),
        back AS (SELECT t.trade_id,
                        SUM(CASE WHEN r.refund_no LIKE t.trade_id || '.x%' THEN r.amount END)
                            AS excess,
                        SUM(r.amount) AS refunded
                 FROM trade_orders t JOIN refund_orders r ON r.merchant_id = t.merchant_id
                  AND (r.refund_no LIKE t.trade_id || '.x%' OR r.refund_no LIKE t.trade_id || '.c.%')
                 WHERE r.status = 'SUCCEEDED' GROUP BY t.trade_id)
        SELECT t.trade_id, t.status, t.amount, t.created_ms, COALESCE(p.paid, 0) AS paid,
               COALESCE(b.excess, 0) AS excess, COALESCE(b.refunded, 0) AS refunded
        FROM trade_orders t LEFT JOIN paid p ON p.parent_id = t.trade_id
        LEFT JOIN back b ON b.trade_id = t.trade_id
        WHERE (t.status = 'PAID' AND COALESCE(p.paid, 0) - COALESCE(b.excess, 0) <> t.amount)
           OR (t.status = 'CLOSED' AND COALESCE(p.paid, 0) <> COALESCE(b.refunded, 0))
           OR t.status NOT IN ('PAID', 'CLOSED')
        ORDER BY t.created_ms, t.trade_id""")
    out = []
    for r in rows:
        kept = r["paid"] - (r["excess"] if r["status"] == "PAID" else r["refunded"])
        expected = r["amount"] if r["status"] == "PAID" else 0
        if r["status"] in ("PAID", "CLOSED"):
            message = (f"trade {r['trade_id']} is {r['status']} for {r['amount']} but kept "
                       f"{kept} (attempts paid {r['paid']}, refunded {r['refunded']})")
        else:
            message = f"trade {r['trade_id']} is still {r['status']} at the end of the run"
        out.append({"ref": r["trade_id"], "trade_id": r["trade_id"], "status": r["status"],
                    "amount": r["amount"], "paid": r["paid"], "refunded": r["refunded"],
                    "diff": kept - expected, "message": message})
    return out


def _count(table: str, sql: str):
    def value(conn: sqlite3.Connection) -> int:
        return conn.execute(sql).fetchone()[0] if has_table(conn, table) else 0
    return value


INVARIANTS = {
    "coupons_conserved": Invariant(
        "every coupon issued is available, locked, used or expired exactly once; a used coupon "
        "belongs to a SUCCEEDED order, a locked one to an order in flight",
        coupons_conserved, ("transitions", "pay_orders")),
    "combined_legs_consistent": Invariant(
        "a SUCCEEDED combined order kept every leg (they add up to its amount, its card leg "
        "paid); a failed one reversed every leg it took; none holds money in transit",
        combined_legs_consistent, ("pay_orders", "postings", "journal_entries")),
    "trade_paid_exactly": Invariant(
        "a PAID trade kept exactly its amount (over-payments refunded), a CLOSED one nothing",
        trade_paid_exactly, ("pay_orders", "refund_orders")),
}
METRICS = {
    "combined_paid": Metric("combined orders SUCCEEDED", _count(
        "combined_legs", "SELECT COUNT(*) FROM pay_orders WHERE product='combined' AND "
        "status='SUCCEEDED'")),
    "combined_reversed": Metric("combined orders failed with their legs reversed", _count(
        "combined_legs", "SELECT COUNT(DISTINCT order_id) FROM combined_legs WHERE "
        "status='REVERSED'")),
    "coupons_used": Metric("coupons USED at the end", _count(
        "coupons", "SELECT COUNT(*) FROM coupons WHERE status='USED'")),
    "coupons_restored": Metric("coupons given back (released by a failed order, restored by "
                               "a full refund)", _count(
        "coupons", "SELECT COUNT(*) FROM transitions WHERE kind='coupon' AND event IN "
        "('release','restore')")),
    "trades_paid": Metric("trades PAID", _count(
        "trade_orders", "SELECT COUNT(*) FROM trade_orders WHERE status='PAID'")),
    "trades_overpaid": Metric("trades paid more than their amount (the excess refunded)", _count(
        "trade_orders", "SELECT COUNT(DISTINCT ref) FROM transitions WHERE kind='trade' AND "
        "event='overpaid'")),
    "trades_closed": Metric("trades CLOSED unpaid at their TTL", _count(
        "trade_orders", "SELECT COUNT(*) FROM trade_orders WHERE status='CLOSED'")),
    "trade_attempts": Metric("payment attempts of trades", _count(
        "trade_orders", "SELECT COUNT(*) FROM pay_orders WHERE parent_id IN "
        "(SELECT trade_id FROM trade_orders)")),
}
