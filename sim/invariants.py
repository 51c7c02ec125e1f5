"""The invariants the oracle checks on a finished run database, as a table.

`CHECKS` maps every name of `sim.catalogue.INVARIANTS` to a function `(conn) -> violations`. A
check reads the run database (docs/run-database.md) with set-based SQL only (GROUP BY and joins,
no per-row queries) so that it stays well under a second on 100 000 orders, and returns a list
of violations, each a JSON-able dict with at least:

- `ref`: the order or refund id it concerns, else the account, node or currency;
- `message`: what is wrong, in plain words;
- the numbers involved, and `diff` (signed minor units) when money is involved: the oracle picks
  the violation with the largest `abs(diff)` as the worst.

Violations come in a deterministic order (by time where there is one, then by id), so `first`
and `last` are stable. Ground-truth transactions count as successful when `status = 'SUCCESS'`.

Acceptable outcomes. An operation in flight when a fault hits (a pay whose reply was lost, a
refund sent into a crash, a notification duplicated or late) may legitimately end in any final
state, as long as that state agrees with what the channel really did. So no check expects a
fixed outcome ("this payment must succeed"): each compares paysys's records with the ground
truth (`truth_txns`, `truth_accounts`) and with its own books. A payment that failed while the
bank never charged is fine; one that failed while the bank kept the money is not.

The order and charge checks (orders_match_truth, no_double_charge, duplicates_refunded,
idempotency, no_charge_without_order) live in `sim._invariants_orders`, which defines a pay
order's *kept charges*: its successful truth charges that no SUCCEEDED compensation refund
(`refund_orders.reason <> 'merchant'`, `charge_ref` = the charge's `channel_ref`) took back.
"""

import sqlite3
from collections.abc import Callable

import paysys.products  # noqa: F401  (its account families join the chart)
from paysys.ledger import EXTERNAL
from sim import checks
from sim._invariants_books import (
    books_closed_daily,
    profit_matches,
    reserve_matches_truth,
    settlement_exact,
)
from sim._invariants_orders import (
    PAY_UNPAID,
    duplicates_refunded,
    idempotency,
    no_charge_without_order,
    no_double_charge,
    orders_match_truth,
)
from sim._invariants_recon import recon_exact, recon_resolved

__all__ = ["CHECKS", "PAY_FINAL", "PAY_UNPAID", "REFUND_FINAL", "TABLES", "books_closed_daily",
           "duplicates_refunded", "idempotency", "no_charge_without_order", "no_double_charge",
           "orders_match_truth", "profit_matches", "recon_exact", "recon_resolved",
           "reserve_matches_truth", "settlement_exact"]

SUCCESS = "SUCCESS"
PAY_FINAL = ("SUCCEEDED", "FAILED", "CLOSED", "BLOCKED", "HELD", "DUPLICATE")
REFUND_FINAL = ("SUCCEEDED", "FAILED")
PLATFORM_ACCOUNT = "platform"

Violation = dict


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# --- ledger -------------------------------------------------------------------------------------


def entries_balanced(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT p.entry_id, e.ref, e.memo, e.at_ms, p.currency,
               SUM(COALESCE(p.debit, 0)) AS debits, SUM(COALESCE(p.credit, 0)) AS credits
        FROM postings p LEFT JOIN journal_entries e ON e.entry_id = p.entry_id
        GROUP BY p.entry_id, p.currency
        HAVING SUM(COALESCE(debit, 0)) <> SUM(COALESCE(credit, 0))
        ORDER BY p.entry_id, p.currency
        """,
    )
    out = []
    for r in rows:
        ref = r["ref"] or f"entry:{r['entry_id']}"
        out.append({
            "ref": ref, "entry_id": r["entry_id"], "memo": r["memo"], "at_ms": r["at_ms"],
            "currency": r["currency"], "debits": r["debits"], "credits": r["credits"],
            "diff": r["debits"] - r["credits"],
            "message": f"journal entry {r['entry_id']} ({ref}, {r['memo']}) is unbalanced in "
                       f"{r['currency']}: debits {r['debits']} != credits {r['credits']}",
        })
    return out


def trial_balance_zero(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT currency, SUM(COALESCE(debit, 0)) AS debits, SUM(COALESCE(credit, 0)) AS credits
        FROM postings GROUP BY currency
        HAVING SUM(COALESCE(debit, 0)) <> SUM(COALESCE(credit, 0)) ORDER BY currency
        """,
    )
    return [{
        "ref": r["currency"], "currency": r["currency"], "debits": r["debits"],
        "credits": r["credits"], "diff": r["debits"] - r["credits"],
        "message": f"the trial balance in {r['currency']} is not zero: debits {r['debits']}, "
                   f"credits {r['credits']}",
    } for r in rows]


def external_matches_ledger(conn: sqlite3.Connection) -> list[Violation]:
    """For every family of external (single-entry) accounts (paysys.ledger.EXTERNAL: merchants,
    users' stored value...), each external balance equals its ledger account."""
    out = []
    for led_prefix, ext_prefix in EXTERNAL.items():
        rows = _rows(conn, f"""
            WITH led AS (
                SELECT substr(account, {len(led_prefix) + 1}) AS owner, currency,
                       SUM(COALESCE(credit, 0)) - SUM(COALESCE(debit, 0)) AS balance
                FROM postings WHERE substr(account, 1, {len(led_prefix)}) = ?
                GROUP BY account, currency),
            ext AS (
                SELECT substr(account, {len(ext_prefix) + 1}) AS owner, currency,
                       SUM(balance) AS balance
                FROM ext_balances WHERE substr(account, 1, {len(ext_prefix)}) = ?
                GROUP BY account, currency),
            keys AS (SELECT owner, currency FROM led UNION SELECT owner, currency FROM ext)
            SELECT k.owner, k.currency, ext.balance AS external, led.balance AS ledger
            FROM keys k
            LEFT JOIN led ON led.owner = k.owner AND led.currency = k.currency
            LEFT JOIN ext ON ext.owner = k.owner AND ext.currency = k.currency
            WHERE COALESCE(ext.balance, 0) <> COALESCE(led.balance, 0)
            ORDER BY k.owner, k.currency
            """, (led_prefix, ext_prefix))
        for r in rows:
            external, ledger = r["external"] or 0, r["ledger"] or 0
            what = ("has no external balance" if r["external"] is None
                    else f"external balance {external}")
            owner = ext_prefix.rstrip(":")
            out.append({
                "ref": f"{ext_prefix}{r['owner']}", f"{owner}_id": r["owner"],
                "currency": r["currency"], "external": external, "ledger": ledger,
                "diff": external - ledger,
                "message": f"{owner} {r['owner']}: {what} {r['currency']} but the ledger account "
                           f"{led_prefix}{r['owner']} holds {ledger}",
            })
    return out


# --- ground truth -------------------------------------------------------------------------------


def conservation(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT node, currency, SUM(initial) AS start, SUM(balance) AS end
        FROM truth_accounts GROUP BY node, currency HAVING SUM(initial) <> SUM(balance)
        ORDER BY node, currency
        """,
    )
    return [{
        "ref": r["node"], "node": r["node"], "currency": r["currency"], "initial": r["start"],
        "balance": r["end"], "diff": r["end"] - r["start"],
        "message": f"money was {'created' if r['end'] > r['start'] else 'destroyed'} at "
                   f"{r['node']}: its accounts held {r['start']} {r['currency']} at the start "
                   f"and {r['end']} at the end",
    } for r in rows]


def channel_matches_truth(conn: sqlite3.Connection) -> list[Violation]:
    """Per truth node and currency, and for any other `asset:channel:*` account with money."""
    rows = _rows(
        conn,
        """
        WITH nodes AS (SELECT DISTINCT node FROM truth_accounts),
        truth AS (
            SELECT node, currency, SUM(balance) - SUM(initial) AS delta
            FROM truth_accounts WHERE account = ? GROUP BY node, currency),
        led AS (
            SELECT substr(account, length('asset:channel:') + 1) AS node, currency,
                   SUM(COALESCE(debit, 0)) - SUM(COALESCE(credit, 0)) AS balance
            FROM postings WHERE account LIKE 'asset:channel:%' GROUP BY account, currency),
        keys AS (SELECT node, currency FROM truth UNION SELECT node, currency FROM led)
        SELECT k.node, k.currency, led.balance AS ledger, truth.delta AS truth,
               k.node IN (SELECT node FROM nodes) AS known
        FROM keys k
        LEFT JOIN led ON led.node = k.node AND led.currency = k.currency
        LEFT JOIN truth ON truth.node = k.node AND truth.currency = k.currency
        WHERE COALESCE(led.balance, 0) <> COALESCE(truth.delta, 0)
        ORDER BY k.node, k.currency
        """,
        (PLATFORM_ACCOUNT,),
    )
    out = []
    for r in rows:
        ledger, truth = r["ledger"] or 0, r["truth"] or 0
        if r["known"]:
            message = (f"paysys believes it gained {ledger} {r['currency']} at channel {r['node']}"
                       f" but its account there gained {truth}")
        else:
            message = (f"paysys believes it holds {ledger} {r['currency']} at channel "
                       f"{r['node']}, which has no ground truth")
        out.append({
            "ref": f"asset:channel:{r['node']}", "node": r["node"], "currency": r["currency"],
            "ledger": ledger, "truth": truth, "diff": ledger - truth, "message": message,
        })
    return out


# --- liveness -----------------------------------------------------------------------------------


def orders_final(conn: sqlite3.Connection) -> list[Violation]:
    """`diff` is the money at stake (the order's amount)."""
    rows = _rows(
        conn,
        f"""
        SELECT 'pay' AS kind, order_id AS ref, order_id, status, amount, currency, updated_ms
        FROM pay_orders WHERE status NOT IN {_in(PAY_FINAL)}
        UNION ALL
        SELECT 'refund', refund_id, order_id, status, amount, currency, updated_ms
        FROM refund_orders WHERE status NOT IN {_in(REFUND_FINAL)}
        ORDER BY updated_ms, ref
        """,
    )
    return [{
        "ref": r["ref"], "kind": r["kind"], "order_id": r["order_id"], "status": r["status"],
        "amount": r["amount"], "currency": r["currency"], "updated_ms": r["updated_ms"],
        "diff": r["amount"],
        "message": f"{'order' if r['kind'] == 'pay' else 'refund'} {r['ref']} is still "
                   f"{r['status']} at the end of the run (last change at {r['updated_ms']} ms)",
    } for r in rows]


def notifications_settled(conn: sqlite3.Connection) -> list[Violation]:
    rows = _rows(
        conn,
        """
        SELECT notify_id, ref, merchant_id, url, attempts, next_at_ms, last_at_ms
        FROM notifications WHERE status = 'pending' ORDER BY notify_id
        """,
    )
    return [{
        "ref": r["ref"], "notify_id": r["notify_id"], "merchant_id": r["merchant_id"],
        "url": r["url"], "attempts": r["attempts"], "next_at_ms": r["next_at_ms"],
        "last_at_ms": r["last_at_ms"],
        "message": f"notification {r['notify_id']} of {r['ref']} to merchant {r['merchant_id']} "
                   f"is still pending after {r['attempts']} attempt(s)",
    } for r in rows]


def outbox_drained(conn: sqlite3.Connection) -> list[Violation]:
    """Every outbox row was delivered (`delivered_ms` set) by the end of the run."""
    rows = _rows(
        conn,
        """
        SELECT id, topic, ref, created_ms FROM outbox WHERE delivered_ms IS NULL
        ORDER BY created_ms, id
        """,
    )
    return [{
        "ref": r["ref"], "outbox_id": r["id"], "topic": r["topic"], "created_ms": r["created_ms"],
        "message": f"outbox message {r['id']} ({r['topic']} of {r['ref']}) was never delivered "
                   f"(written at {r['created_ms']} ms)",
    } for r in rows]


def events_published(conn: sqlite3.Connection) -> list[Violation]:
    """Every order that reached a final status published its domain event (`order.final`,
    `refund.final`) at least once: the outbox relay delivers at least once, crashes or not."""
    rows = _rows(
        conn,
        f"""
        WITH published AS (SELECT DISTINCT ref FROM events WHERE kind = 'publish')
        SELECT 'pay' AS kind, order_id AS ref, status, updated_ms FROM pay_orders
        WHERE status IN {_in(PAY_FINAL)} AND order_id NOT IN (SELECT ref FROM published)
        UNION ALL
        SELECT 'refund', refund_id, status, updated_ms FROM refund_orders
        WHERE status IN {_in(REFUND_FINAL)} AND refund_id NOT IN (SELECT ref FROM published)
        ORDER BY updated_ms, ref
        """,
    )
    return [{
        "ref": r["ref"], "kind": r["kind"], "status": r["status"], "updated_ms": r["updated_ms"],
        "message": f"{'order' if r['kind'] == 'pay' else 'refund'} {r['ref']} is {r['status']} "
                   f"but its {r['kind'] if r['kind'] == 'refund' else 'order'}.final event was "
                   f"never published",
    } for r in rows]


CHECKS: dict[str, Callable[[sqlite3.Connection], list[Violation]]] = {
    "entries_balanced": entries_balanced,
    "trial_balance_zero": trial_balance_zero,
    "external_matches_ledger": external_matches_ledger,
    "conservation": conservation,
    "channel_matches_truth": channel_matches_truth,
    "orders_match_truth": orders_match_truth,
    "no_double_charge": no_double_charge,
    "no_charge_without_order": no_charge_without_order,
    "orders_final": orders_final,
    "notifications_settled": notifications_settled,
    "duplicates_refunded": duplicates_refunded,
    "idempotency": idempotency,
    "outbox_drained": outbox_drained,
    "events_published": events_published,
    "recon_exact": recon_exact,
    "recon_resolved": recon_resolved,
    "settlement_exact": settlement_exact,
    "books_closed_daily": books_closed_daily,
    "profit_matches": profit_matches,
    "reserve_matches_truth": reserve_matches_truth,
}

# Tables each check reads: the oracle names the missing ones instead of failing on SQL.
TABLES: dict[str, tuple[str, ...]] = {
    "entries_balanced": ("postings", "journal_entries"),
    "trial_balance_zero": ("postings",),
    "external_matches_ledger": ("postings", "ext_balances"),
    "conservation": ("truth_accounts",),
    "channel_matches_truth": ("truth_accounts", "postings"),
    "orders_match_truth": ("truth_txns", "pay_orders", "refund_orders"),
    "no_double_charge": ("truth_txns", "pay_orders", "refund_orders"),
    "no_charge_without_order": ("truth_txns", "pay_orders", "refund_orders"),
    "orders_final": ("pay_orders", "refund_orders"),
    "notifications_settled": ("notifications",),
    "duplicates_refunded": ("truth_txns", "pay_orders", "refund_orders"),
    "idempotency": ("pay_orders", "refund_orders"),
    "outbox_drained": ("outbox",),
    "events_published": ("pay_orders", "refund_orders", "events"),
    # The back-office checks (sim._invariants_recon, sim._invariants_books) list only the tables
    # every run has: the back-office tables (recon_*, stmt_injected, settlements, accounting_days,
    # charges...) are optional, each check passes vacuously when they are absent or empty.
    "recon_exact": ("truth_txns",),
    "recon_resolved": ("journal_entries",),
    "settlement_exact": ("pay_orders", "refund_orders", "postings", "journal_entries",
                         "truth_accounts"),
    "books_closed_daily": ("postings", "journal_entries"),
    "profit_matches": ("postings", "journal_entries", "pay_orders", "truth_txns"),
    "reserve_matches_truth": ("postings", "truth_accounts"),
}

for _name, _inv in checks.INVARIANTS.items():   # the product families' (sim/checks/)
    CHECKS[_name] = _inv.check
    TABLES[_name] = _inv.tables
