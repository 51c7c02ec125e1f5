"""Test helpers for the back office books (settlement, positions, the accounting day): a node
with the back-office tables and settlement on, a business-day clock, ledger entries posted as a
payment flow would post them, and an instant bank that answers payouts and transfers.

Tests import it as `from _books import ...` (pytest puts this folder on sys.path).
"""

import sqlite_utils
from _node import NOW, Driver, bank_reply, make_node, sends

from paysys import clearing, dayend, ledger, positions, settlement
from paysys.config import BackOffice
from paysys.store import open_store

HOUR = 3_600_000
DAY0 = dayend.day_of(NOW)          # the business day the tests start on


def t(day: int, hour: float = 0) -> int:
    """The instant `hour` local hours into business day DAY0 + `day`."""
    return dayend.day_start(DAY0 + day) + int(hour * HOUR)


def create_tables(conn) -> None:
    db = sqlite_utils.Database(conn)
    for module in (settlement, positions, dayend):
        module.create_tables(db)


def book_node(conn=None, **backoffice):
    """A node (on `conn` or a fresh store) with settlement on and `bank` as payout channel."""
    if conn is None:
        conn = open_store(":memory:")
        create_tables(conn)
    fields = {"settlement": True, "payout_channel": "bank", **backoffice}
    return make_node(conn, backoffice=BackOffice(**fields))


def start(node, now: int) -> Driver:
    """A driver at `now` on `node`, armed as after a restart (recover)."""
    d = Driver(node, now)
    d._keep(node.recover(now))
    return d


def unit(d: Driver, fn) -> list[tuple]:
    """Run fn(node, now) as one unit of work of the node (effects kept in the driver's log)."""
    return d._keep(d.node._transaction(lambda now: fn(d.node, now), d.now))


def pay(d: Driver, merchant: str, amount: int, channel: str = "bank", cost_bp: int = 20) -> None:
    """The ledger entry of a successful payment, with the merchant's splits (as paid.py posts)."""
    node = d.node

    def post(node, now):
        fee = node.merchants[merchant].fee_rule().fee(amount)
        cost = amount * cost_bp // 10_000
        lines = ledger.payment_lines(channel, merchant, "CNY", amount, fee, cost)
        lines += clearing.split_lines(merchant, "CNY", amount,
                                      clearing.splits_of(node.cfg.backoffice.rule(merchant)),
                                      available=amount - fee)
        ledger.post(node.conn, now, f"P{now}", "payment", lines)
    unit(d, post)
    assert node is d.node


def refund(d: Driver, merchant: str, amount: int, channel: str = "bank") -> None:
    unit(d, lambda node, now: ledger.post(node.conn, now, f"R{now}", "refund",
                                          ledger.refund_lines(channel, merchant, "CNY", amount)))


def answer_all(d: Driver, fx: list[tuple], payout="SUCCESS", transfer="SUCCESS") -> list[tuple]:
    """Answer every payout and transfer request in `fx` at once (results may be callables of
    the request); returns the effects of the answers, answered in turn."""
    out: list[tuple] = []
    todo = list(fx)
    while todo:
        effect = todo.pop(0)
        if effect[0] != "send" or effect[1] != "bank":
            continue
        body = effect[2]
        result = {"bank.payout": payout, "bank.transfer": transfer}.get(body["type"])
        if result is None:
            continue
        result = result(body) if callable(result) else result
        if result is None:
            continue
        code = "INSUFFICIENT_FUNDS" if result == "DECLINED" else None
        more = d.handle("bank", bank_reply(body, result, code=code, bank_txn_id="B" + body["req_id"],
                                           amount=body["amount"]))
        out += more
        todo += more
    return out


def run_until(d: Driver, end: int, **answers) -> list[tuple]:
    """Advance to `end`, firing timers in order; the bank answers each request at once."""
    fx: list[tuple] = []
    while (due := d.node.next_deadline()) is not None and due <= end:
        d.now = max(d.now, due)
        step = d._keep(d.node.on_timer(d.now))
        fx += step + answer_all(d, step, **answers)
    d.now = max(d.now, end)
    return fx


def rows(conn, table: str, where: str = "1", args: tuple = ()) -> list[dict]:
    cur = conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY 1", args)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


__all__ = ["NOW", "sends", "book_node", "start", "pay", "refund", "run_until", "answer_all",
           "rows", "t", "unit", "HOUR", "DAY0", "create_tables"]
