"""(placeholder, filled by the product's engineer)"""


class MandatesOps:
    """The mandates operations of the bank adapter (mixed into paysys/channels/bank.py)."""
