"""sim/buggify.py: a point is active in about a quarter of the seeds, the choice is fixed by seed
and name, an active point fires about once in twenty calls from its own stream, `fired` counts."""

import pytest

from sim.buggify import Buggify

POINTS = [f"point.{i}" for i in range(400)]


def test_about_a_quarter_of_the_points_are_active():
    b = Buggify(7)
    active = sum(b.active(p) for p in POINTS)
    assert 70 <= active <= 130      # 400 / 4 = 100


def test_the_same_seed_activates_the_same_points_in_any_order():
    a, b = Buggify(3), Buggify(3)
    first = [a.active(p) for p in POINTS]
    second = [b.active(p) for p in reversed(POINTS)][::-1]
    assert first == second
    assert first != [Buggify(4).active(p) for p in POINTS]


def test_an_inactive_point_never_fires():
    b = Buggify(11)
    off = next(p for p in POINTS if not b.active(p))
    assert not any(b(off) for _ in range(2000))
    assert off not in b.fired


def test_an_active_point_fires_about_one_call_in_twenty_and_is_counted():
    b = Buggify(11)
    on = next(p for p in POINTS if b.active(p))
    fires = sum(b(on) for _ in range(4000))
    assert 140 <= fires <= 260       # 4000 / 20 = 200
    assert b.fired == {on: fires}
    assert on in b.active_points


def test_the_draws_of_a_point_do_not_depend_on_other_points():
    a, b = Buggify(5), Buggify(5)
    on = [p for p in POINTS if a.active(p)][:2]
    alone = [a(on[0]) for _ in range(300)]
    mixed = []
    for _ in range(300):
        b(on[1])
        mixed.append(b(on[0]))
    assert alone == mixed


def test_same_seed_same_firings():
    runs = []
    for _ in range(2):
        b = Buggify(9)
        runs.append([b(p) for _ in range(50) for p in POINTS[:40]])
    assert runs[0] == runs[1] and any(runs[0])


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        Buggify(seed)


def test_bad_point_is_refused():
    with pytest.raises(ValueError, match="point"):
        Buggify(1)("")
