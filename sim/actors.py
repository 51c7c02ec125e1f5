"""The simulated people and merchant systems around the payment system.

- Merchants' systems: sign and send requests to paysys (`pay.create`, `pay.confirm_otp`,
  `refund.create`, `agreement.unsign`), retry a request with the same idempotency key when its
  answer does not come, and run a notification endpoint that verifies paysys's signature and
  answers "success" — or, under faults, answers late, answers "fail", or is down.
- Users: pay the platform's QR code in their wallet (or abandon), read the SMS one-time password
  and type it (sometimes wrong), ask for refunds and unbind their cards.
- The SMS gateway: delivers one-time passwords to users.
- Under user faults (`sim/user_faults.py` decides when they act): users who pay one order twice
  through two tabs, pay part of a QR order, or walk away; merchants' systems that storm paysys
  with copies of each request; an attacker who forges the platform's payment notifications.

They belong to the simulator, not to the system under test, so they use the world's clock and
its random streams directly.
"""

from dataclasses import dataclass

from paysys.signing import sign, verify
from sim.journeys import JOURNEYS, Arrival
from sim.kinds import KINDS
from sim.population import MerchantKeys, User
from sim.rng import stream
from sim.scenario import Scenario
from sim.user_faults import (
    FORGED_DELAY_MS,
    PAY_TWICE_DELAY_MS,
    PRODUCT_OTHER,
    UserFault,
    UserFaults,
)
from sim.world import World

REQUEST_TIMEOUT_MS = 15_000     # a merchant waits this long for paysys's answer, then retries
REQUEST_ATTEMPTS = 3
SMS_DELAY_MS = (1_000, 6_000)    # from the SMS gateway to the user's phone
TYPING_MS = (4_000, 25_000)      # the user reads the code and types it
DOUBLE_SUBMIT_MS = 300
CARD_PRODUCTS = ("quick", "unionpay")   # the user gives a card number


@dataclass(slots=True)
class _Request:
    merchant_id: str
    body: dict
    attempts: int = 0
    answered: bool = False
    tab: int = 1                # 2: the second tab of a pay_twice fault
    on_answer: object = None    # a journey's callback: on_answer(body) with paysys's answer


@dataclass(slots=True)
class _Payment:
    merchant_id: str
    user: User
    product: str
    amount: int
    order_id: str = ""
    settled: bool = False
    started_ms: int = 0
    twice: UserFault | None = None      # the pay_twice fault that opened a second tab
    second_order_id: str = ""


class Actors:
    def __init__(self, world: World, scenario: Scenario, users: list[User],
                 merchants: list[MerchantKeys]):
        self.world = world
        self.sc = scenario
        self.users = users
        self.merchants = {m.merchant_id: m for m in merchants}
        self.merchant_list = merchants
        self.kind_of = {c.id: c.kind for c in scenario.channels}
        self.faults = UserFaults(scenario, world.log)
        seed = scenario.seed
        self.rng_traffic = stream(seed, "traffic")
        self.rng_user = stream(seed, "users.behaviour")
        self.rng_endpoint = stream(seed, "merchants.endpoint")
        self._requests: dict[str, _Request] = {}
        self._payments: dict[str, _Payment] = {}       # merchant_order_no -> payment
        self._by_order: dict[str, _Payment] = {}       # paysys order id -> payment
        self._seq = 0
        self._nonce = 0
        products = scenario.traffic.products
        self._products = [(p, share) for p, share in products.items() if share > 0]
        for prefix in ("merchant", "user", "sms"):
            world.add_actor(prefix, self.receive)
        for m in merchants:
            world.hosts[m.host] = f"merchant:{m.merchant_id}"

    # -- merchant requests --------------------------------------------------------------------

    def _send(self, merchant_id: str, body: dict) -> None:
        sign_type, secret = self.merchants[merchant_id].signing(body.get("app_id"))
        self._nonce += 1
        signed = dict(body, merchant_id=merchant_id, timestamp=self.world.now,
                      nonce=f"n{self._nonce:09d}", sign_type=sign_type)
        signed["sign"] = sign(signed, secret, sign_type)
        self.world.send(f"merchant:{merchant_id}", "paysys", signed)

    def request(self, merchant_id: str, body: dict, tab: int = 1, on_answer=None) -> None:
        """Send a request that carries an idempotency key; retry it until answered.
        `on_answer(body)` (a journey's) receives paysys's answer once."""
        req = self._requests[body["idempotency_key"]] = _Request(merchant_id, body, tab=tab,
                                                                 on_answer=on_answer)
        self._attempt(req)
        self._storm(merchant_id, body)

    def send_request(self, merchant_id: str, body: dict) -> None:
        """Send a request without an idempotency key (the merchant does not retry it)."""
        self._send(merchant_id, body)
        self._storm(merchant_id, body)

    def _storm(self, merchant_id: str, body: dict) -> None:
        """retry_storm: the merchant's system sends the request `retries` more times, every
        `interval`, whatever the answers (each copy signed afresh, as a retry is)."""
        if not self.faults:
            return
        now = self.world.now
        fault = self.faults.draw("retry_storm", now)
        if fault is None:
            return
        retries, interval = fault.params["retries"], fault.params["interval"]
        ref = body.get("merchant_order_no") or body.get("order_id") or ""
        self.faults.fired(now, fault, ref, f"merchant:{merchant_id}", "paysys", type=body["type"],
                          idempotency_key=body.get("idempotency_key", ""), retries=retries,
                          interval_ms=interval)
        for n in range(1, retries + 1):
            self.world.later(n * interval, self._send, merchant_id, body)

    def _attempt(self, req: _Request) -> None:
        if req.answered or req.attempts >= REQUEST_ATTEMPTS:
            return
        req.attempts += 1
        self._send(req.merchant_id, req.body)
        self.world.later(REQUEST_TIMEOUT_MS, self._attempt, req)

    def start_payment(self) -> None:
        """A user checks out at a merchant: the merchant asks paysys to create the payment."""
        rng = self.rng_traffic
        user = self.users[rng.randrange(len(self.users))]
        merchant = self.merchant_list[rng.randrange(len(self.merchant_list))]
        product = self._pick_product(rng.random())
        amount = max(1, self.sc.traffic.amount.sample(rng))
        order_no = self.order_no(merchant.merchant_id)
        journey = JOURNEYS.get(product)
        if journey is not None and journey.start is not None:
            journey.start(self, Arrival(user, merchant, product, amount, order_no))
            return
        now = self.world.now
        body = {"type": "pay.create", "idempotency_key": f"pay-{order_no}",
                "merchant_order_no": order_no, "order_time": now - rng.randrange(60_000),
                "user_id": user.user_id, "product": product, "amount": amount,
                "currency": self.sc.traffic.currency, "notify_url": merchant.notify_url,
                "device_id": user.device_id, "subject": f"order {order_no}"}
        if product in CARD_PRODUCTS:
            body["card_no"] = user.card_no
        if merchant.apps:   # the merchant sells through several applications (draws only then)
            body["app_id"] = rng.choice(merchant.apps).app_id
        payment = self._payments[order_no] = _Payment(merchant.merchant_id, user, product, amount,
                                                      started_ms=now)
        self.request(merchant.merchant_id, body)
        if rng.random() < self.sc.traffic.double_submit_probability:
            self.world.later(DOUBLE_SUBMIT_MS, self._send, merchant.merchant_id, body)
        if self.faults:
            self._pay_twice(payment, body)

    def order_no(self, merchant_id: str) -> str:
        """A fresh merchant order number, unique in the run."""
        self._seq += 1
        return f"{merchant_id}-{self._seq:08d}"

    def _pay_twice(self, payment: _Payment, body: dict) -> None:
        """pay_twice: a second tab sends a second pay.create for the same merchant order, with
        its own idempotency key, through the other product when a channel serves it."""
        fault = self.faults.draw("pay_twice", self.world.now)
        if fault is None:
            return
        other = PRODUCT_OTHER.get(payment.product, payment.product)
        product = other if any(other in c.products for c in self.sc.channels) else payment.product
        second = {k: v for k, v in body.items() if k != "card_no"}
        second["idempotency_key"] = f"{body['idempotency_key']}-2"
        second["product"] = product
        if product == "quick":
            second["card_no"] = payment.user.card_no
        payment.twice = fault
        self.world.later(fault.rng.randint(*PAY_TWICE_DELAY_MS), self._second_tab, payment, second)

    def _second_tab(self, payment: _Payment, body: dict) -> None:
        self.faults.fired(self.world.now, payment.twice, body["merchant_order_no"],
                          f"merchant:{payment.merchant_id}", "paysys", product=body["product"],
                          idempotency_key=body["idempotency_key"])
        self.request(payment.merchant_id, body, tab=2)

    def _pick_product(self, draw: float) -> str:
        for product, share in self._products:
            if draw < share:
                return product
            draw -= share
        return self._products[-1][0]

    # -- what arrives -------------------------------------------------------------------------

    def receive(self, dst: str, src: str, body: dict, now: int) -> None:
        kind = body.get("type", "")
        if dst == "sms":
            self._sms(body)
        elif dst.startswith("user:"):
            return  # the wallet's answer to the user: the notification tells paysys
        elif kind in ("notify.payment", "notify.refund"):
            self._endpoint(dst, src, body, now)
        elif kind.endswith(".reply"):
            self._answer(body)

    def _answer(self, body: dict) -> None:
        """paysys's answer to one of the merchant's requests (it echoes the idempotency key)."""
        req = self._requests.get(body.get("idempotency_key", ""))
        if req is None or req.answered or body.get("code") == "IN_PROGRESS":
            return  # an answer "still in progress" is no answer: the merchant asks again later
        req.answered = True
        if req.on_answer is not None:
            req.on_answer(body)
            return
        if req.body["type"] != "pay.create" or not body.get("ok"):
            return
        payment = self._payments[req.body["merchant_order_no"]]
        order_id = body["order_id"]
        if req.tab == 1:
            payment.order_id = order_id
        else:
            payment.second_order_id = order_id
        self._by_order[order_id] = payment
        if body.get("code_url"):
            channel = body.get("channel", "")
            self._wallet(payment, body["code_url"], channel, order_id, req.tab)
            if self.faults:
                self._forge(payment, channel, order_id)

    # -- users --------------------------------------------------------------------------------

    def _wallet(self, payment: _Payment, code_url: str, channel: str, order_id: str,
                tab: int = 1) -> None:
        """The user scans the QR code and pays in the wallet, or walks away (the second tab of
        pay_twice is always paid in full); under partial_pay the user pays part of it, and
        maybe the rest later."""
        rng, user = self.rng_user, f"user:{payment.user.user_id}"
        body = self.pay_code(channel, code_url, payment.user.user_id, order_id)
        if body is None:
            return
        if tab == 2:
            self.world.send(user, channel, body, self.sc.traffic.pay_delay.sample(payment.twice.rng))
            return
        if rng.random() < self.sc.traffic.abandon_probability:
            return
        partial = None
        if self.faults:
            fault = self.faults.draw("abandon", payment.started_ms)
            if fault is not None:
                self.faults.fired(self.world.now, fault, order_id, user, channel)
                return
            if payment.amount > 1:
                partial = self.faults.draw("partial_pay", payment.started_ms)
        delay = self.sc.traffic.pay_delay.sample(rng)
        if partial is not None:
            body, delay = self._partial(partial, payment, body, delay, order_id, user, channel)
        self.world.send(user, channel, body, delay)

    def pay_code(self, channel: str, code_url: str, user_id: str, order_id: str) -> dict | None:
        """The message a user sends to `channel` to pay the `code_url` paysys answered with."""
        user_pay = KINDS[self.kind_of[channel]].user_pay if channel in self.kind_of else None
        return None if user_pay is None else user_pay(code_url, user_id, order_id)

    def _partial(self, fault: UserFault, payment: _Payment, body: dict, delay: int,
                 order_id: str, user: str, channel: str) -> tuple[dict, int]:
        """partial_pay: the first wx.user.pay carries part of the amount; with probability 1/2
        the rest follows after another pay delay."""
        rng = fault.rng
        part = rng.randint(1, payment.amount - 1)
        rest_after = self.sc.traffic.pay_delay.sample(rng) if rng.random() < 0.5 else None
        self.faults.fired(self.world.now, fault, order_id, user, channel, amount=part,
                          rest=0 if rest_after is None else payment.amount - part)
        if rest_after is not None:
            rest = dict(body, amount=payment.amount - part)
            self.world.send(user, channel, rest, delay + max(1, rest_after))
        return dict(body, amount=part), delay

    def _forge(self, payment: _Payment, channel: str, order_id: str) -> None:
        """forged_notify: a few seconds after paysys answered with the QR code, an attacker
        claims, from the channel's address, that the order was paid (wrong signature)."""
        fault = self.faults.draw("forged_notify", payment.started_ms, target=channel)
        if fault is not None:
            self.world.later(fault.rng.randint(*FORGED_DELAY_MS), self._forged, fault, payment,
                             channel, order_id)

    def _forged(self, fault: UserFault, payment: _Payment, channel: str, order_id: str) -> None:
        now = self.world.now
        body = self.faults.forged_notify(fault, order_id, payment.amount, self.sc.traffic.currency,
                                         now)
        self.faults.fired(now, fault, order_id, channel, "paysys",
                          transaction_id=body.get("transaction_id") or body["trade_no"],
                          amount=payment.amount)
        self.world.send(channel, "paysys", body)

    def _sms(self, body: dict) -> None:
        """The SMS reaches the user's phone; the user types the code into the merchant's page."""
        rng = self.rng_user
        delay = rng.randint(*SMS_DELAY_MS) + rng.randint(*TYPING_MS)
        otp = body.get("otp", "")
        if rng.random() < self.sc.traffic.otp_fail_probability:
            otp = f"{(int(otp or 0) + 1 + rng.randrange(999_998)) % 1_000_000:06d}"
        self.world.later(delay, self._type_otp, body.get("order_id", ""), otp)

    def _type_otp(self, order_id: str, otp: str) -> None:
        payment = self._by_order.get(order_id)
        if payment is not None:  # the merchant's page knows the order by now
            self.send_request(payment.merchant_id,
                               {"type": "pay.confirm_otp", "order_id": order_id, "otp": otp})

    # -- the merchant's notification endpoint -------------------------------------------------

    def _endpoint(self, dst: str, src: str, body: dict, now: int) -> None:
        merchant_id = dst.split(":", 1)[1]
        keys = self.merchants.get(merchant_id)
        rng = self.rng_endpoint
        delay = self.sc.merchants.endpoint_latency.sample(rng)
        ref, log = body.get("order_id", ""), self.world.log
        for fault in self.world.network.merchant_faults("merchant_slow", dst, now):
            extra = fault.extra.sample(fault.rng) if fault.extra is not None else 0
            delay += extra
            log.add(now, "fault.fired", ref, dst, src, {"fault_id": fault.fault_id,
                                                        "kind": "merchant_slow", "extra_ms": extra})
        answer = "success"
        if keys is None or not verify(body, keys.secret):
            answer = "fail"
        elif errors := self.world.network.merchant_faults("merchant_error", dst, now):
            answer = "fail"
            log.add(now, "merchant.error", ref, dst, src,
                    {"notify_id": body.get("notify_id", ""), "fault_id": errors[0].fault_id})
        elif rng.random() < self.sc.merchants.endpoint_error_probability:
            answer = "fail"
            log.add(now, "merchant.error", ref, dst, src, {"notify_id": body.get("notify_id", "")})
        reply = {"type": f"{body['type']}.reply", "notify_id": body.get("notify_id", ""),
                 "body": answer}
        self.world.send(dst, src, reply, delay)
        if answer == "success" and body["type"] == "notify.payment":
            self._settled(body)

    def _settled(self, body: dict) -> None:
        """The merchant learns the final status: now the user may ask for a refund or unbind."""
        payment = self._by_order.get(body.get("order_id", ""))
        if payment is None or payment.settled or body.get("status") != "SUCCEEDED" \
                or body["order_id"] != payment.order_id:    # refunds only for the first attempt
            return
        payment.settled = True
        rng, traffic = self.rng_user, self.sc.traffic
        if rng.random() < traffic.refund_probability:
            amount = payment.amount
            if amount > 1 and rng.random() < traffic.partial_refund_probability:
                amount = rng.randint(1, amount - 1)
            refund_no = f"{payment.order_id}-r1"
            request = {"type": "refund.create", "idempotency_key": f"refund-{refund_no}",
                       "order_id": payment.order_id, "refund_no": refund_no, "amount": amount}
            self.world.later(traffic.refund_delay.sample(rng), self.request, payment.merchant_id, request)
        if payment.product == "quick" and rng.random() < traffic.unsign_probability:
            request = {"type": "agreement.unsign", "user_id": payment.user.user_id,
                       "card_no": payment.user.card_no}
            self.world.later(rng.randint(1_000, 60_000), self.send_request, payment.merchant_id,
                             request)
