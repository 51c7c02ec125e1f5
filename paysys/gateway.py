"""The merchant gateway's admission policy: may this request be processed, or answered again?

`Gateway.admit` runs the checks in a fixed order, each raising `GatewayError` with the protocol
code and the offending field:
1. validate the fields (INVALID_PARAM)            -> paysys.validation
2. the merchant is known (INVALID_PARAM merchant_id) and active (MERCHANT_DISABLED)
3. the signature, with the merchant's own sign type and key, or those of the business
   application (应用) named by `app_id` when the request carries one (INVALID_PARAM app_id for
   an unknown app, MERCHANT_DISABLED for a disabled one, else BAD_SIGNATURE) -> paysys.signing
4. anti-replay: timestamp window and nonce (REPLAY)                   -> paysys.replay
5. pay.create only: the pre-order's `order_time` is not older than `order_ttl_ms` and not in
   the future beyond the replay window (ORDER_EXPIRED)
6. keyed requests: the idempotency store (IDEMPOTENCY_CONFLICT, or the stored reply)
It returns the stored reply to send again, or None to proceed. After processing, the engine
calls `remember` with the reply so that a retry gets the same answer.

Policy lives here; persistence is the caller's connection (no commit here); no other I/O.
"""

import sqlite3
from dataclasses import dataclass

from paysys import idempotency
from paysys.errors import GatewayError
from paysys.money import FeeRule
from paysys.replay import ReplayGuard
from paysys.signing import SIGNERS, verify
from paysys.validation import validate

MERCHANT_STATUSES = ("active", "disabled")


def _check_party(what: str, sign_type: str, fee_rate_bp: int, status: str) -> None:
    if sign_type not in SIGNERS:
        raise ValueError(f"{what}sign_type: expected one of {sorted(SIGNERS)}, got {sign_type!r}")
    if isinstance(fee_rate_bp, bool) or not isinstance(fee_rate_bp, int):
        raise ValueError(f"{what}fee_rate_bp: expected an integer, got {fee_rate_bp!r}")
    if not 0 <= fee_rate_bp <= 10_000:
        raise ValueError(f"{what}fee_rate_bp: expected 0..10000, got {fee_rate_bp}")
    if status not in MERCHANT_STATUSES:
        raise ValueError(f"{what}status: expected one of {MERCHANT_STATUSES}, got {status!r}")


@dataclass(frozen=True, slots=True)
class App:
    """One business application of a merchant: its own key and sign type, its own fee rate."""

    app_id: str
    secret: str
    sign_type: str
    fee_rate_bp: int
    name: str = ""
    status: str = "active"

    def __post_init__(self) -> None:
        _check_party(f"app {self.app_id}: ", self.sign_type, self.fee_rate_bp, self.status)


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    secret: str
    sign_type: str
    fee_rate_bp: int
    status: str = "active"
    apps: tuple[App, ...] = ()

    def app(self, app_id: str) -> App | None:
        return next((a for a in self.apps if a.app_id == app_id), None)

    def fee_rate(self, app_id: str | None = None) -> int:
        """The fee rate (bp) of a payment made through `app_id` ("" or None: the merchant's)."""
        app = self.app(app_id) if app_id else None
        return app.fee_rate_bp if app is not None else self.fee_rate_bp

    def fee_rule(self, app_id: str | None = None) -> FeeRule:
        """The merchant fee rule of a payment made through `app_id` (paysys/paid.py)."""
        return FeeRule(rate_bp=self.fee_rate(app_id))

    def __post_init__(self) -> None:
        ids = [a.app_id for a in self.apps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"apps: expected distinct app ids, got {ids}")
        if self.sign_type not in SIGNERS:
            raise ValueError(
                f"sign_type: expected one of {sorted(SIGNERS)}, got {self.sign_type!r}"
            )
        if isinstance(self.fee_rate_bp, bool) or not isinstance(self.fee_rate_bp, int):
            raise ValueError(f"fee_rate_bp: expected an integer, got {self.fee_rate_bp!r}")
        if not 0 <= self.fee_rate_bp <= 10_000:
            raise ValueError(f"fee_rate_bp: expected 0..10000, got {self.fee_rate_bp}")
        if self.status not in MERCHANT_STATUSES:
            raise ValueError(f"status: expected one of {MERCHANT_STATUSES}, got {self.status!r}")


class Gateway:
    def __init__(
        self,
        merchants: dict[str, Merchant],
        replay: ReplayGuard,
        order_ttl_ms: int = 30 * 60 * 1000,
    ) -> None:
        self.merchants = merchants
        self.replay = replay
        self.order_ttl_ms = order_ttl_ms

    def merchant(self, merchant_id: str) -> Merchant:
        """The active merchant `merchant_id`, or GatewayError (unknown / disabled)."""
        merchant = self.merchants.get(merchant_id)
        if merchant is None:
            raise GatewayError(
                "INVALID_PARAM",
                f"merchant_id: expected a known merchant, got {merchant_id!r}",
                "merchant_id",
            )
        if merchant.status != "active":
            raise GatewayError(
                "MERCHANT_DISABLED",
                f"merchant_id: expected an active merchant, got {merchant_id!r} ({merchant.status})",
                "merchant_id",
            )
        return merchant

    def signer(self, merchant: Merchant, app_id: object) -> Merchant | App:
        """Whose key signs the request: the app `app_id` names (when given), else the merchant."""
        if app_id is None or app_id == "":
            return merchant
        app = merchant.app(app_id) if isinstance(app_id, str) else None
        if app is None:
            known = ", ".join(a.app_id for a in merchant.apps) or "none"
            raise GatewayError(
                "INVALID_PARAM",
                f"app_id: expected an application of merchant {merchant.merchant_id} "
                f"({known}), got {app_id!r}",
                "app_id",
            )
        if app.status != "active":
            raise GatewayError(
                "MERCHANT_DISABLED",
                f"app_id: expected an active application, got {app_id!r} ({app.status})",
                "app_id",
            )
        return app

    def admit(self, conn: sqlite3.Connection, body: dict, now_ms: int,
              idempotent: bool = True) -> dict | None:
        """Check `body` (see the module doc for the order). Returns the stored reply of an
        idempotent retry, or None when the request should be processed; raises GatewayError.
        `idempotent=False` (the `no_idempotency` flaw) skips the idempotency key."""
        validate(body)
        merchant = self.merchant(body["merchant_id"])
        signer, whose = self.signer(merchant, body.get("app_id")), "merchant"
        if signer is not merchant:
            whose = f"app {signer.app_id}"
        if body["sign_type"] != signer.sign_type:
            raise GatewayError(
                "BAD_SIGNATURE",
                f"sign_type: expected {signer.sign_type!r} for this {whose}, "
                f"got {body['sign_type']!r}",
                "sign_type",
            )
        if not verify(body, signer.secret):
            raise GatewayError(
                "BAD_SIGNATURE", f"sign: expected the {whose}'s signature, got another", "sign"
            )
        self.replay.check(conn, merchant.merchant_id, body["nonce"], body["timestamp"], now_ms)
        if body["type"] == "pay.create":
            self._check_order_time(body["order_time"], now_ms)
        key = body.get("idempotency_key")
        if key and idempotent:
            req_hash = idempotency.request_hash(body)
            stored = idempotency.lookup(conn, merchant.merchant_id, key, req_hash)
            if stored is None:
                idempotency.reserve(conn, merchant.merchant_id, key, req_hash, now_ms)
            return stored
        return None

    def _check_order_time(self, order_time: int, now_ms: int) -> None:
        if order_time < now_ms - self.order_ttl_ms:
            raise GatewayError(
                "ORDER_EXPIRED",
                f"order_time: expected at most {self.order_ttl_ms} ms before now ({now_ms}), "
                f"got {order_time} ({now_ms - order_time} ms before)",
                "order_time",
            )
        if order_time > now_ms + self.replay.window_ms:
            raise GatewayError(
                "ORDER_EXPIRED",
                f"order_time: expected not after now ({now_ms}) + {self.replay.window_ms} ms, "
                f"got {order_time} ({order_time - now_ms} ms ahead)",
                "order_time",
            )

    def remember(self, conn: sqlite3.Connection, body: dict, reply: dict, now_ms: int) -> None:
        """Store `reply` as the answer to `body` if it carries an idempotency_key."""
        key = body.get("idempotency_key")
        if key:
            idempotency.remember(
                conn, body["merchant_id"], key, idempotency.request_hash(body), reply, now_ms
            )


def reject_event(body: object, error: GatewayError) -> tuple:
    """The `gateway.reject` event effect for a refused request (ref: the merchant id)."""
    fields = body if isinstance(body, dict) else {}
    merchant_id = fields.get("merchant_id")
    return (
        "event",
        "gateway.reject",
        merchant_id if isinstance(merchant_id, str) else "",
        {"type": fields.get("type"), "code": error.code, "field": error.field},
    )


def replay_event(body: dict, reply: dict) -> tuple:
    """The `gateway.replay` event effect for a request answered from the idempotency store
    (ref: the reply's refund_id or order_id, else the merchant id)."""
    ref = reply.get("refund_id") or reply.get("order_id") or body["merchant_id"]
    return (
        "event",
        "gateway.replay",
        ref,
        {"type": body["type"], "key": body["idempotency_key"]},
    )
