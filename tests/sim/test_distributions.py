"""sim.distributions: parsing every kind, its errors, and sampling (determinism, ranges, means)."""

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.distributions import KINDS, Dist
from sim.durations import FieldError

W = "f.toml: traffic.amount"


def parse(value, money=False):
    return Dist.parse(value, W, money=money)


def error(value, money=False) -> str:
    with pytest.raises(FieldError) as info:
        parse(value, money)
    return str(info.value)


# -- parsing ------------------------------------------------------------------------------------
def test_an_integer_is_a_fixed_value():
    d = parse(7)
    assert d == Dist("fixed", (("value", 7),)) == Dist.fixed(7)
    assert d.sample(random.Random(1)) == 7 and d.mean() == 7.0


@pytest.mark.parametrize(
    "table",
    [
        {"dist": "fixed", "value": 5},
        {"dist": "uniform", "low": 1, "high": 9},
        {"dist": "normal", "mean": 100, "stdev": 30.5},
        {"dist": "lognormal", "median": 5000, "p99": 300000},
        {"dist": "exponential", "mean": 600000},
        {"dist": "uniform", "low": 0, "high": 10, "max": 5},
    ],
)
def test_every_kind_parses_and_reads_back(table):
    d = parse(table)
    assert d.kind == table["dist"]
    assert tuple(name for name, _ in d.params) == KINDS[d.kind]
    assert parse(d.as_toml()) == d
    assert d.describe().startswith(f"{d.kind}(")


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", 'f.toml: traffic.amount: expected an integer or a table like {dist = "uniform", '
         'low = 1, high = 9}, got "abc"'),
        (-1, "f.toml: traffic.amount: expected a number >= 0, got -1"),
        ({"low": 1}, 'f.toml: traffic.amount.dist: missing; expected one of "fixed", "uniform", '
         '"normal", "lognormal", "exponential"'),
        ({"dist": "gauss"}, 'f.toml: traffic.amount.dist: expected one of "fixed", "uniform", '
         '"normal", "lognormal", "exponential", got "gauss"'),
        ({"dist": "fixed", "value": 1, "mean": 2}, 'f.toml: traffic.amount.mean: unknown key for '
         'dist "fixed"; expected one of: dist, value, max'),
        ({"dist": "uniform", "low": 1}, 'f.toml: traffic.amount.high: missing; dist "uniform" '
         "needs low, high"),
        ({"dist": "uniform", "low": 9, "high": 1}, "f.toml: traffic.amount.high: expected a "
         "number >= low (9), got 1"),
        ({"dist": "uniform", "low": "1", "high": 2}, 'f.toml: traffic.amount.low: expected a '
         'number >= 0, got "1"'),
        ({"dist": "normal", "mean": 5, "stdev": -1}, "f.toml: traffic.amount.stdev: expected a "
         "number >= 0, got -1"),
        ({"dist": "lognormal", "median": 0, "p99": 5}, "f.toml: traffic.amount.median: expected "
         "a number > 0, got 0"),
        ({"dist": "lognormal", "median": 50, "p99": 50}, "f.toml: traffic.amount.p99: expected a "
         "number > median (50), got 50"),
        ({"dist": "exponential", "mean": 0}, "f.toml: traffic.amount.mean: expected a number > "
         "0, got 0"),
        ({"dist": "exponential", "mean": float("inf")}, "f.toml: traffic.amount.mean: expected a "
         "number >= 0, got inf"),
        ({"dist": "fixed", "value": True}, "f.toml: traffic.amount.value: expected a number >= "
         "0, got true"),
        ({"dist": "fixed", "value": 3, "max": -2}, "f.toml: traffic.amount.max: expected a "
         "number >= 0, got -2"),
    ],
)
def test_bad_values_name_the_key_and_the_expectation(value, message):
    assert error(value) == message


@pytest.mark.parametrize(
    "value, key, got",
    [
        (1.5, "traffic.amount", "1.5"),
        ({"dist": "lognormal", "median": 50.5, "p99": 900}, "traffic.amount.median", "50.5"),
        ({"dist": "uniform", "low": 1, "high": 9, "max": 8.0}, "traffic.amount.max", "8.0"),
    ],
)
def test_money_distributions_take_integers_only(value, key, got):
    assert error(value, money=True) == (
        f"f.toml: {key}: expected an integer number of minor units, got {got}"
    )
    assert parse({"dist": "uniform", "low": 1, "high": 9}, money=True).param("high") == 9


def test_param_and_bad_construction():
    d = parse({"dist": "normal", "mean": 10, "stdev": 2})
    assert d.param("stdev") == 2
    with pytest.raises(KeyError):
        d.param("median")
    with pytest.raises(ValueError):
        Dist("uniform", (("low", 1),))


# -- sampling -----------------------------------------------------------------------------------
dists = st.one_of(
    st.builds(lambda v: Dist.fixed(v), st.integers(0, 10**9)),
    st.builds(
        lambda a, b: Dist("uniform", (("low", min(a, b)), ("high", max(a, b)))),
        st.integers(0, 10**9), st.integers(0, 10**9),
    ),
    st.builds(
        lambda m, s: Dist("normal", (("mean", m), ("stdev", s))),
        st.floats(0, 1e9), st.floats(0, 1e8),
    ),
    st.builds(
        lambda m, f: Dist("lognormal", (("median", m), ("p99", m * f))),
        st.floats(0.01, 1e9), st.floats(1.001, 1e6),
    ),
    st.builds(lambda m: Dist("exponential", (("mean", m),)), st.floats(0.001, 1e9)),
)
caps = st.one_of(st.none(), st.integers(0, 10**6))


def with_cap(d: Dist, cap) -> Dist:
    return Dist(d.kind, d.params, cap)


@given(dists, caps, st.integers(0, 2**32))
def test_samples_are_deterministic_non_negative_ints_under_the_cap(d, cap, seed):
    d = with_cap(d, cap)
    rng1, rng2 = random.Random(seed), random.Random(seed)
    first = [d.sample(rng1) for _ in range(6)]
    assert first == [d.sample(rng2) for _ in range(6)]
    for x in first:
        assert isinstance(x, int) and not isinstance(x, bool)
        assert x >= 0
        if cap is not None:
            assert x <= cap


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 2**32))
def test_uniform_integers_stay_within_low_and_high(a, b, seed):
    low, high = min(a, b), max(a, b)
    d = Dist("uniform", (("low", low), ("high", high)))
    rng = random.Random(seed)
    assert all(low <= d.sample(rng) <= high for _ in range(20))
    assert d.mean() == (low + high) / 2


def test_uniform_covers_both_ends():
    d = parse({"dist": "uniform", "low": 1, "high": 3})
    rng = random.Random(0)
    assert {d.sample(rng) for _ in range(200)} == {1, 2, 3}


def test_normal_is_clamped_at_zero():
    d = parse({"dist": "normal", "mean": 0, "stdev": 10})
    rng = random.Random(3)
    samples = [d.sample(rng) for _ in range(500)]
    assert min(samples) == 0 and max(samples) > 0
    assert d.mean() == pytest.approx(10 / math.sqrt(2 * math.pi))  # E[max(0, N(0, 10))]


@pytest.mark.parametrize(
    "table",
    [
        {"dist": "lognormal", "median": 5000, "p99": 300000},
        {"dist": "exponential", "mean": 600000},
        {"dist": "normal", "mean": 100, "stdev": 20},
        {"dist": "uniform", "low": 10, "high": 20},
    ],
)
def test_sample_mean_is_close_to_mean(table):
    d = parse(table)
    rng = random.Random(2026)
    samples = [d.sample(rng) for _ in range(20000)]
    assert statistics.fmean(samples) == pytest.approx(d.mean(), rel=0.1)


def test_lognormal_median_and_p99():
    d = parse({"dist": "lognormal", "median": 80, "p99": 500})
    rng = random.Random(5)
    samples = sorted(d.sample(rng) for _ in range(20000))
    assert samples[10000] == pytest.approx(80, rel=0.05)
    assert samples[19800] == pytest.approx(500, rel=0.1)


def test_cap_limits_samples_and_mean():
    d = parse({"dist": "exponential", "mean": 1000, "max": 10})
    rng = random.Random(1)
    samples = {d.sample(rng) for _ in range(50)}
    assert max(samples) == 10 and len(samples) > 1
    assert d.mean() == 10.0


def test_extreme_lognormal_does_not_overflow():
    d = Dist("lognormal", (("median", 1e300), ("p99", 1e308)))
    assert d.sample(random.Random(1)) >= 0
    assert math.isfinite(d.mean())


def test_same_seed_same_stream_different_seed_differs():
    d = parse({"dist": "lognormal", "median": 5000, "p99": 300000})
    a = [d.sample(r) for r in [random.Random(1)] for _ in range(10)]
    b = [d.sample(r) for r in [random.Random(1)] for _ in range(10)]
    c = [d.sample(r) for r in [random.Random(2)] for _ in range(10)]
    assert a == b != c
