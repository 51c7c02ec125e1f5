"""Every random stream of a run is derived from the scenario seed by name.

Two streams with different names are independent; the same (seed, name) always gives the same
stream, so adding a stream never shifts another one. Nothing in the run uses the global `random`.
"""

import hashlib
import random


def stream(seed: int, name: str) -> random.Random:
    """The random stream called `name` of the run seeded with `seed`."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
