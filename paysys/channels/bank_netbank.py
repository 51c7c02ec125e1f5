"""(placeholder, filled by the product's engineer)"""


class NetbankOps:
    """The netbank operations of the bank adapter (mixed into paysys/channels/bank.py)."""
