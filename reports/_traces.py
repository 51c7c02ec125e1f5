"""Payment traces: which orders the report tells the story of, and that story, event by event.

Owns (1) the choice of orders: those referenced by failed invariants first, then a spread sample
in which every final status, every stuck status, "went UNKNOWN" and "was refunded" is represented,
up to `max_traces` in total; (2) loading every event whose ref is the order id, one of its refund
ids or a related order's id (child orders, product orders naming it), in `seq` order: one story
for the report and for `paysim trace` alike (`load`, `one`); (3) turning each event into readable
words (`DESCRIBE` is a table of one small function per event kind). A run without an event log
(crashed before the simulator wrote it) gets traces rebuilt from the payment system's own tables.
"""

from __future__ import annotations

import re
import sqlite3

from . import _format as fmt
from ._db import chunks, loads

MAX_EVENTS_PER_TRACE = 400
_STATUS_ORDER = ("SUCCEEDED", "FAILED", "CLOSED", "BLOCKED", "UNKNOWN", "PROCESSING",
                 "CHALLENGE", "CREATED")
_BAD_KINDS = {"msg.drop", "msg.hang", "msg.refused", "msg.duplicate", "msg.delay",
              "channel.timeout", "channel.late_reply", "merchant.error", "gateway.reject"}
_ORDER_ID = re.compile(r"^P\d+$")


# --- choosing the orders ---------------------------------------------------------------------

def _allocate(sizes: list[int], budget: int) -> list[int]:
    """Share `budget` across pools as evenly as their sizes allow (water-filling)."""
    alloc = [0] * len(sizes)
    while budget > 0:
        active = [i for i, size in enumerate(sizes) if alloc[i] < size]
        if not active:
            break
        share = max(1, budget // len(active))
        for i in active:
            take = min(share, sizes[i] - alloc[i], budget)
            alloc[i] += take
            budget -= take
            if not budget:
                break
    return alloc


def _spread(items: list[str], k: int) -> list[str]:
    """`k` items evenly spaced over `items` (deterministic: no randomness in a report)."""
    n = len(items)
    return [items[j * n // k] for j in range(k)] if k < n else list(items)


def refund_map(conn: sqlite3.Connection, present: set[str]) -> dict[str, str]:
    if "refund_orders" not in present:
        return {}
    return {r[0]: r[1] for r in conn.execute("SELECT refund_id, order_id FROM refund_orders")}


def select_orders(conn: sqlite3.Connection, present: set[str], flagged: list[str],
                  refunds: dict[str, str], max_traces: int,
                  extra: tuple[tuple[str, list[str]], ...] = ()) -> list[tuple[str, str]]:
    """`[(order_id, why)]`: the flagged orders first, then the sample. `extra` pools (why, ids),
    such as the orders named by reconciliation breaks, join the sample's pools (first, so an
    order they share with a status pool is counted as theirs)."""
    chosen: dict[str, str] = {}
    for order_id in flagged:
        if len(chosen) >= max_traces:
            break
        chosen.setdefault(order_id, "flagged by an invariant")
    budget = max_traces - len(chosen)
    if budget <= 0 or "pay_orders" not in present:
        return list(chosen.items())
    by_status: dict[str, list[str]] = {}
    for order_id, status in conn.execute("SELECT order_id, status FROM pay_orders ORDER BY order_id"):
        by_status.setdefault(status or "?", []).append(order_id)
    pools = [(why, ids) for why, ids in extra if ids]  # first: their picks are theirs
    pools += [(f"status {s}", by_status[s]) for s in _STATUS_ORDER if s in by_status]
    pools += [(f"status {s}", ids) for s, ids in sorted(by_status.items()) if s not in _STATUS_ORDER]
    if "transitions" in present:
        refs = {r[0] for r in conn.execute(
            "SELECT DISTINCT ref FROM transitions WHERE to_status = 'UNKNOWN'")}
        went_unknown = sorted({refunds.get(ref, ref) for ref in refs})
        if went_unknown:
            pools.append(("went UNKNOWN", went_unknown))
    if refunds:
        pools.append(("refunded", sorted(set(refunds.values()))))
    while budget > 0:  # pools overlap (an UNKNOWN order may be refunded): refill until full
        pools = [(why, [i for i in ids if i not in chosen]) for why, ids in pools]
        pools = [(why, ids) for why, ids in pools if ids]
        if not pools:
            break
        alloc = _allocate([len(ids) for _, ids in pools], budget)
        for (why, ids), k in zip(pools, alloc, strict=True):
            for order_id in _spread(ids, k):
                chosen.setdefault(order_id, f"sample: {why}")
        budget = max_traces - len(chosen)
    return list(chosen.items())[:max_traces]


# --- describing one event --------------------------------------------------------------------

def _generic(data: dict) -> tuple[str, dict]:
    rest = dict(data)
    return str(rest.pop("type", "") or ""), rest


# What happened to a message on the simulated network, in words.
_MSG_VERBS = {"msg.drop": "lost", "msg.hang": "hung (no answer)", "msg.duplicate": "duplicated",
              "msg.refused": "refused (link down)", "msg.delay": "delayed"}


def _msg(kind: str, data: dict, at_ms: int) -> tuple[str, dict]:
    """A network event: the message type, what happened to it, then the body's fields."""
    verb = _MSG_VERBS.get(kind, "")
    if data.get("extra_ms"):
        verb += f" +{fmt.duration(data['extra_ms'])}"
    if data.get("fault_id") is not None:
        verb += f" by fault {data['fault_id']}"
    if isinstance(data.get("sent_ms"), int) and kind == "msg.deliver":
        verb += f" after {fmt.duration(at_ms - data['sent_ms'])}"
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    rest = {k: v for k, v in body.items() if k != "type"}
    rest.update((k, v) for k, v in data.items()
                if k not in ("type", "msg_id", "body", "sent_ms", "extra_ms", "fault_id"))
    return " ".join(x for x in (str(data.get("type") or ""), verb.strip()) if x), rest


def _state(data: dict) -> tuple[str, dict]:
    prefix = "refund: " if data.get("kind") == "refund" else ""
    event = f" ({data['event']})" if data.get("event") else ""
    return f"{prefix}{data.get('from') or '∅'} → {data.get('to')}{event}", {}


def _ledger(data: dict) -> tuple[str, dict]:
    return str(data.get("memo") or "ledger entry"), {"entry": data.get("entry_id")}


def _risk(data: dict) -> tuple[str, dict]:
    rule = f" (rule {data['rule']})" if data.get("rule") else ""
    return f"risk {data.get('outcome')}{rule}", {"detail": data.get("detail")}


def _route(data: dict) -> tuple[str, dict]:
    head = f"routed to {data['channel']}" if data.get("channel") else "no route"
    return head, {"reason": data.get("reason"), "rejected": data.get("rejected")}


def _request(data: dict) -> tuple[str, dict]:
    return f"{data.get('op')} request {data.get('req_id')} → {data.get('channel')}", {}


def _reply(data: dict) -> tuple[str, dict]:
    code = f" {data['code']}" if data.get("code") else ""
    return f"{data.get('op')} reply {data.get('req_id')}: {data.get('outcome')}{code}", {}


def _timeout(data: dict) -> tuple[str, dict]:
    return f"{data.get('op')} request {data.get('req_id')} timed out", {}


def _notify(data: dict) -> tuple[str, dict]:
    valid = "signature ok" if data.get("valid") else "BAD signature"
    dup = ", duplicate (order already final)" if data.get("duplicate") else ""
    return f"notification from {data.get('channel')}: {valid}{dup}", {}


def _attempt(data: dict) -> tuple[str, dict]:
    return f"merchant notification {data.get('notify_id')} attempt {data.get('attempt')}", \
        {"url": data.get("url")}


def _result(data: dict) -> tuple[str, dict]:
    return f"merchant notification {data.get('notify_id')}: {data.get('outcome')}", {}


def _txn(data: dict) -> tuple[str, dict]:
    """Ground truth at a mock (`bank.txn`, `wx.txn`): money really moved."""
    head = (f"{data.get('kind') or 'txn'} {fmt.money(data.get('amount'), data.get('currency'))} "
            f"{data.get('status') or ''}").strip()
    keep = ("account", "user_id", "channel_ref", "req_id", "fee")
    return head, {k: data.get(k) for k in keep}


def _wx_attempt(data: dict) -> tuple[str, dict]:
    dup = " (duplicate)" if data.get("duplicate") else ""
    return f"platform notification #{data.get('n')} → {data.get('url')}{dup}", {}


def _reject(data: dict) -> tuple[str, dict]:
    field = f" (field {data['field']})" if data.get("field") else ""
    return f"{data.get('type')} rejected: {data.get('code')}{field}", {}


DESCRIBE = {
    "order.state": _state, "ledger.post": _ledger, "risk.decision": _risk,
    "route.decision": _route, "channel.request": _request, "channel.reply": _reply,
    "channel.timeout": _timeout, "channel.notify": _notify, "notify.attempt": _attempt,
    "notify.result": _result, "gateway.reject": _reject, "bank.txn": _txn, "wx.txn": _txn,
    "wx.notify.attempt": _wx_attempt,
}


def _postings(data: dict) -> list[dict]:
    rows = []
    for p in data.get("postings") or []:
        if isinstance(p, dict):
            p = [p.get("account"), p.get("currency"), p.get("debit"), p.get("credit")]
        if not isinstance(p, list | tuple) or len(p) < 4:
            continue
        account, currency, debit, credit = p[:4]
        rows.append({"account": account, "dr": fmt.money(debit, currency) if debit else "",
                     "cr": fmt.money(credit, currency) if credit else ""})
    return rows


def describe(at_ms: int, kind: str, src: str | None, dst: str | None, data: object) -> dict:
    """One event as the template shows it: time, kind, src → dst, a sentence, fields, postings."""
    if not isinstance(data, dict):
        data = {"data": data} if data not in (None, "") else {}
    if kind.startswith("msg."):
        summary, fields = _msg(kind, data, at_ms)
    else:
        summary, fields = DESCRIBE.get(kind, _generic)(data)
    cls = kind.split(".")[0]
    if kind in _BAD_KINDS:
        cls = "bad"
    elif kind == "order.state":
        cls = "state-" + str(data.get("to") or "").lower()
    return {"at": at_ms, "time": fmt.clock(at_ms), "kind": kind, "cls": cls, "src": src or "",
            "dst": dst or "", "summary": summary,
            "fields": [(k, v) for k, v in fields.items() if v not in (None, "", [], {})],
            "postings": _postings(data) if kind == "ledger.post" else []}


# --- loading the stories ---------------------------------------------------------------------

def _rows(conn: sqlite3.Connection, sql: str, ids: list[str]) -> list[sqlite3.Row]:
    out: list[sqlite3.Row] = []
    for part in chunks(ids):
        out += conn.execute(sql.format(",".join("?" * len(part))), part).fetchall()
    return out


def _from_events(conn, refs: list[str]) -> list[tuple]:
    rows = _rows(conn, "SELECT seq, at_ms, kind, ref, src, dst, data FROM events "
                       "WHERE ref IN ({}) ORDER BY seq", refs)
    return sorted(((r["seq"], r["at_ms"], r["kind"], r["ref"], r["src"], r["dst"],
                    loads(r["data"], {})) for r in rows), key=lambda e: e[0])


def _before_the_id(conn, orders: dict[str, dict]) -> list[tuple]:
    """`pay.create` messages carry no order id yet (their ref is empty): give them to their
    order by (merchant_id, merchant_order_no) from the message body. Needs SQLite JSON1."""
    keys = {(o.get("merchant_id"), o.get("merchant_order_no")): oid
            for oid, o in orders.items() if o.get("merchant_order_no")}
    if not keys:
        return []
    sql = ("SELECT seq, at_ms, kind, ref, src, dst, data FROM events "
           "WHERE (ref = '' OR ref IS NULL) AND kind LIKE 'msg.%' "
           "AND json_extract(data, '$.body.merchant_order_no') IN ({})")
    try:
        rows = _rows(conn, sql, sorted({no for _, no in keys}))
    except sqlite3.OperationalError:  # no JSON1, or a data cell that is not JSON
        return []
    out = []
    for r in rows:
        data = loads(r["data"], {})
        body = data.get("body") if isinstance(data, dict) else None
        order_id = isinstance(body, dict) and keys.get(
            (body.get("merchant_id"), body.get("merchant_order_no")))
        if order_id:
            out.append((r["seq"], r["at_ms"], r["kind"], order_id, r["src"], r["dst"], data))
    return out


def _from_paysys_tables(conn, present: set[str], refs: list[str]) -> list[tuple]:
    """No event log: rebuild what paysys itself recorded (transitions, journal, requests)."""
    out = []
    if "transitions" in present:
        for r in _rows(conn, "SELECT * FROM transitions WHERE ref IN ({})", refs):
            out.append((r["at_ms"], 0, r["seq"], "order.state", r["ref"], "paysys", "",
                        {"kind": r["kind"], "from": r["from_status"], "to": r["to_status"],
                         "event": r["event"]}))
    if "journal_entries" in present and "postings" in present:
        entries = _rows(conn, "SELECT * FROM journal_entries WHERE ref IN ({})", refs)
        ids = [e["entry_id"] for e in entries]
        postings: dict = {}
        for p in _rows(conn, "SELECT * FROM postings WHERE entry_id IN ({}) ORDER BY posting_id",
                       ids):
            postings.setdefault(p["entry_id"], []).append(
                [p["account"], p["currency"], p["debit"], p["credit"]])
        for e in entries:
            out.append((e["at_ms"], 1, e["entry_id"], "ledger.post", e["ref"], "paysys", "",
                        {"entry_id": e["entry_id"], "memo": e["memo"],
                         "postings": postings.get(e["entry_id"], [])}))
    if "channel_requests" in present:
        for r in _rows(conn, "SELECT * FROM channel_requests WHERE ref IN ({})", refs):
            out.append((r["sent_ms"], 2, r["req_id"], "channel.request", r["ref"], "paysys",
                        r["channel"], {"op": r["kind"], "req_id": r["req_id"],
                                       "channel": r["channel"], "status": r["status"]}))
    out.sort(key=lambda e: (e[0] or 0, e[1], str(e[2])))
    return [(i, at, kind, ref, src, dst, data) for i, (at, _, _, kind, ref, src, dst, data)
            in enumerate(out)]


def related(conn: sqlite3.Connection, present: set[str], ids: list[str]) -> dict[str, list[dict]]:
    """Per order id, the orders that belong to its story besides its refunds: its child orders
    (the legs of a combined order or trade: `pay_orders.parent_id`), their refunds, and the
    orders of product kinds (any table whose rows recorded `transitions`) naming it in an
    `order_id`, `parent_id` or `ref` column. Each as {kind, id, status, amount, currency}."""
    out: dict[str, list[dict]] = {i: [] for i in ids}
    if not ids:
        return out
    if "pay_orders" in present and "parent_id" in _columns(conn, "pay_orders"):
        children = _rows(conn, "SELECT * FROM pay_orders WHERE parent_id IN ({}) "
                               "ORDER BY order_id", ids)
        for r in children:
            out[r["parent_id"]].append(_summary_row("pay", r["order_id"], r))
        if children and "refund_orders" in present:
            owner = {r["order_id"]: r["parent_id"] for r in children}
            for r in _rows(conn, "SELECT * FROM refund_orders WHERE order_id IN ({}) "
                                 "ORDER BY refund_id", list(owner)):
                out[owner[r["order_id"]]].append(_summary_row("refund", r["refund_id"], r))
    if "transitions" not in present:
        return out
    for table in sorted(present - _NOT_PRODUCT_ORDERS):
        info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        keys = [c[1] for c in info if c[5]]
        links = [c[1] for c in info if c[1] in _LINK_COLUMNS]
        if len(keys) != 1 or not links or keys[0] in links:
            continue
        for link in links:
            rows = _rows(conn, f'SELECT * FROM "{table}" WHERE "{link}" IN ({{}})', ids)
            if not rows:
                continue
            kinds = {r[0]: r[1] for r in _rows(
                conn, "SELECT ref, kind FROM transitions WHERE ref IN ({})",
                [str(r[keys[0]]) for r in rows])}
            for r in rows:
                oid = str(r[keys[0]])
                if oid in kinds and r[link] in out:
                    out[r[link]].append(_summary_row(kinds[oid], oid, r))
    return out


_LINK_COLUMNS = ("order_id", "parent_id", "ref")
_NOT_PRODUCT_ORDERS = {"pay_orders", "refund_orders", "transitions", "events", "charges",
                       "channel_requests", "notifications", "journal_entries", "recon_breaks",
                       "recon_buffer", "truth_txns", "outbox"}


def _summary_row(kind: str, oid: str, row: sqlite3.Row) -> dict:
    keys = row.keys()
    return {"kind": kind, "id": oid, "status": row["status"] if "status" in keys else "",
            "amount": row["amount"] if "amount" in keys else None,
            "currency": row["currency"] if "currency" in keys else None}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}


def load(conn: sqlite3.Connection, present: set[str], chosen: list[tuple[str, str]],
         flagged_by: dict[str, list[str]], refunds: dict[str, str],
         max_events: int | None = MAX_EVENTS_PER_TRACE) -> dict:
    """The traces of `chosen`, in that order, plus where their events came from. A trace tells
    the story of the order, its refunds and its related orders (`related`), event by event;
    `max_events` (None: all) caps the events shown."""
    ids = [order_id for order_id, _ in chosen]
    orders = {}
    if "pay_orders" in present:
        orders = {r["order_id"]: dict(r) for r in
                  _rows(conn, "SELECT * FROM pay_orders WHERE order_id IN ({})", ids)}
    by_order: dict[str, list[dict]] = {i: [] for i in ids}
    if "refund_orders" in present:
        for r in _rows(conn, "SELECT * FROM refund_orders WHERE order_id IN ({}) "
                             "ORDER BY refund_id", ids):
            by_order[r["order_id"]].append(dict(r))
    others = related(conn, present, ids)
    owners: dict[str, set[str]] = {i: {i} for i in ids}   # ref -> the stories it belongs to
    for oid, rs in by_order.items():
        for r in rs:
            owners.setdefault(r["refund_id"], set()).add(oid)
    for oid, rs in others.items():
        for r in rs:
            owners.setdefault(r["id"], set()).add(oid)
    refs = list(owners)
    if "events" in present:
        events = sorted(_from_events(conn, refs) + _before_the_id(conn, orders),
                        key=lambda e: e[0])
        source = "event log"
    else:
        source, events = "rebuilt from the payment system's tables (no event log)", \
            _from_paysys_tables(conn, present, refs)
    stories: dict[str, list[tuple]] = {i: [] for i in ids}
    for ev in events:
        for order_id in owners.get(ev[3], ()):
            stories[order_id].append(ev)
    faults = []
    if "faults" in present:
        faults = conn.execute("SELECT kind, target, start_ms, end_ms FROM faults").fetchall()
    traces = []
    for order_id, why in chosen:
        story = stories[order_id]
        shown = story if max_events is None else story[:max_events]
        span = (story[0][1], story[-1][1]) if story else (None, None)
        active = sorted({f"{f['kind']} {f['target'] or ''}".strip() for f in faults
                         if span[0] is not None and (f["start_ms"] or 0) <= span[1]
                         and (f["end_ms"] is None or f["end_ms"] >= span[0])})
        traces.append({
            "order_id": order_id, "why": why, "order": orders.get(order_id),
            "refunds": by_order[order_id], "related": others[order_id],
            "flagged_by": flagged_by.get(order_id, []),
            "faults": active, "more": len(story) - len(shown),
            "events": [dict(describe(e[1], e[2], e[4], e[5], e[6]), ref=e[3] or "")
                       for e in shown],
        })
    return {"source": source, "traces": traces}


def one(conn: sqlite3.Connection, present: set[str], ref: str) -> dict | None:
    """The whole trace of one order (`ref`: a pay order id, or a refund id standing for its
    order), every event shown; None when the run database knows no such order."""
    refunds = refund_map(conn, present)
    order_id = refunds.get(ref, ref)
    known = "pay_orders" in present and conn.execute(
        "SELECT 1 FROM pay_orders WHERE order_id = ?", (order_id,)).fetchone() is not None
    if not known:
        return None
    return load(conn, present, [(order_id, "asked for")], {}, refunds, max_events=None)


def flagged_orders(refs: list[str], refunds: dict[str, str], known: set[str] | None) -> list[str]:
    """Invariant refs -> order ids (refund ids mapped to their order; accounts dropped)."""
    out: list[str] = []
    for ref in refs:
        order_id = refunds.get(ref, ref)
        ok = order_id in known if known is not None else bool(_ORDER_ID.match(order_id))
        if ok and order_id not in out:
            out.append(order_id)
    return out
