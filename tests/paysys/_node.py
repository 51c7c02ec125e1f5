"""Test helpers for driving the payment-system node (paysys.engine.PaySys) by hand, no simulator.

What this module owns:
- a standard configuration: merchant M001 (MD5) and M002 (HMAC-SHA256), a quick-pay `bank`
  channel and a WeChat-like `wechat` channel, permissive risk rules except a CHALLENGE amount;
- `make_node(conn=None, **config_changes)`: a PaySys on an in-memory store (or on `conn`);
- `signed(merchant, body, now)`: a merchant request with the common fields and its signature;
- request builders `pay_create`, `refund_create`, `confirm_otp`;
- counterparty replies per docs/protocol.md: `bank_reply`, `wx_reply`, `wx_notify`;
- effect pickers: `sends`, `replies`, `events`, `one`;
- `Driver`: a node plus a clock, which collects every effect (so a test can say "advance 15 s"
  and look at what left).

Tests import it as `from _node import ...` (pytest puts this folder on sys.path).
"""

import itertools
import random
import sqlite3

from paysys.config import ChannelConfig, PaySysConfig
from paysys.engine import PaySys
from paysys.gateway import Merchant
from paysys.money import FeeRule
from paysys.risk import RiskRules
from paysys.signing import sign
from paysys.store import open_store, pay_order

NOW = 1_700_000_000_000          # 2023-11-14T22:13:20Z
TIMEOUT_MS = 3_000
WX_KEY = "wx-api-key"
CHALLENGE_AMOUNT = 500_000       # at or above: SMS one-time password
CARD = "6222020000000001"
NOTIFY_URL = "http://merchant-m001/notify"

M_MD5 = Merchant("M001", "secret-md5", "MD5", fee_rate_bp=60)
M_HMAC = Merchant("M002", "secret-hmac", "HMAC-SHA256", fee_rate_bp=30)
MERCHANTS = {m.merchant_id: m for m in (M_MD5, M_HMAC)}

BANK = ChannelConfig("bank", "bank", ("quick",), priority=1, fee=FeeRule(rate_bp=20),
                     timeout_ms=TIMEOUT_MS)
WECHAT = ChannelConfig("wechat", "wechat", ("platform",), priority=1, fee=FeeRule(rate_bp=25),
                       timeout_ms=TIMEOUT_MS, api_key=WX_KEY)
RISK = RiskRules(max_amount=0, challenge_amount=CHALLENGE_AMOUNT, velocity_window_ms=60_000,
                 velocity_max=0)

_nonces = itertools.count(1)


def make_config(**changes) -> PaySysConfig:
    fields = {"merchants": (M_MD5, M_HMAC), "channels": (BANK, WECHAT), "risk": RISK}
    fields.update(changes)
    return PaySysConfig(**fields)


def make_node(conn: sqlite3.Connection | None = None, seed: int = 7, **changes) -> PaySys:
    """A node on `conn` (a fresh in-memory store when None) with `make_config(**changes)`."""
    return PaySys(conn if conn is not None else open_store(":memory:"), make_config(**changes),
                  random.Random(seed))


# -- merchant requests ----------------------------------------------------------------------


def signed(merchant: Merchant, body: dict, now: int) -> dict:
    """`body` with merchant_id, timestamp (`now`), a fresh nonce, sign_type and sign added."""
    out = dict(body, merchant_id=merchant.merchant_id, timestamp=now, nonce=f"n{next(_nonces)}",
               sign_type=merchant.sign_type)
    out.pop("sign", None)
    out["sign"] = sign(out, merchant.secret, merchant.sign_type)
    return out


def pay_create(order_no: str, amount: int = 10_000, product: str = "quick", now: int = NOW,
               key: str | None = None, user_id: str = "U00001", card_no: str = CARD,
               **fields) -> dict:
    """An unsigned pay.create body (idempotency key defaults to `K-<order_no>`)."""
    body = {"type": "pay.create", "idempotency_key": key or f"K-{order_no}",
            "merchant_order_no": order_no, "order_time": now - 1_000, "user_id": user_id,
            "product": product, "amount": amount, "currency": "CNY", "notify_url": NOTIFY_URL,
            "device_id": "D1", "subject": "a test"}
    if product == "quick":
        body["card_no"] = card_no
    body.update(fields)
    return body


def refund_create(order_id: str, refund_no: str, amount: int, key: str | None = None) -> dict:
    return {"type": "refund.create", "idempotency_key": key or f"K-{refund_no}",
            "order_id": order_id, "refund_no": refund_no, "amount": amount}


def confirm_otp(order_id: str, otp: str) -> dict:
    return {"type": "pay.confirm_otp", "order_id": order_id, "otp": otp}


# -- counterparty replies (docs/protocol.md) -----------------------------------------------


def bank_reply(request: dict, result: str, **fields) -> dict:
    """The bank's answer to `request`: `<type>.reply` echoing its req_id."""
    return {"type": request["type"] + ".reply", "req_id": request["req_id"], "result": result,
            **fields}


def wx_reply(request: dict, **fields) -> dict:
    """WeChat's answer to `request`: return_code/result_code SUCCESS unless overridden."""
    body = {"type": request["type"] + ".reply", "return_code": "SUCCESS", "result_code": "SUCCESS"}
    for key in ("out_trade_no", "out_refund_no"):
        if key in request:
            body[key] = request[key]
    body.update(fields)
    return body


def wx_notify(order_id: str, amount: int, key: str = WX_KEY, **fields) -> dict:
    """A payment notification from WeChat, MD5-signed over every field but `sign`."""
    body = {"type": "wx.notify", "out_trade_no": order_id, "transaction_id": f"WX{order_id}",
            "total_fee": amount, "fee_type": "CNY", "result_code": "SUCCESS",
            "time_end": NOW, "nonce_str": "abc"}
    body.update(fields)
    body["sign"] = sign(body, key, "MD5")
    return body


# -- effects --------------------------------------------------------------------------------


def sends(fx: list[tuple], dst: str | None = None, type: str | None = None) -> list[dict]:
    """Bodies of the ("send", dst, body, delay) effects, filtered by destination and type."""
    return [e[2] for e in fx if e[0] == "send" and (dst is None or e[1] == dst)
            and (type is None or e[2].get("type") == type)]


def replies(fx: list[tuple]) -> list[dict]:
    return [e[1] for e in fx if e[0] == "reply"]


def events(fx: list[tuple], kind: str | None = None, ref: str | None = None) -> list[dict]:
    """Data of the ("event", kind, ref, data) effects, filtered by kind and ref."""
    return [e[3] for e in fx if e[0] == "event" and (kind is None or e[1] == kind)
            and (ref is None or e[2] == ref)]


def one(items: list):
    """The single item of `items` (assertion error naming them otherwise)."""
    assert len(items) == 1, f"expected exactly one, got {len(items)}: {items}"
    return items[0]


class Driver:
    """A node and its clock. Every effect returned is also kept in `log` (with the time)."""

    def __init__(self, node: PaySys | None = None, now: int = NOW):
        self.node = node if node is not None else make_node()
        self.now = now
        self.log: list[tuple[int, tuple]] = []

    @property
    def conn(self) -> sqlite3.Connection:
        return self.node.conn

    def _keep(self, fx: list[tuple]) -> list[tuple]:
        self.log.extend((self.now, e) for e in fx)
        return fx

    def handle(self, src: str, body: dict) -> list[tuple]:
        return self._keep(self.node.handle(src, body, self.now))

    def merchant(self, body: dict, merchant: Merchant = M_MD5) -> list[tuple]:
        """Send a merchant request, signed now."""
        return self.handle(f"merchant:{merchant.merchant_id}", signed(merchant, body, self.now))

    def log_effects(self) -> list[tuple]:
        """Every effect returned so far, in order."""
        return [effect for _, effect in self.log]

    def advance(self, ms: int) -> list[tuple]:
        """Move the clock by `ms`, firing every timer due on the way (in order)."""
        end = self.now + ms
        fx: list[tuple] = []
        while (due := self.node.next_deadline()) is not None and due <= end:
            self.now = max(self.now, due)
            fx += self._keep(self.node.on_timer(self.now))
        self.now = end
        return fx

    def order(self, order_id: str) -> dict:
        return pay_order(self.conn, order_id)

    def status(self, order_id: str) -> str:
        return self.order(order_id)["status"]
