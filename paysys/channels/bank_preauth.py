"""(placeholder, filled by the product's engineer)"""


class PreauthOps:
    """The preauth operations of the bank adapter (mixed into paysys/channels/bank.py)."""
