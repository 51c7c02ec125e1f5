"""Money leaving the platform for a user: withdrawals (提现, the user's balance to the user's
card) and payouts (代付, a merchant's balance to a user's card or wallet). Part of
paysys/products/movements.py (its docstring has the table and the states).

The amount is frozen first (`liability:frozen:<owner>`, owner = the user or the merchant), in
the unit that creates the movement; short of it the request is refused (INSUFFICIENT_BALANCE,
INSUFFICIENT_MERCHANT_BALANCE) and nothing is created. Then one channel request with a stable
req_id:
- card: `bank.card_payout` {req_id, user_id, card_no, amount, currency} to the first bank channel;
- wallet: `wx.transfer` {req_id, user_id, amount, fee_type} to the first WeChat-like channel.
SUCCESS: Dr liability:frozen / Cr asset:channel:<channel> (the money left our account there).
A definite refusal (DECLINED, NOTENOUGH, an invalid request): the frozen amount is released.
Anything else (timeout, reset, refused connection, busy, maintenance, an unexpected answer)
is unknown: the SAME request is sent again after RETRY_MS[attempt]; the channel answers a
req_id once, so a card is never paid twice and an unknown is never taken for a failure.

The family reads the answers of its own operations (`CLASSIFY`, merged by the engine ahead of
the adapters' tables).
"""

from paysys import ledger
from paysys.channels.base import FAILURE, SUCCESS, UNKNOWN, Outcome, as_amount
from paysys.errors import GatewayError
from paysys.ledger import Line
from paysys.products import accounts
from paysys.products.movements import (
    ACTIVE,
    M,
    _seen,
    code,
    create_row,
    move,
    movement,
    post,
    release,
    view,
)

RETRY_MS = (2_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000)
OPS = ("withdraw", "payout_card", "payout_wallet")


# -- how the channels' answers read -------------------------------------------------------------

def classify_card_payout(reply: dict) -> Outcome:
    """bank.card_payout: SUCCESS paid; DECLINED (stored under the req_id) or an invalid request
    (nothing recorded, and never valid) is a definite no; anything else is unknown."""
    result, code = reply.get("result"), reply.get("code") or ""
    if result == "SUCCESS":
        return Outcome(SUCCESS, "", reply.get("bank_txn_id") or "", as_amount(reply.get("amount")))
    if result == "DECLINED" or (result == "ERROR" and code == "INVALID_PARAM"):
        return Outcome(FAILURE, code or "DECLINED")
    return Outcome(UNKNOWN, code or str(result or ""))


def classify_wallet_payout(reply: dict) -> Outcome:
    if reply.get("return_code") == "SUCCESS":
        if reply.get("result_code") == "SUCCESS":
            return Outcome(SUCCESS, "", reply.get("payment_no") or "",
                           as_amount(reply.get("amount")))
        if reply.get("err_code") == "NOTENOUGH":
            return Outcome(FAILURE, "NOTENOUGH")
    elif reply.get("err_code") == "PARAM_ERROR":
        return Outcome(FAILURE, "PARAM_ERROR")
    return Outcome(UNKNOWN, str(reply.get("err_code") or reply.get("return_msg") or ""))


CLASSIFY = {"withdraw": classify_card_payout, "payout_card": classify_card_payout,
            "payout_wallet": classify_wallet_payout}


# -- requests -----------------------------------------------------------------------------------

def _channel(node, kind: str) -> str:
    found = sorted((c.priority, c.id) for c in node.channels.values() if c.kind == kind)
    if not found:
        raise GatewayError("NO_ROUTE", f"no {kind} channel for this movement", "amount")
    return found[0][1]


def _frozen(owner: str) -> str:
    return f"liability:frozen:{owner}"


def withdraw(node, src: str, body: dict, now_ms: int) -> None:
    if _seen(node, src, body, now_ms):
        return
    user, cur, amount = body["user_id"], body["currency"], body["amount"]
    channel = _channel(node, "bank")
    have = accounts.balance_of(node.conn, user, cur)
    if have < amount:
        raise GatewayError(code("INSUFFICIENT_BALANCE"), f"amount: the balance {have} cannot pay "
                           f"{amount}", "amount")
    row = create_row(node, body, "withdraw", now_ms, card_no=body["card_no"], target="card",
                     channel=channel)
    _start(node, src, body, row, accounts.user_account(user), user, _op(row), now_ms)


def payout(node, src: str, body: dict, now_ms: int) -> None:
    if _seen(node, src, body, now_ms):
        return
    merchant, cur, amount = body["merchant_id"], body["currency"], body["amount"]
    to = body["to"]
    channel = _channel(node, "bank" if to == "card" else "wechat")
    account = f"liability:merchant:{merchant}"
    available = ledger.balance(node.conn, account, cur) - node.reserved(merchant)
    if available < amount:
        raise GatewayError("INSUFFICIENT_MERCHANT_BALANCE", f"amount: the merchant balance "
                           f"{available} cannot pay {amount}", "amount")
    row = create_row(node, body, "payout", now_ms, card_no=body.get("card_no") or "", target=to,
                     channel=channel)
    _start(node, src, body, row, account, merchant, _op(row), now_ms)


def _start(node, src: str, body: dict, row: dict, source: str, owner: str, op: str,
           now_ms: int) -> None:
    cur, amount = row["currency"], row["amount"]
    post(node, row["movement_id"], "freeze", [Line(source, cur, amount, 0),
                                               Line(_frozen(owner), cur, 0, amount)], now_ms)
    req_id = node.req_id(row["movement_id"], op)
    move(node, row, "submit", now_ms, req_id=req_id)
    node.call_channel(row["channel"], op, row["movement_id"], req_id, _body(row, req_id),
                      now_ms)
    node.defer_answer(row["movement_id"], src, body)


def _body(row: dict, req_id: str) -> dict:
    if row["target"] == "wallet":
        return {"type": "wx.transfer", "req_id": req_id, "user_id": row["user_id"],
                "amount": row["amount"], "fee_type": row["currency"],
                "desc": f"payout {row['movement_id']}"}
    return {"type": "bank.card_payout", "req_id": req_id, "user_id": row["user_id"],
            "card_no": row["card_no"], "amount": row["amount"], "currency": row["currency"]}


def _op(row: dict) -> str:
    return "withdraw" if row["kind"] == "withdraw" else f"payout_{row['target']}"


def _owner(row: dict) -> tuple[str, str]:
    """(owner of the frozen money, the account it was frozen from)."""
    if row["kind"] == "withdraw":
        return row["user_id"], accounts.user_account(row["user_id"])
    return row["merchant_id"], f"liability:merchant:{row['merchant_id']}"


# -- answers ------------------------------------------------------------------------------------

def on_answer(node, channel: str, movement_id: str, req_id: str, outcome, now_ms: int) -> None:
    row = movement(node.conn, movement_id)
    if row is None or row["status"] not in ACTIVE:
        return
    owner, source = _owner(row)
    cur, amount = row["currency"], row["amount"]
    if outcome.kind == SUCCESS:
        move(node, row, "success", now_ms, credited=amount, channel_ref=outcome.channel_ref)
        post(node, movement_id, "paid", [Line(_frozen(owner), cur, amount, 0),
                                         Line(f"asset:channel:{channel}", cur, 0, amount)],
             now_ms)
    elif outcome.kind == FAILURE:
        move(node, row, "decline", now_ms, error_code=outcome.code or "DECLINED")
        post(node, movement_id, "release", [Line(_frozen(owner), cur, amount, 0),
                                            Line(source, cur, 0, amount)], now_ms)
    else:
        _unknown(node, row, now_ms)
        return
    node.forget(movement_id, (_op(row),))
    _attempts(node).pop(movement_id, None)
    node.publish("movement.final", movement_id, {"status": row["status"]}, now_ms)
    release(node, row, now_ms)


def on_timeout(node, channel: str, movement_id: str, req_id: str, now_ms: int) -> None:
    row = movement(node.conn, movement_id)
    if row is not None and row["status"] in ACTIVE:
        _unknown(node, row, now_ms)


def _attempts(node) -> dict:
    if not hasattr(node, "_movement_attempts"):
        node._movement_attempts = {}
    return node._movement_attempts


def _unknown(node, row: dict, now_ms: int) -> None:
    if row["status"] == M.PROCESSING.value:
        move(node, row, "timeout", now_ms)
        release(node, row, now_ms)     # the merchant hears PROCESSING; movement.query tells more
    attempts = _attempts(node)
    n = attempts[row["movement_id"]] = attempts.get(row["movement_id"], 0) + 1
    node.at(now_ms + RETRY_MS[min(n - 1, len(RETRY_MS) - 1)], "movement_retry",
            row["movement_id"])


def on_retry_due(node, movement_id: str, arg: int, now_ms: int) -> None:
    row = movement(node.conn, movement_id)
    if row is None or row["status"] not in ACTIVE or row["req_id"] in node.inflight:
        return
    node.resend_channel(row["channel"], _op(row), movement_id, row["req_id"], _body(row, row["req_id"]),
                        now_ms)


def recover(node, now_ms: int) -> None:
    """Withdrawals and payouts whose answer was lost with the memory are asked again (same
    req_id); those with a request still pending wait for its re-armed timeout."""
    for (movement_id, req_id) in node.conn.execute(
            "SELECT movement_id, req_id FROM movements WHERE kind IN ('withdraw','payout') "
            "AND status IN ('PROCESSING','UNKNOWN')").fetchall():
        if req_id not in node.inflight:
            node.at(now_ms, "movement_retry", movement_id)


FLOWS = {op: on_answer for op in OPS}
TIMEOUTS = {op: on_timeout for op in OPS}
REFUSED = {op: on_timeout for op in OPS}   # never reached the channel: the same request again
TIMERS = {"movement_retry": on_retry_due}

__all__ = ["CLASSIFY", "FLOWS", "REFUSED", "TIMEOUTS", "TIMERS", "payout", "recover", "view",
           "withdraw"]
