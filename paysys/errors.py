"""Gateway errors: the one exception the merchant-facing building blocks raise.

A `GatewayError` carries the protocol error `code` (docs/protocol.md, "Error codes"), a human
`message` naming the field and what was expected, and `field` (the offending field, or None). The
engine turns it into the merchant reply with `to_reply(type)`.
"""

CODES = frozenset(
    {
        "INVALID_PARAM",
        "BAD_SIGNATURE",
        "REPLAY",
        "IDEMPOTENCY_CONFLICT",
        "IN_PROGRESS",
        "ORDER_EXPIRED",
        "DUPLICATE_ORDER",
        "RISK_BLOCKED",
        "NO_ROUTE",
        "NOT_FOUND",
        "REFUND_EXCEEDS",
        "MERCHANT_DISABLED",
        "INSUFFICIENT_MERCHANT_BALANCE",
        "BAD_STATE",
        "INSUFFICIENT_BALANCE",   # a user's stored value cannot pay it
        "SAME_USER",              # a transfer to oneself
        "REPAY_EXCEEDS",          # a credit repayment larger than what is owed
    }
)


class CodedError(Exception):
    """An error with a machine-readable `code` (one of the class's `CODES`), a `message` that
    says what was expected and what was found, and the `field` it concerns (or None)."""

    CODES: frozenset[str] = frozenset()

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        if code not in self.CODES:
            raise ValueError(f"code: expected one of {sorted(self.CODES)}, got {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.field!r})"


class GatewayError(CodedError):
    """A request refused with a protocol error code; `field` names the offending field, if any."""

    CODES = CODES

    def to_reply(self, type: str) -> dict:
        """The merchant reply for a request of `type` (e.g. "pay.create" -> "pay.create.reply")."""
        return {
            "type": type + ".reply",
            "ok": False,
            "code": self.code,
            "message": self.message,
            "field": self.field,
        }

    def __repr__(self) -> str:
        return f"GatewayError({self.code!r}, {self.message!r}, {self.field!r})"
