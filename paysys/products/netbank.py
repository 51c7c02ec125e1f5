"""Netbank (网银支付): the user pays on the bank's own page.

Nothing here but the books: the flow is the generic asynchronous one (paysys/payments.py: the
bank answers the page's `code_url`, the user pays there, the bank notifies, an unpaid page is
closed when the order expires, a charge reported after the close is refunded by compensation),
and the wire protocol is the bank adapter's part paysys/channels/bank_netbank.py.
"""

from paysys.products.base import Posting

POSTINGS = (
    Posting("netbank", "pay", "asset:channel:<channel>", "Dr", "amount"),
    Posting("netbank", "pay", "liability:merchant:<merchant>", "Cr", "amount - fee"),
    Posting("netbank", "pay", "income:fee", "Cr", "fee"),
    Posting("netbank", "pay", "expense:channel:<channel>", "Dr", "channel cost"),
    Posting("netbank", "pay", "asset:channel:<channel>", "Cr", "channel cost"),
    Posting("netbank", "late success", "asset:channel:<channel>", "Dr", "amount"),
    Posting("netbank", "late success", "liability:suspense", "Cr", "amount"),
    Posting("netbank", "late success", "expense:channel:<channel>", "Dr", "channel cost"),
    Posting("netbank", "late success", "asset:channel:<channel>", "Cr", "channel cost"),
    Posting("netbank", "late success refund", "liability:suspense", "Dr", "amount"),
    Posting("netbank", "late success refund", "asset:channel:<channel>", "Cr", "amount"),
)
