"""BUGGIFY: seeded fault points inside the mocks and the network (FoundationDB's idea).

Code that wants to misbehave now and then in a legal way (a reply lost, an extra delay) asks

    if buggify("bank.reply_lost"):
        ...

with a point name of its own. `Buggify(seed)` decides, once per run and per point, whether the
point is active in this run (probability 1/4, from hashing the seed and the name: the same seed
always activates the same points, whatever order they are first asked in); an active point then
fires with probability 1/20 per call, drawn from its own stream `sim.rng.stream(seed,
"buggify:<point>")`, so adding a point or a call elsewhere never shifts another point's draws.
`fired` counts how often each point fired. A component given `buggify=None` never misbehaves.
"""

import hashlib
import random

from sim.rng import stream

ACTIVE_PROBABILITY = 1 / 4
FIRE_PROBABILITY = 1 / 20


class Buggify:
    """The BUGGIFY callable of one run: `buggify(point) -> bool`."""

    def __init__(self, seed: int):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
        self.seed = seed
        self.fired: dict[str, int] = {}
        self._streams: dict[str, random.Random] = {}
        self._active: dict[str, bool] = {}

    def active(self, point: str) -> bool:
        """Whether `point` is switched on in this run (fixed by the seed and the name)."""
        if point not in self._active:
            digest = hashlib.sha256(f"{self.seed}/buggify-active:{point}".encode()).digest()
            self._active[point] = int.from_bytes(digest[:8], "big") / 2**64 < ACTIVE_PROBABILITY
        return self._active[point]

    def __call__(self, point: str) -> bool:
        if not isinstance(point, str) or not point:
            raise ValueError(f"point: expected a non-empty name, got {point!r}")
        if not self.active(point):
            return False
        rng = self._streams.get(point)
        if rng is None:
            rng = self._streams[point] = stream(self.seed, f"buggify:{point}")
        if rng.random() >= FIRE_PROBABILITY:
            return False
        self.fired[point] = self.fired.get(point, 0) + 1
        return True

    @property
    def active_points(self) -> tuple[str, ...]:
        """The points asked about so far that are active in this run, sorted."""
        return tuple(sorted(p for p, on in self._active.items() if on))
