"""The statement files of one mock: which rows the file of a day holds, its readiness, the
statement faults acting on it, and the log of every injection.

Owns `Statements` (one per bank / platform node) and the helpers `day_of`, `iso`, `day_from`,
`lines_of`. The contract is /work/briefs/issue5.md sections 1-3 (docs/protocol.md).

The file of local day D lists the node's SUCCESS pays and refunds whose local day is D, ordered by
time then channel_ref. It is ready at the local midnight ending D + `ready_ms`; before that (and
for a day to come) `fetch` answers None. Its text is built at the first successful download and
cached (a malformed first copy excepted).

Statement faults (kinds `stmt_*` of mockbanks/faults.py) act on day D when the local midnight
starting D lies in the fault's [start, end) and one draw from the fault's own stream succeeds.
**Determinism:** the faults of the days are decided in day order (file-level faults of every day
up to D+1, row faults of every day up to D), whenever and however often anyone downloads, so the
same seed gives the same files and the same log. A day's row faults are decided only once the day
is over (its truth is final). Row faults pick distinct rows of D's own clean rows (a fault finding
none does nothing); `stmt_next_day` moves rows to D+1's file (never when D+1 has no file); a day
without file (`stmt_none`) gets no row fault. `stmt_status` writes the status the format has for
it (STATUS_FAULT); `stmt_fee` hits pays only; `stmt_currency` rows of another currency than its
own and is refused for the alipay format (no currency column).

Log. Each injection is appended to `log` (dicts: fault_id, kind, channel, date, cls, key, ref,
detail) when it takes effect, and returned as a `fault.fired` event: `stmt_late` / `stmt_none` at
the first request of D after its normal ready time, row faults when D's file is built (a
`stmt_next_day` when D's or D+1's is, whichever first), `stmt_malformed` at the first download.
`detail` says what changed: {"field": <Line field>, "true": x, "file": y} for amount, status, fee,
currency; {"field": "row", "true": "present", "file": "absent"} for a missing row,
{"field": "row", "true": "absent", "file": "present", "row": {Line fields}} for an extra one;
{"field": "file_date", ...} for next_day; {"field": "ready_ms", ..., "delay"} for late;
{"field": "file", "true": "present", "file": "absent"} for none; for malformed the line number.
"""

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date as _date

from mockbanks.bills import FORMATS, READY_MS, TZ_MS, Line, write, write_malformed
from mockbanks.faults import STMT_KINDS, ChannelFault, ChannelFaults

DAY_MS = 86_400_000
_EPOCH = _date(1970, 1, 1).toordinal()
FILE_KINDS = ("stmt_late", "stmt_none", "stmt_malformed")
EXPECTED_CLASS = {
    "stmt_missing_row": "platform_only", "stmt_extra_row": "channel_only", "stmt_status": "status",
    "stmt_fee": "fee", "stmt_currency": "currency", "stmt_next_day": "cross_day",
    "stmt_late": "late_file", "stmt_none": "missing_file", "stmt_malformed": "malformed_file",
}                                   # stmt_amount: amount_over / amount_under
STATUS_FAULT = {"mt940": {"pay": "REVERSED", "refund": "REVERSED"},
                "wechat": {"pay": "CLOSED", "refund": "FAIL"},
                "alipay": {"pay": "CLOSED", "refund": "CLOSED"}}
DEFAULTS = {"count": 1, "delta": 1, "currency": "USD"}
EXTRA_AMOUNT = (100, 100_000)


def day_of(at_ms: int, tz_offset_ms: int = TZ_MS) -> int:
    """Number of the local day holding the instant `at_ms`."""
    return (at_ms + tz_offset_ms) // DAY_MS


def iso(day: int) -> str:
    """The ISO date of local day number `day`: "2026-11-02"."""
    return _date.fromordinal(_EPOCH + day).isoformat()


def day_from(text: object, compact: bool = False) -> int | None:
    """The day number of "2026-11-02" (or "20261102" when `compact`), None when invalid."""
    if not isinstance(text, str) or len(text) != (8 if compact else 10) or not text.isascii():
        return None
    if compact:
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}" if text.isdigit() else ""
    try:
        return _date.fromisoformat(text).toordinal() - _EPOCH
    except ValueError:
        return None


def lines_of(txns: Iterable[dict], day: int, tz_offset_ms: int = TZ_MS,
             info: Callable[[dict], dict] | None = None) -> list[Line]:
    """The clean rows of local `day`: SUCCESS pays and refunds of truth `txns` (dicts as
    Truth.txns), by time then channel_ref; `info(txn)` adds Line fields (order_ref, user, ...)."""
    rows = []
    for t in txns:
        if t["kind"] not in ("pay", "refund") or t["status"] != "SUCCESS" or \
                day_of(t["at_ms"], tz_offset_ms) != day:
            continue
        key = f"pay:{t['channel_ref']}" if t["kind"] == "pay" else f"refund:{t['ref']}"
        rows.append(Line(key, t["kind"], t["ref"], t["channel_ref"], t["amount"], t["fee"],
                         t["currency"], t["status"], t["at_ms"], **(info(t) if info else {})))
    return sorted(rows, key=lambda r: (r.at_ms, r.channel_ref))


@dataclass(slots=True)
class _FilePlan:
    late: tuple[ChannelFault, int] | None = None
    none: ChannelFault | None = None
    malformed: ChannelFault | None = None


def _int_param(fault: ChannelFault, name: str, low: int) -> int:
    value = fault.params.get(name, DEFAULTS.get(name))
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or number < low or (
            isinstance(value, str) and not value.strip().isdigit()):
        raise ValueError(f"params.{name}: fault {fault.fault_id} ({fault.kind}) expects an "
                         f"integer >= {low}, got {value!r}")
    return number


class Statements:
    """Statement files of channel `channel` in format `fmt`; `rows(day)` gives the clean rows of
    a day (called only once the day is over). `log` is the node's `statement_log`."""

    def __init__(self, *, channel: str, fmt: str, faults: ChannelFaults,
                 rows: Callable[[int], list[Line]], ready_ms: int = READY_MS,
                 tz_offset_ms: int = TZ_MS, currency: str = "CNY", fee_rule=None,
                 rate_bp: int = 0) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"statement_format: expected one of {', '.join(FORMATS)}, "
                             f"got {fmt!r}")
        if isinstance(ready_ms, bool) or not isinstance(ready_ms, int) or ready_ms < 0:
            raise ValueError(f"statement_ready_ms: expected an integer >= 0, got {ready_ms!r}")
        self.channel, self.fmt, self.currency = channel, fmt, currency
        self.ready_ms, self.tz = ready_ms, tz_offset_ms
        self._faults, self._rows_of, self._fee_rule, self._rate_bp = faults, rows, fee_rule, rate_bp
        self._stmt = [f for f in faults.faults if f.kind in STMT_KINDS]
        self._params = {f.fault_id: self._check(f) for f in self._stmt}
        self.log: list[dict] = []
        firsts = [self._first_day(f) for f in self._stmt]
        self._start = min((d for d in firsts if d is not None), default=None)
        self._files: dict[int, _FilePlan] = {}
        self._entries: dict[int, list[dict]] = {}      # day -> its row-fault log entries
        self._clean: dict[int, list[Line]] = {}
        self._built: dict[int, tuple[list[Line], str]] = {}
        self._logged: set[tuple] = set()
        self._broken: set[int] = set()                 # days whose malformed copy was served

    def _check(self, fault: ChannelFault) -> dict:
        kind, params = fault.kind, {}
        if kind in ("stmt_missing_row", "stmt_extra_row", "stmt_amount", "stmt_status",
                    "stmt_fee", "stmt_currency", "stmt_next_day"):
            params["count"] = _int_param(fault, "count", 1)
        if kind in ("stmt_amount", "stmt_fee"):
            params["delta"] = _int_param(fault, "delta", 1) if "delta" in fault.params else (
                100 if kind == "stmt_amount" else 1)
        if kind == "stmt_late":
            if "delay" not in fault.params:
                raise ValueError(f"params.delay: fault {fault.fault_id} (stmt_late) needs a delay")
            params["delay"] = _int_param(fault, "delay", 0)
        if kind == "stmt_currency":
            cur = fault.params.get("currency", "USD")
            if not isinstance(cur, str) or len(cur) != 3:
                raise ValueError(f"params.currency: fault {fault.fault_id} expects a 3-letter "
                                 f"code, got {cur!r}")
            if self.fmt == "alipay":
                raise ValueError(f"faults: stmt_currency (fault {fault.fault_id}) is impossible "
                                 "in the alipay format: it has no currency column")
            params["currency"] = cur
        return params

    # -- days ---------------------------------------------------------------------------------
    def midnight(self, day: int) -> int:
        """The instant of the local midnight starting `day`."""
        return day * DAY_MS - self.tz

    def ready_at(self, day: int) -> int:
        """The normal ready time of the file of `day`."""
        return self.midnight(day + 1) + self.ready_ms

    def _first_day(self, fault: ChannelFault) -> int | None:
        day = -((self.tz - fault.start_ms) // DAY_MS)          # ceil((start + tz) / DAY)
        return day if self.midnight(day) < fault.end_ms else None

    def _acts(self, fault: ChannelFault, day: int) -> bool:
        """One draw per statement: whether `fault` acts on the file of `day`."""
        return fault.covers(self.midnight(day)) and \
            self._faults.rng(fault).random() < fault.probability

    def _file(self, day: int) -> _FilePlan:
        """The file-level faults of `day`, deciding every earlier day first."""
        if self._start is None or day < self._start:
            return _FilePlan()
        for d in range(max(self._start, max(self._files, default=self._start - 1) + 1), day + 1):
            plan = self._files[d] = _FilePlan()
            for f in self._stmt:
                if f.kind not in FILE_KINDS or not self._acts(f, d):
                    continue
                if f.kind == "stmt_late" and plan.late is None:
                    plan.late = (f, self._params[f.fault_id]["delay"])
                elif f.kind == "stmt_none" and plan.none is None:
                    plan.none = f
                elif f.kind == "stmt_malformed" and plan.malformed is None:
                    plan.malformed = f
        return self._files[day]

    def clean(self, day: int) -> list[Line]:
        """The rows of `day` without any fault (cached: the day must be over)."""
        if day not in self._clean:
            self._clean[day] = list(self._rows_of(day))
        return self._clean[day]

    # -- row faults ---------------------------------------------------------------------------
    def entries(self, day: int) -> list[dict]:
        """The row-fault log entries of `day` (its own rows), deciding earlier days first."""
        if self._start is None or day < self._start:
            return []
        for d in range(max(self._start, max(self._entries, default=self._start - 1) + 1),
                       day + 1):
            self._entries[d] = self._decide(d)
        return self._entries[day]

    def _decide(self, day: int) -> list[dict]:
        if self._file(day).none is not None:
            return []
        next_has_file = self._file(day + 1).none is None
        rows, taken, out = self.clean(day), set(), []
        for f in self._stmt:
            if f.kind in FILE_KINDS or not self._acts(f, day):
                continue
            rng, params = self._faults.rng(f), self._params[f.fault_id]
            if f.kind == "stmt_extra_row":
                out += [self._extra(f, day, rng, taken) for _ in range(params["count"])]
                continue
            eligible = [r for r in rows if r.key not in taken and self._eligible(f, r)]
            if f.kind == "stmt_next_day" and not next_has_file:
                eligible = []
            for row in rng.sample(eligible, min(params["count"], len(eligible))):
                taken.add(row.key)
                out.append(self._change(f, day, row, rng))
        return out

    def _eligible(self, fault: ChannelFault, row: Line) -> bool:
        if fault.kind == "stmt_fee":
            return row.kind == "pay"
        if fault.kind == "stmt_currency":
            return row.currency != self._params[fault.fault_id]["currency"]
        return True

    def _entry(self, fault: ChannelFault, day: int, key: str, ref: str, detail: dict,
               cls: str | None = None) -> dict:
        return {"fault_id": fault.fault_id, "kind": fault.kind, "channel": self.channel,
                "date": iso(day), "cls": cls or EXPECTED_CLASS[fault.kind], "key": key,
                "ref": ref, "detail": detail}

    def _change(self, fault: ChannelFault, day: int, row: Line, rng: random.Random) -> dict:
        kind, params = fault.kind, self._params[fault.fault_id]
        if kind == "stmt_missing_row":
            detail = {"field": "row", "true": "present", "file": "absent"}
        elif kind == "stmt_next_day":
            detail = {"field": "file_date", "true": iso(day), "file": iso(day + 1)}
        elif kind == "stmt_amount":
            delta = params["delta"] if rng.random() < 0.5 or row.amount <= params["delta"] \
                else -params["delta"]
            detail = {"field": "amount", "true": row.amount, "file": row.amount + delta}
            cls = "amount_over" if delta > 0 else "amount_under"
            return self._entry(fault, day, row.key, row.ref, detail, cls)
        elif kind == "stmt_status":
            detail = {"field": "status", "true": row.status,
                      "file": STATUS_FAULT[self.fmt][row.kind]}
        elif kind == "stmt_fee":
            detail = {"field": "fee", "true": row.fee, "file": row.fee + params["delta"]}
        else:   # stmt_currency
            detail = {"field": "currency", "true": row.currency, "file": params["currency"]}
        return self._entry(fault, day, row.key, row.ref, detail)

    def _extra(self, fault: ChannelFault, day: int, rng: random.Random, taken: set) -> dict:
        """A fabricated pay row of `day` (a key no row of the day has)."""
        keys = {r.key for r in self.clean(day)} | taken
        while True:
            ref, channel_ref = f"X{rng.randrange(10**10):010d}", f"XT{rng.randrange(10**10):010d}"
            if f"pay:{channel_ref}" not in keys:
                break
        amount = rng.randint(*EXTRA_AMOUNT)
        fee = self._fee_rule.fee(amount) if self._fee_rule is not None else 0
        row = Line(f"pay:{channel_ref}", "pay", ref, channel_ref, amount, fee, self.currency,
                   "SUCCESS", self.midnight(day) + rng.randrange(DAY_MS), user="X")
        taken.add(row.key)
        detail = {"field": "row", "true": "absent", "file": "present", "row": row._asdict()}
        return self._entry(fault, day, row.key, ref, detail)

    def file_rows(self, day: int) -> list[Line]:
        """The rows of the file of `day` as it is written (all its faults applied)."""
        own = self.entries(day)
        moved = {e["key"] for e in self.entries(day - 1) if e["kind"] == "stmt_next_day"}
        rows = [r for r in self.clean(day - 1) if r.key in moved] if moved else []
        changes = {e["key"]: e for e in own}
        for r in self.clean(day):
            e = changes.get(r.key)
            if e is None:
                rows.append(r)
            elif e["kind"] not in ("stmt_missing_row", "stmt_next_day"):
                rows.append(r._replace(**{e["detail"]["field"]: e["detail"]["file"]}))
        rows += [Line(**e["detail"]["row"]) for e in own if e["kind"] == "stmt_extra_row"]
        return sorted(rows, key=lambda r: (r.at_ms, r.channel_ref))

    # -- downloads ----------------------------------------------------------------------------
    def _record(self, entry: dict) -> list[tuple]:
        mark = (entry["fault_id"], entry["date"], entry["key"])
        if mark in self._logged:
            return []
        self._logged.add(mark)
        self.log.append(entry)
        return [("event", "fault.fired", entry["ref"],
                 {k: entry[k] for k in ("fault_id", "kind", "date", "key")})]

    def fetch(self, day: int, now_ms: int) -> tuple[str | None, list[tuple]]:
        """The text of the file of `day` downloaded at `now_ms` (None: not ready) and the
        `fault.fired` events of the faults taking effect now."""
        normal = self.ready_at(day)
        if now_ms < normal:
            return None, []
        plan, events, key = self._file(day), [], f"file:{iso(day)}"
        if plan.none is not None:
            detail = {"field": "file", "true": "present", "file": "absent"}
            return None, self._record(self._entry(plan.none, day, key, "", detail))
        if plan.late is not None:
            fault, delay = plan.late
            detail = {"field": "ready_ms", "true": normal, "file": normal + delay, "delay": delay}
            events += self._record(self._entry(fault, day, key, "", detail))
            if now_ms < normal + delay:
                return None, events
        if day not in self._built:
            rows = self.file_rows(day)
            for e in self.entries(day - 1) + self.entries(day):
                if e["date"] == iso(day) or e["kind"] == "stmt_next_day":
                    events += self._record(e)
            self._built[day] = rows, write(self.fmt, self.channel, iso(day), rows,
                                           **self._style(day, plan))
        rows, text = self._built[day]
        if plan.malformed is not None and day not in self._broken and rows:
            self._broken.add(day)
            text, detail = write_malformed(self.fmt, self.channel, iso(day), rows,
                                           **self._style(day, plan))
            events += self._record(self._entry(plan.malformed, day, key, "", detail))
        return text, events

    def _style(self, day: int, plan: _FilePlan) -> dict:
        late = plan.late[1] if plan.late is not None else 0
        return {"currency": self.currency, "tz_offset_ms": self.tz, "rate_bp": self._rate_bp,
                "exported_ms": self.ready_at(day) + late}
