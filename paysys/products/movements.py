"""The four money movements of the payment core — top-up (充值), withdrawal (提现), transfer
(转账) — and payouts (代付); coin purchases and credit repayments are top-ups too.

One order table, `movements` (kind `movement`, ids `V...`), state table MOVE_TRANSITIONS:
CREATED -submit-> PROCESSING -success-> SUCCEEDED | -decline-> FAILED | -timeout-> UNKNOWN
(-success/-decline, resolved by sending the same request again); a FAILED top-up whose card
charge is reported late (the "reopen" policy) moves -late_success-> SUCCEEDED.

| request | kind | what happens |
|---|---|---|
| `topup.create` | topup | a card charge: a pay order of product "quick" (`parent_id` = the movement) goes through the whole pay flow (routing, signing, query compensation); when it is final, `on_child_final` credits `liability:user:U` with what the merchant was paid (amount - the merchant's fee) or fails the movement with the charge's code |
| `coins.buy` | coins | a top-up whose proceeds buy whole coins (`liability:coins:U`), the change to the balance |
| `credit.repay` | repay | a top-up that pays back the credit line (`asset:credit:U`); at most what is owed |
| `transfer.create` | transfer | user -> user balance, one entry, at once; to oneself or short of balance: refused |
| `withdraw.create` | withdraw | the balance is frozen (`liability:frozen:U`), `bank.card_payout` pays the card; released (declined) or paid out (success) on the answer |
| `payout.create` | payout | a merchant pays a user's card (`bank.card_payout`) or wallet (`wx.transfer`), its balance frozen meanwhile |
| `movement.query` | - | the movement as it is |

Channel calls (withdraw, payout) carry a stable req_id (`<movement>.w1` / `.o1`): an unknown
outcome (timeout, reset, busy, maintenance, an unexpected answer) is never a failure: the same
request is sent again with backoff (RETRY_MS), and the channel answers a req_id once, so a
card is never paid twice. A request refused by the network is sent again the same way. Only a
definite answer (SUCCESS, DECLINED, invalid request) ends the movement.

Entries: see POSTINGS (docs/products.md). The top-up's card charge itself is the pay order's
ordinary payment entry (Dr asset:channel / Cr liability:merchant / Cr income:fee ...).
The flows of withdrawals and payouts are in movements_out.py.
"""

from enum import StrEnum

from paysys import ledger, payments
from paysys.errors import GatewayError
from paysys.ledger import Line
from paysys.products import accounts
from paysys.products.base import Posting
from paysys.validation import AMOUNT, CARD_NO, CURRENCY, ID_EXPECT, ID_PATTERN, Rule

ledger.register_family("liability:frozen", "liability", "credit", sub="owner", external="frozen:")

PREFIX = "V"
# refusal codes of ours -> the code used while paysys/errors.py does not list them yet
_FALLBACK = {"INSUFFICIENT_BALANCE": "BAD_STATE", "SAME_USER": "INVALID_PARAM",
             "REPAY_EXCEEDS": "BAD_STATE"}


def code(wanted: str) -> str:
    """`wanted` if paysys.errors knows it, else its stand-in (_FALLBACK)."""
    return wanted if wanted in GatewayError.CODES else _FALLBACK[wanted]
TOPUPS = {"topup.create": "topup", "coins.buy": "coins", "credit.repay": "repay"}


class MoveStatus(StrEnum):
    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    UNKNOWN = "UNKNOWN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


M = MoveStatus
MOVE_TRANSITIONS: dict[MoveStatus, dict[str, MoveStatus]] = {
    M.CREATED: {"submit": M.PROCESSING, "decline": M.FAILED},
    M.PROCESSING: {"success": M.SUCCEEDED, "decline": M.FAILED, "timeout": M.UNKNOWN},
    M.UNKNOWN: {"success": M.SUCCEEDED, "decline": M.FAILED},
    M.SUCCEEDED: {},
    M.FAILED: {"late_success": M.SUCCEEDED},
}
FINAL = frozenset({M.SUCCEEDED, M.FAILED})
ACTIVE = (M.PROCESSING.value, M.UNKNOWN.value)

SCHEMA = ("""CREATE TABLE IF NOT EXISTS movements (
    movement_id TEXT PRIMARY KEY, kind TEXT NOT NULL, merchant_id TEXT NOT NULL,
    request_no TEXT NOT NULL, user_id TEXT NOT NULL, to_user_id TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '', card_no TEXT NOT NULL DEFAULT '',
    amount INTEGER NOT NULL, currency TEXT NOT NULL, credited INTEGER NOT NULL DEFAULT 0,
    channel TEXT NOT NULL DEFAULT '', req_id TEXT NOT NULL DEFAULT '',
    child_id TEXT NOT NULL DEFAULT '', channel_ref TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL, error_code TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    UNIQUE (merchant_id, request_no))""",)
ORDERS = {"movement": ("movements", "movement_id", MOVE_TRANSITIONS, FINAL)}

_ID = Rule("str", ID_EXPECT, pattern=ID_PATTERN)
_BASE = {"idempotency_key": Rule("str", ID_EXPECT, required=False, pattern=ID_PATTERN),
         "request_no": _ID, "user_id": _ID, "amount": AMOUNT, "currency": CURRENCY}
FIELDS = {
    **{t: {**_BASE, "card_no": CARD_NO} for t in TOPUPS},
    "transfer.create": {**_BASE, "to_user_id": _ID},
    "withdraw.create": {**_BASE, "card_no": CARD_NO},
    "payout.create": {**_BASE, "to": Rule("str", "'card' or 'wallet'", allowed=("card", "wallet")),
                      "card_no": Rule("str", "a card number of 13-19 digits (required when to "
                                      "is 'card')", required=False,
                                      pattern=r"^[0-9]{13,19}$", required_when=("to", "card"))},
    "movement.query": {"movement_id": _ID},
}


# -- the table ------------------------------------------------------------------------------

def movement(conn, movement_id: str) -> dict | None:
    cur = conn.execute("SELECT * FROM movements WHERE movement_id=?", (movement_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))


def view(row: dict, reply_type: str) -> dict:
    """What the merchant sees of a movement (UNKNOWN reads PROCESSING, as for payments)."""
    status = "PROCESSING" if row["status"] in ("CREATED", "UNKNOWN") else row["status"]
    out = {"type": f"{reply_type}.reply", "ok": True, "movement_id": row["movement_id"],
           "kind": row["kind"], "request_no": row["request_no"], "user_id": row["user_id"],
           "amount": row["amount"], "credited": row["credited"], "currency": row["currency"],
           "status": status}
    if row["error_code"]:
        out["code"] = row["error_code"]
    return out


def move(node, row: dict, event: str, now_ms: int, **changes) -> None:
    node.move("movement", row, event, now_ms, **changes)


def release(node, row: dict, now_ms: int) -> None:
    """Answer the merchant request waiting on this movement, if any."""
    node.release_answer(row["movement_id"], lambda t: view(row, t), now_ms)


def create_row(node, body: dict, kind: str, now_ms: int, **fields) -> dict:
    row = {"movement_id": node.new_id(PREFIX), "kind": kind, "merchant_id": body["merchant_id"],
           "request_no": body["request_no"], "user_id": body["user_id"], "amount": body["amount"],
           "currency": body["currency"], "status": M.CREATED.value, "created_ms": now_ms,
           "updated_ms": now_ms, **fields}
    node.create_order("movement", row, now_ms)
    return movement(node.conn, row["movement_id"])


def _seen(node, src: str, body: dict, now_ms: int) -> bool:
    """A request number already used: answer its movement (or refuse another use of it)."""
    cur = node.conn.execute("SELECT movement_id FROM movements WHERE merchant_id=? AND "
                            "request_no=?", (body["merchant_id"], body["request_no"])).fetchone()
    if cur is None:
        return False
    row = movement(node.conn, cur[0])
    if (row["user_id"], row["amount"]) != (body["user_id"], body["amount"]):
        raise GatewayError("DUPLICATE_ORDER", "request_no: already used for another movement",
                           "request_no")
    node.answer(src, body, view(row, body["type"]), now_ms, deferred=False)
    return True


def post(node, ref: str, memo: str, lines: list, now_ms: int) -> None:
    payments.post(node, ref, memo, lines, now_ms)


# -- top-ups (card charge -> stored value, coins or a repaid credit line) ---------------------

def topup(node, src: str, body: dict, now_ms: int) -> None:
    if _seen(node, src, body, now_ms):
        return
    kind = TOPUPS[body["type"]]
    if kind == "repay":
        owed = accounts.credit_drawn(node.conn, body["user_id"], body["currency"]) - _repaying(
            node, body["user_id"], body["currency"])
        if body["amount"] > owed:
            raise GatewayError(code("REPAY_EXCEEDS"), f"amount: {body['amount']} exceeds what the "
                               f"user owes ({max(owed, 0)}, repayments in flight deducted)",
                               "amount")
    route = node.router.route("quick", body["amount"], body["currency"], now_ms)
    if route.channel_id is None:
        raise GatewayError("NO_ROUTE", f"no channel can take this card charge: {route.reason}",
                           "amount")
    row = create_row(node, body, kind, now_ms, card_no=body["card_no"], target=kind)
    child_id = node.new_id("P")
    child = {
        "order_id": child_id, "merchant_id": row["merchant_id"],
        "merchant_order_no": row["movement_id"], "user_id": row["user_id"], "product": "quick",
        "channel": route.channel_id, "amount": row["amount"], "currency": row["currency"],
        "status": "CREATED", "merchant_fee": 0, "channel_cost": 0, "refunded": 0,
        "created_ms": now_ms, "updated_ms": now_ms, "channel_ref": "", "notify_url": "",
        "error_code": "", "card_no": row["card_no"], "attempt": 1, "idempotency_key": "",
        "received": 0, "parent_id": row["movement_id"],
    }
    node.event("route.decision", child_id, route.event_data())
    node.create_order("pay", child, now_ms)
    move(node, row, "submit", now_ms, child_id=child_id)
    node.defer_answer(row["movement_id"], src, body)
    payments.submit(node, child, "submit", now_ms)


def _repaying(node, user_id: str, currency: str) -> int:
    (total,) = node.conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM movements WHERE kind='repay' AND user_id=? AND "
        "currency=? AND status IN ('CREATED','PROCESSING','UNKNOWN')",
        (user_id, currency)).fetchone()
    return total


def credit_lines(node, row: dict, net: int) -> list[Line]:
    """Where a top-up's net proceeds go (the merchant's account pays them out)."""
    user, cur = row["user_id"], row["currency"]
    lines = [Line(f"liability:merchant:{row['merchant_id']}", cur, net, 0)]
    parts: list[tuple[str, int]] = []
    if row["kind"] == "coins":
        price = accounts.coin_settings(node).price
        parts = [(accounts.coins_account(user), net - net % price),
                 (accounts.user_account(user), net % price)]
    elif row["kind"] == "repay":
        to_debt = max(0, min(net, accounts.credit_drawn(node.conn, user, cur)))
        parts = [(accounts.credit_account(user), to_debt),
                 (accounts.user_account(user), net - to_debt)]
    else:
        parts = [(accounts.user_account(user), net)]
    return lines + [Line(account, cur, 0, amount) for account, amount in parts if amount]


def on_child_final(node, child: dict, now_ms: int) -> None:
    """The card charge of a top-up is final (maybe again: a late charge reopening it)."""
    row = movement(node.conn, child["parent_id"])
    if row is None or row["status"] == M.SUCCEEDED.value:
        return
    if child["status"] == "SUCCEEDED":
        net = child["amount"] - child["merchant_fee"]
        event = "late_success" if row["status"] == M.FAILED.value else "success"
        move(node, row, event, now_ms, credited=net, channel_ref=child["channel_ref"])
        if net:
            post(node, row["movement_id"], f"{row['kind']}", credit_lines(node, row, net), now_ms)
    elif row["status"] in ACTIVE:
        move(node, row, "decline", now_ms, error_code=child["error_code"] or child["status"])
    node.publish("movement.final", row["movement_id"], {"status": row["status"]}, now_ms)
    release(node, row, now_ms)


PARENTS = {PREFIX: on_child_final}


# -- transfers (one entry, at once) -----------------------------------------------------------

def transfer(node, src: str, body: dict, now_ms: int) -> None:
    if _seen(node, src, body, now_ms):
        return
    user, to, cur, amount = body["user_id"], body["to_user_id"], body["currency"], body["amount"]
    if to == user:
        raise GatewayError(code("SAME_USER"), f"to_user_id: expected another user than {user}",
                           "to_user_id")
    have = accounts.balance_of(node.conn, user, cur)
    if have < amount:
        raise GatewayError(code("INSUFFICIENT_BALANCE"), f"amount: the balance {have} cannot pay "
                           f"{amount}", "amount")
    row = create_row(node, body, "transfer", now_ms, to_user_id=to)
    move(node, row, "submit", now_ms)
    post(node, row["movement_id"], "transfer",
         [Line(accounts.user_account(user), cur, amount, 0),
          Line(accounts.user_account(to), cur, 0, amount)], now_ms)
    move(node, row, "success", now_ms, credited=amount)
    node.publish("movement.final", row["movement_id"], {"status": row["status"]}, now_ms)
    node.answer(src, body, view(row, body["type"]), now_ms, deferred=False)


def query(node, src: str, body: dict, now_ms: int) -> None:
    row = movement(node.conn, body["movement_id"])
    if row is None or row["merchant_id"] != body["merchant_id"]:
        raise GatewayError("NOT_FOUND", f"movement_id: no movement {body['movement_id']} for "
                           "this merchant", "movement_id")
    node.answer(src, body, view(row, body["type"]), now_ms, deferred=False)


from paysys.products import movements_out  # noqa: E402  (it uses the helpers above)

API = {**{t: topup for t in TOPUPS}, "transfer.create": transfer, "movement.query": query,
       "withdraw.create": movements_out.withdraw, "payout.create": movements_out.payout}
FLOWS = movements_out.FLOWS
TIMEOUTS = movements_out.TIMEOUTS
REFUSED = movements_out.REFUSED
TIMERS = movements_out.TIMERS
CLASSIFY = movements_out.CLASSIFY
recover = movements_out.recover


def _postings() -> tuple:
    P = Posting
    return (
        P("topup", "credited", "liability:merchant:<merchant>", "Dr", "net = amount - fee"),
        P("topup", "credited", "liability:user:<user>", "Cr", "net"),
        P("coins.buy", "credited", "liability:merchant:<merchant>", "Dr", "net"),
        P("coins.buy", "credited", "liability:coins:<user>", "Cr", "net - net % price"),
        P("coins.buy", "credited", "liability:user:<user>", "Cr", "net % price"),
        P("credit.repay", "credited", "liability:merchant:<merchant>", "Dr", "net"),
        P("credit.repay", "credited", "asset:credit:<user>", "Cr", "min(net, drawn)"),
        P("credit.repay", "credited", "liability:user:<user>", "Cr", "net - min(net, drawn)"),
        P("transfer", "transfer", "liability:user:<user>", "Dr", "amount"),
        P("transfer", "transfer", "liability:user:<to_user>", "Cr", "amount"),
        P("withdraw", "freeze", "liability:user:<user>", "Dr", "amount"),
        P("withdraw", "freeze", "liability:frozen:<user>", "Cr", "amount"),
        P("withdraw", "paid", "liability:frozen:<user>", "Dr", "amount"),
        P("withdraw", "paid", "asset:channel:<bank>", "Cr", "amount"),
        P("withdraw", "release", "liability:frozen:<user>", "Dr", "amount"),
        P("withdraw", "release", "liability:user:<user>", "Cr", "amount"),
        P("payout", "freeze", "liability:merchant:<merchant>", "Dr", "amount"),
        P("payout", "freeze", "liability:frozen:<merchant>", "Cr", "amount"),
        P("payout", "paid", "liability:frozen:<merchant>", "Dr", "amount"),
        P("payout", "paid", "asset:channel:<bank or wallet platform>", "Cr", "amount"),
        P("payout", "release", "liability:frozen:<merchant>", "Dr", "amount"),
        P("payout", "release", "liability:merchant:<merchant>", "Cr", "amount"),
    )


POSTINGS = _postings()
