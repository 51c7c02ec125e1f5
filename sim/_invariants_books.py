"""The back-office invariants of `sim.invariants`: settlement_exact, books_closed_daily,
profit_matches and reserve_matches_truth (issue 5 contract, /work/briefs/issue5.md section 5),
and `digest(conn, date)`, the archive digest of an accounting day.

Each passes vacuously on a run without back office: settlement_exact looks only at merchants
with settlements or a settlement rule, books_closed_daily and profit_matches only run when
`accounting_days` has rows, reserve_matches_truth only compares reserves that exist (a `reserve`
truth account or an `asset:reserve:*` ledger account).

**The day's entries** of an accounting day D are the journal entries with
`cutoff_ms(previous day) <= at_ms < cutoff_ms(D)` (the first day: every entry before its
cut-off). **The digest recipe** (paysys must compute the same): SHA-256, hex, over UTF-8 lines,
first one line per entry of the day in `entry_id` order

    entry_id|at_ms|ref|memo\\n

then one line per posting of those entries in `posting_id` order

    posting_id|entry_id|account|currency|debit|credit\\n

integers in decimal, a NULL ref or memo as the empty string, a NULL debit or credit as 0. A day
without entries has the digest of nothing (sha256(b"")).
"""

import hashlib
import json
import sqlite3
from bisect import bisect_right
from datetime import date, timedelta

from sim._invariants_recon import has_tables

MERCHANT = "liability:merchant:"
RESERVE = "asset:reserve:"


def _rows(conn: sqlite3.Connection, sql: str, params: tuple | dict = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _per_currency(value: str | None) -> dict[str, int]:
    """A JSON column {currency: amount} without its zero amounts."""
    return {c: a for c, a in (json.loads(value) if value else {}).items() if a}


def _nonzero(d: dict[str, int]) -> dict[str, int]:
    return {c: a for c, a in sorted(d.items()) if a}


# --- settlement_exact ---------------------------------------------------------------------------


def _merchants(conn: sqlite3.Connection) -> str:
    parts = [f"SELECT merchant_id FROM {t}" for t in ("settlements", "settlement_rules")
             if has_tables(conn, t)]
    return " UNION ".join(parts)


def _settlement_balances(conn: sqlite3.Connection, merchants: str) -> list[dict]:
    return _rows(conn, f"""
        WITH ms AS ({merchants}),
        pays AS (SELECT merchant_id, currency, SUM(amount) AS payments,
                        SUM(COALESCE(merchant_fee, 0)) AS fees
                 FROM pay_orders WHERE status = 'SUCCEEDED' GROUP BY merchant_id, currency),
        refs AS (SELECT merchant_id, currency, SUM(amount) AS refunds FROM refund_orders
                 WHERE status = 'SUCCEEDED' AND COALESCE(reason, 'merchant') = 'merchant'
                 GROUP BY merchant_id, currency),
        led AS (SELECT substr(account, {len(MERCHANT) + 1}) AS merchant_id, currency,
                       SUM(COALESCE(credit, 0)) - SUM(COALESCE(debit, 0)) AS owed
                FROM postings WHERE account LIKE '{MERCHANT}%' GROUP BY account, currency),
        split AS (SELECT o.merchant_id AS payer, substr(p.account, {len(MERCHANT) + 1}) AS receiver,
                         p.currency, SUM(COALESCE(p.credit, 0) - COALESCE(p.debit, 0)) AS amount
                  FROM postings p JOIN journal_entries e ON e.entry_id = p.entry_id
                  JOIN pay_orders o ON o.order_id = e.ref
                  WHERE p.account LIKE '{MERCHANT}%' AND p.account <> '{MERCHANT}' || o.merchant_id
                  GROUP BY o.merchant_id, p.account, p.currency),
        sout AS (SELECT payer AS merchant_id, currency, SUM(amount) AS amount FROM split
                 GROUP BY payer, currency),
        sin AS (SELECT receiver AS merchant_id, currency, SUM(amount) AS amount FROM split
                GROUP BY receiver, currency),
        paid AS (SELECT s.merchant_id,
                        COALESCE((SELECT MIN(p.currency) FROM postings p
                                  WHERE p.entry_id = s.entry_id
                                    AND p.account = '{MERCHANT}' || s.merchant_id),
                                 (SELECT MIN(o.currency) FROM pay_orders o
                                  WHERE o.merchant_id = s.merchant_id), 'CNY') AS currency,
                        s.amount
                 FROM settlements s WHERE s.status = 'paid'),
        paid_sum AS (SELECT merchant_id, currency, SUM(amount) AS paid FROM paid
                     GROUP BY merchant_id, currency),
        keys AS (SELECT merchant_id, currency FROM pays UNION SELECT merchant_id, currency FROM refs
                 UNION SELECT merchant_id, currency FROM led UNION SELECT merchant_id, currency
                 FROM sin UNION SELECT merchant_id, currency FROM paid_sum)
        SELECT k.merchant_id, k.currency, COALESCE(paid_sum.paid, 0) AS paid,
               COALESCE(led.owed, 0) AS owed, COALESCE(pays.payments, 0) AS payments,
               COALESCE(refs.refunds, 0) AS refunds, COALESCE(pays.fees, 0) AS fees,
               COALESCE(sout.amount, 0) AS splits_out, COALESCE(sin.amount, 0) AS splits_in
        FROM keys k JOIN ms ON ms.merchant_id = k.merchant_id
        LEFT JOIN pays ON pays.merchant_id = k.merchant_id AND pays.currency = k.currency
        LEFT JOIN refs ON refs.merchant_id = k.merchant_id AND refs.currency = k.currency
        LEFT JOIN led ON led.merchant_id = k.merchant_id AND led.currency = k.currency
        LEFT JOIN sout ON sout.merchant_id = k.merchant_id AND sout.currency = k.currency
        LEFT JOIN sin ON sin.merchant_id = k.merchant_id AND sin.currency = k.currency
        LEFT JOIN paid_sum ON paid_sum.merchant_id = k.merchant_id
                          AND paid_sum.currency = k.currency
        ORDER BY k.merchant_id, k.currency""")


def _truth_payouts(conn: sqlite3.Connection, merchants: str) -> list[dict]:
    """Per merchant: paid settlements vs what its truth account `merchant:<id>` received."""
    return _rows(conn, f"""
        WITH ms AS ({merchants} UNION SELECT substr(account, 10) FROM truth_accounts
                    WHERE account LIKE 'merchant:%'),
        truth AS (SELECT substr(account, 10) AS merchant_id,
                         SUM(balance) - SUM(initial) AS received
                  FROM truth_accounts WHERE account LIKE 'merchant:%' GROUP BY account),
        paid AS (SELECT merchant_id, SUM(amount) AS paid FROM settlements
                 WHERE status = 'paid' GROUP BY merchant_id)
        SELECT ms.merchant_id, COALESCE(paid.paid, 0) AS paid,
               COALESCE(truth.received, 0) AS received
        FROM ms LEFT JOIN paid ON paid.merchant_id = ms.merchant_id
        LEFT JOIN truth ON truth.merchant_id = ms.merchant_id
        WHERE COALESCE(paid.paid, 0) <> COALESCE(truth.received, 0)
        ORDER BY ms.merchant_id""")


STATEMENT = ("carried_in", "payments", "refunds", "fees", "splits_out", "splits_in", "net")


def _closing(s: dict) -> int:
    """What a settlement statement carries over: carried_in + payments - refunds - fees -
    splits_out + splits_in - net."""
    v = {k: s[k] or 0 for k in STATEMENT}
    return (v["carried_in"] + v["payments"] - v["refunds"] - v["fees"] - v["splits_out"]
            + v["splits_in"] - v["net"])


def _statements(conn: sqlite3.Connection) -> list[dict]:
    """Each paid settlement paid its `net`, and what it carried over is the next settlement's
    `carried_in` (the statements of one merchant chain up)."""
    rows = _rows(conn, f"""
        SELECT settlement_id, merchant_id, status, amount, created_ms, {', '.join(STATEMENT)}
        FROM settlements ORDER BY merchant_id, created_ms, settlement_id""")
    out = []
    for n, s in enumerate(rows):
        after = rows[n + 1] if n + 1 < len(rows) else None
        sid, m = s["settlement_id"], s["merchant_id"]
        base = {"ref": f"merchant:{m}", "merchant_id": m, "settlement_id": sid}
        if s["status"] != "paid":
            continue
        if (s["net"] or 0) != s["amount"]:
            out.append({**base, "problem": "net_not_paid", "net": s["net"], "amount": s["amount"],
                        "diff": (s["net"] or 0) - s["amount"],
                        "message": f"settlement {sid} of merchant {m} paid {s['amount']} but its "
                                   f"statement's net is {s['net']}"})
        if after is not None and after["merchant_id"] == m \
                and (after["carried_in"] or 0) != _closing(s):
            out.append({**base, "problem": "carry", "next": after["settlement_id"],
                        "carried_over": _closing(s), "carried_in": after["carried_in"],
                        "diff": (after["carried_in"] or 0) - _closing(s),
                        "message": f"settlement {sid} of merchant {m} carries over "
                                   f"{_closing(s)} (carried_in + payments - refunds - fees - "
                                   f"splits_out + splits_in - net) but the next one, "
                                   f"{after['settlement_id']}, carries in {after['carried_in']}"})
    return out


def settlement_exact(conn: sqlite3.Connection) -> list[dict]:
    """Per merchant with settlements or a rule: paid + still owed == payments - merchant refunds
    - fees - splits_out + splits_in; the truth account `merchant:<id>` received exactly the paid
    settlements; each paid settlement's statement adds up and chains to the next."""
    merchants = _merchants(conn)
    if not merchants:
        return []
    out = []
    for r in _settlement_balances(conn, merchants):
        earned = r["payments"] - r["refunds"] - r["fees"] - r["splits_out"] + r["splits_in"]
        diff = r["paid"] + r["owed"] - earned
        if diff:
            m = r["merchant_id"]
            out.append({
                "ref": f"merchant:{m}", "merchant_id": m, "problem": "balance", **r,
                "earned": earned, "diff": diff,
                "message": f"merchant {m} was paid {r['paid']} {r['currency']} and is owed "
                           f"{r['owed']} but earned {earned} (payments {r['payments']} - refunds "
                           f"{r['refunds']} - fees {r['fees']} - splits out {r['splits_out']} "
                           f"+ splits in {r['splits_in']})"})
    if has_tables(conn, "settlements"):
        for r in _truth_payouts(conn, merchants):
            m = r["merchant_id"]
            out.append({"ref": f"merchant:{m}", "merchant_id": m, "problem": "truth", **r,
                        "diff": r["paid"] - r["received"],
                        "message": f"merchant {m}'s paid settlements total {r['paid']} but its "
                                   f"bank account merchant:{m} received {r['received']}"})
        out += _statements(conn)
    return out


# --- books_closed_daily -------------------------------------------------------------------------


def _days(conn: sqlite3.Connection) -> list[dict]:
    if not has_tables(conn, "accounting_days"):
        return []
    return _rows(conn, "SELECT * FROM accounting_days ORDER BY cutoff_ms, date")


def _bucket(cutoffs: list[int], at_ms: int) -> int | None:
    """The index of the accounting day an entry at `at_ms` belongs to (None: after the last)."""
    i = bisect_right(cutoffs, at_ms)
    return i if i < len(cutoffs) else None


def _digests(conn: sqlite3.Connection, days: list[dict]) -> list[str]:
    cutoffs = [d["cutoff_ms"] for d in days]
    hashers = [hashlib.sha256() for _ in days]
    for entry_id, at_ms, ref, memo in conn.execute(
            "SELECT entry_id, at_ms, ref, memo FROM journal_entries ORDER BY entry_id"):
        i = _bucket(cutoffs, at_ms)
        if i is not None:
            hashers[i].update(f"{entry_id}|{at_ms}|{ref or ''}|{memo or ''}\n".encode())
    for pid, entry_id, account, currency, debit, credit, at_ms in conn.execute(
            "SELECT p.posting_id, p.entry_id, p.account, p.currency, p.debit, p.credit, e.at_ms "
            "FROM postings p JOIN journal_entries e ON e.entry_id = p.entry_id "
            "ORDER BY p.posting_id"):
        i = _bucket(cutoffs, at_ms)
        if i is not None:
            hashers[i].update(
                f"{pid}|{entry_id}|{account}|{currency}|{debit or 0}|{credit or 0}\n".encode())
    return [h.hexdigest() for h in hashers]


def digest(conn: sqlite3.Connection, day: str) -> str:
    """The archive digest of accounting day `day` (recipe in the module doc)."""
    days = _days(conn)
    index = next((i for i, d in enumerate(days) if d["date"] == day), None)
    if index is None:
        raise ValueError(f"date: no accounting day {day!r} in accounting_days")
    return _digests(conn, days[: index + 1])[index]


def _day_sums(conn: sqlite3.Connection, days: list[dict]) -> list[dict[str, dict[str, int]]]:
    """Per accounting day (its own entries): debits, credits, fee income and channel costs per
    currency."""
    cutoffs = [d["cutoff_ms"] for d in days]
    sums: list[dict[str, dict[str, int]]] = [
        {"debits": {}, "credits": {}, "income": {}, "costs": {}} for _ in days]
    for at_ms, account, currency, debit, credit in conn.execute(f"""
            SELECT e.at_ms, CASE WHEN p.account = 'income:fee' THEN 'income'
                                 WHEN p.account LIKE 'expense:channel:%' THEN 'costs'
                                 ELSE '' END,
                   p.currency, SUM(COALESCE(p.debit, 0)), SUM(COALESCE(p.credit, 0))
            FROM postings p JOIN journal_entries e ON e.entry_id = p.entry_id
            WHERE e.at_ms < {max(cutoffs)} GROUP BY e.at_ms, 2, p.currency"""):
        i = _bucket(cutoffs, at_ms)
        if i is None:
            continue
        s = sums[i]
        s["debits"][currency] = s["debits"].get(currency, 0) + debit
        s["credits"][currency] = s["credits"].get(currency, 0) + credit
        if account == "income":
            s["income"][currency] = s["income"].get(currency, 0) + credit - debit
        elif account == "costs":
            s["costs"][currency] = s["costs"].get(currency, 0) + debit - credit
    return sums


def _gaps(days: list[dict]) -> list[dict]:
    out = []
    dates = sorted(d["date"] for d in days)
    for a, b in zip(dates, dates[1:], strict=False):
        missing = date.fromisoformat(a) + timedelta(days=1)
        while missing < date.fromisoformat(b):
            out.append({"ref": missing.isoformat(), "date": missing.isoformat(), "problem": "gap",
                        "message": f"accounting day {missing.isoformat()} was never closed "
                                   f"(between {a} and {b})"})
            missing += timedelta(days=1)
    return out


def books_closed_daily(conn: sqlite3.Connection) -> list[dict]:
    """No gap between the first and the last closed day; each day balanced, its cumulative
    debits and credits per currency those of the postings before its cut-off, its digest the
    recipe's (module doc)."""
    days = _days(conn)
    if not days:
        return []
    out = _gaps(days)
    sums, digests = _day_sums(conn, days), _digests(conn, days)
    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    for d, s, dig in zip(days, sums, digests, strict=True):
        for c, a in s["debits"].items():
            debits[c] = debits.get(c, 0) + a
        for c, a in s["credits"].items():
            credits[c] = credits.get(c, 0) + a
        base = {"ref": d["date"], "date": d["date"], "cutoff_ms": d["cutoff_ms"]}
        if d["balanced"] != 1:
            out.append({**base, "problem": "unbalanced", "balanced": d["balanced"],
                        "message": f"accounting day {d['date']} closed unbalanced "
                                   f"(balanced = {d['balanced']})"})
        for col, want in (("debits", debits), ("credits", credits)):
            got, want = _per_currency(d[col]), _nonzero(want)
            if got != want:
                diff = sum(got.values()) - sum(want.values())
                out.append({**base, "problem": col, "recorded": got, "postings": want,
                            "diff": diff,
                            "message": f"accounting day {d['date']} records {col} {got} but the "
                                       f"postings before its cut-off total {want}"})
        if d["digest"] != dig:
            out.append({**base, "problem": "digest", "recorded": d["digest"], "recomputed": dig,
                        "message": f"accounting day {d['date']}: digest {d['digest']} is not "
                                   f"the recipe's {dig} (entries or postings changed)"})
    return out


# --- profit_matches -----------------------------------------------------------------------------


_LEDGER_PROFIT = """
    SELECT p.currency, SUM(COALESCE(p.credit, 0) - COALESCE(p.debit, 0)) AS profit
    FROM postings p JOIN journal_entries e ON e.entry_id = p.entry_id
    WHERE (p.account = 'income:fee' OR p.account LIKE 'expense:channel:%') AND e.at_ms < ?
    GROUP BY p.currency"""


def _ledger_profit(conn: sqlite3.Connection, before_ms: int | None) -> dict[str, int]:
    """income:fee net credits - expense:channel:* net debits per currency, of the entries
    before `before_ms` (None: all)."""
    limit = before_ms if before_ms is not None else 2**62
    return _nonzero(dict(conn.execute(_LEDGER_PROFIT, (limit,)).fetchall()))


def profit_matches(conn: sqlite3.Connection) -> list[dict]:
    """The ledger's profit (fee income - channel costs) per currency equals the fees of the
    SUCCEEDED orders minus the fees the channels really took (truth pays); the closed days'
    profits add up to the ledger's profit up to the last cut-off."""
    days = _days(conn)
    if not days:
        return []
    ledger = _ledger_profit(conn, None)
    truth = _nonzero(dict(conn.execute("""
        WITH x AS (SELECT currency, COALESCE(merchant_fee, 0) AS amount FROM pay_orders
                   WHERE status = 'SUCCEEDED'
                   UNION ALL
                   SELECT currency, -COALESCE(fee, 0) FROM truth_txns
                   WHERE kind = 'pay' AND status = 'SUCCESS')
        SELECT currency, SUM(amount) FROM x GROUP BY currency""").fetchall()))
    out = []
    for cur in sorted(ledger.keys() | truth.keys()):
        if ledger.get(cur, 0) != truth.get(cur, 0):
            out.append({"ref": cur, "currency": cur, "problem": "ledger", "ledger": ledger.get(cur, 0),
                        "expected": truth.get(cur, 0),
                        "diff": ledger.get(cur, 0) - truth.get(cur, 0),
                        "message": f"the ledger's profit in {cur} is {ledger.get(cur, 0)} (fee "
                                   f"income - channel costs) but the orders' fees minus the "
                                   f"channels' fees make {truth.get(cur, 0)}"})
    last = max(d["cutoff_ms"] for d in days)
    upto = _ledger_profit(conn, last)
    days_sum: dict[str, int] = {}
    for d in days:
        for c, a in _per_currency(d["profit"]).items():
            days_sum[c] = days_sum.get(c, 0) + a
    days_sum = _nonzero(days_sum)
    for cur in sorted(upto.keys() | days_sum.keys()):
        if upto.get(cur, 0) != days_sum.get(cur, 0):
            out.append({"ref": cur, "currency": cur, "problem": "days", "days": days_sum.get(cur, 0),
                        "ledger": upto.get(cur, 0),
                        "diff": days_sum.get(cur, 0) - upto.get(cur, 0),
                        "message": f"the closed days' profits add up to {days_sum.get(cur, 0)} "
                                   f"{cur} but the ledger's profit up to the last cut-off is "
                                   f"{upto.get(cur, 0)}"})
    return out


# --- reserve_matches_truth ----------------------------------------------------------------------


def reserve_matches_truth(conn: sqlite3.Connection) -> list[dict]:
    """asset:reserve:<node> in the ledger == the truth balance of account `reserve` at <node>;
    a ledger reserve at a node without one must be zero."""
    rows = _rows(conn, f"""
        WITH truth AS (SELECT node, currency, SUM(balance) AS balance FROM truth_accounts
                       WHERE account = 'reserve' GROUP BY node, currency),
        led AS (SELECT substr(account, {len(RESERVE) + 1}) AS node, currency,
                       SUM(COALESCE(debit, 0)) - SUM(COALESCE(credit, 0)) AS balance
                FROM postings WHERE account LIKE '{RESERVE}%' GROUP BY account, currency),
        keys AS (SELECT node, currency FROM truth UNION SELECT node, currency FROM led)
        SELECT k.node, k.currency, COALESCE(led.balance, 0) AS ledger,
               COALESCE(truth.balance, 0) AS truth, truth.balance IS NOT NULL AS known
        FROM keys k LEFT JOIN led ON led.node = k.node AND led.currency = k.currency
        LEFT JOIN truth ON truth.node = k.node AND truth.currency = k.currency
        WHERE COALESCE(led.balance, 0) <> COALESCE(truth.balance, 0)
        ORDER BY k.node, k.currency""")
    out = []
    for r in rows:
        where = (f"the reserve account at {r['node']} holds {r['truth']}" if r["known"]
                 else f"{r['node']} has no reserve account")
        out.append({"ref": f"{RESERVE}{r['node']}", "node": r["node"], "currency": r["currency"],
                    "ledger": r["ledger"], "truth": r["truth"], "diff": r["ledger"] - r["truth"],
                    "message": f"paysys's {RESERVE}{r['node']} holds {r['ledger']} "
                               f"{r['currency']} but {where}"})
    return out
