"""Quick pay (快捷支付) additions: what a merchant may ask about its users' card agreements.

Signing happens inside the pay flow (paysys/payments.py) the first time a card pays; unbinding is
`agreement.unsign` (paysys/agreements.py). This family adds the merchant's read-only questions:
- `agreement.query` {user_id, card_no}: the sign status of that card (`active`, `revoking`,
  `revoked`, or `none` when it was never signed), with the channel that holds the agreement;
- `agreement.list` {user_id}: every card signed for that user, each with its masked number,
  status and channel, ordered by card then channel.
Neither changes anything. A card signed at several banks reads as its most useful status
(active, then revoking, then revoked). Quick pays are booked as any channel payment (POSTINGS).
"""

from paysys.products.base import Posting
from paysys.validation import CARD_NO, ID_EXPECT, ID_PATTERN, Rule

RANK = {"active": 0, "revoking": 1, "revoked": 2}     # the status a card reads as, best first

_ID = Rule("str", ID_EXPECT, pattern=ID_PATTERN)
FIELDS = {
    "agreement.query": {"user_id": _ID, "card_no": CARD_NO},
    "agreement.list": {"user_id": _ID},
}

POSTINGS = (
    Posting("quick", "pay", "asset:channel:<channel>", "Dr", "amount"),
    Posting("quick", "pay", "liability:merchant:<merchant>", "Cr", "amount - fee"),
    Posting("quick", "pay", "income:fee", "Cr", "fee"),
    Posting("quick", "pay", "expense:channel:<channel>", "Dr", "channel cost"),
    Posting("quick", "pay", "asset:channel:<channel>", "Cr", "channel cost"),
)


def mask(card_no: str) -> str:
    """A card number as a merchant may see it: the first six and last four digits."""
    return card_no[:6] + "*" * max(0, len(card_no) - 10) + card_no[-4:]


def _rows(conn, user_id: str, card_no: str | None = None) -> list[tuple[str, str, str]]:
    sql = "SELECT card_no, channel, status FROM agreements WHERE user_id=?"
    args: tuple = (user_id,)
    if card_no is not None:
        sql, args = sql + " AND card_no=?", (user_id, card_no)
    return conn.execute(sql + " ORDER BY card_no, channel", args).fetchall()


def status_of(conn, user_id: str, card_no: str) -> tuple[str, str]:
    """(status, channel) of the user's card: its best agreement, or ("none", "")."""
    rows = sorted(_rows(conn, user_id, card_no), key=lambda r: (RANK.get(r[2], 9), r[1]))
    return (rows[0][2], rows[0][1]) if rows else ("none", "")


def query(node, src: str, body: dict, now_ms: int) -> None:
    status, channel = status_of(node.conn, body["user_id"], body["card_no"])
    node.answer(src, body, {"type": "agreement.query.reply", "ok": True,
                            "user_id": body["user_id"], "card_no": mask(body["card_no"]),
                            "status": status, "channel": channel}, now_ms, deferred=False)


def listing(node, src: str, body: dict, now_ms: int) -> None:
    cards = [{"card_no": mask(card_no), "channel": channel, "status": status}
             for card_no, channel, status in _rows(node.conn, body["user_id"])]
    node.answer(src, body, {"type": "agreement.list.reply", "ok": True,
                            "user_id": body["user_id"], "agreements": cards}, now_ms,
                deferred=False)


API = {"agreement.query": query, "agreement.list": listing}
