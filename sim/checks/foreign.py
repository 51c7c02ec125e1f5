"""The oracle's checks of foreign card payments (外卡支付, product "foreign").

Invariants:
- `fx_both_amounts`: every SUCCEEDED foreign order records its settlement (settle_amount,
  settle_currency, fx_rate_ppm > 0) and settle_amount is its amount converted at its own rate
  (half-up, at least 1 minor unit, paysys/products/foreign.py).
- `fx_matches_platform`: what the platform really captured and gave back for each foreign order
  (its `pp.txn` events) is, in the settle currency, what the order records: the capture equals
  settle_amount at fx_rate_ppm, each refund is its amount converted down at that rate, and the
  refunds never give back more than the capture.
Metrics: foreign_payments, fx_volume_settle, foreign_abandoned, foreign_refunds,
foreign_webhooks_repeated.
All pass vacuously (or are 0) on a run without foreign orders.
"""

import sqlite3

from paysys.products.foreign import convert_down, settle_amount
from sim.checks.base import Invariant, Metric, has_table

PRODUCT = "foreign"
COLUMNS = ("product", "settle_amount", "settle_currency", "fx_rate_ppm")


def _present(conn: sqlite3.Connection) -> bool:
    """Whether the run has pay orders that can record a settlement (older run databases and
    hand-made test tables may lack the columns: then every check passes, every metric is 0)."""
    if not has_table(conn, "pay_orders"):
        return False
    names = {row[1] for row in conn.execute("PRAGMA table_info(pay_orders)")}
    return all(c in names for c in COLUMNS)


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def fx_both_amounts(conn: sqlite3.Connection) -> list[dict]:
    if not _present(conn):
        return []
    rows = _rows(conn, """
        SELECT order_id, amount, currency, settle_amount, settle_currency, fx_rate_ppm, created_ms
        FROM pay_orders WHERE product = ? AND status = 'SUCCEEDED'
        ORDER BY created_ms, order_id""", (PRODUCT,))
    out = []
    for r in rows:
        oid, rate, settle, cur = r["order_id"], r["fx_rate_ppm"] or 0, r["settle_amount"] or 0, \
            r["settle_currency"] or ""
        if not cur or rate <= 0 or settle <= 0:
            out.append({"ref": oid, "order_id": oid, "amount": r["amount"],
                        "currency": r["currency"], "settle_amount": settle,
                        "settle_currency": cur, "fx_rate_ppm": rate, "diff": r["amount"],
                        "message": f"foreign order {oid} is SUCCEEDED but records no settlement "
                                   f"(settle_amount {settle}, settle_currency {cur!r}, "
                                   f"fx_rate_ppm {rate})"})
            continue
        expected = settle_amount(r["amount"], r["currency"], cur, rate)
        if expected != settle:
            out.append({"ref": oid, "order_id": oid, "amount": r["amount"],
                        "currency": r["currency"], "settle_amount": settle,
                        "settle_currency": cur, "fx_rate_ppm": rate, "expected": expected,
                        "diff": settle - expected,
                        "message": f"foreign order {oid} of {r['amount']} {r['currency']} at "
                                   f"{rate} ppm records {settle} {cur}, but the conversion "
                                   f"gives {expected}"})
    return out


def fx_matches_platform(conn: sqlite3.Connection) -> list[dict]:
    if not _present(conn) or not has_table(conn, "events"):
        return []
    rows = _rows(conn, """
        WITH txns AS (
            SELECT json_extract(data, '$.kind') AS kind,
                   json_extract(data, '$.out_trade_no') AS order_id,
                   json_extract(data, '$.amount') AS amount,
                   json_extract(data, '$.settle_amount') AS settle,
                   json_extract(data, '$.settle_currency') AS settle_currency,
                   json_extract(data, '$.fx_rate_ppm') AS rate, at_ms, ref
            FROM events WHERE kind = 'pp.txn')
        SELECT t.kind, t.order_id, t.ref, t.amount, t.settle, t.settle_currency, t.rate,
               t.at_ms, o.amount AS order_amount, o.currency, o.status,
               o.settle_amount, o.settle_currency AS order_settle_currency, o.fx_rate_ppm
        FROM txns t JOIN pay_orders o ON o.order_id = t.order_id
        WHERE o.product = ?
        ORDER BY t.at_ms, t.ref""", (PRODUCT,))
    out, refunded = [], {}
    for r in rows:
        oid = r["order_id"]
        problem = None
        if (r["settle_currency"], r["rate"]) != (r["order_settle_currency"], r["fx_rate_ppm"]):
            problem = (f"the platform settled {r['ref']} in {r['settle_currency']} at "
                       f"{r['rate']} ppm but order {oid} records {r['order_settle_currency']!r} "
                       f"at {r['fx_rate_ppm']} ppm", r["settle"] - (r["settle_amount"] or 0))
        elif r["kind"] == "pay" and r["settle"] != r["settle_amount"]:
            problem = (f"the platform captured {r['settle']} {r['settle_currency']} for order "
                       f"{oid} but it records settle_amount {r['settle_amount']}",
                       r["settle"] - (r["settle_amount"] or 0))
        elif r["kind"] == "refund":
            want = convert_down(r["amount"], r["currency"], r["settle_currency"], r["rate"])
            refunded[oid] = refunded.get(oid, 0) + r["settle"]
            if r["settle"] != want:
                problem = (f"refund {r['ref']} of {r['amount']} {r['currency']} gave back "
                           f"{r['settle']} {r['settle_currency']}, the order's rate gives {want}",
                           r["settle"] - want)
            elif refunded[oid] > (r["settle_amount"] or 0):
                problem = (f"the refunds of order {oid} gave back {refunded[oid]} "
                           f"{r['settle_currency']}, more than its capture of "
                           f"{r['settle_amount']}", refunded[oid] - (r["settle_amount"] or 0))
        if problem is not None:
            out.append({"ref": r["ref"], "order_id": oid, "kind": r["kind"],
                        "settle_amount": r["settle"], "settle_currency": r["settle_currency"],
                        "diff": problem[1], "message": problem[0]})
    return out


def _scalar(conn: sqlite3.Connection, sql: str) -> int:
    if not _present(conn):
        return 0
    (value,) = conn.execute(sql, (PRODUCT,)).fetchone()
    return value or 0


def _foreign_payments(conn):
    return _scalar(conn, "SELECT COUNT(*) FROM pay_orders WHERE product = ? AND "
                         "status = 'SUCCEEDED'")


def _fx_volume(conn):
    return _scalar(conn, "SELECT SUM(settle_amount) FROM pay_orders WHERE product = ? AND "
                         "status = 'SUCCEEDED'")


def _abandoned(conn):
    return _scalar(conn, "SELECT COUNT(*) FROM pay_orders WHERE product = ? AND "
                         "status = 'CLOSED'")


def _refunds(conn):
    if not has_table(conn, "refund_orders") or "reason" not in {
            row[1] for row in conn.execute("PRAGMA table_info(refund_orders)")}:
        return 0
    return _scalar(conn, "SELECT COUNT(*) FROM refund_orders r JOIN pay_orders o ON "
                         "o.order_id = r.order_id WHERE o.product = ? AND r.status = 'SUCCEEDED' "
                         "AND COALESCE(r.reason, 'merchant') = 'merchant'")


def _repeated(conn):
    if not has_table(conn, "events"):
        return 0
    return _scalar(conn, "SELECT COUNT(*) FROM events e JOIN pay_orders o ON o.order_id = e.ref "
                         "WHERE o.product = ? AND e.kind = 'channel.notify' AND "
                         "json_extract(e.data, '$.duplicate')")


INVARIANTS = {
    "fx_both_amounts": Invariant(
        "every SUCCEEDED foreign order records settle_amount, settle_currency and fx_rate_ppm, "
        "and settle_amount is its amount converted at its rate (half-up, at least 1)",
        fx_both_amounts, ("pay_orders",)),
    "fx_matches_platform": Invariant(
        "what the foreign platform captured and refunded per order, in the settle currency, is "
        "what the order records at its rate; refunds never give back more than the capture",
        fx_matches_platform, ("pay_orders",)),
}

METRICS = {
    "foreign_payments": Metric("SUCCEEDED foreign card payments", _foreign_payments),
    "fx_volume_settle": Metric("settle-currency minor units captured by SUCCEEDED foreign "
                               "payments", _fx_volume),
    "foreign_abandoned": Metric("foreign orders CLOSED (the buyer never approved)", _abandoned),
    "foreign_refunds": Metric("SUCCEEDED merchant refunds of foreign payments", _refunds),
    "foreign_webhooks_repeated": Metric("webhooks of foreign orders paysys had already "
                                        "settled (repeats, duplicates)", _repeated),
}
