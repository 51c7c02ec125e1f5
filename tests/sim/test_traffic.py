"""sim.traffic: Poisson arrivals. Deterministic per seed, counts near rate x duration, the daily
curve (local hours, UTC+8) scales the rate, and an hour whose multiplier is 0 gets no arrival."""

from collections import Counter

import pytest
import simpy

from sim.eventlog import EventLog
from sim.network import Network
from sim.scenario import from_dict
from sim.traffic import Traffic
from sim.world import World

HOUR = 3_600_000
LOCAL = 8 * HOUR  # UTC+8


def scenario(seed=1, rate=5.0, duration="4h", curve=()):
    return from_dict({
        "scenario": {"name": "traffic", "seed": seed, "duration": duration,
                     "start": "2026-11-02T09:00:00+08:00"},
        "traffic": {"rate_per_min": rate, "curve": list(curve)},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
    })


def arrivals(sc) -> list[int]:
    env = simpy.Environment(initial_time=sc.start_ms)
    world = World(env, Network(sc), EventLog())
    times: list[int] = []
    traffic = Traffic(world, sc, lambda: times.append(world.now))
    env.run()
    assert traffic.arrivals == len(times)
    return times


def local_hour(t: int) -> int:
    return (t + LOCAL) // HOUR % 24


def curve(**hours) -> list[float]:
    values = [0.0] * 24
    for hour, value in hours.items():
        values[int(hour.removeprefix("h"))] = value
    return values


def test_same_seed_same_arrivals():
    assert arrivals(scenario(seed=4)) == arrivals(scenario(seed=4))


def test_another_seed_other_arrivals():
    assert arrivals(scenario(seed=4)) != arrivals(scenario(seed=5))


@pytest.mark.parametrize("seed", [1, 2])
def test_count_is_near_rate_times_duration(seed):
    sc = scenario(seed=seed, rate=5.0, duration="4h")
    times = arrivals(sc)
    assert 1_080 <= len(times) <= 1_320  # 1200 expected, sd ~35
    assert all(sc.start_ms < t < sc.traffic_end_ms for t in times)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))


def test_a_flat_curve_scales_the_rate():
    times = arrivals(scenario(rate=5.0, duration="4h", curve=[0.5] * 24))
    assert 530 <= len(times) <= 670  # 600 expected, sd ~25


def test_curve_multipliers_apply_per_local_hour():
    sc = scenario(rate=5.0, duration="3h", curve=curve(h9=2.0, h10=0.25, h11=1.0))
    per_hour = Counter(local_hour(t) for t in arrivals(sc))
    assert 530 <= per_hour[9] <= 670  # 600 expected, sd ~25
    assert 50 <= per_hour[10] <= 110  # 75 expected, sd ~9
    assert 250 <= per_hour[11] <= 350  # 300 expected, sd ~17


def test_rate_at_reads_the_local_hour():
    sc = scenario(rate=6.0, curve=curve(h9=2.0, h1=0.5))
    world = World(simpy.Environment(initial_time=sc.start_ms), Network(sc), EventLog())
    traffic = Traffic(world, sc, lambda: None)
    assert traffic.rate_at(sc.start_ms) == pytest.approx(12.0 / 60_000)  # 09:00 local
    assert traffic.rate_at(sc.start_ms + 16 * HOUR) == pytest.approx(3.0 / 60_000)  # 01:00 local
    assert traffic.rate_at(sc.start_ms + HOUR) == 0


def test_leading_zero_hours_are_skipped():
    sc = scenario(rate=5.0, duration="6h", curve=curve(h10=1.0, h12=1.0))
    times = arrivals(sc)
    assert times[0] >= sc.start_ms + HOUR  # 09:00-10:00 local has multiplier 0
    per_hour = Counter(local_hour(t) for t in times)
    assert 250 <= per_hour[10] <= 350 and 250 <= per_hour[12] <= 350  # 300 each, sd ~17


def test_zero_hours_get_no_arrival():
    sc = scenario(rate=5.0, duration="6h", curve=curve(h10=1.0, h12=1.0))
    per_hour = Counter(local_hour(t) for t in arrivals(sc))
    assert set(per_hour) == {10, 12}, per_hour
