"""Merchant signatures (docs/protocol.md, "Merchant API"): the string to sign, MD5 and HMAC-SHA256.

String to sign: every field except `sign` whose value is neither None nor "", sorted by key,
joined as `k=v&k=v`; values rendered with `str()`, booleans as `true`/`false`.
- MD5: `md5(string + "&key=" + secret)`, upper-case hex (the legacy scheme of many gateways).
- HMAC-SHA256: `hmac_sha256(key=secret, msg=string)`, upper-case hex.
Text is encoded as UTF-8. Verification compares in constant time.
"""

import hashlib
import hmac
from collections.abc import Callable, Mapping


def sign_string(params: Mapping[str, object]) -> str:
    """The canonical `k=v&k=v` string of `params` (without `sign`, None and "" values)."""
    parts = []
    for key, value in sorted(params.items()):
        if key == "sign" or value is None or value == "":
            continue
        if value is True:
            value = "true"
        elif value is False:
            value = "false"
        parts.append(f"{key}={value}")
    return "&".join(parts)


def _md5(string: str, secret: str) -> str:
    return hashlib.md5((string + "&key=" + secret).encode("utf-8")).hexdigest().upper()


def _hmac_sha256(string: str, secret: str) -> str:
    return (
        hmac.new(secret.encode("utf-8"), string.encode("utf-8"), hashlib.sha256).hexdigest().upper()
    )


SIGNERS: dict[str, Callable[[str, str], str]] = {"MD5": _md5, "HMAC-SHA256": _hmac_sha256}


def sign(params: Mapping[str, object], secret: str, sign_type: str) -> str:
    """The signature of `params` with `secret`; ValueError on an unknown `sign_type`."""
    signer = SIGNERS.get(sign_type)
    if signer is None:
        raise ValueError(f"sign_type: expected one of {sorted(SIGNERS)}, got {sign_type!r}")
    return signer(sign_string(params), secret)


def signed(params: Mapping[str, object], secret: str, sign_type: str) -> dict:
    """A copy of `params` with `sign_type` set and `sign` computed (for outgoing messages)."""
    body = {key: value for key, value in params.items() if key != "sign"}
    body["sign_type"] = sign_type
    body["sign"] = sign(body, secret, sign_type)
    return body


def verify(params: Mapping[str, object], secret: str) -> bool:
    """True if `params["sign"]` is the signature of `params` with `secret` under
    `params["sign_type"]`; False for an unknown sign type or a missing/non-string signature."""
    sign_type = params.get("sign_type")
    given = params.get("sign")
    if not isinstance(sign_type, str) or sign_type not in SIGNERS or not isinstance(given, str):
        return False
    expected = SIGNERS[sign_type](sign_string(params), secret)
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
