"""The internal products (paysys/products/accounts.py): balance, coins and credit paid inside
paysys — entries, declines, refunds back to where the money came from, the helpers other
families use, and a Hypothesis property: credit never beyond limit + overdraft, balances never
below zero, the books balanced."""


import pytest
from _node import M_MD5, NOW, make_node, signed
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys import ledger
from paysys.ledger import LedgerError, Line
from paysys.products import accounts
from paysys.products.accounts import CoinSettings, CreditSettings

INTERNAL = ("balance", "coins", "credit")


class Node:
    def __init__(self, **products):
        self.node = make_node(products=products)
        self.now = NOW
        self.n = 0

    @property
    def conn(self):
        return self.node.conn

    def fund(self, account: str, amount: int) -> None:
        """Money arrives on a user's account (as a top-up would bring it)."""
        ledger.post(self.conn, self.now, "seed", "seed",
                    [Line("asset:channel:bank", "CNY", amount, 0),
                     Line(account, "CNY", 0, amount)])

    def request(self, body: dict) -> dict:
        fx = self.node.handle("merchant:M001", signed(M_MD5, body, self.now), self.now)
        return [e[1] for e in fx if e[0] == "reply"][-1] if any(e[0] == "reply" for e in fx) \
            else [e[2] for e in fx if e[0] == "send" and e[1] == "merchant:M001"][-1]

    def pay(self, product: str, amount: int, user: str = "U1") -> dict:
        self.n += 1
        return self.request({"type": "pay.create", "idempotency_key": f"k{self.n}",
                             "merchant_order_no": f"o{self.n}", "order_time": self.now,
                             "user_id": user, "product": product, "amount": amount,
                             "currency": "CNY", "notify_url": "http://m/notify"})

    def refund(self, order_id: str, amount: int) -> dict:
        self.n += 1
        return self.request({"type": "refund.create", "idempotency_key": f"r{self.n}",
                             "order_id": order_id, "refund_no": f"r{self.n}", "amount": amount})

    def bal(self, account: str) -> int:
        return ledger.balance(self.conn, account, "CNY")


def fee(amount: int) -> int:
    return (amount * M_MD5.fee_rate_bp + 5_000) // 10_000


def test_balance_lines_debit_the_user_and_pay_the_merchant_less_the_fee() -> None:
    assert accounts.balance_lines("U1", "CNY", 1_000, "M001", 6) == [
        Line("liability:user:U1", "CNY", 1_000, 0), Line("liability:merchant:M001", "CNY", 0, 994),
        Line("income:fee", "CNY", 0, 6)]
    assert accounts.balance_lines("U1", "CNY", 5, "M001", 0)[-1].account == \
        "liability:merchant:M001"
    for bad in ({"amount": 0}, {"amount": 1.5}, {"merchant_fee": 11}, {"merchant_fee": True}):
        args = {"amount": 10, "merchant_fee": 1, **bad}
        with pytest.raises(LedgerError) as err:
            accounts.balance_lines("U1", "CNY", args["amount"], "M001", args["merchant_fee"])
        assert err.value.field in bad


def test_a_balance_payment_short_of_balance_is_declined_and_moves_nothing() -> None:
    t = Node()
    answer = t.pay("balance", 1_000)
    assert (answer["status"], answer["code"]) == ("FAILED", "INSUFFICIENT_BALANCE")
    assert t.conn.execute("SELECT COUNT(*) FROM postings").fetchone() == (0,)


def test_a_balance_payment_and_its_refund() -> None:
    t = Node()
    t.fund("liability:user:U1", 5_000)
    answer = t.pay("balance", 2_000)
    assert (answer["status"], answer["channel"]) == ("SUCCEEDED", "balance")
    assert accounts.balance_of(t.conn, "U1", "CNY") == 3_000
    assert ledger.external_balance(t.conn, "user:U1", "CNY") == 3_000
    assert t.bal("liability:merchant:M001") == 2_000 - fee(2_000)
    refund = t.refund(answer["order_id"], 500)
    assert refund["status"] == "SUCCEEDED"
    assert accounts.balance_of(t.conn, "U1", "CNY") == 3_500
    assert t.conn.execute("SELECT refunded FROM pay_orders WHERE order_id=?",
                          (answer["order_id"],)).fetchone() == (500,)


def test_coins_are_spent_whole_and_declined_when_short() -> None:
    t = Node(coins=CoinSettings(price=10))
    t.fund("liability:coins:U1", 100)
    assert t.pay("coins", 15)["code"] == "INVALID_AMOUNT"
    assert t.pay("coins", 110)["code"] == "INSUFFICIENT_COINS"
    paid = t.pay("coins", 60)
    assert paid["status"] == "SUCCEEDED" and accounts.coins_of(t.conn, "U1", "CNY") == 40
    assert t.refund(paid["order_id"], 60)["status"] == "SUCCEEDED"
    assert accounts.coins_of(t.conn, "U1", "CNY") == 100


def test_credit_draws_up_to_limit_plus_overdraft_and_a_refund_lowers_the_debt_first() -> None:
    t = Node(credit=CreditSettings(limit=10_000, overdraft_bp=1_000))
    first = t.pay("credit", 10_000)
    assert first["status"] == "SUCCEEDED"
    assert t.pay("credit", 1_001)["code"] == "CREDIT_LIMIT"
    assert t.pay("credit", 1_000)["status"] == "SUCCEEDED"        # the overdraft
    assert accounts.credit_drawn(t.conn, "U1", "CNY") == 11_000
    assert accounts.credit_room(t.node, "U1", "CNY") == 0
    # the user repaid 10 500 meanwhile: a refund of 1 000 lowers the debt by 500, 500 to the balance
    ledger.post(t.conn, t.now, "repay", "repay", [Line("asset:channel:bank", "CNY", 10_500, 0),
                                                   Line("asset:credit:U1", "CNY", 0, 10_500)])
    assert t.refund(first["order_id"], 1_000)["status"] == "SUCCEEDED"
    assert accounts.credit_drawn(t.conn, "U1", "CNY") == 0
    assert accounts.balance_of(t.conn, "U1", "CNY") == 500


def test_the_settings_default_and_the_ceiling_rounds_down() -> None:
    assert CreditSettings(limit=999, overdraft_bp=1).ceiling == 999
    assert CreditSettings().ceiling == accounts.DEFAULT_LIMIT * 11 // 10
    assert CoinSettings().price == accounts.DEFAULT_PRICE


def test_every_internal_product_lists_its_postings() -> None:
    rows = {(p.product, p.operation) for p in accounts.POSTINGS}
    assert rows == {(p, op) for p in INTERNAL for op in ("pay", "refund")}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["credit", "balance", "refund", "fund"]),
                          st.integers(1, 6_000)), max_size=20))
def test_credit_never_beyond_its_line_balances_never_negative_books_balanced(ops) -> None:
    t = Node(credit=CreditSettings(limit=10_000, overdraft_bp=500))
    t.fund("liability:merchant:M001", 100_000)     # the merchant can always pay a refund
    paid = []
    for op, amount in ops:
        if op == "fund":
            t.fund("liability:user:U1", amount)
        elif op == "refund" and paid:
            order_id, left = paid[0]
            answer = t.refund(order_id, min(amount, left))
            if left - min(amount, left) == 0:
                paid.pop(0)
            else:
                paid[0] = (order_id, left - min(amount, left))
            assert answer["ok"]
        elif op in ("credit", "balance"):
            answer = t.pay(op, amount)
            if answer["status"] == "SUCCEEDED":
                paid.append((answer["order_id"], amount))
        assert accounts.credit_drawn(t.conn, "U1", "CNY") <= 10_500
        assert accounts.balance_of(t.conn, "U1", "CNY") >= 0
    debits, credits = ledger.trial_balance(t.conn).get("CNY", (0, 0))
    assert debits == credits
