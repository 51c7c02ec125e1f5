"""Quick-pay card agreements (签约/解约): unbinding a card on the merchant's request.

Signing happens inside the pay flow (`payments.submit`) the first time a card is used. Unbinding
revokes the agreement locally at once (no new payment will use it) and tells the bank, retrying
until the bank confirms.
"""

from paysys import store
from paysys.channels.base import SUCCESS
from paysys.errors import GatewayError

RETRY_MS = 60_000


def unsign(node, src: str, body: dict, now_ms: int) -> None:
    found = False
    for channel, adapter in node.adapters.items():
        if not adapter.signs("quick"):
            continue
        agreement = store.agreement(node.conn, body["user_id"], body["card_no"], channel)
        if agreement is None or agreement["status"] != "active":
            continue
        found = True
        store.save_agreement(node.conn, body["user_id"], body["card_no"], channel,
                             agreement["agreement_no"], "revoking")
        _send(node, channel, agreement["agreement_no"], now_ms)
    if not found:
        raise GatewayError("NOT_FOUND", "card_no: no active agreement for this card", "card_no")
    node.answer(src, body, {"type": "agreement.unsign.reply", "ok": True, "status": "REVOKED"},
                now_ms, deferred=False)


def _send(node, channel: str, agreement_no: str, now_ms: int) -> None:
    req_id = node.req_id(agreement_no, "unsign")
    node.call_channel(channel, "unsign", agreement_no, req_id,
                      node.adapters[channel].unsign(req_id, agreement_no), now_ms)


def on_unsign(node, channel: str, agreement_no: str, req_id: str, outcome, now_ms: int) -> None:
    if outcome.kind == SUCCESS:
        node.conn.execute("UPDATE agreements SET status='revoked' WHERE agreement_no=? AND channel=?",
                          (agreement_no, channel))
    else:
        on_unsign_timeout(node, channel, agreement_no, req_id, now_ms)


def on_unsign_timeout(node, channel: str, agreement_no: str, req_id: str, now_ms: int) -> None:
    node.at(now_ms + RETRY_MS, "unsign_retry", agreement_no)


def on_retry_due(node, agreement_no: str, arg: int, now_ms: int) -> None:
    row = node.conn.execute("SELECT channel FROM agreements WHERE agreement_no=? AND status='revoking'",
                            (agreement_no,)).fetchone()
    if row:
        _send(node, row[0], agreement_no, now_ms)
