"""The oracle's checks of quick pay (快捷支付): card agreements signed, unbound, refused.

Read from the payment system's `agreements` (one row per user, card and channel) and its quick
pay orders. Invariant `agreements_settled`: at the end no agreement is still `revoking` (an
unbinding the bank never confirmed), the liveness of `agreement.unsign`.
"""

import sqlite3

from sim.checks.base import Invariant, Metric, has_table


def _count(conn: sqlite3.Connection, table: str, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0] or 0) if has_table(conn, table) else 0


def signed(conn: sqlite3.Connection) -> int:
    return _count(conn, "agreements", "SELECT COUNT(*) FROM agreements")


def revoked(conn: sqlite3.Connection) -> int:
    return _count(conn, "agreements", "SELECT COUNT(*) FROM agreements WHERE status = 'revoked'")


def sign_failures(conn: sqlite3.Connection) -> int:
    """Quick orders that failed while signing: a sign request left, no pay request did."""
    return _count(conn, "pay_orders", """
        SELECT COUNT(*) FROM pay_orders o WHERE o.product = 'quick' AND o.status = 'FAILED'
        AND EXISTS (SELECT 1 FROM channel_requests r WHERE r.ref = o.order_id AND r.kind = 'sign')
        AND NOT EXISTS (SELECT 1 FROM channel_requests r WHERE r.ref = o.order_id
                        AND r.kind = 'pay')""")


def declined(conn: sqlite3.Connection) -> int:
    return _count(conn, "pay_orders", "SELECT COUNT(*) FROM pay_orders WHERE product = 'quick' "
                                      "AND status = 'FAILED'")


def settled(conn: sqlite3.Connection) -> list[dict]:
    if not has_table(conn, "agreements"):
        return []
    rows = conn.execute("SELECT agreement_no, user_id, channel FROM agreements "
                        "WHERE status = 'revoking' ORDER BY agreement_no").fetchall()
    return [{"ref": no, "user_id": user, "channel": channel,
             "message": f"agreement {no} of user {user} at {channel} is still revoking at the "
                        "end of the run: the bank never confirmed the unbinding"}
            for no, user, channel in rows]


INVARIANTS = {
    "agreements_settled": Invariant(
        "after the grace period no card agreement is still revoking: every unbinding was "
        "confirmed by its bank", settled),
}
METRICS = {
    "agreements_signed": Metric("card agreements signed (quick pay, one per user, card and "
                                "channel)", signed),
    "agreements_revoked": Metric("card agreements unbound and confirmed by the bank", revoked),
    "quick_sign_failures": Metric("quick payments failed because the card agreement could not "
                                  "be signed", sign_failures),
    "quick_failed": Metric("quick payments that failed (declined, OTP, sign...)", declined),
}
