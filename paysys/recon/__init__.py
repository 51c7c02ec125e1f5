"""Reconciliation: the channels' daily statement files against paysys's own books.

- `formats.py` parses a statement file (mt940, wechat, alipay) into uniform `Row`s.
- `match.py` compares one file with paysys's rows of that day (pure) and finds the breaks.
- `policy.py` says what becomes of each break (pure).
- `tables.py` owns the tables `recon_files`, `recon_breaks`, `recon_buffer` and reads paysys's
  own rows of a day.
- `flow.py` (the engine side) downloads files, arms timers and resolves breaks with the channels.

Business days are local days in UTC+8: `local_date(at_ms)` and `day_bounds(date)` convert.
"""

import datetime

DAY_MS = 86_400_000
UTC8_MS = 8 * 3_600_000
_EPOCH = datetime.date(1970, 1, 1).toordinal()


def day_of(at_ms: int) -> int:
    """The local (UTC+8) day number of instant `at_ms` (days since 1970-01-01)."""
    return (at_ms + UTC8_MS) // DAY_MS


def local_date(at_ms: int) -> str:
    """The local (UTC+8) business day of instant `at_ms`, as "YYYY-MM-DD"."""
    return datetime.date.fromordinal(_EPOCH + day_of(at_ms)).isoformat()


def day_bounds(date: str) -> tuple[int, int]:
    """[start_ms, end_ms) of the local (UTC+8) business day `date` ("YYYY-MM-DD")."""
    day = datetime.date.fromisoformat(date).toordinal() - _EPOCH
    start = day * DAY_MS - UTC8_MS
    return start, start + DAY_MS


def next_date(date: str, days: int = 1) -> str:
    """The business day `days` after `date`."""
    return (datetime.date.fromisoformat(date) + datetime.timedelta(days=days)).isoformat()
