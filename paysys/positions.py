"""Positions (头寸): the payout bank must hold enough to pay a settlement batch out.

What this module owns: the tables `positions` (one row per day and payout channel: the ledger
balance of `asset:channel:<payout>` at the last check of the day, what was needed, what the
reserve topped up that day) and `topups` (one transfer per batch that needed one), the reserve's
opening entry, and the `bank.transfer` flow.

- `open_reserve`: `Dr asset:reserve:<payout> / Cr equity:capital`, cfg.backoffice.reserve, ref
  "reserve:open", posted once (a restart finds it).
- `check(node, batch_id, date, needs, now_ms)` before each batch: needed = the batch's total +
  position_floor; if the position is short, the difference (at most what the reserve holds,
  less top-ups still in flight) is asked from the reserve by `bank.transfer` (req_id
  `<batch_id>.t1`) and check returns False: the batch's payouts leave when the transfer is
  answered. SUCCESS posts `Dr asset:channel:<payout> / Cr asset:reserve:<payout>`; DECLINED lets
  the payouts leave anyway (the bank may decline some); a timeout or an unknown answer sends the
  same request again until it is answered.
Positions and top-ups are in the reserve's currency (RESERVE_CURRENCY); payouts in another
currency leave without a check.
"""

import sqlite_utils

from paysys import ledger
from paysys.channels.base import FAILURE, SUCCESS

RESERVE_CURRENCY = "CNY"
RETRY_MS = (5_000, 30_000, 120_000, 600_000, 1_800_000)


def create_tables(db: sqlite_utils.Database) -> None:
    db["positions"].create(
        {"date": str, "channel": str, "balance": int, "needed": int, "topped_up": int},
        pk=("date", "channel"), if_not_exists=True,
    )
    db["topups"].create(
        {"batch_id": str, "date": str, "channel": str, "currency": str, "amount": int,
         "req_id": str, "status": str, "created_ms": int, "answered_ms": int, "entry_id": int},
        pk="batch_id", if_not_exists=True,
    )


def _armed(node) -> set:
    return vars(node).setdefault("_topup_timers", set())


def _retry(node, batch_id: str, now_ms: int, at_once: bool = False) -> None:
    if batch_id in _armed(node):
        return
    attempts = vars(node).setdefault("_topup_attempts", {})
    n = attempts[batch_id] = attempts.get(batch_id, 0) + 1
    _armed(node).add(batch_id)
    node.at(now_ms if at_once else now_ms + RETRY_MS[min(n - 1, len(RETRY_MS) - 1)],
            "topup_retry", batch_id)


def arm(node, now_ms: int) -> None:
    """Post the reserve's opening entry (once) and send again the top-ups left unanswered."""
    if not node.cfg.backoffice.settlement:
        return
    open_reserve(node, now_ms)
    for (batch_id,) in node.conn.execute(
            "SELECT batch_id FROM topups WHERE status = 'pending' ORDER BY batch_id").fetchall():
        if f"{batch_id}.t1" not in node.inflight:
            _retry(node, batch_id, now_ms, at_once=True)


def open_reserve(node, now_ms: int) -> int | None:
    """The reserve's opening entry, posted once; its entry_id, or None if none was posted now."""
    bo = node.cfg.backoffice
    if bo.reserve <= 0 or node.conn.execute(
            "SELECT 1 FROM journal_entries WHERE ref = 'reserve:open'").fetchone():
        return None
    lines = ledger.reserve_open_lines(bo.payout_channel, RESERVE_CURRENCY, bo.reserve)
    entry_id = ledger.post(node.conn, now_ms, "reserve:open", "reserve", lines)
    node.event("ledger.post", "reserve:open", {"entry_id": entry_id, "memo": "reserve",
                                               "postings": [list(line) for line in lines]})
    return entry_id


def pending(conn, batch_id: str) -> bool:
    """Whether the batch waits for its top-up."""
    return conn.execute("SELECT 1 FROM topups WHERE batch_id = ? AND status = 'pending'",
                        (batch_id,)).fetchone() is not None


def check(node, batch_id: str, date: str, needs: dict[str, int], now_ms: int) -> bool:
    """Check the payout position before batch `batch_id` (`needs`: currency -> its total) and
    top it up if short. True: the payouts may leave now; False: they wait for the transfer."""
    conn, bo = node.conn, node.cfg.backoffice
    channel, cur = bo.payout_channel, RESERVE_CURRENCY
    (in_flight,) = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM topups WHERE channel = ? "
                                "AND status = 'pending'", (channel,)).fetchone()
    position = ledger.balance(conn, f"asset:channel:{channel}", cur)
    needed = needs.get(cur, 0) + bo.position_floor
    conn.execute(
        "INSERT INTO positions (date, channel, balance, needed, topped_up) VALUES (?, ?, ?, ?, 0) "
        "ON CONFLICT (date, channel) DO UPDATE SET balance = excluded.balance, "
        "needed = excluded.needed", (date, channel, position, needed))
    reserve = ledger.balance(conn, f"asset:reserve:{channel}", cur) - in_flight
    amount = min(needed - position - in_flight, reserve)
    if amount <= 0:
        return True
    req_id = f"{batch_id}.t1"
    conn.execute("INSERT INTO topups (batch_id, date, channel, currency, amount, req_id, status, "
                 "created_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                 (batch_id, date, channel, cur, amount, req_id, now_ms))
    node.event("position.topup", batch_id, {"channel": channel, "balance": position,
                                            "needed": needed, "amount": amount})
    _send(node, batch_id, first=True, now_ms=now_ms)
    return False


def _send(node, batch_id: str, first: bool, now_ms: int) -> None:
    channel, cur, amount, req_id = node.conn.execute(
        "SELECT channel, currency, amount, req_id FROM topups WHERE batch_id = ?",
        (batch_id,)).fetchone()
    body = node.adapters[channel].transfer(req_id, amount, cur)
    call = node.call_channel if first else node.resend_channel
    call(channel, "transfer", batch_id, req_id, body, now_ms)


def on_transfer(node, channel: str, batch_id: str, req_id: str, outcome, now_ms: int) -> None:
    conn = node.conn
    row = conn.execute("SELECT date, currency, amount FROM topups WHERE batch_id = ? AND "
                       "status = 'pending'", (batch_id,)).fetchone()
    if row is None:
        return
    date, cur, amount = row
    if outcome.kind not in (SUCCESS, FAILURE):
        _retry(node, batch_id, now_ms)
        return
    entry_id = None
    if outcome.kind == SUCCESS:
        lines = ledger.topup_lines(channel, cur, amount)
        entry_id = ledger.post(conn, now_ms, batch_id, "topup", lines)
        node.event("ledger.post", batch_id, {"entry_id": entry_id, "memo": "topup",
                                             "postings": [list(line) for line in lines]})
        conn.execute("UPDATE positions SET topped_up = topped_up + ? WHERE date = ? AND "
                     "channel = ?", (amount, date, channel))
    conn.execute("UPDATE topups SET status = ?, answered_ms = ?, entry_id = ? WHERE batch_id = ?",
                 ("done" if entry_id else "failed", now_ms, entry_id, batch_id))
    vars(node).get("_topup_attempts", {}).pop(batch_id, None)
    node.event("position.topped_up", batch_id, {"channel": channel, "amount": amount,
                                                "outcome": outcome.kind, "code": outcome.code})
    from paysys import settlement  # settlement asks for the check; the answer releases it
    settlement.release(node, batch_id, now_ms)


def on_transfer_timeout(node, channel: str, batch_id: str, req_id: str, now_ms: int) -> None:
    if pending(node.conn, batch_id):
        _retry(node, batch_id, now_ms)


def on_retry_due(node, batch_id: str, arg: int, now_ms: int) -> None:
    _armed(node).discard(batch_id)
    if pending(node.conn, batch_id) and f"{batch_id}.t1" not in node.inflight:
        _send(node, batch_id, first=False, now_ms=now_ms)


TIMERS = {"topup_retry": on_retry_due}
FLOWS = {"transfer": on_transfer}
TIMEOUTS = {"transfer": on_transfer_timeout}
REFUSED = {"transfer": on_transfer_timeout}
