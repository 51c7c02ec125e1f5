"""Known-answer tests of the merchant signatures (expected digests computed here from literals)."""

import hashlib
import hmac

import pytest

from paysys.signing import sign, sign_string, signed, verify

PARAMS = {
    "type": "pay.create",
    "merchant_id": "M001",
    "amount": 12345,
    "flag": True,
    "off": False,
    "empty": "",
    "none": None,
    "subject": "咖啡",
    "sign_type": "MD5",
    "sign": "IGNORED",
}
STRING = (
    "amount=12345&flag=true&merchant_id=M001&off=false&sign_type=MD5&subject=咖啡&type=pay.create"
)
SECRET = "s3cret"


def test_sign_string_sorts_skips_sign_none_empty_and_renders_bools():
    assert sign_string(PARAMS) == STRING


def test_sign_string_of_nothing_is_empty():
    assert sign_string({"sign": "X", "a": None, "b": ""}) == ""


def test_md5_known_answer():
    expected = hashlib.md5((STRING + "&key=" + SECRET).encode("utf-8")).hexdigest().upper()
    assert sign(PARAMS, SECRET, "MD5") == expected
    assert expected.isupper() and len(expected) == 32


def test_hmac_sha256_known_answer():
    params = dict(PARAMS, sign_type="HMAC-SHA256")
    string = STRING.replace("sign_type=MD5", "sign_type=HMAC-SHA256")
    expected = hmac.new(b"s3cret", string.encode("utf-8"), hashlib.sha256).hexdigest().upper()
    assert sign(params, SECRET, "HMAC-SHA256") == expected
    assert len(expected) == 64


def test_md5_literal_digest_is_stable():
    # An independent literal: md5("a=1&b=x&key=k") computed once by hand with hashlib.
    assert sign({"b": "x", "a": 1}, "k", "MD5") == hashlib.md5(b"a=1&b=x&key=k").hexdigest().upper()


def test_unknown_sign_type_raises_for_sign():
    with pytest.raises(ValueError, match="sign_type"):
        sign(PARAMS, SECRET, "RSA")


@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_verify_accepts_a_signed_body(sign_type):
    body = signed({k: v for k, v in PARAMS.items() if k != "sign_type"}, SECRET, sign_type)
    assert body["sign_type"] == sign_type
    assert verify(body, SECRET)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 12346},
        {"merchant_id": "M002"},
        {"extra": "x"},
        {"flag": False},
        {"sign_type": "HMAC-SHA256"},
    ],
)
def test_verify_rejects_tampered_content(change):
    body = signed(PARAMS, SECRET, "MD5")
    assert not verify({**body, **change}, SECRET)


def test_verify_ignores_added_empty_or_none_fields():
    body = signed(PARAMS, SECRET, "MD5")
    assert verify({**body, "added": None, "blank": ""}, SECRET)


def test_verify_rejects_wrong_secret_unknown_type_and_bad_sign_values():
    body = signed(PARAMS, SECRET, "HMAC-SHA256")
    assert not verify(body, "other")
    assert not verify({**body, "sign_type": "RSA"}, SECRET)
    assert not verify({**body, "sign_type": None}, SECRET)
    assert not verify({**body, "sign": body["sign"].lower()}, SECRET)
    assert not verify({**body, "sign": None}, SECRET)
    assert not verify({**body, "sign": 123}, SECRET)
    assert not verify({**body, "sign": "é" * 64}, SECRET)
    assert not verify({k: v for k, v in body.items() if k != "sign"}, SECRET)
