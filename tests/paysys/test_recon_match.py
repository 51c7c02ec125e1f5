"""paysys/recon/match.py and policy.py: every matching rule, and the property of issue 5 — over
consecutive days carrying the buffer, the breaks found are exactly the injected ones, each with
its class (precision = recall = 1)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys.recon import next_date
from paysys.recon.formats import Row
from paysys.recon.match import LISTED, Break, Buffered, reconcile
from paysys.recon.policy import POLICY, Decision, decide

D0 = "2026-11-02"
D1 = next_date(D0)
D2 = next_date(D0, 2)


def row(n: int, date: str = D0, kind: str = "pay", **changes) -> Row:
    ref = f"{'P' if kind == 'pay' else 'R'}{n:010d}"
    channel_ref = f"T{n:010d}"
    key = f"pay:{channel_ref}" if kind == "pay" else f"refund:{ref}"
    return Row(key, kind, ref, channel_ref, 1000 + n, 3 if kind == "pay" else 0, "CNY",
               "SUCCESS", date)._replace(**changes)


def by_key(*rows: Row) -> dict[str, Row]:
    return {r.key: r for r in rows}


def run(date, theirs, ours_today, ours_known=None, buffer=None, carry=1):
    known = {**(ours_known or {}), **ours_today}
    return reconcile(date, theirs, ours_today, known, buffer or {}, carry)


# -- rules ----------------------------------------------------------------------------------------

def test_identical_rows_match_and_leave_nothing():
    rows = [row(1), row(2, kind="refund")]
    result = run(D0, rows, by_key(*rows))
    assert result == ([], 2, {})


@pytest.mark.parametrize(("change", "cls", "detail"), [
    ({"currency": "USD"}, "currency", "currency USD in the file, CNY in our books"),
    ({"amount": 1101}, "amount_over", "amount 1101 in the file, 1001 in our books"),
    ({"amount": 901}, "amount_under", "amount 901 in the file, 1001 in our books"),
    ({"status": "REVERSED"}, "status", "status REVERSED in the file, SUCCESS in our books"),
    ({"fee": 4}, "fee", "fee 4 in the file, 3 in our books"),
])
def test_one_difference_is_one_break(change, cls, detail):
    ours = row(1)
    theirs = ours._replace(**change)
    result = run(D0, [theirs], by_key(ours))
    assert result.breaks == [Break(cls, ours.key, ours, theirs, detail)]
    assert result.matched == 0 and result.buffer == {}


def test_the_first_difference_wins_currency_amount_status_fee():
    ours = row(1)
    everything = ours._replace(currency="USD", amount=1, status="CLOSED", fee=9)
    assert [b.cls for b in run(D0, [everything], by_key(ours)).breaks] == ["currency"]
    assert [b.cls for b in run(D0, [everything._replace(currency="CNY")],
                               by_key(ours)).breaks] == ["amount_under"]
    assert [b.cls for b in run(D0, [ours._replace(status="CLOSED", fee=9)],
                               by_key(ours)).breaks] == ["status"]


def test_unknown_key_is_channel_only_whatever_its_date():
    extra, old = row(7), row(8, date="2026-11-01")
    result = run(D0, [extra, old], {})
    assert [(b.cls, b.key, b.ours, b.theirs) for b in result.breaks] == [
        ("channel_only", extra.key, None, extra), ("channel_only", old.key, None, old)]
    assert result.buffer == {}


def test_a_key_listed_twice_is_channel_only_for_the_second_copy():
    ours = row(1)
    result = run(D0, [ours, ours._replace(amount=5)], by_key(ours))
    assert result.matched == 1
    assert [(b.cls, b.theirs.amount) for b in result.breaks] == [("channel_only", 5)]
    assert "listed twice" in result.breaks[0].detail


def test_missing_row_waits_in_the_buffer_then_is_platform_only():
    ours = row(1)
    first = run(D0, [], by_key(ours))
    assert first.breaks == [] and first.buffer == {ours.key: Buffered(ours, 0)}
    second = run(D1, [], {}, by_key(ours), first.buffer)
    assert [(b.cls, b.key, b.ours, b.theirs) for b in second.breaks] == [
        ("platform_only", ours.key, ours, None)]
    assert second.buffer == {}


def test_carry_two_waits_one_more_file():
    ours = row(1)
    buffer = run(D0, [], by_key(ours), carry=2).buffer
    second = run(D1, [], {}, by_key(ours), buffer, carry=2)
    assert second.breaks == [] and second.buffer == {ours.key: Buffered(ours, 1)}
    third = run(D2, [], {}, by_key(ours), second.buffer, carry=2)
    assert [b.cls for b in third.breaks] == ["platform_only"] and third.buffer == {}


def test_row_in_the_next_file_is_cross_day_and_leaves_the_buffer():
    ours = row(1)
    buffer = run(D0, [], by_key(ours)).buffer
    result = run(D1, [ours], {}, by_key(ours), buffer)
    assert [(b.cls, b.ours, b.theirs) for b in result.breaks] == [("cross_day", ours, ours)]
    assert result.buffer == {} and result.matched == 0


def test_row_of_another_date_known_today_is_cross_day_not_buffered():
    ours = row(1, date=D1)
    theirs = ours._replace(date=D0)
    result = run(D1, [theirs], by_key(ours))
    assert [b.cls for b in result.breaks] == ["cross_day"] and result.buffer == {}


def test_row_paysys_learned_the_next_day_is_cross_day_once():
    ours = row(1, date=D1)            # paysys recorded the charge after the channel's midnight
    theirs = ours._replace(date=D0)
    first = run(D0, [theirs], {}, by_key(ours))
    assert [b.cls for b in first.breaks] == ["cross_day"]
    assert first.buffer == {ours.key: Buffered(ours, LISTED)}
    second = run(D1, [], by_key(ours), {}, first.buffer)
    assert second == ([], 0, {})       # its own day's file rightly does not list it


def test_a_listed_ahead_row_leaves_once_its_day_has_passed():
    ours = row(1, date=D1)
    buffer = {ours.key: Buffered(ours, LISTED)}
    assert run(D0, [], {}, {}, buffer).buffer == buffer
    assert run(D2, [], {}, {}, buffer) == ([], 0, {})


def test_output_is_sorted_by_key():
    rows = [row(n) for n in (5, 3, 9, 1)]
    result = run(D0, [r._replace(fee=0) for r in rows], by_key(*rows))
    assert [b.key for b in result.breaks] == sorted(r.key for r in rows)
    unmatched = run(D0, [], by_key(*rows))
    assert list(unmatched.buffer) == sorted(r.key for r in rows)


# -- the property ---------------------------------------------------------------------------------

CHANGES = ("drop", "extra", "amount_up", "amount_down", "status", "fee", "currency", "next_file",
           "learned_late")
EXPECTED = {"drop": "platform_only", "extra": "channel_only", "amount_up": "amount_over",
            "amount_down": "amount_under", "status": "status", "fee": "fee",
            "currency": "currency", "next_file": "cross_day", "learned_late": "cross_day"}


@st.composite
def scenario(draw):
    days = draw(st.integers(1, 4))
    carry = draw(st.integers(1, 2))
    dates = [next_date(D0, i) for i in range(days + carry)]   # `carry` quiet days at the end
    rows = []
    n = 0
    for day in range(days):
        for _ in range(draw(st.integers(0, 6))):
            n += 1
            kind = draw(st.sampled_from(("pay", "refund")))
            rows.append(row(n, dates[day], kind, amount=draw(st.integers(2, 10**6))))
    changes = draw(st.lists(st.sampled_from(CHANGES), max_size=len(rows)))
    victims = draw(st.permutations(range(len(rows))))[:len(changes)]
    extras = draw(st.lists(st.integers(0, days - 1), max_size=3))
    return dates, days, carry, rows, dict(zip(victims, changes, strict=True)), extras


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_breaks_found_are_exactly_the_injected_ones(case):
    dates, days, carry, rows, changes, extras = case
    files = {date: [] for date in dates}
    ours = {date: {} for date in dates}
    injected = []
    for index, r in enumerate(rows):
        change = changes.get(index)
        day = dates.index(r.date)
        theirs, mine = r, r
        if change == "drop":
            theirs = None
        elif change == "amount_up":
            theirs = r._replace(amount=r.amount + 100)
        elif change == "amount_down":
            theirs = r._replace(amount=r.amount - 1)
        elif change == "status":
            theirs = r._replace(status="REVERSED")
        elif change == "fee":
            theirs = r._replace(fee=r.fee + 1)
        elif change == "currency":
            theirs = r._replace(currency="USD")
        elif change == "next_file":
            files[dates[day + 1]].append(r)
            theirs = None
        elif change == "learned_late":
            mine = r._replace(date=dates[day + 1])
        if theirs is not None:
            files[r.date].append(theirs)
        ours[mine.date][mine.key] = mine
        if change is not None and change != "extra":
            injected.append((EXPECTED[change], r.key))
        elif change == "extra":    # this row is clean; an extra row joins its file
            fake = row(10_000 + index, r.date, ref="X" + r.ref[1:])
            files[r.date].append(fake)
            injected.append(("channel_only", fake.key))
    for i, day in enumerate(extras):
        fake = row(20_000 + i, dates[day])
        files[dates[day]].append(fake)
        injected.append(("channel_only", fake.key))

    buffer, found = {}, []
    for i, date in enumerate(dates):
        # at the reconciliation (D+1 10:00) paysys knows every row of D and of D+1 so far
        known = {k: v for d in dates[:i + 2] for k, v in ours[d].items()}
        result = reconcile(date, files[date], ours[date], known, buffer, carry)
        buffer = result.buffer
        found += [(b.cls, b.key) for b in result.breaks]
        # every file row is either matched or one break; platform_only breaks have no file row
        assert result.matched + sum(b.theirs is not None for b in result.breaks) == len(
            files[date])
    assert sorted(found) == sorted(injected)
    assert buffer == {}


def test_matched_plus_row_breaks_is_the_file_length():
    ours = [row(n) for n in range(1, 6)]
    theirs = [ours[0], ours[1]._replace(fee=0), row(9), ours[3], ours[3]]
    result = run(D0, theirs, by_key(*ours))
    assert result.matched + len(result.breaks) == len(theirs)
    assert set(result.buffer) == {ours[2].key, ours[4].key}


# -- the policy -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "known", "expected"), [
    ("cross_day", False, ("resolved", "matched_next_file", "none")),
    ("channel_only", True, ("open", "", "query")),
    ("channel_only", False, ("manual", "manual", "none")),
    ("platform_only", True, ("manual", "statement_error", "none")),
    ("amount_over", True, ("manual", "statement_error", "none")),
    ("amount_under", True, ("manual", "statement_error", "none")),
    ("status", True, ("manual", "statement_error", "none")),
    ("fee", True, ("manual", "statement_error", "none")),
    ("currency", True, ("manual", "statement_error", "none")),
    ("malformed_file", False, ("open", "", "redownload")),
    ("late_file", False, ("resolved", "late_file_received", "none")),
    ("missing_file", False, ("manual", "no_file", "none")),
])
def test_policy(cls, known, expected):
    r = row(1)
    brk = Break(cls, r.key if not cls.endswith("_file") else f"file:{D0}",
                None if cls.endswith("_file") else r, None, "a detail")
    decision = decide(brk, known)
    assert isinstance(decision, Decision)
    assert (decision.status, decision.resolution, decision.action) == expected
    assert "a detail" in decision.reason and brk.key in decision.reason


def test_policy_covers_every_class_and_refuses_others():
    assert set(POLICY) == {"channel_only", "platform_only", "amount_over", "amount_under",
                           "status", "fee", "currency", "cross_day", "late_file", "missing_file",
                           "malformed_file"}
    with pytest.raises(ValueError, match="cls: expected one of"):
        decide(Break("nonsense", "k", None, None, ""), False)


def test_known_channel_only_reason_names_the_order():
    r = row(1)
    assert r.ref in decide(Break("channel_only", r.key, None, r, "x"), True).reason


def test_fee_breaks_are_adjusted_only_when_the_books_follow_statement_fees():
    ours = row(1)
    brk = Break("fee", ours.key, ours, ours._replace(fee=ours.fee + 7), "fee 7 more")
    adjusted = decide(brk, True, adjust_fees=True)
    assert (adjusted.status, adjusted.resolution, adjusted.action) == ("resolved", "adjusted",
                                                                       "adjust")
    assert decide(brk, True).resolution == "statement_error"
    other = Break("amount_over", ours.key, ours, ours._replace(amount=ours.amount + 1), "x")
    assert decide(other, True, adjust_fees=True).resolution == "statement_error"
