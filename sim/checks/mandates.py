"""The oracle's checks of agreement pay / withholding (协议支付/代扣): mandates and debits.

Invariants:
- `no_debit_without_mandate`: every successful withholding debit the bank made (event
  `bank.txn` with a `mandate_ref`) came before the bank revoked that mandate (event
  `bank.mandate` with status REVOKED: events of one node are in the order it acted), and every
  SUCCEEDED `withhold` order names a mandate of the same merchant and user that paysys had
  signed (ACTIVE) before the order was created.
- `mandates_settled`: at the end no mandate is still SIGNING or REVOKING.
Metrics count signed and revoked mandates and the debits refused because the mandate was revoked
(MANDATE_REVOKED) or the card was short (INSUFFICIENT_FUNDS).
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table


def _count(conn: sqlite3.Connection, table: str, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0] or 0) if has_table(conn, table) else 0


def _debits(code: str):
    def value(conn: sqlite3.Connection) -> int:
        return _count(conn, "pay_orders", "SELECT COUNT(*) FROM pay_orders WHERE product = "
                      f"'withhold' AND status = 'FAILED' AND error_code = '{code}'")
    return value


def signed(conn: sqlite3.Connection) -> int:
    return _count(conn, "mandates", "SELECT COUNT(DISTINCT ref) FROM transitions "
                                    "WHERE kind = 'mandate' AND to_status = 'ACTIVE'")


def revoked(conn: sqlite3.Connection) -> int:
    return _count(conn, "mandates", "SELECT COUNT(*) FROM mandates WHERE status = 'REVOKED'")


def debits(conn: sqlite3.Connection) -> int:
    return _count(conn, "pay_orders", "SELECT COUNT(*) FROM pay_orders WHERE product = "
                                      "'withhold' AND status = 'SUCCEEDED'")


def no_debit_without_mandate(conn: sqlite3.Connection) -> list[dict]:
    out = []
    for ref, mandate_ref, txn_seq, revoked_seq in conn.execute("""
            SELECT t.ref, json_extract(t.data, '$.mandate_ref'), t.seq, MIN(m.seq)
            FROM events t JOIN events m ON m.kind = 'bank.mandate'
              AND m.ref = json_extract(t.data, '$.mandate_ref')
              AND json_extract(m.data, '$.status') = 'REVOKED' AND m.src = t.src
            WHERE t.kind = 'bank.txn' AND json_extract(t.data, '$.mandate_ref') IS NOT NULL
            GROUP BY t.seq HAVING MIN(m.seq) < t.seq ORDER BY t.seq""").fetchall():
        out.append({"ref": ref, "mandate_no": mandate_ref, "txn_seq": txn_seq,
                    "revoked_seq": revoked_seq,
                    "message": f"order {ref} was debited under mandate {mandate_ref} after the "
                               "bank had revoked it"})
    if not has_table(conn, "mandates"):
        return out
    for ref, mandate_no, created, why in conn.execute("""
            SELECT o.order_id, o.mandate_no, o.created_ms,
                   CASE WHEN m.mandate_no IS NULL THEN 'no such mandate'
                        WHEN m.merchant_id <> o.merchant_id OR m.user_id <> o.user_id
                        THEN 'a mandate of another merchant or user'
                        ELSE 'a mandate not yet signed' END
            FROM pay_orders o LEFT JOIN mandates m ON m.mandate_no = o.mandate_no
            WHERE o.product = 'withhold' AND o.status = 'SUCCEEDED' AND (m.mandate_no IS NULL
               OR m.merchant_id <> o.merchant_id OR m.user_id <> o.user_id
               OR NOT EXISTS (SELECT 1 FROM transitions x WHERE x.kind = 'mandate'
                              AND x.ref = o.mandate_no AND x.to_status = 'ACTIVE'
                              AND x.at_ms <= o.created_ms))
            ORDER BY o.created_ms, o.order_id""").fetchall():
        out.append({"ref": ref, "mandate_no": mandate_no, "created_ms": created,
                    "message": f"withhold order {ref} succeeded under {why} ({mandate_no!r})"})
    return out


def settled(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "mandates"):
        return []
    return [{"ref": no, "status": status, "updated_ms": at,
             "message": f"mandate {no} is still {status} at the end of the run"}
            for no, status, at in conn.execute(
                "SELECT mandate_no, status, updated_ms FROM mandates WHERE status IN "
                "('SIGNING', 'REVOKING') ORDER BY updated_ms, mandate_no").fetchall()]


INVARIANTS = {
    "no_debit_without_mandate": Invariant(
        "no withholding debit succeeded after the bank revoked its mandate, and every SUCCEEDED "
        "withhold order names a mandate of its merchant and user signed before it",
        no_debit_without_mandate, ("events", "pay_orders", "transitions")),
    "mandates_settled": Invariant(
        "after the grace period no mandate is still SIGNING or REVOKING", settled),
}
METRICS = {
    "mandates_signed": Metric("withholding mandates signed (reached ACTIVE)", signed),
    "mandates_revoked": Metric("withholding mandates revoked (by the merchant, or by the user "
                               "at the bank)", revoked),
    "debits_succeeded": Metric("withholding debits that succeeded", debits),
    "debits_refused_revoked": Metric("withholding debits refused because the mandate was "
                                     "revoked (MANDATE_REVOKED)", _debits("MANDATE_REVOKED")),
    "debits_refused_funds": Metric("withholding debits refused because the card was short "
                                   "(INSUFFICIENT_FUNDS)", _debits("INSUFFICIENT_FUNDS")),
}
