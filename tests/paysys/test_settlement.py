"""Settlement and payouts, driven by hand: D+0, T+1, T+3 (a risk hold), the minimum amount
carried, a payout declined then paid the next day, a timeout answered by the same request
again, a restart with a payout in flight, statements that add up; and a Hypothesis property
over payments, refunds, splits and settlement runs."""

from _books import (
    answer_all,
    book_node,
    pay,
    refund,
    rows,
    run_until,
    sends,
    start,
    t,
    unit,
)
from _node import bank_reply, events
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys import backoffice, ledger
from paysys.config import SettlementRule

OWED = "liability:merchant:{}"


def owed(d, m: str) -> int:
    return ledger.balance(d.conn, OWED.format(m), "CNY")


def statement(row: dict) -> int:
    """What a settlement carries over to the next."""
    return (row["carried_in"] + row["payments"] - row["refunds"] - row["fees"]
            - row["splits_out"] + row["splits_in"] - row["net"])


def test_d0_settles_the_same_day_and_posts_the_payout():
    d = start(book_node(rules={"M001": SettlementRule("D+0")}), t(0, 8))
    pay(d, "M001", 10_000)                          # fee 60 (60 bp), cost 20
    fx = run_until(d, t(0, 23.4))
    assert sends(fx, "bank", "bank.payout") == []
    fx = run_until(d, t(0, 23.6))
    (payout,) = sends(fx, "bank", "bank.payout")
    assert payout == {"type": "bank.payout", "req_id": "S000001.p1", "account": "merchant:M001",
                      "amount": 9_940, "currency": "CNY"}
    (s,) = rows(d.conn, "settlements")
    assert s["status"] == "paid" and s["through_ms"] == t(0, 23.5)
    assert (s["payments"], s["fees"], s["refunds"], s["carried_in"], s["net"]) == \
        (10_000, 60, 0, 0, 9_940)
    assert statement(s) == 0
    assert owed(d, "M001") == 0
    assert ledger.balance(d.conn, "asset:channel:bank", "CNY") == 10_000 - 20 - 9_940
    assert ledger.external_balance(d.conn, "merchant:M001", "CNY") == 0
    t1, d0 = rows(d.conn, "settlement_batches")     # M002 is T+1 (the default rule) at 11:00
    assert (t1["cycle"], t1["merchants"], t1["total"]) == ("T+n", 0, 0)
    assert (d0["batch_id"], d0["cycle"], d0["merchants"], d0["total"]) == \
        (s["batch_id"], "D+0", 1, 9_940)
    assert d.node.reserved("M001") == 0
    assert events(fx, "settlement.paid", "S000001")


def test_t1_settles_yesterday_and_keeps_today():
    d = start(book_node(), t(0, 8))          # default rule: T+1 for M001 and M002
    pay(d, "M002", 10_000)                   # fee 30
    run_until(d, t(0, 12))                   # day 0's batch: nothing before today's midnight
    (b0,) = rows(d.conn, "settlement_batches")
    assert (b0["merchants"], b0["total"], b0["cycle"]) == (0, 0, "T+n")
    d.now = t(0, 20)
    pay(d, "M002", 5_000)                    # day 0 too
    d.now = t(1, 9)
    pay(d, "M002", 1_000)                    # day 1: not in day 1's batch
    run_until(d, t(1, 12))
    (s,) = rows(d.conn, "settlements")
    assert s["amount"] == 9_970 + 4_985 and s["through_ms"] == t(1) and s["status"] == "paid"
    assert owed(d, "M002") == 997
    run_until(d, t(2, 12))
    assert [r["amount"] for r in rows(d.conn, "settlements")] == [14_955, 997]
    second = rows(d.conn, "settlements")[1]
    assert second["carried_in"] == 0 and second["payments"] == 1_000 and statement(second) == 0


def test_t3_holds_the_money_three_days():
    d = start(book_node(rules={"M001": SettlementRule("T+3")}), t(0, 8))
    pay(d, "M001", 10_000)
    run_until(d, t(2, 23))
    assert rows(d.conn, "settlements") == []
    run_until(d, t(3, 12))
    (s,) = rows(d.conn, "settlements")
    assert s["amount"] == 9_940 and s["through_ms"] == t(1)


def test_below_the_minimum_is_carried_to_the_next_batch():
    d = start(book_node(rules={"M001": SettlementRule("T+1", min_amount=15_000)}), t(0, 8))
    pay(d, "M001", 10_000)
    run_until(d, t(1, 12))
    assert rows(d.conn, "settlements") == []
    pay(d, "M001", 10_000)
    run_until(d, t(2, 12))
    (s,) = rows(d.conn, "settlements")
    assert s["amount"] == 2 * 9_940 and s["payments"] == 20_000 and s["fees"] == 120


def test_a_declined_payout_stays_owed_and_is_paid_the_next_day():
    d = start(book_node(), t(0, 8))
    pay(d, "M001", 10_000)
    fx = run_until(d, t(1, 12), payout="DECLINED")
    (s1,) = rows(d.conn, "settlements")
    assert s1["status"] == "failed" and s1["entry_id"] is None
    assert events(fx, "settlement.failed", "S000001")[0]["code"] == "INSUFFICIENT_FUNDS"
    assert owed(d, "M001") == 9_940 and d.node.reserved("M001") == 0
    run_until(d, t(2, 12))
    s1, s2 = rows(d.conn, "settlements")
    assert s2["status"] == "paid" and s2["amount"] == 9_940
    assert s2["carried_in"] == 9_940 and s2["payments"] == 0 and statement(s2) == 0
    assert owed(d, "M001") == 0


def test_a_payout_timeout_is_sent_again_under_the_same_req_id():
    d = start(book_node(), t(0, 8))
    pay(d, "M001", 10_000)
    fx = run_until(d, t(1, 11), payout=None)          # the bank does not answer
    (first,) = sends(fx, "bank", "bank.payout")
    fx = d.advance(10_000)              # timeout after 3 s, sent again 5 s later, in flight
    again = sends(fx, "bank", "bank.payout")
    assert again and all(body == first for body in again)
    d.handle("bank", bank_reply(first, "SUCCESS", bank_txn_id="B1", amount=9_940))
    d.handle("bank", bank_reply(first, "SUCCESS", bank_txn_id="B1", amount=9_940))  # late copy
    (s,) = rows(d.conn, "settlements")
    assert s["status"] == "paid"
    assert d.conn.execute("SELECT COUNT(*) FROM journal_entries WHERE memo = 'settlement'"
                          ).fetchone()[0] == 1
    assert owed(d, "M001") == 0


def test_a_restart_reserves_and_resends_the_payout_in_flight():
    node = book_node()
    d = start(node, t(0, 8))
    pay(d, "M001", 10_000)
    fx = run_until(d, t(1, 11), payout=None)
    (first,) = sends(fx, "bank", "bank.payout")
    assert node.reserved("M001") == 9_940
    node.flush()
    d2 = start(book_node(node.conn), t(1, 11) + 10_000)     # memory lost
    assert d2.node.reserved("M001") == 9_940
    unit(d2, backoffice.arm)                                 # armed twice: nothing doubles
    assert d2.node.reserved("M001") == 9_940
    fx = d2.advance(6_000)              # timed out at the restart, sent again 5 s later
    again = sends(fx, "bank", "bank.payout") + sends(d2.log_effects(), "bank", "bank.payout")
    assert again and all(body == first for body in again)
    answer_all(d2, [("send", "bank", first, 0)])
    assert rows(d2.conn, "settlements")[0]["status"] == "paid"
    assert d2.node.reserved("M001") == 0
    assert len(rows(d2.conn, "settlement_batches")) == 2      # days 0 and 1: none ran again


def test_a_batch_missed_while_down_runs_at_the_restart():
    node = book_node()
    d = start(node, t(0, 8))
    pay(d, "M001", 10_000)
    run_until(d, t(0, 12))                      # day 0's batch ran (empty)
    node.flush()
    d2 = start(book_node(node.conn), t(1, 15))  # down over day 1's batch time
    run_until(d2, t(1, 15) + 1_000)
    assert [r["date"] for r in rows(d2.conn, "settlement_batches")][-1] == "2023-11-16"
    assert rows(d2.conn, "settlements")[0]["status"] == "paid"


def test_refunds_in_flight_are_not_paid_out():
    d = start(book_node(), t(0, 8))
    pay(d, "M001", 10_000)
    d.node.reserve("M001", 1_000)          # a refund of 1 000 in flight
    run_until(d, t(1, 12))
    (s,) = rows(d.conn, "settlements")
    assert s["amount"] == 8_940 and statement(s) == 1_000
    assert owed(d, "M001") == 1_000


def test_splits_move_money_between_merchants_and_show_in_the_statements():
    rule = SettlementRule("T+1", splits=(("M002", 1_000),))      # 10 % to M002
    d = start(book_node(rules={"M001": rule}), t(0, 8))
    pay(d, "M001", 10_000)
    refund(d, "M001", 2_000)
    run_until(d, t(1, 12))
    s1, s2 = rows(d.conn, "settlements")
    assert (s1["merchant_id"], s1["payments"], s1["fees"], s1["splits_out"], s1["refunds"]) == \
        ("M001", 10_000, 60, 1_000, 2_000)
    assert s1["amount"] == 10_000 - 60 - 1_000 - 2_000 and statement(s1) == 0
    assert (s2["merchant_id"], s2["splits_in"], s2["payments"], s2["amount"]) == \
        ("M002", 1_000, 0, 1_000)


# -- property --------------------------------------------------------------------------------

MERCHANTS = ("M001", "M002")
RULES = {"M001": SettlementRule("T+1", splits=(("M002", 500),)), "M002": SettlementRule("D+0")}
step = st.one_of(
    st.tuples(st.just("pay"), st.sampled_from(MERCHANTS), st.integers(1, 50_000)),
    st.tuples(st.just("refund"), st.sampled_from(MERCHANTS), st.integers(1, 50_000)),
    st.tuples(st.just("wait"), st.sampled_from(["SUCCESS", "DECLINED"]), st.integers(1, 30)),
)


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(step, max_size=14))
def test_paid_plus_owed_is_what_the_merchant_earned(steps):
    d = start(book_node(rules=RULES, reserve=10**9), t(0, 8))
    model = {m: dict.fromkeys(("payments", "refunds", "fees", "out", "in"), 0) for m in MERCHANTS}
    for kind, a, b in steps:
        if kind == "pay":
            fee = d.node.merchants[a].fee_rule().fee(b)
            pay(d, a, b)
            model[a]["payments"] += b
            model[a]["fees"] += fee
            if a == "M001":
                share = min((2 * b * 500 + 10_000) // 20_000, b - fee)
                model["M001"]["out"] += share
                model["M002"]["in"] += share
        elif kind == "refund":
            amount = min(b, owed(d, a) - d.node.reserved(a))
            if amount > 0:
                refund(d, a, amount)
                model[a]["refunds"] += amount
        else:
            run_until(d, d.now + b * HOUR_MS, payout=a)
        for m in MERCHANTS:
            (paid,) = d.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM settlements WHERE "
                                     "merchant_id = ? AND status = 'paid'", (m,)).fetchone()
            x = model[m]
            assert paid + owed(d, m) == (x["payments"] - x["refunds"] - x["fees"] - x["out"]
                                         + x["in"])
            mine = rows(d.conn, "settlements", "merchant_id = ?", (m,))
            for before, after in zip(mine, mine[1:], strict=False):
                assert after["carried_in"] == statement(before) + (
                    before["amount"] if before["status"] == "failed" else 0)
        for debits, credits in ledger.trial_balance(d.conn).values():
            assert debits == credits
        for channel in ("bank", "wechat"):
            (dr, cr) = d.conn.execute(
                "SELECT COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) FROM postings WHERE "
                "account = ?", (f"asset:channel:{channel}",)).fetchone()
            assert ledger.balance(d.conn, f"asset:channel:{channel}", "CNY") == dr - cr


HOUR_MS = 3_600_000
