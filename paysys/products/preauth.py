"""The pre-authorisation family (预授权): hold money on a card, then capture it (预授权完成, once,
at most what is held), cancel the hold (预授权撤销, full only, while nothing is captured), cancel
a capture (预授权完成撤销, full: the pre-auth stays valid and may be captured again), or let it
expire (the bank releases a hold `hold_ms` after granting it; paysys's own timer asks the bank).

What this module owns: the merchant API (`preauth.create`, `preauth.cancel`, `preauth.capture`,
`preauth.capture_cancel`, `preauth.query`), its FIELDS, the state tables of a pre-authorisation
and of its operations (ORDERS), its tables (SCHEMA), its ledger lines (POSTINGS) and settings.
Files: preauth_tables.py (statuses, transitions, tables, reads, the merchant's view),
preauth_flows.py (signing, the hold, queries, expiry, recovery), preauth_ops.py (cancel,
capture, capture cancel), preauth_ledger.py (the two-phase ledger: pending entries).

- A pre-auth is routed like a quick payment (a channel serving `quick` whose adapter has
  `PREAUTH`), needs the card's agreement (signed first when there is none, as quick pay does),
  and is risk-assessed (BLOCK refuses it; no one-time password is asked).
- Each operation is a row of `preauth_ops` whose id is the req_id of its channel request; a
  capture is also a pay order (`P…`, product `preauth`, `parent_id` = the pre-auth) created at
  once (CREATED) and settled when the bank answers; a capture cancel is also a refund order
  (`R…`, `method` "cancel") of that pay order. Unknown answers are resolved by query
  (`bank.preauth.query`), never taken as failures; a request the bank never saw is sent again
  under its id.
- Answers to the merchant wait for the bank (or say PROCESSING when its answer is unknown).
"""

from paysys import ledger, store
from paysys.errors import GatewayError
from paysys.products import preauth_flows as flows
from paysys.products.base import Posting
from paysys.products.preauth_tables import (  # noqa: F401  (ORDERS, SCHEMA: the family's)
    ORDERS,
    PRODUCT,
    SCHEMA,
    Settings,
    Status,
    get,
    view,
)
from paysys.validation import AMOUNT, CARD_NO, CURRENCY, URL_PATTERN, Rule, _id

S = Status

# -- the merchant API ---------------------------------------------------------------------------


def create(node, src: str, body: dict, now_ms: int) -> None:
    conn, merchant_id = node.conn, body["merchant_id"]
    old = conn.execute("SELECT preauth_id FROM preauth_orders WHERE merchant_id=? AND "
                       "merchant_order_no=?", (merchant_id, body["merchant_order_no"])).fetchone()
    if old is not None:
        pre = get(conn, old[0])
        if (pre["amount"], pre["user_id"]) != (body["amount"], body["user_id"]):
            raise GatewayError("DUPLICATE_ORDER", "merchant_order_no: already used for another "
                               "pre-authorisation", "merchant_order_no")
        node.answer(src, body, view(pre, body["type"]), now_ms, deferred=False)
        return
    preauth_id = node.new_id("A")
    route = node.router.route("quick", body["amount"], body["currency"], now_ms)
    channel = route.channel_id
    if channel is not None and not getattr(node.adapters[channel], "PREAUTH", False):
        channel = None
    node.event("route.decision", preauth_id, dict(route.event_data(), channel=channel))
    if channel is None:
        raise GatewayError("NO_ROUTE", f"no channel can hold this amount on a card: "
                           f"{route.reason}", "card_no")
    decision = node.risk.assess(body["user_id"], body.get("device_id", ""), body["amount"], now_ms)
    node.event("risk.decision", preauth_id, {"outcome": decision.outcome, "rule": decision.rule,
                                            "detail": decision.detail})
    if decision.outcome == "BLOCK":
        raise GatewayError("RISK_BLOCKED", f"blocked by risk rule {decision.rule}", None)
    pre = {"preauth_id": preauth_id, "merchant_id": merchant_id,
           "merchant_order_no": body["merchant_order_no"], "user_id": body["user_id"],
           "card_no": body["card_no"], "channel": channel, "amount": body["amount"],
           "currency": body["currency"], "status": S.CREATED.value, "held": 0, "captured": 0,
           "capture_id": "", "agreement_no": "", "channel_ref": "", "expire_ms": 0,
           "notify_url": body.get("notify_url") or "", "error_code": "", "created_ms": now_ms,
           "updated_ms": now_ms}
    node.create_order("preauth", pre, now_ms)
    node.defer_answer(preauth_id, src, body)
    agreement = store.agreement(conn, pre["user_id"], pre["card_no"], channel)
    if agreement is not None and agreement["status"] == "active":
        flows.authorise(node, pre, agreement["agreement_no"], now_ms)
    else:
        flows.sign(node, pre, now_ms)


def _own(node, body: dict) -> dict:
    pre = get(node.conn, body["preauth_id"])
    if pre is None or pre["merchant_id"] != body["merchant_id"]:
        raise GatewayError("NOT_FOUND", f"preauth_id: no pre-authorisation {body['preauth_id']} "
                           "for this merchant", "preauth_id")
    return pre


def _expect(pre: dict, status: Status, what: str) -> None:
    if pre["status"] != status.value:
        raise GatewayError("BAD_STATE", f"pre-authorisation {pre['preauth_id']} is "
                           f"{pre['status']}: {what} needs it {status.value}", "preauth_id")


def cancel(node, src: str, body: dict, now_ms: int) -> None:
    """预授权撤销: the whole hold, while nothing is captured."""
    pre = _own(node, body)
    _expect(pre, S.AUTHORISED, "a cancel")
    if body.get("amount") is not None and body["amount"] != pre["held"]:
        raise GatewayError("INVALID_PARAM", f"amount: expected the full amount held "
                           f"({pre['held']}): a pre-authorisation is cancelled in full, got "
                           f"{body['amount']}", "amount")
    flows.start_op(node, src, body, pre, "cancel", pre["held"], "", now_ms)


def capture(node, src: str, body: dict, now_ms: int) -> None:
    """预授权完成: at most what is held, once (again only after a capture cancel)."""
    pre = _own(node, body)
    _expect(pre, S.AUTHORISED, "a capture")
    if body["amount"] > pre["held"]:
        raise GatewayError("REFUND_EXCEEDS", f"amount: {body['amount']} exceeds what is held "
                           f"({pre['held']})", "amount")
    (n,) = node.conn.execute("SELECT COUNT(*) FROM preauth_ops WHERE preauth_id=? AND "
                             "op='capture'", (pre["preauth_id"],)).fetchone()
    order_id = node.new_id("P")
    order = {"order_id": order_id, "merchant_id": pre["merchant_id"],
             "merchant_order_no": f"{pre['merchant_order_no']}.c{n + 1}",
             "user_id": pre["user_id"], "product": PRODUCT, "channel": pre["channel"],
             "amount": body["amount"], "currency": pre["currency"], "status": "CREATED",
             "merchant_fee": 0, "channel_cost": 0, "refunded": 0, "created_ms": now_ms,
             "updated_ms": now_ms, "channel_ref": "", "notify_url": pre["notify_url"],
             "error_code": "", "card_no": pre["card_no"], "attempt": 1,
             "idempotency_key": body.get("idempotency_key") or "", "received": 0,
             "parent_id": pre["preauth_id"]}
    node.create_order("pay", order, now_ms)
    flows.start_op(node, src, body, pre, "capture", body["amount"], order_id, now_ms)


def capture_cancel(node, src: str, body: dict, now_ms: int) -> None:
    """预授权完成撤销: the whole capture goes back on hold; the pre-auth may be captured again."""
    pre = _own(node, body)
    _expect(pre, S.CAPTURED, "a capture cancel")
    amount, merchant_id = pre["captured"], pre["merchant_id"]
    order = store.pay_order(node.conn, pre["capture_id"])
    needed = amount - order["merchant_fee"]     # what the reversal takes from the merchant
    available = ledger.balance(node.conn, f"liability:merchant:{merchant_id}",
                               pre["currency"]) - node.reserved(merchant_id)
    if needed > available:
        raise GatewayError("INSUFFICIENT_MERCHANT_BALANCE", f"the merchant balance {available} "
                           f"cannot give back the capture ({needed} net of fees)", "preauth_id")
    refund_id = node.new_id("R")
    refund = {"refund_id": refund_id, "order_id": pre["capture_id"], "merchant_id": merchant_id,
              "refund_no": f"capture_cancel:{pre['capture_id']}", "amount": amount,
              "currency": pre["currency"], "status": "CREATED", "channel": pre["channel"],
              "created_ms": now_ms, "updated_ms": now_ms, "error_code": "",
              "reason": "merchant", "charge_ref": "", "method": "cancel"}
    node.create_order("refund", refund, now_ms)
    node.move("refund", refund, "submit", now_ms)
    node.reserve(merchant_id, amount)
    flows.start_op(node, src, body, pre, "capture_cancel", amount, refund_id, now_ms)


def query(node, src: str, body: dict, now_ms: int) -> None:
    node.answer(src, body, view(_own(node, body), body["type"]), now_ms, deferred=False)


API = {"preauth.create": create, "preauth.cancel": cancel, "preauth.capture": capture,
       "preauth.capture_cancel": capture_cancel, "preauth.query": query}
_PREAUTH_ID = _id()
FIELDS = {
    "preauth.create": {
        "idempotency_key": _id(required=False),
        "merchant_order_no": _id(),
        "user_id": _id(),
        "amount": AMOUNT,
        "currency": CURRENCY,
        "card_no": CARD_NO,
        "notify_url": Rule("str", "an http(s) URL of at most 512 characters", required=False,
                           max_len=512, pattern=URL_PATTERN),
        "device_id": _id(required=False),
    },
    "preauth.cancel": {"idempotency_key": _id(required=False), "preauth_id": _PREAUTH_ID,
                       "amount": Rule("int", "the full amount held, or absent", required=False,
                                      min_value=1)},
    "preauth.capture": {"idempotency_key": _id(required=False), "preauth_id": _PREAUTH_ID,
                        "amount": AMOUNT},
    "preauth.capture_cancel": {"idempotency_key": _id(required=False),
                               "preauth_id": _PREAUTH_ID},
    "preauth.query": {"preauth_id": _PREAUTH_ID},
}
FLOWS, TIMEOUTS, REFUSED, TIMERS = flows.FLOWS, flows.TIMEOUTS, flows.REFUSED, flows.TIMERS
recover = flows.recover

_P = PRODUCT
POSTINGS = (
    Posting(_P, "authorise (pending, no balance moves)", "asset:channel:<channel>", "Dr",
            "authorised (pending)"),
    Posting(_P, "authorise (pending, no balance moves)", "liability:merchant:<merchant>", "Cr",
            "authorised (pending)"),
    Posting(_P, "capture (posts the pending)", "asset:channel:<channel>", "Dr", "captured"),
    Posting(_P, "capture (posts the pending)", "liability:merchant:<merchant>", "Cr",
            "captured - merchant fee"),
    Posting(_P, "capture (posts the pending)", "income:fee", "Cr", "merchant fee"),
    Posting(_P, "capture (posts the pending)", "expense:channel:<channel>", "Dr", "channel fee"),
    Posting(_P, "capture (posts the pending)", "asset:channel:<channel>", "Cr", "channel fee"),
    Posting(_P, "capture cancel (reverses the capture; a new pending)", "liability:merchant:<merchant>",
            "Dr", "captured - merchant fee"),
    Posting(_P, "capture cancel (reverses the capture; a new pending)", "income:fee", "Dr",
            "merchant fee"),
    Posting(_P, "capture cancel (reverses the capture; a new pending)", "asset:channel:<channel>",
            "Dr", "channel fee"),
    Posting(_P, "capture cancel (reverses the capture; a new pending)", "expense:channel:<channel>",
            "Cr", "channel fee"),
    Posting(_P, "capture cancel (reverses the capture; a new pending)", "asset:channel:<channel>",
            "Cr", "captured"),
    Posting(_P, "cancel / expiry (voids / expires the pending)", "(none)", "-", "0"),
    Posting("refund (cancel method, 撤销)", "cancel: the payment entry reversed",
            "liability:merchant:<merchant>", "Dr", "amount - merchant fee"),
    Posting("refund (cancel method, 撤销)", "cancel: the payment entry reversed", "income:fee", "Dr",
            "merchant fee"),
    Posting("refund (cancel method, 撤销)", "cancel: the payment entry reversed",
            "asset:channel:<channel>", "Dr", "channel fee"),
    Posting("refund (cancel method, 撤销)", "cancel: the payment entry reversed",
            "expense:channel:<channel>", "Cr", "channel fee"),
    Posting("refund (cancel method, 撤销)", "cancel: the payment entry reversed",
            "asset:channel:<channel>", "Cr", "amount"),
)
