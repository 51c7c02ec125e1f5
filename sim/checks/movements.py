"""The oracle's checks of the money movements (paysys/products/movements*.py): top-ups,
withdrawals, transfers, payouts.

Invariants:
- `movements_match_truth`: every SUCCEEDED withdrawal or payout was paid by its channel exactly
  once, for its amount (one SUCCESS truth `payout` whose ref is the movement id); a FAILED one
  not at all; no channel payout names a movement id paysys does not know.
- `topups_match_charges`: a top-up (coins purchase, repayment) is SUCCEEDED exactly when its
  card charge (the pay order it names) SUCCEEDED, and then credited that charge's amount less
  the merchant's fee.
- `frozen_released`: once every withdrawal and payout is final, nothing is left frozen
  (`liability:frozen:*` all zero).
Metrics: topups, withdrawals, withdrawals_failed, transfers, payouts, payouts_failed,
movements_refused (requests the gateway refused, e.g. a transfer to oneself or short of
balance), movements_unknown (movements that went through UNKNOWN).
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table

PAID_OUT = "('withdraw', 'payout')"
TYPES = ("'topup.create', 'coins.buy', 'credit.repay', 'transfer.create', 'withdraw.create', "
         "'payout.create'")


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def movements_match_truth(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "movements") or not has_table(conn, "truth_txns"):
        return []
    rows = _rows(conn, f"""
        WITH paid AS (SELECT ref, COUNT(*) AS n, SUM(amount) AS amount, MIN(node) AS node
                      FROM truth_txns WHERE kind = 'payout' AND status = 'SUCCESS'
                      GROUP BY ref)
        SELECT m.movement_id AS ref, m.kind, m.status, m.amount, m.currency, m.created_ms,
               COALESCE(p.n, 0) AS n, COALESCE(p.amount, 0) AS paid, p.node
        FROM movements m LEFT JOIN paid p ON p.ref = m.movement_id
        WHERE m.kind IN {PAID_OUT} AND (
              (m.status = 'SUCCEEDED' AND (COALESCE(p.n, 0) <> 1 OR p.amount <> m.amount))
           OR (m.status = 'FAILED' AND COALESCE(p.n, 0) > 0))
        UNION ALL
        SELECT p.ref, 'unknown', NULL, 0, NULL, 0, p.n, p.amount, p.node FROM paid p
        WHERE p.ref LIKE 'V%' AND p.ref NOT IN (SELECT movement_id FROM movements)
        ORDER BY created_ms, ref""")
    out = []
    for r in rows:
        if r["status"] is None:
            message = (f"{r['node']} paid out {r['paid']} for {r['ref']}, a movement paysys "
                       "does not know")
            diff = r["paid"]
        elif r["status"] == "FAILED":
            message = (f"{r['kind']} {r['ref']} is FAILED but {r['node']} paid it out "
                       f"{r['n']} time(s) ({r['paid']} {r['currency']})")
            diff = r["paid"]
        else:
            message = (f"{r['kind']} {r['ref']} is SUCCEEDED for {r['amount']} "
                       f"{r['currency']} but its channel paid it out {r['n']} time(s) "
                       f"({r['paid']})")
            diff = r["amount"] - r["paid"]
        out.append({"ref": r["ref"], "kind": r["kind"], "status": r["status"],
                    "amount": r["amount"], "payouts": r["n"], "paid": r["paid"], "diff": diff,
                    "message": message})
    return out


def topups_match_charges(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "movements"):
        return []
    rows = _rows(conn, """
        SELECT m.movement_id AS ref, m.kind, m.status, m.amount, m.credited, m.child_id,
               o.status AS charge, o.amount - o.merchant_fee AS net
        FROM movements m LEFT JOIN pay_orders o ON o.order_id = m.child_id
        WHERE m.kind IN ('topup', 'coins', 'repay') AND m.status IN ('SUCCEEDED', 'FAILED')
          AND ((m.status = 'SUCCEEDED') <> (COALESCE(o.status, '') = 'SUCCEEDED')
               OR (m.status = 'SUCCEEDED' AND m.credited <> o.amount - o.merchant_fee))
        ORDER BY m.created_ms, m.movement_id""")
    return [{"ref": r["ref"], "kind": r["kind"], "status": r["status"],
             "charge": r["charge"], "credited": r["credited"], "net": r["net"],
             "diff": (r["credited"] or 0) - (r["net"] or 0) if r["charge"] == "SUCCEEDED"
             else r["credited"] or 0,
             "message": f"{r['kind']} {r['ref']} is {r['status']} (credited {r['credited']}) "
                        f"but its card charge {r['child_id'] or '(none)'} is "
                        f"{r['charge'] or 'missing'}"} for r in rows]


def frozen_released(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "movements"):
        return []
    (open_,) = conn.execute(f"SELECT COUNT(*) FROM movements WHERE kind IN {PAID_OUT} AND "
                            "status NOT IN ('SUCCEEDED', 'FAILED')").fetchone()
    if open_:
        return []       # orders_final says so; what is frozen for them is legitimately frozen
    rows = _rows(conn, """
        SELECT account, currency, SUM(credit) - SUM(debit) AS held FROM postings
        WHERE account LIKE 'liability:frozen:%' GROUP BY account, currency
        HAVING SUM(credit) - SUM(debit) <> 0 ORDER BY account, currency""")
    return [{"ref": r["account"], "account": r["account"], "currency": r["currency"],
             "held": r["held"], "diff": r["held"],
             "message": f"{r['account']} still holds {r['held']} {r['currency']} frozen though "
                        "every withdrawal and payout is final"} for r in rows]


def _count(sql: str, table: str = "movements"):
    def value(conn: sqlite3.Connection) -> int:
        if not has_table(conn, table):
            return 0
        (n,) = conn.execute(sql).fetchone()
        return n or 0
    return value


def _ok(kind: str, status: str = "SUCCEEDED"):
    return _count(f"SELECT COUNT(*) FROM movements WHERE kind='{kind}' AND status='{status}'")


INVARIANTS = {
    "movements_match_truth": Invariant(
        "every succeeded withdrawal or payout was paid by its channel exactly once; a failed "
        "one not at all", movements_match_truth, ("truth_txns",)),
    "topups_match_charges": Invariant(
        "a top-up succeeded exactly when its card charge did, crediting the charge less the fee",
        topups_match_charges, ("pay_orders",)),
    "frozen_released": Invariant(
        "nothing is left frozen once every withdrawal and payout is final", frozen_released,
        ("postings",)),
}

METRICS = {
    "topups": Metric("top-ups that succeeded", _ok("topup")),
    "topups_failed": Metric("top-ups that failed (their card charge did)", _ok("topup",
                                                                               "FAILED")),
    "withdrawals": Metric("withdrawals paid to the card", _ok("withdraw")),
    "withdrawals_failed": Metric("withdrawals declined (the balance released)",
                                 _ok("withdraw", "FAILED")),
    "transfers": Metric("transfers between users that succeeded", _ok("transfer")),
    "payouts": Metric("merchant payouts paid to a card or a wallet", _ok("payout")),
    "payouts_failed": Metric("merchant payouts declined (the balance released)",
                             _ok("payout", "FAILED")),
    "movements_unknown": Metric("withdrawals and payouts whose outcome was once unknown", _count(
        "SELECT COUNT(DISTINCT ref) FROM transitions WHERE kind='movement' AND "
        "to_status='UNKNOWN'", "transitions")),
    "movements_refused": Metric("movement requests refused at once (to oneself, short of "
                                "balance, nothing owed...)", _count(
        "SELECT COUNT(*) FROM events WHERE kind='gateway.reject' AND "
        f"json_extract(data, '$.type') IN ({TYPES})", "events")),
}
