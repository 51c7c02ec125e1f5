"""Positions at the payout bank: the reserve's opening entry (once), a short position topped up
from the reserve before the payouts leave, a declined transfer that lets them leave anyway, a
transfer timeout answered by the same request again."""

from _books import book_node, pay, rows, run_until, sends, start, t, unit
from _node import bank_reply, events

from paysys import backoffice, ledger


def bal(d, account: str) -> int:
    return ledger.balance(d.conn, account, "CNY")


def test_the_reserve_opening_is_posted_once():
    node = book_node(reserve=100_000)
    d = start(node, t(0, 8))
    unit(d, backoffice.arm)
    start(book_node(node.conn, reserve=100_000), t(0, 9))     # a restart
    assert d.conn.execute("SELECT COUNT(*) FROM journal_entries WHERE ref = 'reserve:open'"
                          ).fetchone()[0] == 1
    assert bal(d, "asset:reserve:bank") == 100_000 and bal(d, "equity:capital") == 100_000


def test_a_short_position_is_topped_up_before_the_payouts_leave():
    d = start(book_node(reserve=100_000, position_floor=5_000), t(0, 8))
    pay(d, "M001", 10_000)                               # bank position 9 980
    fx = run_until(d, t(1, 11), transfer=None)           # the transfer is not answered yet
    (transfer,) = sends(fx, "bank", "bank.transfer")
    assert transfer == {"type": "bank.transfer", "req_id": "SB000002.t1", "from": "reserve",
                        "to": "platform", "amount": 9_940 + 5_000 - 9_980, "currency": "CNY"}
    assert sends(fx, "bank", "bank.payout") == []        # waiting for the top-up
    fx = d.handle("bank", bank_reply(transfer, "SUCCESS", bank_txn_id="T1", amount=4_960))
    (payout,) = sends(fx, "bank", "bank.payout")
    assert payout["amount"] == 9_940
    assert bal(d, "asset:reserve:bank") == 100_000 - 4_960
    assert bal(d, "asset:channel:bank") == 9_980 + 4_960
    pos = rows(d.conn, "positions", "date = '2023-11-16'")[0]
    assert (pos["balance"], pos["needed"], pos["topped_up"]) == (9_980, 14_940, 4_960)
    assert rows(d.conn, "topups")[0]["status"] == "done"
    assert events(fx, "position.topped_up", "SB000002")


def test_a_declined_transfer_lets_the_payouts_leave_anyway():
    d = start(book_node(reserve=100_000, position_floor=50_000), t(0, 8))
    pay(d, "M001", 10_000)
    fx = run_until(d, t(1, 11), transfer="DECLINED")
    assert len(sends(fx, "bank", "bank.payout")) == 1
    assert rows(d.conn, "topups")[0]["status"] == "failed"
    assert bal(d, "asset:reserve:bank") == 100_000
    assert rows(d.conn, "positions", "date = '2023-11-16'")[0]["topped_up"] == 0


def test_no_transfer_without_a_reserve_and_none_when_the_position_covers_the_batch():
    d = start(book_node(position_floor=50_000), t(0, 8))        # no reserve
    pay(d, "M001", 10_000)
    fx = run_until(d, t(1, 11))
    assert sends(fx, "bank", "bank.transfer") == [] and len(sends(fx, "bank", "bank.payout")) == 1
    d = start(book_node(reserve=1_000), t(0, 8))
    pay(d, "M001", 10_000)
    fx = run_until(d, t(1, 11))
    assert sends(fx, "bank", "bank.transfer") == [] and rows(d.conn, "topups") == []


def test_a_transfer_timeout_sends_the_same_request_again():
    d = start(book_node(reserve=100_000, position_floor=5_000), t(0, 8))
    pay(d, "M001", 10_000)
    fx = run_until(d, t(1, 11), transfer=None)
    (first,) = sends(fx, "bank", "bank.transfer")
    fx = d.advance(10_000)
    again = sends(fx, "bank", "bank.transfer")
    assert again and all(body == first for body in again)
    assert sends(fx, "bank", "bank.payout") == []
    fx = d.handle("bank", bank_reply(first, "SUCCESS", bank_txn_id="T1", amount=first["amount"]))
    assert len(sends(fx, "bank", "bank.payout")) == 1
    assert d.conn.execute("SELECT COUNT(*) FROM journal_entries WHERE memo = 'topup'"
                          ).fetchone()[0] == 1
