"""Settlement (结算) and payouts (代付): what each merchant is owed leaves to its bank account.

What this module owns: the tables `settlement_rules` (written from the config at `arm`),
`settlements` and `settlement_batches`, the batch timers and the `bank.payout` flow.

Batches. The T+n batch runs at `settle_time_ms` local each day for the merchants whose cycle is
"T+<n>"; the D+0 batch at `same_day_time_ms` for the "D+0" merchants. A batch settles, per
merchant and currency, the entries of its `liability:merchant` account before `through_ms`
(T+n: the local midnight starting day today-n+1, so T+1 settles everything before today; D+0:
now), minus what earlier settlements took (paid or still in flight), capped by its current
balance minus `node.reserved(merchant)` (refunds in flight). Less than the rule's `min_amount`
(or nothing) is carried to the next batch. Settlement entries themselves (memo "settlement")
are not counted as the merchant's movements.

Payouts. A settlement row `created` reserves its amount (`node.reserve`), the payout position is
checked (`positions.check`, which may ask the reserve for a top-up first), then `bank.payout`
(req_id `<settlement_id>.p1`) pays `merchant:<id>` through cfg.backoffice.payout_channel.
SUCCESS: `Dr liability:merchant:M / Cr asset:channel:<payout>`, status `paid`. DECLINED: status
`failed`; the money stays owed and goes in the next batch. A timeout or an unknown answer: the
same request again (the bank answers a req_id once) until it is answered. The reservation ends
with the payout. After a restart, `arm` reserves the `created` settlements again and sends again
those not waiting for an answer.

Statement columns (the period: from the merchant's previous settlement's through_ms, or 0, to
this one's), by the lines of each entry that touches the merchant's account M:
- a credit to M in an entry that debits no other merchant: `payments` (the credit plus the
  entry's `income:fee` credit, which is also counted in `fees`): M is the payer;
- a credit to M in an entry that debits another merchant: `splits_in`;
- a debit of M in an entry that credits another merchant: `splits_out`;
- any other debit of M: `refunds`.
`carried_in` = what M was owed before the period and no settlement took; `net` = the amount paid.
carried_in + payments - refunds - fees - splits_out + splits_in - net is carried to the next.
"""

import json

import sqlite_utils

from paysys import clearing, days, ledger, positions
from paysys.channels.base import FAILURE, SUCCESS

RETRY_MS = (5_000, 30_000, 120_000, 600_000, 1_800_000)
CYCLE = {"T": "T+n", "D": "D+0"}   # timer key -> the batch's cycle column
STATEMENT = ("payments", "refunds", "fees", "splits_out", "splits_in")
MERCHANT = ledger.MERCHANT_PREFIX


def create_tables(db: sqlite_utils.Database) -> None:
    db["settlement_rules"].create(
        {"merchant_id": str, "cycle": str, "min_amount": int, "splits": str},
        pk="merchant_id", if_not_exists=True,
    )
    db["settlements"].create(
        {"settlement_id": str, "batch_id": str, "merchant_id": str, "currency": str,
         "through_ms": int, "amount": int, "status": str, "req_id": str, "created_ms": int,
         "paid_ms": int, "entry_id": int, "payments": int, "refunds": int, "fees": int,
         "splits_out": int, "splits_in": int, "carried_in": int, "net": int},
        pk="settlement_id", if_not_exists=True,
    )
    db["settlements"].create_index(["merchant_id", "currency"], if_not_exists=True)
    db["settlements"].create_index(["batch_id"], if_not_exists=True)
    db["settlement_batches"].create(
        {"batch_id": str, "date": str, "cycle": str, "created_ms": int, "merchants": int,
         "total": int},
        pk="batch_id", if_not_exists=True,
    )


# -- calendar --------------------------------------------------------------------------------

def _state(node, name: str):
    return vars(node).setdefault(f"_settlement_{name}", {} if name == "attempts" else set())


def _arm(node, due_ms: int, kind: str, key: str, arg: int = 0) -> None:
    armed = _state(node, "timers")
    if (kind, key, arg) not in armed:
        armed.add((kind, key, arg))
        node.at(due_ms, kind, key, arg)


def _scope(node, key: str) -> list[str]:
    """The merchants settled by the batch of timer key "T" (T+n) or "D" (D+0)."""
    bo = node.cfg.backoffice
    return [m for m in sorted(node.merchants) if (bo.rule(m).days == 0) == (key == "D")]


def _offset(node, key: str) -> int:
    bo = node.cfg.backoffice
    return bo.same_day_time_ms if key == "D" else bo.settle_time_ms


def _batch_ran(conn, key: str, day: int | None) -> bool:
    sql, args = "SELECT 1 FROM settlement_batches WHERE cycle = ?", [CYCLE[key]]
    if day is not None:
        sql, args = sql + " AND date = ?", [*args, days.iso(day)]
    return conn.execute(sql, args).fetchone() is not None


def arm(node, now_ms: int) -> None:
    """Write the rules, schedule the batches (a batch missed while the node was down runs at
    once), and take up the settlements left `created`."""
    bo = node.cfg.backoffice
    if not bo.settlement:
        return
    if bo.payout_channel not in node.adapters or node.channels[bo.payout_channel].kind != "bank":
        raise ValueError(f"backoffice.payout_channel: expected a bank channel id, one of "
                         f"{sorted(c for c, ch in node.channels.items() if ch.kind == 'bank')}, "
                         f"got {bo.payout_channel!r}")
    clearing.check_rules(bo, node.merchants)
    conn = node.conn
    for m in sorted(node.merchants):
        rule = bo.rule(m)
        conn.execute("INSERT OR REPLACE INTO settlement_rules VALUES (?, ?, ?, ?)",
                     (m, rule.cycle, rule.min_amount, json.dumps(clearing.splits_of(rule))))
    today = days.day_of(now_ms)
    for key in CYCLE:
        if not _scope(node, key):
            continue
        due = days.day_start(today) + _offset(node, key)
        if due >= now_ms:
            _arm(node, due, "settle", key, today)
        elif _batch_ran(conn, key, None) and not _batch_ran(conn, key, today):
            _arm(node, now_ms, "settle", key, today)    # missed while down
        else:
            _arm(node, due + days.DAY_MS, "settle", key, today + 1)
    reserved = _state(node, "reserved")
    for sid, merchant_id, amount, req_id in conn.execute(
            "SELECT settlement_id, merchant_id, amount, req_id FROM settlements "
            "WHERE status = 'created' ORDER BY settlement_id").fetchall():
        if sid not in reserved:
            reserved.add(sid)
            node.reserve(merchant_id, amount)
        if req_id not in node.inflight:
            _arm(node, now_ms, "payout_retry", sid)


def on_settle_due(node, key: str, day: int, now_ms: int) -> None:
    _state(node, "timers").discard(("settle", key, day))
    _arm(node, days.day_start(day + 1) + _offset(node, key), "settle", key, day + 1)
    if not _batch_ran(node.conn, key, day):
        run_batch(node, key, day, now_ms)


# -- a batch ---------------------------------------------------------------------------------

def _next_id(conn, table: str, column: str, prefix: str) -> str:
    (last,) = conn.execute(f"SELECT MAX({column}) FROM {table}").fetchone()
    return f"{prefix}{(int(last[len(prefix):]) if last else 0) + 1:06d}"


def _through(node, key: str, merchant_id: str, day: int, now_ms: int) -> int:
    if key == "D":
        return now_ms
    return days.day_start(day - node.cfg.backoffice.rule(merchant_id).days + 1)


def movements(conn, since_ms: int) -> list[tuple[int, str, str, str, int]]:
    """Every movement of a merchant account in the entries at or after `since_ms` (settlements
    left out): (at_ms, merchant_id, currency, statement column, signed amount). `payments` and
    `fees` come in pairs (see the module doc)."""
    out: list[tuple[int, str, str, str, int]] = []
    entry: list = []

    def flush() -> None:
        debited = {acc for acc, _c, d, _cr in entry if acc.startswith(MERCHANT) and d}
        credited = {acc for acc, _c, _d, cr in entry if acc.startswith(MERCHANT) and cr}
        for account, cur, debit, credit in entry:
            if not account.startswith(MERCHANT):
                continue
            m = account[len(MERCHANT):]
            if credit and debited - {account}:
                out.append((at, m, cur, "splits_in", credit))
            elif credit:
                fee = sum(cr - d for acc, c, d, cr in entry if acc == "income:fee" and c == cur)
                out.append((at, m, cur, "payments", credit + fee))
                out.append((at, m, cur, "fees", fee))
            elif credited - {account}:
                out.append((at, m, cur, "splits_out", debit))
            else:
                out.append((at, m, cur, "refunds", debit))

    last, at = None, 0
    for entry_id, at_ms, account, cur, debit, credit in conn.execute(
            "SELECT e.entry_id, e.at_ms, p.account, p.currency, p.debit, p.credit "
            "FROM journal_entries e JOIN postings p ON p.entry_id = e.entry_id "
            "WHERE e.at_ms >= ? AND e.memo != 'settlement' AND "
            "(p.account LIKE 'liability:merchant:%' OR p.account = 'income:fee') "
            "ORDER BY e.entry_id, p.posting_id", (since_ms,)):
        if entry_id != last:
            flush()
            entry, last, at = [], entry_id, at_ms
        entry.append((account, cur, debit, credit))
    flush()
    return out


SIGN = {"payments": 1, "refunds": -1, "fees": -1, "splits_out": -1, "splits_in": 1}


def run_batch(node, key: str, day: int, now_ms: int) -> str | None:
    """Run the batch of timer key `key` ("T" or "D") for business day `day`; its batch_id, or
    None when no merchant has that cycle."""
    conn, bo = node.conn, node.cfg.backoffice
    scope = _scope(node, key)
    if not scope:
        return None
    throughs = {m: _through(node, key, m, day, now_ms) for m in scope}
    past = {(m, cur): (start or 0, taken or 0, created or 0)
            for m, cur, start, taken, created in conn.execute(
                "SELECT merchant_id, currency, MAX(through_ms), SUM(CASE WHEN status IN "
                "('created', 'paid') THEN amount END), SUM(CASE WHEN status = 'created' THEN "
                "amount END) FROM settlements GROUP BY merchant_id, currency")}
    accounts = [(m, cur) for m in scope for (cur,) in conn.execute(
        "SELECT currency FROM ledger_totals WHERE account = ? ORDER BY currency",
        (MERCHANT + m,))]
    since = min([throughs[m] for m in scope]
                + [past.get(a, (0, 0, 0))[0] for a in accounts] or [0])
    period: dict[tuple[str, str], dict[str, int]] = {}
    after: dict[tuple[str, str], int] = {}
    for at_ms, m, cur, column, amount in movements(conn, since):
        if (m, cur) not in accounts or m not in throughs:
            continue
        start = past.get((m, cur), (0, 0, 0))[0]
        if at_ms >= throughs[m]:
            after[(m, cur)] = after.get((m, cur), 0) + SIGN[column] * amount
        elif at_ms >= start:
            cols = period.setdefault((m, cur), dict.fromkeys(STATEMENT, 0))
            cols[column] += amount
    batch_id = _next_id(conn, "settlement_batches", "batch_id", "SB")
    date, made, needs = days.iso(day), [], {}
    reserved = _state(node, "reserved")
    for m, cur in accounts:
        _start, _taken, in_flight = past.get((m, cur), (0, 0, 0))
        cols = period.get((m, cur), dict.fromkeys(STATEMENT, 0))
        moved = sum(SIGN[c] * v for c, v in cols.items())
        owed_now = ledger.balance(conn, MERCHANT + m, cur)
        due = owed_now - after.get((m, cur), 0) - in_flight
        amount = min(due, owed_now - node.reserved(m))
        if amount < max(bo.rule(m).min_amount, 1):
            continue   # carried to the next batch
        sid = _next_id(conn, "settlements", "settlement_id", "S")
        row = {"settlement_id": sid, "batch_id": batch_id, "merchant_id": m, "currency": cur,
               "through_ms": max(throughs[m], _start), "amount": amount, "status": "created",
               "req_id": f"{sid}.p1", "created_ms": now_ms, **cols,
               "carried_in": due - moved, "net": amount}
        conn.execute(f"INSERT INTO settlements ({','.join(row)}) VALUES "
                     f"({','.join('?' * len(row))})", tuple(row.values()))
        reserved.add(sid)
        node.reserve(m, amount)
        made.append(row)
        needs[cur] = needs.get(cur, 0) + amount
    total = sum(r["amount"] for r in made)
    conn.execute("INSERT INTO settlement_batches VALUES (?, ?, ?, ?, ?, ?)",
                 (batch_id, date, CYCLE[key], now_ms, len(made), total))
    node.event("settlement.batch", batch_id, {"date": date, "cycle": CYCLE[key],
                                              "merchants": len(made), "total": total})
    if positions.check(node, batch_id, date, needs, now_ms):
        release(node, batch_id, now_ms)
    return batch_id


def release(node, batch_id: str, now_ms: int) -> None:
    """Send the payouts of batch `batch_id` that have not left yet."""
    for (sid,) in node.conn.execute(
            "SELECT settlement_id FROM settlements WHERE batch_id = ? AND status = 'created' "
            "ORDER BY settlement_id", (batch_id,)).fetchall():
        _send(node, sid, now_ms)


# -- payouts ---------------------------------------------------------------------------------

def _row(conn, sid: str) -> dict | None:
    cur = conn.execute("SELECT * FROM settlements WHERE settlement_id = ?", (sid,))
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None


def _send(node, sid: str, now_ms: int) -> None:
    row = _row(node.conn, sid)
    if row is None or row["status"] != "created" or row["req_id"] in node.inflight:
        return
    channel = node.cfg.backoffice.payout_channel
    body = node.adapters[channel].payout(row["req_id"], f"merchant:{row['merchant_id']}",
                                         row["amount"], row["currency"])
    first = node.conn.execute("SELECT 1 FROM channel_requests WHERE req_id = ?",
                              (row["req_id"],)).fetchone() is None
    call = node.call_channel if first else node.resend_channel
    call(channel, "payout", sid, row["req_id"], body, now_ms)


def _end(node, row: dict, status: str, now_ms: int, entry_id: int | None = None) -> None:
    node.conn.execute("UPDATE settlements SET status = ?, paid_ms = ?, entry_id = ? WHERE "
                      "settlement_id = ?", (status, now_ms, entry_id, row["settlement_id"]))
    if row["settlement_id"] in _state(node, "reserved"):
        _state(node, "reserved").discard(row["settlement_id"])
        node.reserve(row["merchant_id"], -row["amount"])
    _state(node, "attempts").pop(row["settlement_id"], None)


def on_payout(node, channel: str, sid: str, req_id: str, outcome, now_ms: int) -> None:
    row = _row(node.conn, sid)
    if row is None or row["status"] != "created":
        return
    data = {"merchant_id": row["merchant_id"], "amount": row["amount"],
            "currency": row["currency"], "batch_id": row["batch_id"]}
    if outcome.kind == SUCCESS:
        lines = ledger.settlement_lines(channel, row["merchant_id"], row["currency"], row["amount"])
        entry_id = ledger.post(node.conn, now_ms, sid, "settlement", lines)
        node.event("ledger.post", sid, {"entry_id": entry_id, "memo": "settlement",
                                        "postings": [list(line) for line in lines]})
        _end(node, row, "paid", now_ms, entry_id)
        node.event("settlement.paid", sid, data)
    elif outcome.kind == FAILURE:
        _end(node, row, "failed", now_ms)
        node.event("settlement.failed", sid, dict(data, code=outcome.code))
    else:
        _retry(node, sid, now_ms)


def on_payout_timeout(node, channel: str, sid: str, req_id: str, now_ms: int) -> None:
    row = _row(node.conn, sid)
    if row is not None and row["status"] == "created":
        _retry(node, sid, now_ms)


def _retry(node, sid: str, now_ms: int) -> None:
    attempts = _state(node, "attempts")
    n = attempts[sid] = attempts.get(sid, 0) + 1
    _arm(node, now_ms + RETRY_MS[min(n - 1, len(RETRY_MS) - 1)], "payout_retry", sid)


def on_retry_due(node, sid: str, arg: int, now_ms: int) -> None:
    _state(node, "timers").discard(("payout_retry", sid, arg))
    row = _row(node.conn, sid)
    if row is not None and row["status"] == "created" \
            and not positions.pending(node.conn, row["batch_id"]):
        _send(node, sid, now_ms)


TIMERS = {"settle": on_settle_due, "payout_retry": on_retry_due}
FLOWS = {"payout": on_payout}
TIMEOUTS = {"payout": on_payout_timeout}
REFUSED = {"payout": on_payout_timeout}
