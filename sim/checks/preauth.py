"""The oracle's checks of pre-authorisations (预授权) and of cancels versus refunds (撤销 vs 退款).

A pre-auth's captures are the pay orders whose `parent_id` is it (product `preauth`); a capture
is taken back by a SUCCEEDED refund order of method `cancel` (预授权完成撤销). Money is counted
from the bank's ground truth (truth pays of the captures, truth refunds of their capture
cancels) and from paysys's records alike.

Invariants:
- `preauth_captured_once`: per pre-auth, successful captures minus capture cancels is 0 or 1
  (in the truth and in paysys), and 1 exactly when the pre-auth is CAPTURED.
- `preauth_within_authorised`: per pre-auth, the net captured money (truth and paysys) never
  exceeds the authorised amount, and paysys's `captured` column says the paysys figure.
- `pending_resolved_once`: every pending entry is resolved at most once (its `ledger.pending`
  events), a posted one posted at most its amount through an existing entry, at most one is
  pending per pre-auth, and one still pending at the end belongs to an AUTHORISED pre-auth
  whose hold is still valid (expiry after the end of the run); nothing pending for a final one.
Metrics: pre-auths by outcome, partial captures, capture cancels, re-captures; merchant refunds
by method (`refunds_cancelled`, `refunds_refunded`) and cancels sent again as refunds.
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table

_CAPTURES = """
caps AS (SELECT o.order_id, o.parent_id AS preauth_id, o.amount, o.status FROM pay_orders o
         WHERE o.product = 'preauth' AND o.parent_id <> ''),
cancels AS (SELECT r.refund_id, r.order_id, r.amount FROM refund_orders r
            JOIN caps ON caps.order_id = r.order_id
            WHERE r.method = 'cancel' AND r.status = 'SUCCEEDED'),
truth_caps AS (SELECT caps.preauth_id, COUNT(*) AS n, SUM(t.amount) AS amount FROM truth_txns t
               JOIN caps ON caps.order_id = t.ref
               WHERE t.kind = 'pay' AND t.status = 'SUCCESS' GROUP BY caps.preauth_id),
truth_back AS (SELECT caps.preauth_id, COUNT(*) AS n, SUM(t.amount) AS amount FROM truth_txns t
               JOIN refund_orders r ON r.refund_id = t.ref JOIN caps ON caps.order_id = r.order_id
               WHERE t.kind = 'refund' AND t.status = 'SUCCESS' AND r.method = 'cancel'
               GROUP BY caps.preauth_id),
ours AS (SELECT caps.preauth_id, SUM(caps.status = 'SUCCEEDED') AS n,
                SUM(CASE WHEN caps.status = 'SUCCEEDED' THEN caps.amount ELSE 0 END) AS amount
         FROM caps GROUP BY caps.preauth_id),
ours_back AS (SELECT caps.preauth_id, COUNT(*) AS n, SUM(cancels.amount) AS amount
              FROM cancels JOIN caps ON caps.order_id = cancels.order_id
              GROUP BY caps.preauth_id),
net AS (SELECT p.preauth_id, p.status, p.amount AS authorised, p.captured, p.created_ms,
               COALESCE(tc.n, 0) - COALESCE(tb.n, 0) AS truth_n,
               COALESCE(tc.amount, 0) - COALESCE(tb.amount, 0) AS truth_amount,
               COALESCE(o.n, 0) - COALESCE(ob.n, 0) AS ours_n,
               COALESCE(o.amount, 0) - COALESCE(ob.amount, 0) AS ours_amount
        FROM preauth_orders p
        LEFT JOIN truth_caps tc ON tc.preauth_id = p.preauth_id
        LEFT JOIN truth_back tb ON tb.preauth_id = p.preauth_id
        LEFT JOIN ours o ON o.preauth_id = p.preauth_id
        LEFT JOIN ours_back ob ON ob.preauth_id = p.preauth_id)"""
_TABLES = ("preauth_orders", "pay_orders", "refund_orders", "truth_txns")


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _ready(conn: sqlite3.Connection, tables: tuple[str, ...] = _TABLES) -> bool:
    return all(has_table(conn, t) for t in tables)


def captured_once(conn: sqlite3.Connection) -> list[dict]:
    if not _ready(conn):
        return []
    rows = _rows(conn, f"""WITH {_CAPTURES}
        SELECT * FROM net WHERE truth_n NOT IN (0, 1) OR ours_n NOT IN (0, 1)
           OR truth_n <> ours_n OR (status = 'CAPTURED') <> (ours_n = 1)
        ORDER BY created_ms, preauth_id""")
    return [{"ref": r["preauth_id"], "status": r["status"], "truth_captures": r["truth_n"],
             "captures": r["ours_n"], "diff": r["truth_amount"] - r["ours_amount"],
             "message": f"pre-auth {r['preauth_id']} is {r['status']} with {r['ours_n']} net "
                        f"capture(s) in paysys and {r['truth_n']} at the bank (expected 0 or "
                        f"1, the same, and 1 exactly when CAPTURED)"} for r in rows]


def within_authorised(conn: sqlite3.Connection) -> list[dict]:
    if not _ready(conn):
        return []
    rows = _rows(conn, f"""WITH {_CAPTURES}
        SELECT * FROM net WHERE truth_amount > authorised OR ours_amount > authorised
           OR truth_amount <> ours_amount OR captured <> ours_amount
        ORDER BY created_ms, preauth_id""")
    return [{"ref": r["preauth_id"], "authorised": r["authorised"], "captured": r["captured"],
             "truth_captured": r["truth_amount"], "orders_captured": r["ours_amount"],
             "diff": max(r["truth_amount"], r["ours_amount"]) - r["authorised"],
             "message": f"pre-auth {r['preauth_id']} authorised {r['authorised']}: net captured "
                        f"{r['ours_amount']} by its orders, {r['truth_amount']} at the bank, "
                        f"{r['captured']} recorded"} for r in rows]


def pending_resolved_once(conn: sqlite3.Connection) -> list[dict]:
    if not _ready(conn, ("pending_entries", "preauth_orders", "events", "run")):
        return []
    end = conn.execute("SELECT value FROM run WHERE key = 'end_ms'").fetchone()
    end_ms = int(end[0]) if end else 2**62
    rows = _rows(conn, """
        WITH res AS (SELECT CAST(json_extract(data, '$.pending_id') AS INTEGER) AS pending_id,
                            COUNT(*) AS n FROM events WHERE kind = 'ledger.pending'
                            AND json_extract(data, '$.status') <> 'pending' GROUP BY 1),
        open AS (SELECT ref, COUNT(*) AS n FROM pending_entries WHERE status = 'pending'
                 GROUP BY ref)
        SELECT e.pending_id, e.ref, e.status, e.amount, e.posted, e.entry_id, e.created_ms,
               COALESCE(res.n, 0) AS resolutions, p.status AS preauth_status, p.expire_ms,
               COALESCE(open.n, 0) AS open_n,
               (SELECT SUM(debit) FROM postings s WHERE s.entry_id = e.entry_id
                AND s.account = e.debit) AS entry_debit
        FROM pending_entries e LEFT JOIN res ON res.pending_id = e.pending_id
        LEFT JOIN preauth_orders p ON p.preauth_id = e.ref
        LEFT JOIN open ON open.ref = e.ref
        ORDER BY e.created_ms, e.pending_id""")
    out = []
    for r in rows:
        problem = None
        if r["resolutions"] > 1 or (r["status"] == "pending" and r["resolutions"]):
            problem = f"resolved {r['resolutions']} time(s) but is {r['status']}"
        elif r["status"] != "pending" and r["resolutions"] != 1:
            problem = f"is {r['status']} without its resolution in the trace"
        elif r["status"] == "posted" and (r["posted"] > r["amount"]
                                          or r["entry_debit"] != r["posted"]):
            problem = (f"posted {r['posted']} of {r['amount']} through entry {r['entry_id']} "
                       f"debiting {r['entry_debit']}")
        elif r["open_n"] > 1:
            problem = f"is one of {r['open_n']} pending entries of {r['ref']}"
        elif r["status"] == "pending" and (r["preauth_status"] != "AUTHORISED"
                                           or r["expire_ms"] <= end_ms):
            problem = (f"is still pending at the end for a pre-auth {r['preauth_status']} whose "
                       f"hold expired at {r['expire_ms']} (run end {end_ms})")
        if problem:
            out.append({"ref": r["ref"], "pending_id": r["pending_id"], "status": r["status"],
                        "amount": r["amount"], "posted": r["posted"], "diff": r["amount"],
                        "message": f"pending entry {r['pending_id']} of {r['ref']} {problem}"})
    return out


def _count(conn: sqlite3.Connection, sql: str, tables: tuple[str, ...] = _TABLES) -> int:
    return int(conn.execute(sql).fetchone()[0] or 0) if _ready(conn, tables) else 0


def _status(status: str):
    return lambda conn: _count(conn, f"SELECT COUNT(*) FROM preauth_orders WHERE status = "
                                     f"'{status}'")


def _ever(conn: sqlite3.Connection) -> int:
    return _count(conn, "SELECT COUNT(DISTINCT ref) FROM transitions WHERE kind = 'preauth' "
                        "AND to_status = 'AUTHORISED'")


_CAP = ("SELECT COUNT(*) FROM pay_orders o JOIN preauth_orders p ON p.preauth_id = o.parent_id "
        "WHERE o.product = 'preauth' AND o.status = 'SUCCEEDED'")
_MERCHANT = ("SELECT COUNT(*) FROM refund_orders r JOIN pay_orders o ON o.order_id = r.order_id "
             "WHERE r.reason = 'merchant' AND r.status = 'SUCCEEDED' AND o.product <> 'preauth' ")

INVARIANTS = {
    "preauth_captured_once": Invariant(
        "every pre-authorisation is captured at most once net of capture cancels, in paysys and "
        "at the bank alike, and exactly when it is CAPTURED", captured_once),
    "preauth_within_authorised": Invariant(
        "no pre-authorisation captures (net) more than it authorised; the bank's truth, the "
        "capture orders and the pre-auth's own record agree", within_authorised),
    "pending_resolved_once": Invariant(
        "every pending ledger entry is resolved (posted / voided / expired) at most once, posts "
        "at most its amount, and none is left pending unless its hold is still valid",
        pending_resolved_once),
}
METRICS = {
    "preauths": Metric("pre-authorisations asked for", lambda c: _count(
        c, "SELECT COUNT(*) FROM preauth_orders", ("preauth_orders",))),
    "preauth_authorised": Metric("pre-authorisations the bank granted", _ever),
    "preauth_declined": Metric("pre-authorisations that failed (declined, card frozen...)",
                               _status("FAILED")),
    "preauth_captured": Metric("pre-authorisations ending CAPTURED", _status("CAPTURED")),
    "preauth_cancelled": Metric("pre-authorisations cancelled (预授权撤销)", _status("CANCELLED")),
    "preauth_expired": Metric("pre-authorisations whose hold lapsed", _status("EXPIRED")),
    "preauth_partial_captures": Metric("successful captures of less than authorised", lambda c:
                                       _count(c, _CAP + " AND o.amount < p.amount")),
    "preauth_capture_cancels": Metric("captures cancelled (预授权完成撤销)", lambda c: _count(
        c, "SELECT COUNT(*) FROM refund_orders r JOIN pay_orders o ON o.order_id = r.order_id "
           "WHERE o.product = 'preauth' AND r.method = 'cancel' AND r.status = 'SUCCEEDED'")),
    "preauth_recaptured": Metric("pre-authorisations captured again after a capture cancel",
                                 lambda c: _count(c, "SELECT COUNT(*) FROM (SELECT o.parent_id "
                                                  "FROM pay_orders o WHERE o.product = 'preauth'"
                                                  " AND o.status = 'SUCCEEDED' GROUP BY "
                                                  "o.parent_id HAVING COUNT(*) > 1)")),
    "preauth_unknown": Metric("pre-authorisations and operations whose answer was unknown "
                              "(resolved by query)", lambda c: _count(
        c, "SELECT COUNT(DISTINCT ref) FROM transitions WHERE kind IN ('preauth', 'preauth_op') "
           "AND to_status = 'UNKNOWN'", ("transitions",))),
    "refunds_cancelled": Metric("merchant refunds done as a cancel (撤销: same day, fee back)",
                                lambda c: _count(c, _MERCHANT + "AND r.method = 'cancel'")),
    "refunds_refunded": Metric("merchant refunds done as a refund (退款)",
                               lambda c: _count(c, _MERCHANT + "AND r.method = 'refund'")),
    "cancel_fallbacks": Metric("cancels the channel declined as too late, sent again as refunds",
                               lambda c: _count(c, "SELECT COUNT(*) FROM events WHERE kind = "
                                                   "'refund.method' AND json_extract(data, "
                                                   "'$.method') = 'refund' AND json_extract(data,"
                                                   " '$.reason') LIKE 'the channel declined%'",
                                                ("events",))),
}
