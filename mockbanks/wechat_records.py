"""The WeChat-like platform's records and tables: orders and their charges, the trade state
table, answers refusing a user's payment, request validation and the reply shapes.

Owns the data the platform (mockbanks/wechat.py) keeps per order and per charge, split out of it
so each file stays small; the behaviour is the platform's (its module docstring describes it).
"""

from dataclasses import dataclass
from dataclasses import field as _field

# trade_state -> {event: new trade_state}; CLOSED is final
TRADE_TRANSITIONS: dict[str, dict[str, str]] = {
    "NOTPAY": {"pay": "SUCCESS", "close": "CLOSED", "expire": "CLOSED"},
    "SUCCESS": {"refund": "REFUND"},
    "REFUND": {"refund": "REFUND"},
    "CLOSED": {},
}
# what a user's wx.user.pay gets for an order that is not payable, by trade_state
USER_PAY_REFUSAL = {"CLOSED": "ORDERCLOSED", "SUCCESS": "ORDERPAID", "REFUND": "ORDERPAID"}


@dataclass(slots=True)
class Charge:
    """Money taken from a wallet for an order, and the notification series telling it."""

    txn_id: str
    out_trade_no: str
    amount: int                     # money taken (the notification's total_fee)
    credit: int                     # how much of the order it pays (0: a second, double charge)
    user_id: str
    paid_ms: int
    refunded: int = 0
    attempts: int = 0               # notification attempts made
    next_at: int | None = None      # instant of the next notification attempt
    last_at: int | None = None      # instant of the last attempt
    acked: bool = False


@dataclass(slots=True)
class Order:
    out_trade_no: str
    content: tuple | None           # (total_fee, fee_type, notify_url, time_expire); None: tombstone
    prepay_id: str | None
    state: str = "NOTPAY"
    transaction_id: str | None = None
    paid_ms: int | None = None
    charges: list[Charge] = _field(default_factory=list)
    payable_after_close: bool = False   # pay_after_close: "closed" but still payable, no expiry

    def fire(self, event: str) -> None:
        try:
            self.state = TRADE_TRANSITIONS[self.state][event]
        except KeyError:
            raise ValueError(f"order {self.out_trade_no}: no {event!r} from {self.state}") from None

    @property
    def total_fee(self) -> int | None:
        return self.content[0] if self.content else None

    @property
    def left(self) -> int:
        """What is left to pay of the order."""
        return self.total_fee - sum(c.credit for c in self.charges)


def text(value: object) -> str:
    """`value` if it is a string, else "" (never a key of the tables)."""
    return value if isinstance(value, str) else ""


def first_bad(body: dict, strs: tuple[str, ...], ints: tuple[str, ...]) -> tuple[str, str] | None:
    for field in strs:
        if not isinstance(body.get(field), str) or not body[field]:
            return field, f"expected a non-empty string, got {body.get(field)!r}"
    for field in ints:
        value = body.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return field, f"expected a positive integer, got {value!r}"
    return None


def fail(err_code: str, return_code: str = "SUCCESS", **extra) -> dict:
    return {"return_code": return_code, "result_code": "FAIL", "err_code": err_code, **extra}


def param_error(body: dict, bad: tuple[str, str]) -> tuple[dict, list]:
    return {"return_code": "FAIL", "result_code": "FAIL", "err_code": "PARAM_ERROR",
            "field": bad[0], "return_msg": f"{bad[0]}: {bad[1]}",
            "out_trade_no": body.get("out_trade_no")}, []


def ok(**fields) -> dict:
    return {"return_code": "SUCCESS", "result_code": "SUCCESS", "err_code": None, **fields}
