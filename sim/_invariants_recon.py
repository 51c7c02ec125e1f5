"""The reconciliation invariants of `sim.invariants` (recon_exact, recon_resolved) and the
figures of the recon metrics: what statement reconciliation should have found, judged against
what paysys found (issue 5 contract, /work/briefs/issue5.md sections 3 and 4).

An **item** is `(channel, key, cls)`. *Found* items are the `recon_breaks` rows of phase
`statement`. *Expected* items come from two sources:

- the injected faults (`stmt_injected`), each judged by its **governing file**: the file of its
  day D (for `stmt_next_day` the file of D+1, where the moved row lands):
  - governing file `missing`: nothing for its rows (the file rule below gives `missing_file`);
    governing file not `reconciled` (waiting, or never tried): *not reached*, the run ended
    first: nothing expected, counted in `recon_not_reached`, and a found item equal to it is
    tolerated (neither expected nor spurious);
  - `stmt_missing_row`: nothing when paysys had no row for the key when file D was reconciled
    (`charges.at_ms` / refund `updated_ms` <= `reconciled_ms`); else `platform_only` once the
    channel has reconciled a file after max(D, paysys's day of the row) (the buffer waits one
    more file), not reached before;
  - `stmt_amount`/`status`/`fee`/`currency`/`next_day` (row faults on a true row): `channel_only`
    when paysys had no row for the key when the governing file was reconciled; else `cross_day`
    for `stmt_next_day` or when paysys booked the row on another day than D (matching compares
    days before fields); else the injected class;
  - `stmt_extra_row`: `channel_only`;
  - `stmt_late`: `late_file` exactly when the file was received after `late_after` (D+1 12:00
    local): a delay too short to pass it makes no late file; `stmt_malformed`: `malformed_file`;
    `stmt_none`: the file is `missing` (below) or not reached;
- the ground truth (natural breaks): every SUCCESS `pay`/`refund` of `truth_txns` at a channel,
  keyed `pay:<channel_ref>` / `refund:<ref>`, not touched by any injected fault, whose local day
  Dt has a `reconciled` file: `channel_only` when paysys had no row for the key when that file
  was reconciled, else `cross_day` when paysys's own day for it is not Dt; every reconciled file
  received after `late_after`: `late_file`; every `missing` file: one `missing_file`
  (`file:<D>`).

recon_exact reports every expected item not found (`missed`), every found item neither expected
nor tolerated (`spurious`) and, when a key is both expected and found under different classes,
one `misclassified` per expected class. recon_resolved checks every statement break against the
resolution policy (`POLICY`). Both pass vacuously on a run without `recon_files`/`recon_breaks`.
"""

import sqlite3
from dataclasses import dataclass, field

from paysys.days import DAY_MS, day_bounds, local_date, next_date
from paysys.money import FeeRule  # paysys's contract with a channel, as the run database records it

LATE_AFTER_MS = DAY_MS + 12 * 3_600_000  # after the local midnight starting D: D+1 12:00

ROW_FAULTS = ("stmt_missing_row", "stmt_extra_row", "stmt_amount", "stmt_status", "stmt_fee",
              "stmt_currency", "stmt_next_day")
FILE_FAULTS = ("stmt_late", "stmt_none", "stmt_malformed")

# class -> the (status, resolution) pairs the contract's policy allows for a statement break
_MANUAL_ERROR = (("manual", "statement_error"), ("manual", "manual"))
POLICY: dict[str, tuple[tuple[str, str], ...]] = {
    "cross_day": (("resolved", "matched_next_file"),),
    "channel_only": (("resolved", "refund"), ("resolved", "complete"), *_MANUAL_ERROR),
    "platform_only": _MANUAL_ERROR,
    "amount_over": _MANUAL_ERROR,
    "amount_under": _MANUAL_ERROR,
    "status": _MANUAL_ERROR,
    "fee": (*_MANUAL_ERROR, ("resolved", "adjusted")),
    "currency": _MANUAL_ERROR,
    "malformed_file": (("resolved", "redownloaded"),),
    "late_file": (("resolved", "late_file_received"),),
    "missing_file": (("manual", "no_file"),),
}
MONEY_RESOLUTIONS = ("refund", "complete", "adjusted")  # these move money: the break names its entry

Item = tuple[str, str, str]  # (channel, key, cls)


def has_tables(conn: sqlite3.Connection, *names: str) -> bool:
    """Whether every table of `names` exists."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return all(n in present for n in names)


def _rows(conn: sqlite3.Connection, sql: str, params: tuple | dict = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# paysys's own statement rows: key -> when paysys had it (its day is the local day of that)
OURS = """ours AS (
    SELECT channel, 'pay:' || channel_ref AS key, MIN(at_ms) AS at_ms FROM charges
    GROUP BY channel, channel_ref
    UNION ALL
    SELECT channel, 'refund:' || refund_id, MIN(updated_ms) FROM refund_orders
    WHERE status = 'SUCCEEDED' GROUP BY channel, refund_id)"""

_LOCAL_DATE_SQL = "date((({col}) + 28800000) / 1000, 'unixepoch')"


@dataclass
class Judgement:
    """Statement reconciliation judged: items expected, found and tolerated, with why."""
    expected: dict[Item, dict] = field(default_factory=dict)
    found: dict[Item, dict] = field(default_factory=dict)
    tolerated: dict[Item, dict] = field(default_factory=dict)
    injected: int = 0
    not_reached: int = 0

    @property
    def judged_found(self) -> set[Item]:
        """Found items that count: the tolerated ones that were not expected are left out."""
        return {i for i in self.found if i in self.expected or i not in self.tolerated}

    @property
    def true_positive(self) -> int:
        return len(self.expected.keys() & self.found.keys())


def _files(conn: sqlite3.Connection) -> dict[tuple[str, str], dict]:
    return {(r["channel"], r["date"]): r for r in _rows(
        conn, "SELECT channel, date, status, received_ms, reconciled_ms FROM recon_files")}


def _last_reconciled(files: dict[tuple[str, str], dict]) -> dict[str, str]:
    last: dict[str, str] = {}
    for (channel, day), f in files.items():
        if f["status"] == "reconciled" and day > last.get(channel, ""):
            last[channel] = day
    return last


def _expect_injected(j: Judgement, i: dict, files: dict, last: dict[str, str]) -> None:
    """Add what injected fault `i` (a stmt_injected row with `ours_ms`) makes expected."""
    channel, kind, day, key = i["channel"], i["kind"], i["date"], i["key"]
    gov_day = next_date(day) if kind == "stmt_next_day" else day
    gov = files.get((channel, gov_day))
    what = {"date": day, "ref": i["ref"], "fault_id": i["fault_id"], "kind": kind}
    injected_item = (channel, key, i["cls"])
    if gov is not None and gov["status"] == "missing":
        if kind == "stmt_next_day":  # the moved row lands nowhere: its fate is the buffer's
            j.tolerated[(channel, key, "platform_only")] = what
        return
    if gov is None or gov["status"] != "reconciled":
        j.not_reached += 1
        j.tolerated[injected_item] = what
        return
    ours = i["ours_ms"]
    had = ours is not None and ours <= gov["reconciled_ms"]
    if kind in FILE_FAULTS:
        late = gov["received_ms"] is not None and gov["received_ms"] > \
            day_bounds(day)[0] + LATE_AFTER_MS
        if kind == "stmt_malformed" or (kind == "stmt_late" and late):
            j.expected[injected_item] = {**what, "why": f"injected {kind}"}
        return
    if kind == "stmt_extra_row":
        j.expected[(channel, key, "channel_only")] = {**what, "why": "injected stmt_extra_row"}
        return
    if kind == "stmt_missing_row":
        if not had:
            return  # a row paysys never had is missing on both sides
        after = max(day, local_date(ours))
        if last.get(channel, "") > after:
            j.expected[(channel, key, "platform_only")] = {
                **what, "why": "injected stmt_missing_row; a later file did not list it either"}
        else:
            j.not_reached += 1
            j.tolerated[(channel, key, "platform_only")] = what
        return
    if not had:
        cls, why = "channel_only", f"injected {kind} on a row paysys did not have when the " \
                                   f"file of {gov_day} was reconciled"
    elif kind == "stmt_next_day" or local_date(ours) != day:
        cls, why = "cross_day", f"injected {kind}; paysys booked it on {local_date(ours)}"
    else:
        cls, why = i["cls"], f"injected {kind}"
    j.expected[(channel, key, cls)] = {**what, "why": why}


def _natural(conn: sqlite3.Connection) -> list[dict]:
    """Breaks the ground truth makes by itself on reconciled files (see the module doc)."""
    truth_day = _LOCAL_DATE_SQL.format(col="t.at_ms")
    ours_day = _LOCAL_DATE_SQL.format(col="o.at_ms")
    injected = ("EXISTS (SELECT 1 FROM stmt_injected i WHERE i.channel = tx.channel "
                "AND i.key = tx.key)") if has_tables(conn, "stmt_injected") else "0"
    return _rows(conn, f"""
        WITH {OURS},
        tx AS (SELECT t.node AS channel, t.ref, t.at_ms, {truth_day} AS date,
                      CASE t.kind WHEN 'pay' THEN 'pay:' || t.channel_ref
                                  ELSE 'refund:' || t.ref END AS key
               FROM truth_txns t WHERE t.status = 'SUCCESS' AND t.kind IN ('pay', 'refund')
                 AND t.node IN (SELECT channel FROM recon_files))
        SELECT tx.channel, tx.key, tx.ref, tx.date, o.at_ms AS ours_ms, {ours_day} AS ours_date,
               CASE WHEN o.at_ms IS NULL OR o.at_ms > f.reconciled_ms THEN 'channel_only'
                    ELSE 'cross_day' END AS cls
        FROM tx JOIN recon_files f ON f.channel = tx.channel AND f.date = tx.date
                                  AND f.status = 'reconciled'
        LEFT JOIN ours o ON o.channel = tx.channel AND o.key = tx.key
        WHERE (o.at_ms IS NULL OR o.at_ms > f.reconciled_ms OR {ours_day} <> tx.date)
          AND NOT {injected}
        ORDER BY tx.at_ms, tx.key
        """)


def _natural_fees(conn: sqlite3.Connection) -> list[dict]:
    """Fee breaks the ground truth makes by itself: a payment the channel really charged another
    fee for than paysys's contract with it says (a channel that changed its rates), on a file
    reconciled while paysys held the row on the same day."""
    if not has_tables(conn, "channels"):
        return []
    rules = {r["channel"]: FeeRule(r["fee_rate_bp"], r["fee_fixed"], r["fee_min"], r["fee_max"])
             for r in _rows(conn, "SELECT * FROM channels")}
    injected = ("EXISTS (SELECT 1 FROM stmt_injected i WHERE i.channel = t.node "
                "AND i.key = 'pay:' || t.channel_ref)") if has_tables(conn, "stmt_injected") \
        else "0"
    truth_day, ours_day = (_LOCAL_DATE_SQL.format(col=c) for c in ("t.at_ms", "o.at_ms"))
    rows = _rows(conn, f"""
        WITH {OURS}
        SELECT t.node AS channel, 'pay:' || t.channel_ref AS key, t.ref, t.amount, t.fee,
               {truth_day} AS date
        FROM truth_txns t
        JOIN recon_files f ON f.channel = t.node AND f.date = {truth_day}
                          AND f.status = 'reconciled'
        JOIN ours o ON o.channel = t.node AND o.key = 'pay:' || t.channel_ref
        WHERE t.kind = 'pay' AND t.status = 'SUCCESS' AND o.at_ms <= f.reconciled_ms
          AND {ours_day} = {truth_day} AND NOT {injected}
        ORDER BY t.at_ms, key""")
    return [r for r in rows
            if r["channel"] in rules and rules[r["channel"]].fee(r["amount"]) != r["fee"]]


def judge(conn: sqlite3.Connection) -> Judgement:
    """Statement reconciliation judged (empty on a run without recon tables)."""
    j = Judgement()
    if not has_tables(conn, "recon_files", "recon_breaks"):
        return j
    files = _files(conn)
    last = _last_reconciled(files)
    if has_tables(conn, "stmt_injected"):
        injected = _rows(conn, f"""
            WITH {OURS}
            SELECT i.fault_id, i.kind, i.channel, i.date, i.cls, i.key, i.ref,
                   o.at_ms AS ours_ms
            FROM stmt_injected i LEFT JOIN ours o ON o.channel = i.channel AND o.key = i.key
            ORDER BY i.rowid""")
        j.injected = len(injected)
        for i in injected:
            _expect_injected(j, i, files, last)
    for n in _natural(conn):
        why = ("paysys had no row for it when the file was reconciled" if n["cls"] ==
               "channel_only" else f"paysys booked it on {n['ours_date']}")
        j.expected.setdefault((n["channel"], n["key"], n["cls"]),
                              {"date": n["date"], "ref": n["ref"], "why": why})
    for n in _natural_fees(conn):
        j.expected.setdefault((n["channel"], n["key"], "fee"), {
            "date": n["date"], "ref": n["ref"],
            "why": f"the channel took a fee of {n['fee']}, not what paysys's contract says"})
    for (channel, day), f in sorted(files.items()):
        key = f"file:{day}"
        if f["status"] == "missing":
            j.expected[(channel, key, "missing_file")] = {"date": day, "ref": key,
                                                          "why": "the file is missing"}
        elif f["status"] == "reconciled" and f["received_ms"] is not None \
                and f["received_ms"] > day_bounds(day)[0] + LATE_AFTER_MS:
            j.expected.setdefault((channel, key, "late_file"), {
                "date": day, "ref": key, "why": "the file was received after D+1 12:00"})
    for b in _rows(conn, """SELECT break_id, channel, date, cls, key, ref, status
                            FROM recon_breaks WHERE phase = 'statement' ORDER BY break_id"""):
        j.found.setdefault((b["channel"], b["key"], b["cls"]), b)
    return j


def _ref(*candidates: object) -> str:
    return next((str(c) for c in candidates if c), "")


def recon_exact(conn: sqlite3.Connection) -> list[dict]:
    """Precision and recall of statement reconciliation are both 1 (see the module doc)."""
    j = judge(conn)
    found_keys: dict[tuple[str, str], list[str]] = {}
    for channel, key, cls in j.judged_found:
        found_keys.setdefault((channel, key), []).append(cls)
    expected_keys: dict[tuple[str, str], list[str]] = {}
    for channel, key, cls in j.expected:
        expected_keys.setdefault((channel, key), []).append(cls)
    out = []
    for item in sorted(j.expected.keys() - j.found.keys()):
        channel, key, cls = item
        e = j.expected[item]
        other = sorted(c for c in found_keys.get((channel, key), []) if c != cls)
        v = {"ref": _ref(e.get("ref"), key), "channel": channel, "key": key, "date": e["date"],
             "expected": cls, "why": e["why"]}
        if other:
            v.update(problem="misclassified", found=other,
                     message=f"{channel} {key} ({e['date']}): expected a {cls} break "
                             f"({e['why']}) but paysys classed it {', '.join(other)}")
        else:
            v.update(problem="missed",
                     message=f"{channel} {key} ({e['date']}): missed: expected a {cls} break "
                             f"({e['why']}), paysys found none")
        out.append(v)
    for item in sorted(j.judged_found - j.expected.keys()):
        channel, key, cls = item
        if (channel, key) in expected_keys:
            continue  # reported above as misclassified
        b = j.found[item]
        out.append({"ref": _ref(b["ref"], key), "channel": channel, "key": key, "date": b["date"],
                    "found": cls, "break_id": b["break_id"], "problem": "spurious",
                    "message": f"{channel} {key} ({b['date']}): spurious {cls} break "
                               f"{b['break_id']}: nothing there was expected"})
    return out


def recon_resolved(conn: sqlite3.Connection) -> list[dict]:
    """Every statement break is resolved or manual as `POLICY` says for its class, and one
    resolved by moving money (`MONEY_RESOLUTIONS`) names an existing journal entry."""
    if not has_tables(conn, "recon_breaks"):
        return []
    rows = _rows(conn, """
        SELECT b.break_id, b.channel, b.date, b.cls, b.key, b.ref, b.status, b.resolution,
               b.entry_id, b.found_ms, e.entry_id AS entry
        FROM recon_breaks b LEFT JOIN journal_entries e ON e.entry_id = b.entry_id
        WHERE b.phase = 'statement' ORDER BY b.found_ms, b.break_id""")
    out = []
    for r in rows:
        what = f"break {r['break_id']} ({r['cls']} of {r['channel']} {r['key']}, {r['date']})"
        allowed = POLICY.get(r["cls"], ())
        if r["status"] == "open":
            problem, message = "open", f"{what} is still open at the end of the run"
        elif (r["status"], r["resolution"]) not in allowed:
            problem = "wrong_resolution"
            message = (f"{what} is {r['status']} ({r['resolution']}) but the policy for "
                       f"{r['cls']} is " + (" or ".join(f"{s} ({res})" for s, res in allowed)
                                            or "undefined: unknown class"))
        elif r["resolution"] in MONEY_RESOLUTIONS and r["entry"] is None:
            problem = "no_entry"
            message = (f"{what} is resolved by {r['resolution']} but its entry "
                       f"{r['entry_id']} is not in journal_entries")
        else:
            continue
        out.append({"ref": _ref(r["ref"], r["key"]), "break_id": r["break_id"],
                    "channel": r["channel"], "key": r["key"], "cls": r["cls"],
                    "status": r["status"], "resolution": r["resolution"],
                    "entry_id": r["entry_id"], "found_ms": r["found_ms"], "problem": problem,
                    "message": message})
    return out


def stats(conn: sqlite3.Connection) -> dict:
    """The statement reconciliation figures of the metrics and of `paysim run --json`."""
    j = judge(conn)
    expected, found, tp = len(j.expected), len(j.judged_found), j.true_positive
    by_class: dict[str, int] = {}
    if has_tables(conn, "recon_breaks"):
        by_class = dict(conn.execute("""SELECT cls, COUNT(*) FROM recon_breaks
                                        WHERE phase = 'statement' GROUP BY cls ORDER BY cls"""))
    return {"injected": j.injected, "expected": expected, "found": found, "true_positive": tp,
            "precision": tp / found if found else 1.0,
            "recall": tp / expected if expected else 1.0, "not_reached": j.not_reached,
            "by_class": by_class}
