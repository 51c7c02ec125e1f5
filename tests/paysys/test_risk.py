"""Risk rules in table order, velocity windows, and OTPs."""

import random

import pytest

from paysys.risk import RULES, Decision, Risk, RiskRules, check_otp

WINDOW = 60_000


def make(**overrides) -> Risk:
    fields = {
        "max_amount": 100_000,
        "challenge_amount": 50_000,
        "velocity_window_ms": WINDOW,
        "velocity_max": 3,
        "blocked_users": ("U-bad",),
        "blocked_devices": ("D-bad",),
    }
    fields.update(overrides)
    return Risk(RiskRules(**fields), random.Random(7))


def test_rule_table_order():
    assert [name for name, _, _ in RULES] == [
        "blocked_user",
        "blocked_device",
        "max_amount",
        "velocity_user",
        "velocity_device",
        "challenge_amount",
    ]


@pytest.mark.parametrize(
    ("user", "device", "amount", "outcome", "rule"),
    [
        ("U1", "D1", 100, "PASS", "none"),
        ("U1", None, 100, "PASS", "none"),
        ("U-bad", "D1", 100, "BLOCK", "blocked_user"),
        ("U-bad", "D-bad", 10**9, "BLOCK", "blocked_user"),
        ("U1", "D-bad", 10**9, "BLOCK", "blocked_device"),
        ("U1", "D1", 100_001, "BLOCK", "max_amount"),
        ("U1", "D1", 100_000, "CHALLENGE", "challenge_amount"),
        ("U1", "D1", 50_000, "CHALLENGE", "challenge_amount"),
        ("U1", "D1", 49_999, "PASS", "none"),
    ],
)
def test_single_assessments(user, device, amount, outcome, rule):
    decision = make().assess(user, device, amount, 0)
    assert (decision.outcome, decision.rule) == (outcome, rule)
    assert decision.detail


def test_detail_names_the_limit():
    assert make().assess("U1", "D1", 100_001, 0) == Decision(
        "BLOCK", "max_amount", "amount 100001 > max_amount 100000"
    )


def test_velocity_per_user_within_a_sliding_window():
    risk = make()
    outcomes = [risk.assess("U1", None, 100, t).outcome for t in (0, 10, 20, 30)]
    assert outcomes == ["PASS", "PASS", "PASS", "BLOCK"]
    assert risk.assess("U1", None, 100, 30).rule == "velocity_user"
    assert risk.assess("U2", None, 100, 30).outcome == "PASS"
    # t=0 leaves the window (now - window, now] at now = 60_000
    assert risk.assess("U1", None, 100, WINDOW).outcome == "PASS"
    assert risk.assess("U1", None, 100, WINDOW + 1).outcome == "BLOCK"


def test_velocity_per_device_across_users():
    risk = make()
    for i in range(3):
        assert risk.assess(f"U{i}", "D1", 100, i).outcome == "PASS"
    decision = risk.assess("U9", "D1", 100, 5)
    assert (decision.outcome, decision.rule) == ("BLOCK", "velocity_device")
    assert risk.assess("U9", "D2", 100, 5).outcome == "PASS"


def test_an_empty_device_is_no_device():
    risk = make()
    for i in range(5):
        assert risk.assess(f"U{i}", "", 100, i).outcome == "PASS"
    assert risk._by_device == {}


def test_blocked_attempts_do_not_count_for_velocity():
    risk = make(velocity_max=2)
    assert risk.assess("U1", None, 100, 0).outcome == "PASS"
    assert risk.assess("U1", None, 100, 1).outcome == "PASS"
    assert risk.assess("U1", None, 100, 2).outcome == "BLOCK"
    assert risk.assess("U1", None, 10**9, 3).outcome == "BLOCK"
    # only t=1 is left in the window; the blocked attempts at t=2 and t=3 are not counted
    assert risk.assess("U1", None, 100, WINDOW).outcome == "PASS"


def test_challenged_payments_count_for_velocity():
    risk = make(velocity_max=1)
    assert risk.assess("U1", None, 60_000, 0).outcome == "CHALLENGE"
    assert risk.assess("U1", None, 100, 1).rule == "velocity_user"


def test_zero_disables_limits():
    risk = make(max_amount=0, challenge_amount=0, velocity_max=0)
    assert all(risk.assess("U1", "D1", 10**12, t).outcome == "PASS" for t in range(10))


def test_prune_forgets_old_entries():
    risk = make()
    risk.assess("U1", "D1", 100, 0)
    risk.prune(WINDOW)
    assert risk._by_user == {} and risk._by_device == {}


@pytest.mark.parametrize(
    "bad", [{"max_amount": -1}, {"velocity_max": 1.5}, {"challenge_amount": True}]
)
def test_rules_are_checked(bad):
    with pytest.raises(ValueError):
        make(**bad)


def test_otp_is_six_digits_from_the_given_generator():
    state = random.getstate()
    assert make().new_otp() == make().new_otp()  # same seed, same code
    risk = make()
    codes = [risk.new_otp() for _ in range(200)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(set(codes)) > 190
    assert any(c.startswith("0") for c in codes)  # zero-padded
    expected = random.Random(7)
    assert codes[:3] == [f"{expected.randrange(1_000_000):06d}" for _ in range(3)]
    assert random.getstate() == state  # the global generator is untouched


@pytest.mark.parametrize(
    ("given", "ok"),
    [
        ("012345", True),
        ("012346", False),
        ("12345", False),
        ("0123456", False),
        (12345, False),
        (None, False),
        ("", False),
    ],
)
def test_check_otp(given, ok):
    assert check_otp("012345", given) is ok
    assert Risk.check_otp("012345", given) is ok
