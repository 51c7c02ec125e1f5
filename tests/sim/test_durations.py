"""sim.durations: duration strings and integers of ms, their errors, and the round trip."""

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.durations import FieldError, format_duration, parse_duration, show


@pytest.mark.parametrize(
    "text, ms",
    [
        (0, 0),
        (1500, 1500),
        ("250ms", 250),
        ("90s", 90_000),
        ("15m", 900_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("1h30m", 5_400_000),
        ("1d 2h", 93_600_000),
        ("1m30s250ms", 90_250),
        (" 3s ", 3_000),
        ("0s", 0),
    ],
)
def test_parses_integers_and_unit_strings(text, ms):
    assert parse_duration(text, "f.toml: k") == ms


@pytest.mark.parametrize(
    "value, got",
    [
        ("abc", 'got "abc"'),
        ("", 'got ""'),
        ("10", 'got "10"'),  # a string needs a unit
        ("1.5s", 'got "1.5s"'),
        ("5 minutes", 'got "5 minutes"'),
        ("-3s", 'got "-3s"'),
        (1.5, "got 1.5"),
        (True, "got true"),
        (None, "got None"),
        ([1], "got [1]"),
    ],
)
def test_rejects_what_is_not_a_duration(value, got):
    with pytest.raises(FieldError) as info:
        parse_duration(value, "x.toml: risk.velocity_window")
    err = info.value
    assert err.where == "x.toml: risk.velocity_window"
    assert str(err).startswith('x.toml: risk.velocity_window: expected a duration like "250ms"')
    assert str(err).endswith(got)


def test_rejects_negative_integers():
    with pytest.raises(FieldError, match=r"k: expected a duration .*got -1 \(negative\)"):
        parse_duration(-1, "k")


@pytest.mark.parametrize("text", ["30m1h", "1h1h", "5s2m"])
def test_units_must_come_largest_first_and_once(text):
    with pytest.raises(FieldError, match="largest unit first and each unit once"):
        parse_duration(text, "k")


def test_field_error_is_a_value_error_and_pickles():
    err = FieldError("a.toml: x", "expected y, got z")
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.where, copy.message, str(copy)) == (err.where, err.message, str(err))


def test_format_duration_is_short():
    assert format_duration(5_400_000) == "1h30m"
    assert format_duration(0) == "0ms"
    assert format_duration(90_250) == "1m30s250ms"
    assert format_duration(86_400_000) == "1d"
    with pytest.raises(ValueError):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_round_trips(ms):
    assert parse_duration(format_duration(ms), "k") == ms


def test_show_spells_values_as_toml():
    assert show("abc") == '"abc"'
    assert show(False) == "false"
    assert show(float("nan")) == "nan"
    assert show({"dist": "fixed", "value": 3}) == '{dist = "fixed", value = 3}'
    assert show({"a b": 1, "\n": [True]}) == '{"a b" = 1, "\\n" = [true]}'
    assert len(show("x" * 500)) == 60
