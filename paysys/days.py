"""Business days: local days in UTC+8, the zone of the source articles.

Two spellings of a day, both used by the back office: a day number (days since 1970-01-01,
for arithmetic: `day_of`, `day_start`) and an ISO date ("2026-11-02", for tables and files:
`local_date`, `day_bounds`, `next_date`); `iso` and `from_iso` convert. Time is int ms (UTC).
"""

import datetime

DAY_MS = 86_400_000
UTC8_MS = 8 * 3_600_000
_EPOCH = datetime.date(1970, 1, 1)


def day_of(at_ms: int) -> int:
    """The local day number of instant `at_ms`."""
    return (at_ms + UTC8_MS) // DAY_MS


def day_start(day: int) -> int:
    """The instant (ms) of the local midnight starting day number `day`."""
    return day * DAY_MS - UTC8_MS


def iso(day: int) -> str:
    """Day number `day` as an ISO date ("2026-11-02")."""
    return (_EPOCH + datetime.timedelta(days=day)).isoformat()


def from_iso(date: str) -> int:
    """The day number of ISO date `date`."""
    return (datetime.date.fromisoformat(date) - _EPOCH).days


def local_date(at_ms: int) -> str:
    """The local business day of instant `at_ms`, as "YYYY-MM-DD"."""
    return iso(day_of(at_ms))


def day_bounds(date: str) -> tuple[int, int]:
    """[start_ms, end_ms) of the local business day `date` ("YYYY-MM-DD")."""
    start = day_start(from_iso(date))
    return start, start + DAY_MS


def next_date(date: str, days: int = 1) -> str:
    """The business day `days` after `date`."""
    return iso(from_iso(date) + days)
