"""The simulated people and merchant systems around the payment system.

- Merchants' systems: sign and send requests to paysys (`pay.create`, `pay.confirm_otp`,
  `refund.create`, `agreement.unsign`), retry a request with the same idempotency key when its
  answer does not come, and run a notification endpoint that verifies paysys's signature and
  answers "success" — or, under faults, answers late, answers "fail", or is down.
- Users: pay the platform's QR code in their wallet (or abandon), read the SMS one-time password
  and type it (sometimes wrong), ask for refunds and unbind their cards.
- The SMS gateway: delivers one-time passwords to users.

They belong to the simulator, not to the system under test, so they use the world's clock and
its random streams directly.
"""

from dataclasses import dataclass

from paysys.signing import sign, verify
from sim.population import MerchantKeys, User
from sim.rng import stream
from sim.scenario import Scenario
from sim.world import World

REQUEST_TIMEOUT_MS = 15_000     # a merchant waits this long for paysys's answer, then retries
REQUEST_ATTEMPTS = 3
SMS_DELAY_MS = (1_000, 6_000)    # from the SMS gateway to the user's phone
TYPING_MS = (4_000, 25_000)      # the user reads the code and types it
DOUBLE_SUBMIT_MS = 300


@dataclass(slots=True)
class _Request:
    merchant_id: str
    body: dict
    attempts: int = 0
    answered: bool = False


@dataclass(slots=True)
class _Payment:
    merchant_id: str
    user: User
    product: str
    amount: int
    order_id: str = ""
    settled: bool = False


class Actors:
    def __init__(self, world: World, scenario: Scenario, users: list[User],
                 merchants: list[MerchantKeys], channel_of_kind: dict[str, str]):
        self.world = world
        self.sc = scenario
        self.users = users
        self.merchants = {m.merchant_id: m for m in merchants}
        self.merchant_list = merchants
        self.channel_of_kind = channel_of_kind
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
        keys = self.merchants[merchant_id]
        self._nonce += 1
        signed = dict(body, merchant_id=merchant_id, timestamp=self.world.now,
                      nonce=f"n{self._nonce:09d}", sign_type=keys.sign_type)
        signed["sign"] = sign(signed, keys.secret, keys.sign_type)
        self.world.send(f"merchant:{merchant_id}", "paysys", signed)

    def request(self, merchant_id: str, body: dict) -> None:
        """Send a request that carries an idempotency key; retry it until answered."""
        req = self._requests[body["idempotency_key"]] = _Request(merchant_id, body)
        self._attempt(req)

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
        self._seq += 1
        order_no = f"{merchant.merchant_id}-{self._seq:08d}"
        now = self.world.now
        body = {"type": "pay.create", "idempotency_key": f"pay-{order_no}",
                "merchant_order_no": order_no, "order_time": now - rng.randrange(60_000),
                "user_id": user.user_id, "product": product, "amount": amount,
                "currency": self.sc.traffic.currency, "notify_url": merchant.notify_url,
                "device_id": user.device_id, "subject": f"order {order_no}"}
        if product == "quick":
            body["card_no"] = user.card_no
        self._payments[order_no] = _Payment(merchant.merchant_id, user, product, amount)
        self.request(merchant.merchant_id, body)
        if rng.random() < self.sc.traffic.double_submit_probability:
            self.world.later(DOUBLE_SUBMIT_MS, self._send, merchant.merchant_id, body)

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
        if req.body["type"] != "pay.create" or not body.get("ok"):
            return
        payment = self._payments[req.body["merchant_order_no"]]
        payment.order_id = body["order_id"]
        self._by_order[payment.order_id] = payment
        if body.get("code_url"):
            self._wallet(payment, body["code_url"], body.get("channel", ""))

    # -- users --------------------------------------------------------------------------------

    def _wallet(self, payment: _Payment, code_url: str, channel: str) -> None:
        """The user scans the QR code and pays in the wallet, or walks away."""
        rng = self.rng_user
        if rng.random() < self.sc.traffic.abandon_probability:
            return
        prepay_id = code_url.rsplit("pr=", 1)[-1]
        body = {"type": "wx.user.pay", "prepay_id": prepay_id, "user_id": payment.user.user_id}
        self.world.send(f"user:{payment.user.user_id}", channel, body,
                        self.sc.traffic.pay_delay.sample(rng))

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
            self._send(payment.merchant_id, {"type": "pay.confirm_otp", "order_id": order_id, "otp": otp})

    # -- the merchant's notification endpoint -------------------------------------------------

    def _endpoint(self, dst: str, src: str, body: dict, now: int) -> None:
        merchant_id = dst.split(":", 1)[1]
        keys = self.merchants.get(merchant_id)
        rng = self.rng_endpoint
        delay = self.sc.merchants.endpoint_latency.sample(rng)
        for fault in self.world.network.merchant_faults("merchant_slow", dst, now):
            delay += fault.extra.sample(fault.rng) if fault.extra is not None else 0
        answer = "success"
        if keys is None or not verify(body, keys.secret):
            answer = "fail"
        elif self.world.network.merchant_faults("merchant_error", dst, now) or \
                rng.random() < self.sc.merchants.endpoint_error_probability:
            answer = "fail"
            self.world.log.add(now, "merchant.error", body.get("order_id", ""), dst, src,
                               {"notify_id": body.get("notify_id", "")})
        reply = {"type": f"{body['type']}.reply", "notify_id": body.get("notify_id", ""),
                 "body": answer}
        self.world.send(dst, src, reply, delay)
        if answer == "success" and body["type"] == "notify.payment":
            self._settled(body)

    def _settled(self, body: dict) -> None:
        """The merchant learns the final status: now the user may ask for a refund or unbind."""
        payment = self._by_order.get(body.get("order_id", ""))
        if payment is None or payment.settled or body.get("status") != "SUCCEEDED":
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
            self.world.later(rng.randint(1_000, 60_000), self._send, payment.merchant_id, request)
