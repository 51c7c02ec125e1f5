"""The money movements (paysys/products/movements*.py) against the real mocks: top-ups through
the quick-pay flow, coin purchases, credit repayments, transfers, withdrawals and payouts to
cards (mockbanks/bank_cardpayout.py) and wallets (mockbanks/wechat_payout.py); unknown answers
resolved by the same request again; a Hypothesis property over any sequence of operations."""

import random

from _node import BANK, M_MD5, NOW, WECHAT, make_node, signed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.fees import Fee
from mockbanks.wechat import WeChat
from paysys import ledger
from paysys.products import accounts, movements
from paysys.products.movements import MOVE_TRANSITIONS, M

CARD = "6222020000000001"
FROZEN_CARD = "6222020000000005"
INTERNAL = ("balance", "coins", "credit")
TIMEOUT = BANK.timeout_ms


class Wire:
    """paysys, a bank and a WeChat-like platform wired together: every message is delivered at
    once; `lose` drops the next reply of a given type (an unknown outcome for paysys)."""

    def __init__(self, bank_platform: int = 0, wx_platform: int = 0):
        self.now = NOW
        self.node = make_node()
        self.bank = Bank(name="bank", rng=random.Random(1), fee_rule=Fee(rate_bp=20),
                         capacity=4, max_queue_ms=10_000, service_time=lambda rng: 50,
                         platform_balance=bank_platform)
        self.wx = WeChat(name="wechat", rng=random.Random(2), fee_rule=Fee(rate_bp=25),
                         api_key="wx-api-key", platform_balance=wx_platform)
        for user, card, frozen in (("U1", CARD, False), ("U2", "6222020000000003", False),
                                   ("U3", FROZEN_CARD, True)):
            self.bank.open_account(user, card, 10_000_000, 10_000_000, frozen=frozen)
        self.answers: list[dict] = []
        self.lose: set[str] = set()
        self.lost: list[dict] = []

    @property
    def conn(self):
        return self.node.conn

    def run(self, fx: list[tuple]) -> None:
        queue = list(fx)
        while queue:
            effect = queue.pop(0)
            if effect[0] == "reply":
                self.answers.append(effect[1])
            elif effect[0] == "send":
                dst, body = effect[1], effect[2]
                if dst.startswith("merchant:"):
                    self.answers.append(body)
                elif dst in ("bank", "wechat"):
                    mock = self.bank if dst == "bank" else self.wx
                    for out in mock.handle("paysys", body, self.now):
                        if out[0] == "reply":
                            if out[1]["type"] in self.lose:
                                self.lose.discard(out[1]["type"])
                                self.lost.append(out[1])
                                continue
                            queue += self.node.handle(dst, out[1], self.now)

    def request(self, body: dict) -> dict | None:
        """The answer to `body`, or None while it is deferred (it comes to `answers`)."""
        before = len(self.answers)
        self.run(self.node.handle("merchant:M001", signed(M_MD5, body, self.now), self.now))
        return self.answers[-1] if len(self.answers) > before else None

    def advance(self, ms: int) -> None:
        end = self.now + ms
        while (due := self.node.next_deadline()) is not None and due <= end:
            self.now = max(self.now, due)
            self.run(self.node.on_timer(self.now))
        self.now = end

    def balance(self, user: str = "U1") -> int:
        return accounts.balance_of(self.conn, user, "CNY")

    def movement(self, movement_id: str) -> dict:
        return movements.movement(self.conn, movement_id)


_n = iter(range(1, 10**9))


def req(kind: str, amount: int, user: str = "U1", **fields) -> dict:
    n = next(_n)
    body = {"type": kind, "idempotency_key": f"K{n}", "request_no": f"R{n}", "user_id": user,
            "amount": amount, "currency": "CNY", **fields}
    if kind in ("topup.create", "coins.buy", "credit.repay", "withdraw.create") \
            and "card_no" not in body:
        body["card_no"] = {"U1": CARD, "U2": "6222020000000003", "U3": FROZEN_CARD}[user]
    return body


def topup(w: Wire, amount: int, user: str = "U1") -> dict:
    return w.request(req("topup.create", amount, user))


def fee(amount: int) -> int:
    """M001's fee (60 bp, half up): what a top-up's merchant keeps."""
    return (amount * M_MD5.fee_rate_bp + 5_000) // 10_000


def test_the_state_table_has_two_final_states_and_unknown_never_fails_by_itself() -> None:
    finals = [s for s, moves in MOVE_TRANSITIONS.items() if set(moves) <= {"late_success"}]
    assert finals == [M.SUCCEEDED, M.FAILED]
    assert MOVE_TRANSITIONS[M.UNKNOWN] == {"success": M.SUCCEEDED, "decline": M.FAILED}
    assert "timeout" not in MOVE_TRANSITIONS[M.UNKNOWN]


def test_a_topup_charges_the_card_and_credits_the_balance_net_of_the_fee() -> None:
    w = Wire()
    answer = topup(w, 10_000)
    assert (answer["ok"], answer["status"], answer["credited"]) == (True, "SUCCEEDED",
                                                                   10_000 - fee(10_000))
    row = w.movement(answer["movement_id"])
    child = w.conn.execute("SELECT status, parent_id, product FROM pay_orders WHERE order_id=?",
                           (row["child_id"],)).fetchone()
    assert child == ("SUCCEEDED", row["movement_id"], "quick")
    assert w.balance() == 10_000 - fee(10_000)
    assert ledger.external_balance(w.conn, "user:U1", "CNY") == w.balance()
    assert ledger.balance(w.conn, "liability:merchant:M001", "CNY") == 0
    assert w.bank.truth.balance("platform", "CNY") == 10_000 - 20   # the bank's fee


def test_a_topup_whose_card_is_declined_fails_and_credits_nothing() -> None:
    w = Wire()
    answer = topup(w, 10_000, user="U3")      # frozen card: the pay is declined
    assert (answer["status"], answer["code"]) == ("FAILED", "CARD_FROZEN")
    assert w.balance("U3") == 0


def test_a_topup_with_a_lost_pay_reply_is_queried_and_credited_once() -> None:
    w = Wire()
    w.lose.add("bank.pay.reply")
    assert topup(w, 5_000) is None          # the answer waits for the card charge
    w.advance(60_000)
    answer = w.answers[-1]
    assert (answer["type"], answer["status"]) == ("topup.create.reply", "SUCCEEDED")
    assert w.balance() == 5_000 - fee(5_000)
    w.advance(600_000)
    assert w.balance() == 5_000 - fee(5_000)


def test_coins_buy_whole_coins_and_the_change_goes_to_the_balance() -> None:
    w = Wire()
    answer = w.request(req("coins.buy", 10_005))
    net = 10_005 - fee(10_005)
    assert answer["status"] == "SUCCEEDED"
    assert accounts.coins_of(w.conn, "U1", "CNY") == net - net % 10
    assert w.balance() == net % 10


def test_credit_repay_reduces_the_debt_and_never_beyond_it() -> None:
    w = Wire()
    too_much = w.request(req("credit.repay", 100))
    assert (too_much["ok"], too_much["code"]) == (False, movements.code("REPAY_EXCEEDS"))
    order = w.request({"type": "pay.create", "idempotency_key": "c1", "merchant_order_no": "c1",
                       "order_time": w.now, "user_id": "U1", "product": "credit",
                       "amount": 20_000, "currency": "CNY", "notify_url": "http://m/notify"})
    assert order["status"] == "SUCCEEDED"
    assert accounts.credit_drawn(w.conn, "U1", "CNY") == 20_000
    assert w.request(req("credit.repay", 10_000))["status"] == "SUCCEEDED"
    assert accounts.credit_drawn(w.conn, "U1", "CNY") == 20_000 - (10_000 - fee(10_000))


def test_a_transfer_moves_balance_in_one_entry_and_refuses_self_and_shortfall() -> None:
    w = Wire()
    topup(w, 10_000)
    have = w.balance()
    assert w.request(req("transfer.create", 3_000, to_user_id="U2"))["status"] == "SUCCEEDED"
    assert (w.balance(), w.balance("U2")) == (have - 3_000, 3_000)
    same = w.request(req("transfer.create", 1, to_user_id="U1"))
    assert (same["ok"], same["code"], same["field"]) == (False, movements.code("SAME_USER"), "to_user_id")
    short = w.request(req("transfer.create", have, to_user_id="U2"))
    assert (short["ok"], short["code"]) == (False, movements.code("INSUFFICIENT_BALANCE"))
    assert (w.balance(), w.balance("U2")) == (have - 3_000, 3_000)


def test_a_withdrawal_freezes_then_pays_the_card_once() -> None:
    w = Wire()
    topup(w, 10_000)
    have = w.balance()
    answer = w.request(req("withdraw.create", 4_000))
    assert answer["status"] == "SUCCEEDED"
    assert w.balance() == have - 4_000
    assert ledger.balance(w.conn, "liability:frozen:U1", "CNY") == 0
    payouts = [t for t in w.bank.truth.txns() if t["kind"] == "payout"]
    assert [(t["ref"], t["amount"]) for t in payouts] == [(answer["movement_id"], 4_000)]


def test_a_withdrawal_to_a_frozen_card_is_declined_and_the_balance_released() -> None:
    w = Wire()
    w.bank.set_frozen(FROZEN_CARD, False)
    topup(w, 10_000, user="U3")
    w.bank.set_frozen(FROZEN_CARD, True)
    have = w.balance("U3")
    answer = w.request(req("withdraw.create", 1_000, user="U3"))
    assert (answer["status"], answer["code"]) == ("FAILED", "CARD_FROZEN")
    assert w.balance("U3") == have
    assert ledger.balance(w.conn, "liability:frozen:U3", "CNY") == 0


def test_a_withdrawal_whose_answer_is_lost_is_sent_again_and_paid_once() -> None:
    w = Wire()
    topup(w, 10_000)
    have = w.balance()
    w.lose.add("bank.card_payout.reply")
    assert w.request(req("withdraw.create", 2_000)) is None    # the answer waits
    w.advance(TIMEOUT)
    answer = w.answers[-1]                   # unknown: the merchant hears PROCESSING
    assert (answer["type"], answer["status"]) == ("withdraw.create.reply", "PROCESSING")
    row = w.movement(answer["movement_id"])
    assert row["status"] == "UNKNOWN" and w.balance() == have - 2_000   # frozen meanwhile
    assert ledger.balance(w.conn, "liability:frozen:U1", "CNY") == 2_000
    w.advance(30_000)
    row = w.movement(answer["movement_id"])
    assert row["status"] == "SUCCEEDED"
    assert len([t for t in w.bank.truth.txns() if t["kind"] == "payout"]) == 1
    assert ledger.balance(w.conn, "liability:frozen:U1", "CNY") == 0


def test_a_withdrawal_beyond_the_balance_is_refused_and_creates_nothing() -> None:
    w = Wire()
    answer = w.request(req("withdraw.create", 1))
    assert (answer["ok"], answer["code"]) == (False, movements.code("INSUFFICIENT_BALANCE"))
    assert w.conn.execute("SELECT COUNT(*) FROM movements").fetchone() == (0,)


def test_payouts_debit_the_merchant_to_a_card_or_a_wallet() -> None:
    w = Wire(wx_platform=50_000)
    topup(w, 100_000)                       # the merchant is paid nothing by a top-up
    refused = w.request(req("payout.create", 1, to="card", card_no=CARD))
    assert (refused["ok"], refused["code"]) == (False, "INSUFFICIENT_MERCHANT_BALANCE")
    ledger.post(w.conn, w.now, "seed", "seed", [("asset:channel:wechat", "CNY", 50_000, 0),
                                                ("liability:merchant:M001", "CNY", 0, 50_000)])
    card = w.request(req("payout.create", 3_000, user="U2", to="card",
                         card_no="6222020000000003"))
    wallet = w.request(req("payout.create", 4_000, user="U2", to="wallet"))
    assert (card["status"], wallet["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert ledger.balance(w.conn, "liability:merchant:M001", "CNY") == 50_000 - 7_000
    assert w.wx.truth.balance("wallet:U2", "CNY") == 4_000
    assert ledger.balance(w.conn, "asset:channel:wechat", "CNY") == 50_000 - 4_000


def test_a_wallet_payout_the_platform_cannot_fund_is_declined_and_released() -> None:
    w = Wire(wx_platform=0)
    ledger.post(w.conn, w.now, "seed", "seed", [("asset:channel:wechat", "CNY", 5_000, 0),
                                                ("liability:merchant:M001", "CNY", 0, 5_000)])
    answer = w.request(req("payout.create", 4_000, user="U2", to="wallet"))
    assert (answer["status"], answer["code"]) == ("FAILED", "NOTENOUGH")
    assert ledger.balance(w.conn, "liability:merchant:M001", "CNY") == 5_000


def test_a_repeated_request_number_answers_the_same_movement() -> None:
    w = Wire()
    body = req("topup.create", 1_000)
    first = w.request(body)
    again = w.request(dict(body, idempotency_key="other"))
    assert again["movement_id"] == first["movement_id"]
    assert w.conn.execute("SELECT COUNT(*) FROM movements").fetchone() == (1,)


OPS = st.lists(st.tuples(st.sampled_from(["topup", "pay", "refund", "transfer", "withdraw",
                                          "credit", "lose"]),
                         st.integers(1, 30_000), st.sampled_from(["U1", "U2"])),
               min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(OPS)
def test_any_sequence_keeps_balances_non_negative_credit_within_limit_and_books_balanced(
        ops) -> None:
    w = Wire()
    paid: list[str] = []
    for n, (op, amount, user) in enumerate(ops):
        other = "U2" if user == "U1" else "U1"
        if op == "topup":
            topup(w, amount, user)
        elif op in ("pay", "credit"):
            answer = w.request({"type": "pay.create", "idempotency_key": f"p{n}",
                                "merchant_order_no": f"p{n}", "order_time": w.now,
                                "user_id": user, "product": "balance" if op == "pay" else "credit",
                                "amount": amount * (10 if op == "credit" else 1),
                                "currency": "CNY", "notify_url": "http://m/notify"})
            if answer.get("status") == "SUCCEEDED":
                paid.append(answer["order_id"])
        elif op == "refund" and paid:
            w.request({"type": "refund.create", "idempotency_key": f"r{n}",
                       "order_id": paid.pop(0), "refund_no": f"r{n}", "amount": 1})
        elif op == "transfer":
            w.request(req("transfer.create", amount, user, to_user_id=other))
        elif op == "withdraw":
            w.request(req("withdraw.create", amount, user))
        elif op == "lose":
            w.lose.add("bank.card_payout.reply")
        w.advance(1_000)
        for who in ("U1", "U2"):
            assert w.balance(who) >= 0
            assert accounts.credit_drawn(w.conn, who, "CNY") <= accounts.CreditSettings().ceiling
    w.advance(3_600_000)
    debits, credits = ledger.trial_balance(w.conn).get("CNY", (0, 0))
    assert debits == credits
    assert w.conn.execute("SELECT COUNT(*) FROM movements WHERE status NOT IN "
                          "('SUCCEEDED','FAILED')").fetchone() == (0,)
    for account, balance in w.conn.execute("SELECT account, balance FROM ext_balances"):
        assert balance >= 0, account
    assert ledger.balance(w.conn, "liability:frozen:U1", "CNY") == 0
    payouts = [t["ref"] for t in w.bank.truth.txns() if t["kind"] == "payout"]
    assert len(payouts) == len(set(payouts))
    ok = {r for (r,) in w.conn.execute("SELECT movement_id FROM movements WHERE kind='withdraw' "
                                       "AND status='SUCCEEDED'")}
    assert set(payouts) == ok


assert BANK.id == "bank" and WECHAT.id == "wechat"
