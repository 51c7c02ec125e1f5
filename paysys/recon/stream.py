"""Near-real-time reconciliation (准实时对账): the stream of channel reports, checked as it comes.

Every charge a channel reports passes the compensation door (paysys/compensation.py), which
already matches it against the order at once. A charge the order does not keep as its payment —
a second charge or a duplicate payment (`channel_only`: the channel holds money for no order of
ours), a charge of another amount (`amount_over` / `amount_under`) — is also filed here as a
break of phase `stream`, with what the door did about it: `refund` (it went to suspense and a
compensation refund takes it back) or `manual` (the order is HELD for a person). These breaks are
found the moment the report arrives, a day before the statement could show them; the statement
phase (flow.py) catches what no report ever said; the charges it makes paysys learn of are not
filed twice.
"""

from paysys.recon import local_date, tables
from paysys.recon.formats import Row
from paysys.recon.match import Break
from paysys.recon.policy import Decision

REASONS = {
    "refund": "the channel reported a charge no order keeps: held in suspense and refunded",
    "manual": "the channel reported a charge of another amount: the order is held for a person",
}


def flag(node, order: dict, channel: str, charge_ref: str, amount: int, resolution: str,
         now_ms: int) -> None:
    """File the reported charge `charge_ref` of `order` that the order does not keep."""
    if not node.cfg.backoffice.recon or node.conn.execute(
            "SELECT 1 FROM recon_breaks WHERE key=? AND phase='statement'",
            (f"pay:{charge_ref}",)).fetchone():
        return   # no stream; or a statement listed it first (and its break follows it up)
    expected = order["amount"]
    cls = ("channel_only" if amount == expected else
           "amount_over" if amount > expected else "amount_under")
    cost = node.channels[channel].fee.fee(amount)
    day = local_date(now_ms)
    theirs = Row(f"pay:{charge_ref}", "pay", order["order_id"], charge_ref, amount, cost,
                 order["currency"], "SUCCESS", day)
    ours = None if cls == "channel_only" else theirs._replace(amount=expected)
    detail = (f"charge {charge_ref} of {amount} reported for order {order['order_id']} "
              f"({order['status']}, {expected})")
    status = "resolved" if resolution == "refund" else "manual"
    entry = node.conn.execute("SELECT MAX(entry_id) FROM journal_entries WHERE ref=?",
                              (order["order_id"],)).fetchone()[0]
    tables.add_break(node.conn, "stream", channel, day, Break(cls, theirs.key, ours, theirs, detail),
                     Decision(status, resolution, REASONS[resolution], "none"), now_ms, entry)
