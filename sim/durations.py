"""Durations in scenario files, and the error every scenario field parser raises.

A duration is an integer number of milliseconds, written either as a TOML integer (ms) or as a
string of one or more `<integer><unit>` parts, largest unit first: "250ms", "90s", "15m", "2h",
"1d", "1h30m", "1d 2h". `parse_duration` turns one into ms, `format_duration` back.

`FieldError` is the ValueError the field parsers (`sim.durations`, `sim.distributions`) raise: it
carries `where` ("file: key.path") and a `message` saying what was expected and what was given.
`sim.scenario.ScenarioError` derives from it. `show` renders a value for such a message, in TOML
spelling (strings in double quotes, booleans as true/false).
"""

import datetime as _dt
import json
import math
import re

UNITS_MS: dict[str, int] = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PART = re.compile(r"\s*(\d+)\s*(ms|d|h|m|s)")
EXPECTED = 'expected a duration like "250ms", "90s", "15m", "2h", "1d" or "1h30m" (or integer ms)'


class FieldError(ValueError):
    """A bad value in a scenario field: `where` names file and key, `message` what was expected."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message

    def __reduce__(self):
        return (type(self), (self.where, self.message))


def show(value: object, limit: int = 60) -> str:
    """`value` as a TOML user would write it, shortened to about `limit` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_key(k)} = {show(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v, limit) for v in value) + "]"
    elif isinstance(value, _dt.date | _dt.time):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(key: object) -> str:
    return key if isinstance(key, str) and _BARE_KEY.fullmatch(key) else show(str(key))


def parse_duration(value: object, where: str) -> int:
    """`value` (an int of ms, or a string like "1h30m") as a non-negative int of ms.

    Raises FieldError (a ValueError) naming `where` when the value is not a duration.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise FieldError(where, f"{EXPECTED}, got {show(value)} (negative)")
        return value
    if not isinstance(value, str):
        raise FieldError(where, f"{EXPECTED}, got {show(value)}")
    text = value.strip()
    total, pos, last_rank = 0, 0, -1
    ranks = list(UNITS_MS)
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise FieldError(where, f"{EXPECTED}, got {show(value)}")
        rank = ranks.index(match.group(2))
        if rank <= last_rank:
            raise FieldError(
                where, f"{EXPECTED}, largest unit first and each unit once, got {show(value)}"
            )
        total += int(match.group(1)) * UNITS_MS[match.group(2)]
        pos, last_rank = match.end(), rank
    if not text:
        raise FieldError(where, f"{EXPECTED}, got {show(value)}")
    return total


def format_duration(ms: int) -> str:
    """`ms` in the shortest string `parse_duration` reads back: 5_400_000 -> "1h30m", 0 -> "0ms"."""
    if ms < 0:
        raise ValueError(f"a duration is never negative, got {ms}")
    parts = []
    for unit, size in UNITS_MS.items():
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0ms"
