"""(placeholder, filled by the product's engineer)"""


class Mandates:
    """A part of the bank (mockbanks/bank.py): its own operations and timers."""

    def __init__(self, bank) -> None:
        self.bank = bank

    def ops(self) -> dict:
        """request type -> handler `(body, now_ms, done_ms) -> (reply, effects)`."""
        return {}

    def next_deadline(self) -> int | None:
        return None

    def on_timer(self, now_ms: int) -> list[tuple]:
        return []
