"""Display formatting for the report: money, times (UTC+8), durations, counts.

Owns every "how does a value look on screen" rule so templates stay dumb. Money arrives as int
minor units plus a currency and is formatted with integer arithmetic only (no float touches money).
Times are absolute int ms (UTC) shown in the business zone UTC+8, as in the source articles.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

TZ = timezone(timedelta(hours=8), "UTC+8")
TZ_LABEL = "UTC+8"

# ISO 4217 minor-unit exponents that differ from 2; everything else has 2 decimals.
_EXPONENTS = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3,
}


def money(amount: int | None, currency: str | None = None) -> str:
    """`123456, "CNY"` -> `"1,234.56 CNY"` (integer arithmetic; None -> "")."""
    if amount is None:
        return ""
    amount = int(amount)
    exp = _EXPONENTS.get((currency or "").upper(), 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    text = f"{sign}{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    return f"{text} {currency}" if currency else text


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(int(ms) // 1000, UTC).astimezone(TZ)


def clock(ms: int | None) -> str:
    """`HH:MM:SS.mmm` in UTC+8."""
    if ms is None:
        return ""
    return _dt(ms).strftime("%H:%M:%S") + f".{int(ms) % 1000:03d}"


def hhmm(ms: int) -> str:
    return _dt(ms).strftime("%H:%M")


def day(ms: int) -> str:
    return _dt(ms).strftime("%Y-%m-%d")


def stamp(ms: int | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC+8."""
    if ms is None:
        return ""
    return _dt(ms).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: int | float | None) -> str:
    """A span of milliseconds in the largest sensible unit: `850 ms`, `12.5 s`, `3 h 20 m`."""
    if ms is None:
        return ""
    ms = int(ms)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{minutes} m {seconds} s" if seconds else f"{minutes} m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def number(value: object) -> str:
    """Metric values: ints with thousands separators, floats with 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def percent(part: int, whole: int) -> str:
    if not whole:
        return "—"
    return f"{100 * part / whole:.1f} %"


def compact(value: object, limit: int = 60) -> str:
    """Event data values, short and quote-free: `a, b`, `wechat: reason`, `k=v k=v`; JSON for
    anything deeper; long text cut at `limit` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple) and all(
            isinstance(v, str | int | float | None) or (isinstance(v, list | tuple) and all(
                isinstance(x, str | int | float | None) for x in v)) for v in value):
        text = ", ".join(": ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
                         for v in value)
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


FILTERS = {
    "compact": compact,
    "money": money,
    "clock": clock,
    "stamp": stamp,
    "duration": duration,
    "number": number,
}
