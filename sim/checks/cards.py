"""The oracle's checks of the card-network (UnionPay-like) and carrier-billing products.

Invariants
- `carrier_cap_respected`: no phone is ever charged over its monthly cap. For each carrier node
  (the `carrier.txn` events: phone, billing month and cap of every charge and refund), the
  running sum, in the order the carrier did them, of the truth's SUCCESS charges minus refunds of
  each (phone, month) never exceeds the cap. The amounts and instants come from `truth_txns`
  (joined on node and `channel_ref` = the event's `channel_ref`), not from the mock's counters;
  a truth charge of a carrier node without its event is a violation too (it escaped the cap).
- `unionpay_issuer_routed`: every charge of a card network (`unionpay.txn` events, which name
  the issuer the network routed the card to and the truth account it debited) debits a card
  account of that issuer (`issuer:<issuer>:card:<no>`): no issuer pays for another's card.

Metrics: `unionpay_succeeded`, `issuer_declines` (unionpay orders FAILED by the issuer:
INSUFFICIENT_FUNDS, CARD_FROZEN, INVALID_CARD), `issuer_unavailable` (rejections because the
issuer was down), `issuer_refunds_rejected` (those of refunds),
`unionpay_failovers` (payments moved to another channel after
ISSUER_UNAVAILABLE), `unionpay_refunds`; `carrier_succeeded`, `carrier_capped` (FAILED with
MONTHLY_CAP_EXCEEDED), `carrier_declines` (other carrier declines), `carrier_refunds`.
Every check passes, and every metric is 0, on a run without these products.
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table

ISSUER_CODES = ("INSUFFICIENT_FUNDS", "CARD_FROZEN", "INVALID_CARD")


def _rows(conn: sqlite3.Connection, sql: str) -> list[dict]:
    cur = conn.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _ready(conn: sqlite3.Connection) -> bool:
    return has_table(conn, "events") and has_table(conn, "truth_txns")


def carrier_cap_respected(conn: sqlite3.Connection) -> list[dict]:
    if not _ready(conn):
        return []
    rows = _rows(conn, """
        WITH ev AS (
            SELECT src AS node, ref, json_extract(data, '$.channel_ref') AS channel_ref,
                   json_extract(data, '$.phone') AS phone, json_extract(data, '$.month') AS month,
                   json_extract(data, '$.cap') AS cap
            FROM events WHERE kind = 'carrier.txn'),
        nodes AS (SELECT DISTINCT node FROM ev),
        moves AS (
            SELECT ev.node, ev.phone, ev.month, ev.cap, t.ref, t.channel_ref, t.at_ms,
                   CASE t.kind WHEN 'pay' THEN t.amount ELSE -t.amount END AS delta
            FROM truth_txns t JOIN ev ON ev.node = t.node AND ev.channel_ref = t.channel_ref
            WHERE t.status = 'SUCCESS' AND t.kind IN ('pay', 'refund')),
        running AS (
            SELECT *, SUM(delta) OVER (PARTITION BY node, phone, month ORDER BY at_ms,
                                       channel_ref ROWS UNBOUNDED PRECEDING) AS used
            FROM moves)
        SELECT node, phone, month, cap, ref, at_ms, used, 'over' AS why FROM running
        WHERE used > cap
        UNION ALL
        SELECT t.node, NULL, NULL, NULL, t.ref, t.at_ms, t.amount, 'unseen' FROM truth_txns t
        WHERE t.node IN (SELECT node FROM nodes) AND t.kind = 'pay' AND t.status = 'SUCCESS'
          AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.node = t.node
                          AND ev.channel_ref = t.channel_ref)
        ORDER BY at_ms, ref""")
    out = []
    for r in rows:
        if r["why"] == "over":
            message = (f"phone {r['phone']} at {r['node']} was charged {r['used']} in billing "
                       f"month {r['month']} (after {r['ref']}), over its cap of {r['cap']}")
            diff = r["used"] - r["cap"]
        else:
            message = (f"{r['node']} charged {r['used']} for {r['ref']} with no carrier.txn "
                       f"record: the charge escaped the monthly cap")
            diff = r["used"]
        out.append({"ref": r["ref"], "node": r["node"], "phone": r["phone"],
                    "month": r["month"], "cap": r["cap"], "used": r["used"], "diff": diff,
                    "message": message})
    return out


def unionpay_issuer_routed(conn: sqlite3.Connection) -> list[dict]:
    if not _ready(conn):
        return []
    rows = _rows(conn, """
        SELECT ref, src AS node, json_extract(data, '$.issuer') AS issuer,
               json_extract(data, '$.account') AS account, json_extract(data, '$.amount') AS amount
        FROM events WHERE kind = 'unionpay.txn' AND json_extract(data, '$.kind') = 'pay'
          AND json_extract(data, '$.account') NOT LIKE 'issuer:' || json_extract(data, '$.issuer')
                                                       || ':card:%'
        ORDER BY seq""")
    return [{"ref": r["ref"], "node": r["node"], "issuer": r["issuer"], "account": r["account"],
             "diff": r["amount"] or 0,
             "message": f"{r['node']} charged {r['account']} for {r['ref']} through issuer "
                        f"{r['issuer']}, which does not hold that card"} for r in rows]


def _count(sql: str, tables: tuple[str, ...]):
    def value(conn: sqlite3.Connection) -> int:
        if not all(has_table(conn, t) for t in tables):
            return 0
        return conn.execute(sql).fetchone()[0] or 0
    return value


_CODES = "(" + ", ".join(f"'{c}'" for c in ISSUER_CODES) + ")"
_ORDERS = ("pay_orders",)
_REFUNDS = ("pay_orders", "refund_orders")


def _refunds(product: str) -> str:
    return f"""SELECT COUNT(*) FROM refund_orders r JOIN pay_orders o ON o.order_id = r.order_id
               WHERE o.product = '{product}' AND r.status = 'SUCCEEDED'"""


INVARIANTS = {
    "carrier_cap_respected": Invariant(
        "no phone number is charged over its monthly cap at a carrier (running net charges of "
        "each phone and billing month, from the ground truth)", carrier_cap_respected),
    "unionpay_issuer_routed": Invariant(
        "every card-network charge debits a card held by the issuer it was routed to",
        unionpay_issuer_routed),
}

METRICS = {
    "unionpay_succeeded": Metric(
        "card-network (unionpay) payments that succeeded",
        _count("SELECT COUNT(*) FROM pay_orders WHERE product = 'unionpay' "
               "AND status = 'SUCCEEDED'", _ORDERS)),
    "issuer_declines": Metric(
        "unionpay payments the issuing bank declined (insufficient funds, frozen, invalid card)",
        _count(f"SELECT COUNT(*) FROM pay_orders WHERE product = 'unionpay' AND status = 'FAILED' "
               f"AND error_code IN {_CODES}", _ORDERS)),
    "issuer_unavailable": Metric(
        "card-network requests rejected ISSUER_UNAVAILABLE (the card's issuer was down)",
        _count("SELECT COUNT(*) FROM events WHERE kind = 'unionpay.issuer_down'", ("events",))),
    "issuer_refunds_rejected": Metric(
        "card-network refunds rejected ISSUER_UNAVAILABLE (paysys sends them again later)",
        _count("""SELECT COUNT(*) FROM events WHERE kind = 'unionpay.issuer_down'
                  AND json_extract(data, '$.type') = 'up.refund'""", ("events",))),
    "unionpay_failovers": Metric(
        "payments moved to another channel after an ISSUER_UNAVAILABLE rejection",
        _count("""SELECT COUNT(*) FROM events WHERE kind = 'route.decision'
                  AND json_extract(data, '$.reason') LIKE 'failover from % (ISSUER_UNAVAILABLE)%'""",
               ("events",))),
    "unionpay_refunds": Metric("refunds of unionpay payments that succeeded",
                               _count(_refunds("unionpay"), _REFUNDS)),
    "carrier_succeeded": Metric(
        "carrier-billing payments that succeeded",
        _count("SELECT COUNT(*) FROM pay_orders WHERE product = 'carrier' "
               "AND status = 'SUCCEEDED'", _ORDERS)),
    "carrier_capped": Metric(
        "carrier-billing payments declined MONTHLY_CAP_EXCEEDED",
        _count("SELECT COUNT(*) FROM pay_orders WHERE product = 'carrier' AND status = 'FAILED' "
               "AND error_code = 'MONTHLY_CAP_EXCEEDED'", _ORDERS)),
    "carrier_declines": Metric(
        "carrier-billing payments declined for another reason (over the per-charge maximum, "
        "suspended line, unknown subscriber)",
        _count("SELECT COUNT(*) FROM pay_orders WHERE product = 'carrier' AND status = 'FAILED' "
               "AND error_code IN ('AMOUNT_OVER_LIMIT', 'LINE_SUSPENDED', "
               "'UNKNOWN_SUBSCRIBER')", _ORDERS)),
    "carrier_refunds": Metric("refunds of carrier-billing payments that succeeded",
                              _count(_refunds("carrier"), _REFUNDS)),
}
