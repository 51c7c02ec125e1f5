"""The oracle's checks of the internal products (balance, coins, credit: paysys/products/
accounts.py) on a finished run database.

Invariants:
- `balances_never_negative`: no user's stored value (`liability:user:*`), coins
  (`liability:coins:*`) or frozen amount (`liability:frozen:*`) was ever below zero, after any
  journal entry (running balance per account and currency, entry by entry).
- `credit_within_limit`: no user ever owed (`asset:credit:*`, running) more than the credit
  ceiling (limit + overdraft) recorded in `account_settings`.
- `coins_conserved`: per currency, coins bought (the coin value of the SUCCEEDED `coins.buy`
  movements) - spent (SUCCEEDED coin payments) + refunded (SUCCEEDED refunds of coin payments)
  = held (the `liability:coins:*` accounts): the orders and the books tell the same story.
Metrics: balance_declines, credit_declines, coins_bought, coins_spent, credit_repaid,
balance_payments, coin_payments, credit_payments.
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table

WATCHED = ("liability:user:", "liability:coins:", "liability:frozen:")


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _running(conn: sqlite3.Connection, prefix: str, sign: str) -> str:
    """SQL: the running balance of every account starting with `prefix`, entry by entry
    (`sign` = 'credit - debit' or 'debit - credit')."""
    return f"""
        WITH per AS (SELECT account, currency, entry_id, SUM({sign}) AS net FROM postings
                     WHERE substr(account, 1, {len(prefix)}) = '{prefix}'
                     GROUP BY account, currency, entry_id),
        run AS (SELECT account, currency, entry_id,
                       SUM(net) OVER (PARTITION BY account, currency ORDER BY entry_id) AS bal
                FROM per)"""


def balances_never_negative(conn: sqlite3.Connection) -> list[dict]:
    out = []
    for prefix in WATCHED:
        rows = _rows(conn, _running(conn, prefix, "credit - debit") + """
            SELECT r.account, r.currency, MIN(r.bal) AS low,
                   (SELECT e.ref FROM run r2 JOIN journal_entries e ON e.entry_id = r2.entry_id
                    WHERE r2.account = r.account AND r2.currency = r.currency
                    ORDER BY r2.bal, r2.entry_id LIMIT 1) AS ref
            FROM run r GROUP BY r.account, r.currency HAVING MIN(r.bal) < 0
            ORDER BY r.account, r.currency""")
        out += [{"ref": r["ref"] or r["account"], "account": r["account"],
                 "currency": r["currency"], "lowest": r["low"], "diff": r["low"],
                 "message": f"{r['account']} went down to {r['low']} {r['currency']} "
                            f"(at the entry of {r['ref']})"} for r in rows]
    return out


def credit_within_limit(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "account_settings"):
        return []
    row = conn.execute("SELECT value FROM account_settings WHERE name='credit_ceiling'"
                       ).fetchone()
    if row is None:
        return []
    ceiling = row[0]
    rows = _rows(conn, _running(conn, "asset:credit:", "debit - credit") + """
        SELECT account, currency, MAX(bal) AS high FROM run
        GROUP BY account, currency HAVING MAX(bal) > ? ORDER BY account, currency""",
                 (ceiling,))
    return [{"ref": r["account"], "account": r["account"], "currency": r["currency"],
             "owed": r["high"], "ceiling": ceiling, "diff": r["high"] - ceiling,
             "message": f"{r['account']} owed {r['high']} {r['currency']}, beyond the credit "
                        f"ceiling {ceiling} (limit + overdraft)"} for r in rows]


def coins_conserved(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "movements") or not has_table(conn, "account_settings"):
        return []
    row = conn.execute("SELECT value FROM account_settings WHERE name='coin_price'").fetchone()
    price = row[0] if row else 1
    rows = _rows(conn, """
        WITH x AS (
            SELECT currency, credited - credited % ? AS bought, 0 AS spent, 0 AS refunded,
                   0 AS held FROM movements WHERE kind = 'coins' AND status = 'SUCCEEDED'
            UNION ALL
            SELECT currency, 0, amount, 0, 0 FROM pay_orders
            WHERE product = 'coins' AND status = 'SUCCEEDED'
            UNION ALL
            SELECT r.currency, 0, 0, r.amount, 0 FROM refund_orders r
            JOIN pay_orders o ON o.order_id = r.order_id
            WHERE o.product = 'coins' AND r.status = 'SUCCEEDED'
            UNION ALL
            SELECT currency, 0, 0, 0, credit - debit FROM postings
            WHERE account LIKE 'liability:coins:%')
        SELECT currency, SUM(bought) AS bought, SUM(spent) AS spent, SUM(refunded) AS refunded,
               SUM(held) AS held FROM x GROUP BY currency
        HAVING SUM(bought) - SUM(spent) + SUM(refunded) <> SUM(held) ORDER BY currency""",
                 (price,))
    out = []
    for r in rows:
        expected = r["bought"] - r["spent"] + r["refunded"]
        out.append({"ref": r["currency"], "currency": r["currency"], "bought": r["bought"],
                    "spent": r["spent"], "refunded": r["refunded"], "held": r["held"],
                    "diff": r["held"] - expected,
                    "message": f"coins bought {r['bought']} - spent {r['spent']} + refunded "
                               f"{r['refunded']} = {expected} {r['currency']} of coin value, "
                               f"but the coin accounts hold {r['held']}"})
    return out


def _count(sql: str, table: str = "pay_orders"):
    def value(conn: sqlite3.Connection) -> int:
        if not has_table(conn, table):
            return 0
        (n,) = conn.execute(sql).fetchone()
        return n or 0
    return value


def _coins(sql: str):
    def value(conn: sqlite3.Connection) -> int:
        if not has_table(conn, "movements") or not has_table(conn, "account_settings"):
            return 0
        row = conn.execute("SELECT value FROM account_settings WHERE name='coin_price'"
                           ).fetchone()
        price = row[0] if row else 1
        (n,) = conn.execute(sql, (price,)).fetchone()
        return n or 0
    return value


INVARIANTS = {
    "balances_never_negative": Invariant(
        "no user's stored value, coins or frozen amount ever went below zero",
        balances_never_negative, ("postings", "journal_entries")),
    "credit_within_limit": Invariant(
        "no user ever owed more on the credit line than its limit plus the overdraft",
        credit_within_limit, ("postings",)),
    "coins_conserved": Invariant(
        "coins bought - spent + refunded = the coins held, orders and books alike",
        coins_conserved, ("postings", "pay_orders", "refund_orders")),
}

METRICS = {
    "balance_payments": Metric("balance payments that succeeded", _count(
        "SELECT COUNT(*) FROM pay_orders WHERE product='balance' AND status='SUCCEEDED'")),
    "balance_declines": Metric("balance payments declined for want of balance", _count(
        "SELECT COUNT(*) FROM pay_orders WHERE product='balance' AND "
        "error_code='INSUFFICIENT_BALANCE'")),
    "coin_payments": Metric("coin payments that succeeded", _count(
        "SELECT COUNT(*) FROM pay_orders WHERE product='coins' AND status='SUCCEEDED'")),
    "coin_declines": Metric("coin payments declined for want of coins", _count(
        "SELECT COUNT(*) FROM pay_orders WHERE product='coins' AND "
        "error_code='INSUFFICIENT_COINS'")),
    "credit_payments": Metric("credit payments that succeeded", _count(
        "SELECT COUNT(*) FROM pay_orders WHERE product='credit' AND status='SUCCEEDED'")),
    "credit_declines": Metric("credit payments declined beyond the credit line", _count(
        "SELECT COUNT(*) FROM pay_orders WHERE product='credit' AND error_code='CREDIT_LIMIT'")),
    "coins_bought": Metric("coins bought (whole coins, SUCCEEDED coins.buy)", _coins(
        "SELECT SUM(credited / ?1) FROM movements WHERE kind='coins' AND status='SUCCEEDED'")),
    "coins_spent": Metric("coins spent in SUCCEEDED coin payments", _coins(
        "SELECT SUM(amount) / ?1 FROM pay_orders WHERE product='coins' AND "
        "status='SUCCEEDED'")),
    "credit_repaid": Metric("credit repayments that succeeded", _count(
        "SELECT COUNT(*) FROM movements WHERE kind='repay' AND status='SUCCEEDED'",
        "movements")),
}
