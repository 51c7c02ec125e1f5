"""Gateway admission: the checks, their order, and the idempotent replay of stored replies."""

import pytest
import sqlite_utils

from paysys import idempotency, replay
from paysys.errors import GatewayError
from paysys.gateway import Gateway, Merchant, reject_event, replay_event
from paysys.replay import ReplayGuard
from paysys.signing import signed

NOW = 1_700_000_000_000
TTL = 30 * 60 * 1000
WINDOW = 300_000
MERCHANTS = {
    "M001": Merchant("M001", "secret-1", "MD5", 60),
    "M002": Merchant("M002", "secret-2", "HMAC-SHA256", 30),
    "M003": Merchant("M003", "secret-3", "MD5", 60, status="disabled"),
}


@pytest.fixture
def db():
    database = sqlite_utils.Database(memory=True)
    replay.create_tables(database)
    idempotency.create_tables(database)
    return database


@pytest.fixture
def gateway():
    return Gateway(MERCHANTS, ReplayGuard(WINDOW), order_ttl_ms=TTL)


def pay(merchant_id="M001", nonce="n1", timestamp=NOW, **fields) -> dict:
    merchant = MERCHANTS.get(merchant_id, MERCHANTS["M001"])
    body = {
        "type": "pay.create",
        "merchant_id": merchant_id,
        "timestamp": timestamp,
        "nonce": nonce,
        "idempotency_key": "K1",
        "merchant_order_no": "MO1",
        "order_time": NOW - 1000,
        "user_id": "U00001",
        "product": "platform",
        "amount": 1999,
        "currency": "CNY",
        "notify_url": "http://merchant-m001/notify",
    }
    body.update(fields)
    return signed(body, merchant.secret, merchant.sign_type)


def refused(gateway, db, body, now=NOW) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        gateway.admit(db.conn, body, now)
    return caught.value


def test_a_good_request_is_admitted_and_its_nonce_recorded(gateway, db):
    assert gateway.admit(db.conn, pay(), NOW) is None
    assert db["nonces"].count == 1


def test_hmac_merchant_and_non_pay_requests(gateway, db):
    query = signed(
        {
            "type": "pay.query",
            "merchant_id": "M002",
            "timestamp": NOW,
            "nonce": "q",
            "order_id": "P0000000001",
        },
        "secret-2",
        "HMAC-SHA256",
    )
    assert gateway.admit(db.conn, query, NOW) is None


def test_validation_comes_first(gateway, db):
    error = refused(gateway, db, pay(merchant_id="NOPE", amount=0))
    assert (error.code, error.field) == ("INVALID_PARAM", "amount")


def test_unknown_merchant(gateway, db):
    error = refused(gateway, db, pay(merchant_id="M999"))
    assert (error.code, error.field) == ("INVALID_PARAM", "merchant_id")


def test_disabled_merchant(gateway, db):
    error = refused(gateway, db, pay(merchant_id="M003"))
    assert (error.code, error.field) == ("MERCHANT_DISABLED", "merchant_id")


def test_bad_signature_does_not_consume_the_nonce(gateway, db):
    forged = {**pay(), "amount": 1}
    error = refused(gateway, db, forged)
    assert (error.code, error.field) == ("BAD_SIGNATURE", "sign")
    assert db["nonces"].count == 0
    assert gateway.admit(db.conn, pay(), NOW) is None


def test_signature_with_another_sign_type_than_the_merchants(gateway, db):
    body = pay()  # M001 uses MD5
    hmac_body = signed(body, "secret-1", "HMAC-SHA256")
    error = refused(gateway, db, hmac_body)
    assert (error.code, error.field) == ("BAD_SIGNATURE", "sign_type")


def test_signature_with_another_merchants_secret(gateway, db):
    body = signed({**pay(), "sign": None}, "secret-3", "MD5")
    assert refused(gateway, db, body).code == "BAD_SIGNATURE"


def test_replayed_request(gateway, db):
    gateway.admit(db.conn, pay(idempotency_key=None), NOW)
    error = refused(gateway, db, pay(idempotency_key=None), NOW + 10)
    assert (error.code, error.field) == ("REPLAY", "nonce")


def test_stale_timestamp(gateway, db):
    error = refused(gateway, db, pay(timestamp=NOW - WINDOW - 1))
    assert (error.code, error.field) == ("REPLAY", "timestamp")


def test_replay_is_checked_before_order_time(gateway, db):
    error = refused(gateway, db, pay(timestamp=NOW - WINDOW - 1, order_time=NOW - 10 * TTL))
    assert error.code == "REPLAY"


@pytest.mark.parametrize("order_time", [NOW - TTL, NOW, NOW + WINDOW])
def test_order_time_within_limits(gateway, db, order_time):
    assert gateway.admit(db.conn, pay(order_time=order_time), NOW) is None


@pytest.mark.parametrize("order_time", [NOW - TTL - 1, NOW + WINDOW + 1, 0])
def test_order_time_too_old_or_in_the_future(gateway, db, order_time):
    error = refused(gateway, db, pay(order_time=order_time))
    assert (error.code, error.field) == ("ORDER_EXPIRED", "order_time")


def test_retry_gets_the_stored_reply(gateway, db):
    first = pay()
    assert gateway.admit(db.conn, first, NOW) is None
    reply = {"type": "pay.create.reply", "ok": True, "order_id": "P0000000001", "status": "CREATED"}
    gateway.remember(db.conn, first, reply, NOW)
    retry = pay(nonce="n2", timestamp=NOW + 5000)
    assert retry["sign"] != first["sign"]
    assert gateway.admit(db.conn, retry, NOW + 5000) == reply


def test_retry_with_other_content_is_a_conflict(gateway, db):
    first = pay()
    gateway.admit(db.conn, first, NOW)
    gateway.remember(db.conn, first, {"ok": True}, NOW)
    error = refused(gateway, db, pay(nonce="n2", amount=2000))
    assert (error.code, error.field) == ("IDEMPOTENCY_CONFLICT", "idempotency_key")


def test_the_key_is_looked_up_per_merchant(gateway, db):
    gateway.remember(db.conn, pay(), {"ok": True}, NOW)
    assert gateway.admit(db.conn, pay(merchant_id="M002"), NOW) is None


def test_requests_without_a_key_are_not_remembered(gateway, db):
    body = pay(idempotency_key=None)
    gateway.remember(db.conn, body, {"ok": True}, NOW)
    assert db["idempotency_keys"].count == 0
    assert gateway.admit(db.conn, body, NOW) is None


def test_reject_event():
    error = GatewayError("BAD_SIGNATURE", "sign: bad", "sign")
    body = pay()
    expected = {"type": "pay.create", "code": "BAD_SIGNATURE", "field": "sign"}
    assert reject_event(body, error) == ("event", "gateway.reject", "M001", expected)
    assert reject_event("junk", error)[2] == ""


def test_replay_event_refers_to_the_order():
    reply = {"ok": True, "order_id": "P0000000007"}
    assert replay_event(pay(), reply) == (
        "event",
        "gateway.replay",
        "P0000000007",
        {"type": "pay.create", "key": "K1"},
    )
    assert replay_event(pay(), {"ok": False})[2] == "M001"


def test_unknown_error_codes_are_refused():
    with pytest.raises(ValueError, match="code"):
        GatewayError("OOPS", "x")


@pytest.mark.parametrize(
    "change", [{"status": "closed"}, {"sign_type": "RSA"}, {"fee_rate_bp": 1.5}]
)
def test_merchant_is_checked(change):
    fields = {"merchant_id": "M", "secret": "s", "sign_type": "MD5", "fee_rate_bp": 10}
    with pytest.raises(ValueError):
        Merchant(**{**fields, **change})
