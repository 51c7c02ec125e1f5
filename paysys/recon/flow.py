"""Statement reconciliation at work: download each channel's file of each business day, match
it, file the breaks and resolve them (a back-office job: paysys/backoffice.py).

One timer kind, "recon", ticks the job:
- `recon_files` is the schedule: a row per channel and business day since the job started
  (`waiting` until the file is `reconciled`, or `missing` once the job gives up on it).
- From `recon_time` of the next day, a waiting file is downloaded (op "bill"), then again every
  `recon_retry` while the channel says it is not ready. A file still absent `give_up` after the
  first try is missing: a `missing_file` break, for a person (its rows are not judged one by one).
- A file that does not parse is a `malformed_file` break and is downloaded again at the next
  tick; the break is resolved `redownloaded` when a good copy arrives. A file received after
  `late_after` on the next day is a `late_file` break (resolved `late_file_received`).
- A good file is matched (`match.reconcile`) against paysys's own rows of that day and the
  buffer pool, and every break is filed with the policy's decision (`policy.decide`).
- A `channel_only` row of an order paysys knows is checked with the channel: the order is
  queried, and the answer goes through the compensation door like any other report of a charge.
  A later tick resolves the break with what compensation did (`complete`: the order kept the
  charge; `refund`: it went to suspense and back to the payer), naming the ledger entry, or
  hands it to a person (`statement_error`) when the channel's answer does not list the charge.
"""

import json

from paysys import ledger, payments, store
from paysys.channels.base import SUCCESS
from paysys.recon import day_bounds, files, local_date, policy, tables
from paysys.recon.formats import StatementError, parse
from paysys.recon.match import Break, reconcile

CHECK_MS = 60_000        # after a query for a channel-only row, look at its answer this soon


def arm(node, now_ms: int) -> None:
    if node.cfg.backoffice.recon:
        files.schedule_days(node.conn, tuple(node.channels), local_date(now_ms))
        node.at(now_ms, "recon", "")


def on_due(node, key: str, arg: int, now_ms: int) -> None:
    """One tick: open today's rows, download what is due, check the breaks waiting for a
    channel's answer, and come back when something is next due."""
    cfg, conn = node.cfg.backoffice, node.conn
    today = local_date(now_ms)
    files.schedule_days(conn, tuple(node.channels), today)
    waiting = False
    for channel, date, first_try in files.waiting(conn, today):
        first_due = day_bounds(date)[1] + cfg.recon_time_ms
        if now_ms < first_due:
            continue
        waiting = True
        if first_try is not None and now_ms - first_try >= cfg.give_up_ms:
            _missing(node, channel, date, now_ms)
            continue
        _download(node, channel, date, now_ms)
    pending = _check_queries(node, now_ms)
    tomorrow = day_bounds(today)[1] + cfg.recon_time_ms
    due = now_ms + cfg.recon_retry_ms if waiting else tomorrow
    if pending:
        due = min(due, now_ms + CHECK_MS)
    node.at(max(due, now_ms + 1), "recon", "")


def _ref(channel: str, date: str) -> str:
    return f"bill:{channel}:{date}"


def _download(node, channel: str, date: str, now_ms: int) -> None:
    ref = _ref(channel, date)
    if any(r == ref for _, _, r in node.inflight.values()):
        return   # the last try is still on its way
    req_id = node.req_id(ref, "bill")
    node.call_channel(channel, "bill", ref, req_id, node.adapters[channel].statement(req_id, date),
                      now_ms)
    files.tried(node.conn, channel, date, now_ms)


def _missing(node, channel: str, date: str, now_ms: int) -> None:
    tables.upsert_file(node.conn, channel, date, status="missing")
    hours = node.cfg.backoffice.give_up_ms // 3_600_000
    _file_break(node, channel, date, "missing_file",
                f"no statement of {date} from {channel} after {hours} h of tries", now_ms)


def _file_break(node, channel: str, date: str, cls: str, detail: str, now_ms: int) -> str:
    brk = Break(cls, f"file:{date}", None, None, detail)
    decision = policy.decide(brk, known_ref=False)
    break_id = tables.add_break(node.conn, "statement", channel, date, brk, decision, now_ms)
    node.event("recon.break", f"file:{date}", {"break_id": break_id, "channel": channel,
                                                "cls": cls, "status": decision.status,
                                                "resolution": decision.resolution})
    return break_id


def on_bill(node, channel: str, ref: str, req_id: str, outcome, now_ms: int) -> None:
    """A channel's answer to a statement download."""
    date = ref.rsplit(":", 1)[1]
    row = tables.file_row(node.conn, channel, date)
    if row is None or row["status"] != "waiting":
        return   # a copy of an answer already used
    if outcome.kind != SUCCESS:
        return   # not ready, refused or unknown: the next tick tries again
    fmt, content = outcome.extra["format"], outcome.extra["content"]
    try:
        rows = parse(fmt, content)
    except StatementError as err:
        tables.upsert_file(node.conn, channel, date, error=str(err), format=fmt)
        if not files.open_break(node.conn, channel, f"file:{date}", "malformed_file"):
            _file_break(node, channel, date, "malformed_file", str(err), now_ms)
        return
    _reconcile(node, channel, date, fmt, rows, now_ms)


def on_bill_timeout(node, channel: str, ref: str, req_id: str, now_ms: int) -> None:
    """No answer: the next tick downloads again."""


def _reconcile(node, channel: str, date: str, fmt: str, rows: list, now_ms: int) -> None:
    conn, cfg = node.conn, node.cfg.backoffice
    start, end = day_bounds(date)
    fee_rule = node.channels[channel].fee
    listed = files.listed_before(conn, channel)   # e.g. charges paysys learned from a file
    ours_today = {k: r for k, r in tables.ours(conn, channel, start, end, fee_rule).items()
                  if k not in listed}
    buffer = tables.load_buffer(conn, channel)
    keys = {r.key for r in rows} | set(buffer)
    ours_known = tables.known(conn, channel, keys, fee_rule)
    result = reconcile(date, rows, ours_today, ours_known, buffer, cfg.carry)
    tables.save_buffer(conn, channel, result.buffer, now_ms)
    for brk in result.breaks:
        _file(node, channel, date, brk, now_ms)
    malformed = files.open_break(conn, channel, f"file:{date}", "malformed_file")
    if malformed:
        tables.resolve_break(conn, malformed, "resolved", "redownloaded",
                             "a good copy of the file arrived", None, now_ms)
    if now_ms > end + cfg.late_after_ms:
        _file_break(node, channel, date, "late_file",
                    f"received {local_time(now_ms)}, due by {local_time(end + cfg.late_after_ms)}",
                    now_ms)
    tables.upsert_file(conn, channel, date, status="reconciled", received_ms=now_ms, format=fmt,
                       rows=len(rows), reconciled_ms=now_ms, error="")
    node.event("recon.file", f"file:{date}", {"channel": channel, "date": date, "rows": len(rows),
                                               "matched": result.matched,
                                               "breaks": len(result.breaks)})


def _file(node, channel: str, date: str, brk, now_ms: int) -> None:
    """File one break of a statement with the policy's decision, and act on it."""
    theirs, ours = brk.theirs, brk.ours
    ref = (theirs or ours).ref
    kind = (theirs or ours).kind
    known_ref = kind == "pay" and store.pay_order(node.conn, ref) is not None
    decision = policy.decide(brk, known_ref=known_ref,
                             adjust_fees=node.cfg.backoffice.fees == "adjust")
    day = ours.date if ours is not None and brk.cls == "platform_only" else date
    break_id = tables.add_break(node.conn, "statement", channel, day, brk, decision, now_ms)
    node.event("recon.break", ref, {"break_id": break_id, "channel": channel, "cls": brk.cls,
                                     "key": brk.key, "status": decision.status,
                                     "resolution": decision.resolution})
    if decision.action == "query":
        _query(node, channel, ref, now_ms)
    elif decision.action == "adjust":
        lines = ledger.fee_adjustment_lines(channel, theirs.currency, theirs.fee - ours.fee)
        entry = payments.post(node, ref, f"recon adjustment {break_id}", lines, now_ms)
        tables.resolve_break(node.conn, break_id, decision.status, decision.resolution,
                             decision.reason, entry, now_ms)


def _query(node, channel: str, order_id: str, now_ms: int) -> None:
    """Ask the channel about an order it lists and paysys has no charge for."""
    payments.ask(node, store.pay_order(node.conn, order_id), now_ms, channel)


def _check_queries(node, now_ms: int) -> bool:
    """Resolve the channel-only breaks whose query was answered; True while some still wait."""
    conn = node.conn
    waiting = False
    for b in files.open_breaks(conn, "channel_only"):
        theirs = json.loads(b["theirs"])
        order_id, charge_ref = theirs["ref"], theirs["channel_ref"]
        charge = conn.execute("SELECT kept, at_ms FROM charges WHERE order_id=? AND channel_ref=?",
                              (order_id, charge_ref)).fetchone()
        if charge is not None:
            kept, at_ms = charge
            entry = conn.execute("SELECT MIN(entry_id) FROM journal_entries WHERE ref=? AND "
                                 "at_ms=?", (order_id, at_ms)).fetchone()[0]
            resolution = "complete" if kept else "refund"
            reason = ("the channel confirmed the charge; the order keeps it (补单)" if kept else
                      "the channel confirmed the charge; no order keeps it: it is refunded")
            tables.resolve_break(conn, b["break_id"], "resolved", resolution, reason, entry, now_ms)
            node.event("recon.resolved", order_id, {"break_id": b["break_id"],
                                                    "resolution": resolution, "entry_id": entry})
            continue
        last = conn.execute(
            "SELECT status FROM channel_requests WHERE ref=? AND channel=? AND kind='query' AND "
            "sent_ms>=? ORDER BY sent_ms DESC, req_id DESC LIMIT 1",
            (order_id, b["channel"], b["found_ms"])).fetchone()
        if last is not None and last[0] == "answered":
            tables.resolve_break(conn, b["break_id"], "manual", "statement_error",
                                 "the channel's own answer does not list this charge: a corrected "
                                 "statement is asked for", None, now_ms)
            continue
        waiting = True
        if last is None or last[0] in ("timeout", "refused"):
            _query(node, b["channel"], order_id, now_ms)
    return waiting


def local_time(at_ms: int) -> str:
    """"2026-11-03 12:00" (UTC+8), for reasons people read."""
    date = local_date(at_ms)
    minutes = (at_ms - day_bounds(date)[0]) // 60_000
    return f"{date} {minutes // 60:02d}:{minutes % 60:02d}"


TIMERS = {"recon": on_due}
FLOWS = {"bill": on_bill}
TIMEOUTS = {"bill": on_bill_timeout}
REFUSED = {"bill": on_bill_timeout}
