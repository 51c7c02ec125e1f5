"""Matching one statement file against paysys's own rows (pure: no database, no clock).

`reconcile(date, theirs, ours_today, ours_known, buffer, carry)` compares the file of business
day `date` (its rows `theirs`) with paysys's rows and returns the breaks, the number of rows that
agree, and the new buffer (contract issue 5, §4 "Matching"):

| the file row | is |
|---|---|
| its key was already listed earlier in the same file | `channel_only` (the second copy) |
| paysys has its key on `date`, and its own date is `date` | compared: `currency`, then `amount_over` / `amount_under`, then `status`, then `fee` (the first difference is the break); else matched |
| paysys does not have its key at all (whatever its date) | `channel_only` |
| paysys has its key on another day, or its own date is not `date` | `cross_day` (it leaves the buffer if it was there) |

A paysys row of `date` absent from the file goes to the buffer; a buffered row absent from
`carry` more files of its channel becomes `platform_only` and leaves the buffer.

An unknown key is `channel_only` even when its own date is not `date`: money paysys cannot
place is the graver break (the contract's two rules overlap there).

The buffer also remembers paysys's rows a file listed *ahead* of paysys's own day for them
(paysys learned of the charge after the channel's midnight): they are matched at once as
`cross_day` and kept with `files_seen == LISTED`, so that when paysys's own day for them is
reconciled and that file (rightly) does not list them, they leave the buffer silently instead of
becoming `platform_only`; they leave it anyway once a file of their day or later is reconciled. Breaks come out sorted by key (then class), so the result is deterministic.
"""

from typing import NamedTuple

from paysys.recon.formats import Row

LISTED = -1   # Buffered.files_seen of a row a file listed ahead of paysys's own day for it


class Break(NamedTuple):
    cls: str
    key: str
    ours: Row | None
    theirs: Row | None
    detail: str       # one line for humans: "amount 1334 in the file, 1234 in our books"


class Buffered(NamedTuple):
    row: Row          # paysys's row waiting for a file (LISTED: one a file listed ahead)
    files_seen: int   # later files of the channel that did not list it yet (LISTED: see above)


class Result(NamedTuple):
    breaks: list[Break]
    matched: int                  # file rows that agree with paysys's row of the same day
    buffer: dict[str, Buffered]   # the new buffer


# compared in this order: the first difference is the break (amount splits into over/under)
_FIELDS = ("currency", "amount", "status", "fee")


def compare(ours: Row, theirs: Row) -> Break | None:
    """The first difference between paysys's row and the file's row of the same key, or None."""
    for field in _FIELDS:
        mine, file = getattr(ours, field), getattr(theirs, field)
        if mine != file:
            cls = ("amount_over" if file > mine else "amount_under") if field == "amount" else field
            return Break(cls, theirs.key, ours, theirs,
                         f"{field} {file} in the file, {mine} in our books")
    return None


def reconcile(date: str, theirs: list[Row], ours_today: dict[str, Row],
              ours_known: dict[str, Row], buffer: dict[str, Buffered],
              carry: int = 1) -> Result:
    """Reconcile the file of business day `date` (rows `theirs`) with paysys's rows.

    `ours_today`: paysys's rows of `date` by key; `ours_known`: every row paysys knows now by
    key, any day (including today's and the buffered ones); `buffer`: the channel's buffer after
    the previous file. A key listed twice in the file is a `channel_only` break for the second
    copy (the first is matched as usual).
    """
    breaks: list[Break] = []
    matched = 0
    new = dict(buffer)
    listed: set[str] = set()
    for row in theirs:
        key = row.key
        if key in listed:
            breaks.append(Break("channel_only", key, ours_known.get(key), row,
                                f"{row.kind} {row.ref} listed twice in the file of {date}"))
            continue
        listed.add(key)
        ours = ours_today.get(key, ours_known.get(key))
        if ours is None:
            breaks.append(Break("channel_only", key, None, row,
                                f"{row.kind} {row.ref} ({row.channel_ref}) is not in our books"))
        elif key in ours_today and row.date == date:
            brk = compare(ours, row)
            if brk is None:
                matched += 1
            else:
                breaks.append(brk)
            new.pop(key, None)
        else:
            breaks.append(Break("cross_day", key, ours, row, _cross_day_detail(date, row, ours)))
            if new.pop(key, None) is None and ours.date > date:
                new[key] = Buffered(ours, LISTED)   # paysys's own day for it is still to come
    for key, held in buffer.items():
        if key in listed:
            continue
        if held.files_seen == LISTED:
            if held.row.date <= date:
                del new[key]                         # its day has come: nothing to wait for
            continue
        seen = held.files_seen + 1
        if seen >= carry:
            del new[key]
            breaks.append(Break("platform_only", key, held.row, None,
                                f"{held.row.kind} {held.row.ref} of {held.row.date} is in our "
                                f"books, in no file up to {date}"))
        else:
            new[key] = Buffered(held.row, seen)
    for key, ours in ours_today.items():
        held = buffer.get(key)
        if key not in listed and not (held is not None and held.files_seen == LISTED):
            new[key] = Buffered(ours, 0)
    breaks.sort(key=lambda brk: (brk.key, brk.cls))
    return Result(breaks, matched, dict(sorted(new.items())))


def _cross_day_detail(date: str, row: Row, ours: Row | None) -> str:
    ours_day = ours.date if ours is not None else "not in our books"
    return f"listed in the file of {date}, its own date {row.date}, our day {ours_day}"
