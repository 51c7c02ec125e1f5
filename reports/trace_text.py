"""One order's story for the terminal (`paysim trace RUN_DB ORDER_ID`): text, colour or JSON.

The story is the one the HTML report's trace tells (`_traces.one`: the same loading and the
same words per event): every message, state change, risk and route decision, channel request
and reply, notification and ledger entry (with its Dr/Cr lines) of the order, its refunds, its
child orders and the product orders naming it, in time order (simulated time, UTC+8). Owns the
layout only: `lines(trace)` gives each line as (text, style) segments, which `plain` joins and
the caller may colour (rich styles).

    t = trace("out/smoke.db", "P0000000042")   # TraceError naming what was wrong
    print(plain(t))
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from . import _db, _traces
from . import _format as fmt

Segment = tuple[str, str]   # (text, rich style or "")

_STYLE = {"bad": "bold red", "ledger": "cyan", "channel": "blue", "risk": "magenta",
          "route": "magenta", "notify": "yellow", "msg": "dim", "gateway": "red"}
_STATE_STYLE = {"succeeded": "bold green", "failed": "bold red", "closed": "yellow",
                "blocked": "bold red", "unknown": "bold yellow", "held": "bold yellow",
                "duplicate": "yellow"}
_KIND_WIDTH = 16
_WHO_WIDTH = 26


class TraceError(Exception):
    """What the user must fix: the file, the database or the order id (one line)."""


def trace(db_path: str, ref: str) -> dict:
    """The story of pay order `ref` (or of the order of refund `ref`) in run database
    `db_path`: `_traces.load`'s trace dict plus `source` and `db`. TraceError when the file is
    missing, is not a run database, or knows no such order."""
    if not Path(db_path).is_file():
        raise TraceError(f"{db_path}: no such run database")
    try:
        conn = _db.connect(db_path)
    except (sqlite3.DatabaseError, OSError) as err:
        raise TraceError(f"{db_path}: not a run database ({err})") from None
    try:
        try:
            present = _db.tables(conn)
        except sqlite3.DatabaseError as err:
            raise TraceError(f"{db_path}: not a run database ({err})") from None
        if "pay_orders" not in present:
            raise TraceError(f"{db_path}: not a run database (no pay_orders table)")
        found = _traces.one(conn, present, ref)
    finally:
        conn.close()
    if found is None:
        raise TraceError(f"{ref}: no such order in {db_path} (expected a pay order id like "
                         "P0000000042 or a refund id like R0000000007)")
    return dict(found["traces"][0], source=found["source"], db=db_path)


def as_json(t: dict) -> dict:
    """The --json object: the order, refunds, related orders and every event (time in ms and
    as text, kind, ref, src, dst, summary, fields, postings)."""
    return {
        "order_id": t["order_id"], "db": t["db"], "source": t["source"], "order": t["order"],
        "refunds": t["refunds"], "related": t["related"], "faults": t["faults"],
        "events": [{"at_ms": e["at"], "time": fmt.stamp(e["at"]) + f".{e['at'] % 1000:03d}",
                    "kind": e["kind"], "ref": e["ref"], "src": e["src"], "dst": e["dst"],
                    "summary": e["summary"], "fields": dict(e["fields"]),
                    "postings": e["postings"]} for e in t["events"]],
    }


def _style(e: dict) -> str:
    if e["cls"].startswith("state-"):
        return _STATE_STYLE.get(e["cls"][6:], "bold")
    return _STYLE.get(e["cls"], "")


def _header(t: dict) -> list[list[Segment]]:
    o = t["order"] or {}
    status = o.get("status") or "?"
    out = [[(t["order_id"], "bold"), ("  ", ""),
            (status, _STATE_STYLE.get(status.lower(), "bold")), ("  ", ""),
            (fmt.money(o.get("amount"), o.get("currency")), "bold"),
            (f"  {o.get('product')} via {o.get('channel') or 'no channel'}  "
             f"merchant {o.get('merchant_id')} → user {o.get('user_id')}", "")]]
    facts = [f"created {fmt.stamp(o.get('created_ms'))}", f"updated {fmt.stamp(o.get('updated_ms'))}",
             f"merchant order {o.get('merchant_order_no')}"]
    facts += [f"{label} {o[key]}" for key, label in (("app_id", "app"), ("parent_id", "leg of"),
                                                     ("channel_ref", "channel ref"),
                                                     ("error_code", "error")) if o.get(key)]
    out.append([("  ".join(facts), "dim")])
    cur = o.get("currency")
    out.append([(f"fee {fmt.money(o.get('merchant_fee'), cur)} · cost "
                 f"{fmt.money(o.get('channel_cost'), cur)} · refunded "
                 f"{fmt.money(o.get('refunded'), cur)}", "dim")])
    for r in t["refunds"]:
        out.append([(f"refund {r['refund_id']} {fmt.money(r['amount'], r['currency'])} ", ""),
                    (str(r["status"]), _STATE_STYLE.get(str(r["status"]).lower(), "")),
                    (f" ({r.get('reason') or 'merchant'})", "dim")])
    for r in t["related"]:
        out.append([(f"related {r['kind']} order {r['id']} "
                     f"{fmt.money(r['amount'], r['currency'])} ", ""),
                    (str(r["status"] or ""), _STATE_STYLE.get(str(r["status"]).lower(), ""))])
    if t["faults"]:
        out.append([("faults active during this trace: " + ", ".join(t["faults"]), "yellow")])
    out.append([(f"{len(t['events'])} events ({t['source']}); times UTC+8", "dim")])
    return out


def lines(t: dict) -> list[list[Segment]]:
    """The story as lines of (text, style) segments: the order's header, then one line per
    event (a date line when the local day changes), ledger lines indented under their entry."""
    out = _header(t)
    day = None
    for e in t["events"]:
        if fmt.day(e["at"]) != day:
            day = fmt.day(e["at"])
            out.append([("", "")])
            out.append([(f"── {day} ──", "bold")])
        who = e["src"] + (f" → {e['dst']}" if e["dst"] else "")
        ref = f"[{e['ref']}] " if e["ref"] and e["ref"] != t["order_id"] else ""
        line = [(e["time"] + "  ", "dim"), (e["kind"].ljust(_KIND_WIDTH) + " ", _style(e)),
                (who.ljust(_WHO_WIDTH) + " ", "dim"), (ref, "bold"), (e["summary"], _style(e))]
        if e["fields"]:
            line.append(("  " + " ".join(f"{k}={fmt.compact(v)}" for k, v in e["fields"]), "dim"))
        out.append(line)
        pad = " " * (len(e["time"]) + 2 + _KIND_WIDTH + 1)
        width = max((len(p["account"]) for p in e["postings"]), default=0)
        for p in e["postings"]:
            side, amount = ("Dr", p["dr"]) if p["dr"] else ("Cr", p["cr"])
            out.append([(f"{pad}{side}  {p['account'].ljust(width)}  {amount}",
                         "cyan" if side == "Dr" else "green")])
    return out


def plain(t: dict) -> str:
    """The story as plain text (no colour), newline-terminated."""
    return "".join("".join(text for text, _ in line).rstrip() + "\n" for line in lines(t))
