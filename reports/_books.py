"""The report's settlement and accounting-day sections: what merchants were paid, and each day's close.

Owns reading the tables paysys's settlement and day close write: `settlement_rules`,
`settlements` (one statement per merchant and period: carried in, payments, refunds, fees,
splits out and in, net), `settlement_batches`, `positions` (the payout channel's balance checked
and topped up before each batch), `accounting_days` (cut-off, entry count, balanced, debits and
credits, income, costs and profit per currency, the archive digest) and `trial_balances` (per
day, account and currency). Money columns without a currency are shown with 2 decimals (the
tables are CNY); JSON columns per currency are shown per currency. Each builder returns None
when its tables are absent or empty, so a run without back-office data renders as before.
"""

from __future__ import annotations

import sqlite3

from . import _db
from . import _format as fmt

SETTLEMENT_TABLES = ("settlements", "settlement_batches", "positions")
STATEMENT_COLUMNS = ("carried_in", "payments", "refunds", "fees", "splits_out", "splits_in", "net")


def _amount(value: object) -> str:
    number = _db.as_int(value)
    return "" if number is None else fmt.money(number)


def _per_currency(value: object) -> str:
    """`{"CNY": 12345}` -> `123.45 CNY` (several currencies joined by ·); a bare int -> `123.45`."""
    value = _db.loads(value)
    if isinstance(value, dict):
        parts = [fmt.money(n, str(cur)) if _db.as_int(n) is not None and not isinstance(n, float)
                 else f"{n} {cur}" for cur, n in sorted(value.items())]
        return " · ".join(parts) if parts else "—"
    if isinstance(value, int):
        return fmt.money(value)
    return "" if value is None else str(value)


def _by_id(row: dict, key: str) -> str:
    return str(row.get(key) or "")


def settlement(conn: sqlite3.Connection, present: set[str]) -> dict | None:
    if not any(_db.has_rows(conn, present, t) for t in SETTLEMENT_TABLES):
        return None
    rules = {str(r.get("merchant_id")): r for r in _db.rows(conn, present, "settlement_rules")}
    merchants: dict[str, dict] = {}
    for s in sorted(_db.rows(conn, present, "settlements"),
                    key=lambda s: (_db.as_int(s.get("through_ms")) or 0, _by_id(s, "settlement_id"))):
        merchant = _by_id(s, "merchant_id")
        group = merchants.setdefault(merchant, {"merchant_id": merchant, "rows": [],
                                                "paid": 0, "failed": 0})
        status = str(s.get("status") or "?")
        group["rows"].append({
            "id": _by_id(s, "settlement_id"), "batch": _by_id(s, "batch_id"),
            "through": _db.as_int(s.get("through_ms")), "status": status,
            "paid": _db.as_int(s.get("paid_ms")), "amount": _amount(s.get("amount")),
            "entry_id": s.get("entry_id"),
            **{c: _amount(s.get(c)) for c in STATEMENT_COLUMNS},
        })
        if status == "paid":
            group["paid"] += _db.as_int(s.get("amount")) or 0
        group["failed"] += status == "failed"
    for merchant, group in merchants.items():
        rule = rules.get(merchant, {})
        splits = _db.loads(rule.get("splits"), {})
        group["paid"] = fmt.money(group["paid"])
        group["rule"] = {
            "cycle": str(rule.get("cycle") or ""),
            "min_amount": _amount(rule.get("min_amount")),
            "splits": ", ".join(f"{k} {v} bp" for k, v in splits.items())
            if isinstance(splits, dict) else str(splits or ""),
        } if rule else None
    batches = [{"id": _by_id(b, "batch_id"), "date": _by_id(b, "date"),
                "created": _db.as_int(b.get("created_ms")),
                "merchants": _db.as_int(b.get("merchants")), "total": _amount(b.get("total"))}
               for b in sorted(_db.rows(conn, present, "settlement_batches"),
                               key=lambda b: _by_id(b, "batch_id"))]
    positions = [{"date": _by_id(p, "date"), "channel": _by_id(p, "channel"),
                  "balance": _amount(p.get("balance")), "needed": _amount(p.get("needed")),
                  "topped_up": _amount(p.get("topped_up")),
                  "short": (_db.as_int(p.get("topped_up")) or 0) > 0}
                 for p in sorted(_db.rows(conn, present, "positions"),
                                 key=lambda p: (_by_id(p, "date"), _by_id(p, "channel")))]
    return {"merchants": sorted(merchants.values(), key=lambda g: g["merchant_id"]),
            "count": sum(len(g["rows"]) for g in merchants.values()),
            "batches": batches, "positions": positions}


def accounting(conn: sqlite3.Connection, present: set[str]) -> dict | None:
    if not _db.has_rows(conn, present, "accounting_days"):
        return None
    trial: dict[str, list[dict]] = {}
    for t in sorted(_db.rows(conn, present, "trial_balances"),
                    key=lambda t: (_by_id(t, "account"), _by_id(t, "currency"))):
        currency = _by_id(t, "currency") or None
        trial.setdefault(_by_id(t, "date"), []).append({
            "account": _by_id(t, "account"), "currency": currency or "",
            **{c: fmt.money(_db.as_int(t.get(c)), currency)
               for c in ("debits", "credits", "balance")}})
    days = []
    for d in sorted(_db.rows(conn, present, "accounting_days"), key=lambda d: _by_id(d, "date")):
        date = _by_id(d, "date")
        balanced = _db.as_bool(d.get("balanced"))
        digest = _by_id(d, "digest")
        days.append({
            "date": date, "cutoff": _db.as_int(d.get("cutoff_ms")),
            "closed": _db.as_int(d.get("closed_ms")), "entries": _db.as_int(d.get("entries")),
            "first_entry": d.get("first_entry"), "last_entry": d.get("last_entry"),
            "balanced": balanced,
            **{c: _per_currency(d.get(c)) for c in ("debits", "credits", "income", "costs",
                                                   "profit")},
            "digest": digest, "digest_short": digest[:12],
            "trial": trial.get(date, []),
        })
    return {"days": days, "unbalanced": sum(d["balanced"] is False for d in days),
            "has_trial": "trial_balances" in present}
