"""The timeline chart: payments per time bucket, stacked by final outcome, with fault windows.

Owns the geometry only (buckets, bar rectangles, fault bands and their label lanes, axis ticks in
UTC+8); `templates/_timeline.html` draws it as inline SVG, so the report needs no JS library.
Counting is done in SQL (GROUP BY bucket, status) so a 100 000-payment run stays cheap.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from . import _format as fmt

# Stack order bottom -> top; "other" gathers every non-final status (a stuck order).
OUTCOMES = ("SUCCEEDED", "FAILED", "BLOCKED", "CLOSED", "other")
OUTCOME_LABELS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "BLOCKED": "blocked",
                  "CLOSED": "closed", "other": "not final"}

_S, _M, _H = 1000, 60_000, 3_600_000
# Candidate bucket widths; consecutive ratios <= 2 so some width always gives 60-120 buckets.
_WIDTHS = (10, 20, 50, 100, 200, 500, _S, 2 * _S, 3 * _S, 5 * _S, 10 * _S, 15 * _S, 20 * _S,
           30 * _S, _M, 2 * _M, 3 * _M, 5 * _M, 10 * _M, 15 * _M, 20 * _M, 30 * _M, _H, 2 * _H,
           3 * _H, 4 * _H, 6 * _H, 12 * _H, 24 * _H, 48 * _H, 96 * _H, 168 * _H)
_TICKS = _WIDTHS  # same ladder for axis ticks

W, PLOT_H, LEFT, RIGHT, LANE_H, BOTTOM = 1000, 220, 56, 16, 18, 34
_OFFSET_MS = int(fmt.TZ.utcoffset(None) / timedelta(milliseconds=1))


def bucket_width(span_ms: int, most: int = 120) -> int:
    """The smallest candidate width giving at most `most` buckets over `span_ms`."""
    for width in _WIDTHS:
        if -(-span_ms // width) <= most:
            return width
    return -(-span_ms // most)


def _y_scale(value: int) -> tuple[int, int]:
    """(top, step) of the y axis: step 1/2/5 x 10^k with at most 5 steps, top a multiple."""
    step = 1
    while -(-value // step) > 5:
        for mult in (2, 5 / 2, 2):  # 1 -> 2 -> 5 -> 10 -> 20 ...
            step = int(step * mult)
            if -(-value // step) <= 5:
                break
    return max(step, -(-value // step) * step), step


def _counts(conn: sqlite3.Connection, start: int, width: int, n: int) -> list[dict[str, int]]:
    counts = [dict.fromkeys(OUTCOMES, 0) for _ in range(n)]
    rows = conn.execute(
        "SELECT MIN(MAX((created_ms - ?) / ?, 0), ?) AS b, status, COUNT(*) FROM pay_orders "
        "WHERE created_ms IS NOT NULL GROUP BY b, status", (start, width, n - 1))
    for b, status, count in rows:
        key = status if status in OUTCOMES else "other"
        counts[int(b)][key] += count
    return counts


def _lanes(bands: list[dict]) -> int:
    """Greedy lane assignment so overlapping fault labels never sit on each other."""
    ends: list[float] = []
    for band in sorted(bands, key=lambda b: b["x"]):
        label_end = band["x"] + max(band["w"], 7 * len(band["label"]) + 10)
        for lane, end in enumerate(ends):
            if end <= band["x"]:
                ends[lane] = label_end
                band["lane"] = lane
                break
        else:
            band["lane"] = len(ends)
            ends.append(label_end)
    return len(ends)


def _marks(points: list[tuple[float, str]], top: float) -> list[dict]:
    """Vertical markers (traffic end, faults end); labels shifted down when they would collide."""
    marks, taken = [], []
    for x, label in sorted(points):
        width = 6 * len(label) + 6
        anchor = "end" if x - width > LEFT else "start"
        lo, hi = (x - width, x) if anchor == "end" else (x, x + width)
        row = 0
        while any(r == row and lo < b and a < hi for a, b, r in taken):
            row += 1
        taken.append((lo, hi, row))
        marks.append({"x": round(x, 1), "label": label, "anchor": anchor,
                      "tx": round(x - 4 if anchor == "end" else x + 4, 1),
                      "ty": round(top + 11 + 13 * row, 1)})
    return marks


def _x_ticks(start: int, end: int, x_of) -> list[dict]:
    span = end - start
    step = next((t for t in _TICKS if span / t <= 10), _TICKS[-1])
    first = -(-(start + _OFFSET_MS) // step) * step - _OFFSET_MS
    multi_day = fmt.day(start) != fmt.day(end)
    ticks, last_day = [], None
    for at in range(first, end + 1, step):
        label = fmt.clock(at)[:8] if step < _M else fmt.hhmm(at)
        if multi_day and fmt.day(at) != last_day:
            label = fmt.day(at)[5:] + " " + label
            last_day = fmt.day(at)
        ticks.append({"x": round(x_of(at), 1), "label": label})
    return ticks


def build(conn: sqlite3.Connection, present: set[str], start: int | None, end: int | None,
          markers: dict[str, int | None]) -> dict | None:
    """Chart geometry for the template, or None when there is nothing to draw.

    The chart spans start_ms to the end of the action: the last of traffic end, faults end and
    the last payment created. A run's end_ms usually adds a long grace period in which orders
    settle but none are created; drawing it would squeeze every bar into a sliver. The caption
    says how far the run went on."""
    if "pay_orders" not in present:
        return None
    first, last = conn.execute("SELECT MIN(created_ms), MAX(created_ms) FROM pay_orders").fetchone()
    if start is None or end is None:
        if first is None:
            return None
        start, end = first, last + 1
    run_end = max(end, start + 1)
    action = [at for at in (*markers.values(), last + 1 if last is not None else None)
              if at is not None and at > start]
    end = min(run_end, max(action)) if action else run_end
    end = max(end, start + 1)
    width = bucket_width(end - start)
    n = -(-(end - start) // width)
    counts = _counts(conn, start, width, n)
    y_max, y_step = _y_scale(max((sum(c.values()) for c in counts), default=0))

    faults = []
    if "faults" in present:
        faults = conn.execute("SELECT fault_id, kind, target, start_ms, end_ms FROM faults "
                              "ORDER BY start_ms, fault_id").fetchall()
    plot_w = W - LEFT - RIGHT

    def x_of(ms: int) -> float:
        return LEFT + plot_w * (min(max(ms, start), end) - start) / (end - start)

    bands = []
    for f in faults:
        f_start = f["start_ms"] if f["start_ms"] is not None else start
        f_end = f["end_ms"] if f["end_ms"] is not None else end
        if f_end < start or f_start > end:
            continue
        x0, x1 = x_of(f_start), x_of(f_end)
        label = f"{f['kind']} {f['target'] or ''}".strip()
        bands.append({"x": round(x0, 1), "w": round(max(x1 - x0, 2), 1), "label": label,
                      "title": f"fault {f['fault_id']}: {label}, {fmt.stamp(f_start)} – "
                               f"{fmt.stamp(f_end)} ({fmt.duration(f_end - f_start)})"})
    lanes = _lanes(bands)
    top = 8 + lanes * LANE_H + (6 if lanes else 0)
    for band in bands:
        band["lane_y"] = 8 + band["lane"] * LANE_H

    def y_of(value: int) -> float:
        return top + PLOT_H - PLOT_H * value / y_max

    bar_w = plot_w / n
    bars = []
    for i, c in enumerate(counts):
        base, b_start = 0, start + i * width
        for key in OUTCOMES:
            if not c[key]:
                continue
            y0, y1 = y_of(base), y_of(base + c[key])
            bars.append({"x": round(LEFT + i * bar_w + 0.5, 2), "w": round(max(bar_w - 1, 0.8), 2),
                         "y": round(y1, 1), "h": round(y0 - y1, 1), "cls": key.lower(),
                         "title": f"{fmt.clock(b_start)[:8]}–{fmt.clock(b_start + width)[:8]}: "
                                  f"{c[key]:,} {OUTCOME_LABELS[key]} (of {sum(c.values()):,})"})
            base += c[key]
    y_ticks = [{"y": round(y_of(v), 1), "label": f"{v:,}"}
               for v in range(0, y_max + 1, y_step)]
    marks = _marks([(x_of(at), name) for name, at in markers.items()
                    if at is not None and start < at < end], top)
    return {
        "width": W, "height": top + PLOT_H + BOTTOM, "top": top, "bottom": top + PLOT_H,
        "left": LEFT, "right": W - RIGHT, "bars": bars, "bands": bands, "marks": marks,
        "x_ticks": _x_ticks(start, end, x_of), "y_ticks": y_ticks,
        "bucket": fmt.duration(width), "buckets": n, "start": start, "end": end,
        "run_end": run_end if run_end > end else None, "total": sum(sum(c.values()) for c in counts),
        "legend": [(k.lower(), OUTCOME_LABELS[k]) for k in OUTCOMES],
    }
