"""Payment and refund orders as state-machine tables.

Everything that decides which status an order may move to lives here, as data: a status `Enum`
and a table `{status: {event: new_status}}` per order kind. `fire()` is the only way to compute a
new status; the store's compare-and-set update (`UPDATE ... WHERE status = :expected`) applies it,
and the docs and the report draw their diagrams from the same tables.
"""

from enum import StrEnum


class PayStatus(StrEnum):
    CREATED = "CREATED"
    CHALLENGE = "CHALLENGE"
    PROCESSING = "PROCESSING"
    UNKNOWN = "UNKNOWN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CLOSED = "CLOSED"
    BLOCKED = "BLOCKED"
    HELD = "HELD"
    DUPLICATE = "DUPLICATE"


class RefundStatus(StrEnum):
    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    UNKNOWN = "UNKNOWN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


P, R = PayStatus, RefundStatus

# Events: risk outcomes (block, challenge, otp_ok, otp_fail), submit (the request leaves for the
# channel), and the channel's verdicts: success, decline (definite failure), timeout (unknown:
# never a failure), close (the channel confirms nothing was or will be paid), expire (nobody paid
# before the order's deadline and the channel confirmed the close). Compensation: hold (money
# came but not as ordered -- another amount, part of it -- and waits for a person: HELD),
# duplicate (this attempt was paid after another attempt of the same merchant order: its money is
# refunded automatically), late_success (policy "reopen": a charge reported after the close).
PAY_TRANSITIONS: dict[PayStatus, dict[str, PayStatus]] = {
    P.CREATED: {"submit": P.PROCESSING, "challenge": P.CHALLENGE, "block": P.BLOCKED},
    P.CHALLENGE: {"otp_ok": P.PROCESSING, "otp_fail": P.FAILED, "expire": P.CLOSED},
    P.PROCESSING: {
        "success": P.SUCCEEDED,
        "decline": P.FAILED,
        "timeout": P.UNKNOWN,
        "close": P.CLOSED,
        "hold": P.HELD,
        "duplicate": P.DUPLICATE,
    },
    P.UNKNOWN: {"success": P.SUCCEEDED, "decline": P.FAILED, "close": P.CLOSED, "hold": P.HELD,
                "duplicate": P.DUPLICATE},
    P.SUCCEEDED: {},
    P.FAILED: {"late_success": P.SUCCEEDED},
    P.CLOSED: {"late_success": P.SUCCEEDED},
    P.BLOCKED: {},
    P.HELD: {},
    P.DUPLICATE: {},
}

REFUND_TRANSITIONS: dict[RefundStatus, dict[str, RefundStatus]] = {
    R.CREATED: {"submit": R.PROCESSING, "decline": R.FAILED},
    R.PROCESSING: {"success": R.SUCCEEDED, "decline": R.FAILED, "timeout": R.UNKNOWN},
    R.UNKNOWN: {"success": R.SUCCEEDED, "decline": R.FAILED},
    R.SUCCEEDED: {},
    R.FAILED: {},
}

# final: no further move in the normal course (a closed or failed order is reopened only by a
# charge the channel reports late, under the "reopen" policy)
PAY_FINAL = frozenset(s for s, moves in PAY_TRANSITIONS.items()
                      if set(moves) <= {"late_success"})
REFUND_FINAL = frozenset(s for s, moves in REFUND_TRANSITIONS.items() if not moves)

TABLES = {"pay": PAY_TRANSITIONS, "refund": REFUND_TRANSITIONS}
FINAL = {"pay": PAY_FINAL, "refund": REFUND_FINAL}


def register(kind: str, transitions: dict, final: frozenset) -> None:
    """Add the state table of another order kind (a product's: paysys/products/)."""
    if kind in TABLES and TABLES[kind] is not transitions:
        raise ValueError(f"order kind {kind!r} is already registered")
    TABLES[kind] = transitions
    FINAL[kind] = frozenset(getattr(s, "value", s) for s in final)


class IllegalTransition(Exception):
    def __init__(self, kind: str, status: str, event: str):
        allowed = sorted(TABLES[kind][type(next(iter(TABLES[kind])))(status)])
        super().__init__(
            f"{kind} order in {status} cannot take event {event!r} (allowed: {', '.join(allowed) or 'none'})"
        )
        self.kind, self.status, self.event = kind, status, event


def fire(kind: str, status: str, event: str) -> str:
    """The status a `kind` ("pay"/"refund") order in `status` moves to on `event`."""
    table = TABLES[kind]
    state_type = type(next(iter(table)))
    new = table[state_type(status)].get(event)
    if new is None:
        raise IllegalTransition(kind, status, event)
    return new.value


def can_fire(kind: str, status: str, event: str) -> bool:
    table = TABLES[kind]
    return event in table[type(next(iter(table)))(status)]


def is_final(kind: str, status: str) -> bool:
    return status in FINAL[kind]


def mermaid(kind: str) -> str:
    """The state diagram of `kind` orders in Mermaid syntax, drawn from the table."""
    lines = ["stateDiagram-v2"]
    table = TABLES[kind]
    first = next(iter(table))
    lines.append(f"    [*] --> {first.value}")
    for state, moves in table.items():
        for event, new in moves.items():
            lines.append(f"    {state.value} --> {new.value}: {event}")
        if is_final(kind, state.value):
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines)
