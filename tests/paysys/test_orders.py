"""paysys.orders: the pay and refund state tables, `fire`/`can_fire`, and the Mermaid diagram."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paysys.orders import (
    PAY_FINAL,
    PAY_TRANSITIONS,
    REFUND_FINAL,
    REFUND_TRANSITIONS,
    TABLES,
    IllegalTransition,
    PayStatus,
    RefundStatus,
    can_fire,
    fire,
    is_final,
    mermaid,
)

KINDS = ("pay", "refund")
FINALS = {"pay": PAY_FINAL, "refund": REFUND_FINAL}
EVENTS = {kind: sorted({e for moves in TABLES[kind].values() for e in moves}) for kind in KINDS}


def reachable(kind: str, start) -> set:
    """Every status reachable from `start` (itself included) by a breadth-first search."""
    seen, todo = {start}, [start]
    while todo:
        for new in TABLES[kind][todo.pop()].values():
            if new not in seen:
                seen.add(new)
                todo.append(new)
    return seen


def test_tables_cover_every_status_and_only_statuses():
    assert set(PAY_TRANSITIONS) == set(PayStatus)
    assert set(REFUND_TRANSITIONS) == set(RefundStatus)
    for kind in KINDS:
        for moves in TABLES[kind].values():
            assert set(moves.values()) <= set(TABLES[kind])


def test_final_statuses_are_the_documented_ones():
    # docs/run-database.md
    assert {s.value for s in PAY_FINAL} == {"SUCCEEDED", "FAILED", "CLOSED", "BLOCKED", "HELD",
                                             "DUPLICATE"}
    assert {s.value for s in REFUND_FINAL} == {"SUCCEEDED", "FAILED"}


@pytest.mark.parametrize("kind", KINDS)
def test_every_final_status_has_no_exit_but_a_late_charge(kind):
    for status in FINALS[kind]:
        assert set(TABLES[kind][status]) <= {"late_success"}
        assert is_final(kind, status.value)
        for event in set(EVENTS[kind]) - {"late_success"}:
            assert not can_fire(kind, status.value, event)
            with pytest.raises(IllegalTransition):
                fire(kind, status.value, event)


@pytest.mark.parametrize("kind", KINDS)
def test_every_non_final_status_reaches_a_final_one(kind):
    for status in TABLES[kind]:
        if status in FINALS[kind]:
            continue
        assert not is_final(kind, status.value)
        assert reachable(kind, status) & FINALS[kind], f"{kind} {status} never ends"


@pytest.mark.parametrize("kind", KINDS)
def test_every_status_is_reachable_from_created(kind):
    assert reachable(kind, next(iter(TABLES[kind]))) == set(TABLES[kind])


def test_fire_follows_the_table():
    assert fire("pay", "CREATED", "submit") == "PROCESSING"
    assert fire("pay", "PROCESSING", "timeout") == "UNKNOWN"
    assert fire("pay", "UNKNOWN", "success") == "SUCCEEDED"
    assert fire("refund", "PROCESSING", "timeout") == "UNKNOWN"
    for kind in KINDS:
        for status, moves in TABLES[kind].items():
            for event, new in moves.items():
                assert fire(kind, status.value, event) == new.value
                assert isinstance(fire(kind, status.value, event), str)


def test_unknown_is_never_a_failure():
    # a timeout moves to UNKNOWN, never to FAILED, for both kinds
    assert fire("pay", "PROCESSING", "timeout") != "FAILED"
    assert fire("refund", "PROCESSING", "timeout") != "FAILED"
    assert not can_fire("pay", "UNKNOWN", "timeout")


def test_illegal_transition_names_the_allowed_events():
    with pytest.raises(IllegalTransition) as caught:
        fire("pay", "UNKNOWN", "submit")
    err = caught.value
    assert (err.kind, err.status, err.event) == ("pay", "UNKNOWN", "submit")
    message = str(err)
    assert "UNKNOWN" in message and "'submit'" in message
    assert "allowed: close, decline, duplicate, hold, success" in message


def test_illegal_transition_from_a_final_status_says_none():
    with pytest.raises(IllegalTransition, match=r"allowed: none"):
        fire("refund", "SUCCEEDED", "success")


@pytest.mark.parametrize("kind", KINDS)
def test_mermaid_lists_every_transition(kind):
    text = mermaid(kind)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert f"    [*] --> {next(iter(TABLES[kind])).value}" in lines
    expected = {f"    {s.value} --> {n.value}: {e}" for s, m in TABLES[kind].items() for e, n in m.items()}
    drawn = {line for line in lines if ": " in line}
    assert drawn == expected
    for status in FINALS[kind]:
        assert f"    {status.value} --> [*]" in lines


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_random_event_sequences_never_leave_the_table(kind, data):
    table = TABLES[kind]
    statuses = {s.value for s in table}
    status = next(iter(table)).value
    events = data.draw(st.lists(st.sampled_from(EVENTS[kind] + ["bogus"]), max_size=30))
    for event in events:
        if can_fire(kind, status, event):
            new = fire(kind, status, event)
            assert new in statuses
            assert new == table[type(next(iter(table)))(status)][event].value
            status = new
        else:
            with pytest.raises(IllegalTransition):
                fire(kind, status, event)
        assert status in statuses
    # once final, nothing moves it but a charge the channel reports late (policy "reopen"),
    # and that only to SUCCEEDED, which nothing moves
    if is_final(kind, status):
        movers = [e for e in EVENTS[kind] if can_fire(kind, status, e)]
        assert movers in ([], ["late_success"])
        if movers:
            assert TABLES[kind][type(next(iter(table)))(status)]["late_success"] == "SUCCEEDED"
