"""MD5 sort-sign, the counterparties' side of the wire (paysys keeps its own copy: two parties).

String to sign: every field except `sign` whose value is neither None nor "", sorted by key,
rendered `k=v` joined by `&` (booleans as `true`/`false`, everything else with `str()`), then
`&key=SECRET`; the signature is the upper-case hex MD5 of that string.
"""

import hashlib
import hmac


def _render(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def sign_string(fields: dict, key: str) -> str:
    """The exact string that is hashed for `fields` under `key`."""
    parts = [
        f"{name}={_render(fields[name])}"
        for name in sorted(fields)
        if name != "sign" and fields[name] is not None and fields[name] != ""
    ]
    return "&".join(parts) + "&key=" + key


def sign(fields: dict, key: str) -> str:
    """Upper-case hex MD5 signature of `fields` (its own `sign` field is ignored)."""
    return hashlib.md5(sign_string(fields, key).encode("utf-8")).hexdigest().upper()


def verify(fields: dict, key: str) -> bool:
    """True when `fields["sign"]` is the signature of the other fields under `key`."""
    given = fields.get("sign")
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given, sign(fields, key))
