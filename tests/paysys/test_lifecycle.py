"""The order lifecycle through the node, as a Hypothesis state machine (no simulator).

Rules create quick and platform payments (some challenged by risk), answer the channel requests
the node sent (success, decline or something unclear), ignore them (the node times out), answer
one twice, send WeChat notifications (genuine or forged), let time pass, retry a merchant
request, request refunds, and restart the node on its database (`recover`). The replies are
arbitrary but well-formed (docs/protocol.md): the node must stay consistent whatever the
channels say.

Invariants after every step: the trial balance is zero; each merchant's external balance equals
its ledger balance; every SUCCEEDED order has exactly one payment entry and no other order has
one; each SUCCEEDED refund has exactly one refund entry; refunded <= amount and equals the sum of
succeeded refunds; one order per merchant order number; every recorded transition is allowed by
the tables of paysys.orders and each order's last transition leads to its current status.
"""

from _node import (
    CHALLENGE_AMOUNT,
    Driver,
    bank_reply,
    confirm_otp,
    make_node,
    pay_create,
    refund_create,
    sends,
    wx_notify,
    wx_reply,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from paysys import ledger
from paysys.orders import fire

CHANNELS = ("bank", "wechat")
OUTCOMES = ("success", "decline", "unclear")
USERS = ("U00001", "U00002", "U00003")
MAX_ORDERS = 6                    # a few orders, followed deep, rather than many shallow ones
ANSWERS = ("success", "success", "decline", "unclear")
STEPS = (1_000, 3_000, 5_000, 20_000, 16 * 60_000)


def order_of(request: dict) -> str:
    return str(request.get("out_trade_no") or request["req_id"]).split(".")[0]


def channel_answer(request: dict, amount: int, outcome: str, variant: int) -> dict:
    """A well-formed answer of the channel to `request` (docs/protocol.md)."""
    kind = request["type"]
    if kind.startswith("wx."):
        if outcome == "unclear" and variant % 2:
            return wx_reply(request, return_code="FAIL", return_msg="SYSTEMERROR")
        if kind == "wx.unifiedorder":
            if outcome == "success":
                return wx_reply(request, prepay_id="wx1", code_url="weixin://wxpay/1")
            return wx_reply(request, result_code="FAIL", err_code="OUTTRADENO_USED")
        if kind == "wx.orderquery":
            state = {"success": "SUCCESS", "decline": "CLOSED", "unclear": "NOTPAY"}[outcome]
            if outcome == "unclear" and variant % 3 == 0:
                return wx_reply(request, result_code="FAIL", err_code="ORDERNOTEXIST")
            return wx_reply(request, trade_state=state, total_fee=amount, transaction_id="WX")
        if kind == "wx.closeorder":
            if outcome == "success":
                return wx_reply(request, result_code="FAIL", err_code="ORDERPAID")
            return wx_reply(request)
        if outcome == "success":  # wx.refund
            return wx_reply(request, refund_id="WXR")
        return wx_reply(request, result_code="FAIL", err_code="NOTENOUGH")
    paid = {"result": "SUCCESS", "amount": amount, "bank_txn_id": "T"}
    table = {
        "bank.sign": ({"result": "OK", "agreement_no": "AG"},
                      {"result": "DECLINED", "code": "INVALID_CARD"}, {"result": "ERROR"}),
        "bank.pay": (paid, {"result": "DECLINED", "code": "INSUFFICIENT_FUNDS"},
                     {"result": ("PROCESSING", "ERROR")[variant % 2], "code": "PROCESSING_ERROR"}),
        "bank.query": (paid, {"result": "DECLINED", "code": "CLOSED"},
                       {"result": ("NOT_FOUND", "PROCESSING")[variant % 2]}),
        "bank.close": (paid, {"result": "CLOSED"}, {"result": "PROCESSING"}),
        "bank.refund": ({"result": "SUCCESS"}, {"result": "DECLINED", "code": "EXCEEDS_REFUNDABLE"},
                        {"result": "ERROR", "code": "PROCESSING_ERROR"}),
    }
    fields = table.get(kind, ({"result": "OK"},) * 3)[OUTCOMES.index(outcome)]
    return bank_reply(request, **fields)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.d = Driver()
        self.outstanding: list[tuple[str, dict]] = []  # channel requests not yet answered
        self.answered: list[tuple[str, dict]] = []
        self.order_nos: list[str] = []
        self.platform: list[str] = []                  # orders sent to WeChat
        self.otps: dict[str, str] = {}
        self.refunds = 0

    # -- plumbing --------------------------------------------------------------------------

    def keep(self, fx: list[tuple]) -> None:
        for channel in CHANNELS:
            for body in sends(fx, channel):
                self.outstanding.append((channel, body))
                if body["type"] == "wx.unifiedorder":
                    self.platform.append(body["out_trade_no"])
        for body in sends(fx, "sms", "sms.otp"):
            self.otps[body["order_id"]] = body["otp"]

    def amount(self, order_id: str) -> int:
        row = self.d.conn.execute("SELECT amount FROM pay_orders WHERE order_id=?",
                                  (order_id,)).fetchone()
        return row[0] if row else 1

    def rows(self, sql: str, *args) -> list[tuple]:
        return self.d.conn.execute(sql, args).fetchall()

    # -- rules -----------------------------------------------------------------------------

    @initialize()
    def two_paid_orders(self):
        """Orders to refund from the first step, and a merchant balance that can pay refunds."""
        for n in (1, 2):
            self.order_nos.append(f"MO{n}")
            fx = self.d.merchant(pay_create(f"MO{n}", 20_000, now=self.d.now, user_id="U00009"))
            for body in sends(fx, "bank"):
                if body["type"] == "bank.sign":
                    fx = self.d.handle("bank", bank_reply(body, "OK", agreement_no="AG9"))
            for body in sends(fx, "bank", "bank.pay"):
                self.d.handle("bank", channel_answer(body, 20_000, "success", 0))
        assert self.rows("SELECT COUNT(*) FROM pay_orders WHERE status='SUCCEEDED'") == [(2,)]

    @precondition(lambda self: len(self.order_nos) < MAX_ORDERS + 2)
    @rule(product=st.sampled_from(("quick", "platform")), user=st.sampled_from(USERS),
          amount=st.sampled_from((1, 999, 10_000, 30_000, 60_000, CHALLENGE_AMOUNT)))
    def create_payment(self, product, user, amount):
        order_no = f"MO{len(self.order_nos) + 1}"
        self.order_nos.append(order_no)
        card = f"62220200000000{USERS.index(user):02d}"
        self.keep(self.d.merchant(pay_create(order_no, amount, product, now=self.d.now,
                                             user_id=user, card_no=card)))

    @precondition(lambda self: self.order_nos)
    @rule(i=st.integers(0, 99))
    def merchant_retries_a_payment(self, i):
        order_no = self.order_nos[i % len(self.order_nos)]
        row = self.rows("SELECT product, amount, user_id, card_no FROM pay_orders WHERE "
                        "merchant_order_no=?", order_no)
        if row:
            product, amount, user, card = row[0]
            self.keep(self.d.merchant(pay_create(order_no, amount, product, now=self.d.now,
                                                 user_id=user, card_no=card or "6222020000000000")))

    @precondition(lambda self: self.otps)
    @rule(i=st.integers(0, 99), right=st.booleans())
    def answer_the_challenge(self, i, right):
        order_id = sorted(self.otps)[i % len(self.otps)]
        otp = self.otps.pop(order_id)
        self.keep(self.d.merchant(confirm_otp(order_id, otp if right else "000000")))

    @precondition(lambda self: self.outstanding)
    @rule(i=st.integers(0, 99), outcome=st.sampled_from(ANSWERS), variant=st.integers(0, 5))
    def channel_answers(self, i, outcome, variant):
        channel, request = self.outstanding.pop(i % len(self.outstanding))
        amount = request.get("amount") or request.get("refund_fee") or self.amount(order_of(request))
        self.answered.append((channel, request))
        self.keep(self.d.handle(channel, channel_answer(request, amount, outcome, variant)))

    @precondition(lambda self: self.outstanding)
    @rule(outcome=st.sampled_from(OUTCOMES), variant=st.integers(0, 5))
    def channels_answer_everything(self, outcome, variant):
        while self.outstanding:
            self.channel_answers(0, outcome, variant)

    @precondition(lambda self: self.outstanding)
    @rule(i=st.integers(0, 99))
    def channel_stays_silent(self, i):
        self.outstanding.pop(i % len(self.outstanding))

    @precondition(lambda self: self.outstanding)
    @rule(i=st.integers(0, 99))
    def network_refuses_a_request(self, i):
        channel, request = self.outstanding.pop(i % len(self.outstanding))
        self.keep(self.d.handle(channel, {"type": "net.error", "error": "refused",
                                          "request": request}))

    @precondition(lambda self: self.answered)
    @rule(i=st.integers(0, 99), outcome=st.sampled_from(OUTCOMES))
    def channel_answers_again(self, i, outcome):
        channel, request = self.answered[i % len(self.answered)]
        amount = request.get("amount") or request.get("refund_fee") or self.amount(order_of(request))
        self.keep(self.d.handle(channel, channel_answer(request, amount, outcome, 0)))

    @precondition(lambda self: self.platform)
    @rule(i=st.integers(0, 99), genuine=st.booleans())
    def wechat_notifies(self, i, genuine):
        order_id = self.platform[i % len(self.platform)]
        body = wx_notify(order_id, self.amount(order_id), **({} if genuine else {"key": "forged"}))
        self.keep(self.d.handle("wechat", body))

    @rule(ms=st.sampled_from(STEPS))
    def time_passes(self, ms):
        self.keep(self.d.advance(ms))

    @precondition(lambda self: self.order_nos)
    @rule(i=st.integers(0, 99), how=st.sampled_from(("half", "rest", "rest+1", "one")))
    def merchant_refunds(self, i, how):
        paid = self.rows("SELECT order_id, amount FROM pay_orders WHERE status='SUCCEEDED' "
                         "ORDER BY order_id")
        if not paid:
            return
        order_id, amount = paid[i % len(paid)]
        (taken,) = self.rows("SELECT COALESCE(SUM(amount), 0) FROM refund_orders WHERE "
                             "order_id=? AND status != 'FAILED'", order_id)[0]
        rest = amount - taken  # what may still be refunded: at the boundary, and just past it
        value = {"half": amount // 2, "rest": rest, "rest+1": rest + 1, "one": 1}[how]
        self.refunds += 1
        self.keep(self.d.merchant(refund_create(order_id, f"RN{self.refunds}", max(1, value))))

    @rule()
    def node_restarts(self):
        self.d.node.flush()
        self.d = Driver(make_node(conn=self.d.conn), now=self.d.now)
        self.otps.clear()  # the one-time passwords were in memory
        self.keep(self.d.node.recover(self.d.now))

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def books_balance(self):
        for currency, (debits, credits) in ledger.trial_balance(self.d.conn).items():
            assert debits == credits, currency
        for (merchant,) in self.rows("SELECT merchant_id FROM merchants"):
            assert ledger.external_balance(self.d.conn, f"merchant:{merchant}", "CNY") == \
                ledger.balance(self.d.conn, f"liability:merchant:{merchant}", "CNY")

    @invariant()
    def one_payment_entry_per_succeeded_order(self):
        counts = dict(self.rows("SELECT ref, COUNT(*) FROM journal_entries WHERE memo='payment' "
                                "GROUP BY ref"))
        for order_id, status in self.rows("SELECT order_id, status FROM pay_orders"):
            assert counts.get(order_id, 0) == (status == "SUCCEEDED"), (order_id, status)
        refunds = dict(self.rows("SELECT ref, COUNT(*) FROM journal_entries WHERE memo='refund' "
                                 "OR memo LIKE 'compensation:%' GROUP BY ref"))
        for refund_id, status in self.rows("SELECT refund_id, status FROM refund_orders"):
            assert refunds.get(refund_id, 0) == (status == "SUCCEEDED"), (refund_id, status)

    @invariant()
    def refunded_within_the_amount(self):
        for order_id, amount, refunded, succeeded in self.rows(
            "SELECT p.order_id, p.amount, p.refunded, COALESCE(SUM(r.amount), 0) FROM pay_orders p "
            "LEFT JOIN refund_orders r ON r.order_id = p.order_id AND r.status='SUCCEEDED' "
            "AND r.reason = 'merchant' GROUP BY p.order_id"
        ):
            assert 0 <= refunded <= amount and refunded == succeeded, order_id

    @invariant()
    def one_order_per_merchant_order_no(self):
        assert self.rows("SELECT COUNT(*) FROM pay_orders")[0][0] == len(
            {no for no in self.order_nos
             if self.rows("SELECT 1 FROM pay_orders WHERE merchant_order_no=?", no)})

    @invariant()
    def statuses_move_only_as_the_tables_allow(self):
        last: dict[tuple[str, str], str] = {}
        for kind, ref, old, new, event in self.rows(
            "SELECT kind, ref, from_status, to_status, event FROM transitions ORDER BY seq"
        ):
            if old is None:
                assert (event, (kind, ref) in last) == ("create", False), (kind, ref)
            else:
                assert last.get((kind, ref)) == old, (kind, ref, old)
                assert fire(kind, old, event) == new, (kind, ref, old, event, new)
            last[(kind, ref)] = new
        current = {("pay", r): s for r, s in self.rows("SELECT order_id, status FROM pay_orders")}
        current.update({("refund", r): s for r, s in
                        self.rows("SELECT refund_id, status FROM refund_orders")})
        assert current == last


Lifecycle.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
test_lifecycle = Lifecycle.TestCase
