"""Arrivals of payments: a Poisson process whose rate follows the scenario's daily curve.

The rate is `rate_per_min` times the multiplier of the current local hour (UTC+8) when the
scenario gives a 24-hour `curve`. Arrivals are drawn one at a time (exponential gaps at the
current rate); an hour whose multiplier is 0 is skipped. Traffic stops at the end of the
scenario's `duration`.
"""

from sim.rng import stream
from sim.scenario import Scenario
from sim.world import World

HOUR_MS = 3_600_000
LOCAL_OFFSET_MS = 8 * HOUR_MS


class Traffic:
    def __init__(self, world: World, scenario: Scenario, start_payment):
        self.world = world
        self.rate_per_ms = scenario.traffic.rate_per_min / 60_000
        self.curve = scenario.traffic.curve
        self.end_ms = scenario.traffic_end_ms
        self.start_payment = start_payment
        self.rng = stream(scenario.seed, "traffic.arrivals")
        self.arrivals = 0
        self._schedule()

    def rate_at(self, now_ms: int) -> float:
        if not self.curve:
            return self.rate_per_ms
        hour = (now_ms + LOCAL_OFFSET_MS) // HOUR_MS % 24
        return self.rate_per_ms * self.curve[hour]

    def _schedule(self) -> None:
        """Draw the next arrival at the current hour's rate; a gap that crosses into the next
        hour is drawn again from the hour boundary (exact for a rate constant within hours)."""
        now = self.world.now
        rate = self.rate_at(now)
        to_next_hour = HOUR_MS - (now + LOCAL_OFFSET_MS) % HOUR_MS
        gap = to_next_hour if rate <= 0 else max(1, round(self.rng.expovariate(rate)))
        if self.curve and gap >= to_next_hour:
            if now + to_next_hour < self.end_ms:
                self.world.later(to_next_hour, self._schedule)
            return
        if now + gap < self.end_ms:
            self.world.later(gap, self._arrive)

    def _arrive(self) -> None:
        self.arrivals += 1
        self.start_payment()
        self._schedule()
