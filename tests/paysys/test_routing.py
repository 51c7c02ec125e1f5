"""Routing: candidate filtering, policies, and the per-channel circuit breaker."""

import pytest

from paysys import routing
from paysys.money import FeeRule
from paysys.routing import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    POLICIES,
    ChannelHealth,
    ChannelInfo,
    LowestCostPolicy,
    PriorityPolicy,
    RouteDecision,
    Router,
)

BANK_A = ChannelInfo("bank_a", "bank", ("quick",), 1, FeeRule(rate_bp=60), 100, 1_000_000, ("CNY",))
BANK_B = ChannelInfo("bank_b", "bank", ("quick",), 2, FeeRule(rate_bp=30, minimum=50), 1, 0)
WX = ChannelInfo("wechat", "platform", ("platform",), 1, FeeRule(rate_bp=60), 1, 0)
CHANNELS = [BANK_A, BANK_B, WX]


def router(policy="priority", health=None) -> Router:
    return Router(CHANNELS, policy, health or ChannelHealth(failure_threshold=2, cooldown_ms=1000))


def test_priority_policy_prefers_the_lower_number():
    decision = router().route("quick", 10_000, "CNY", 0)
    assert decision == RouteDecision(
        "bank_a", "priority", (("wechat", "product quick not offered"),)
    )


@pytest.mark.parametrize(
    ("amount", "currency", "chosen", "why_a"),
    [
        (99, "CNY", "bank_b", "amount 99 < min_amount 100"),
        (1_000_001, "CNY", "bank_b", "amount 1000001 > max_amount 1000000"),
        (10_000, "USD", "bank_b", "currency USD not accepted"),
        (100, "CNY", "bank_a", None),
        (1_000_000, "CNY", "bank_a", None),
    ],
)
def test_limits_and_currencies_filter(amount, currency, chosen, why_a):
    decision = router().route("quick", amount, currency, 0)
    assert decision.channel_id == chosen
    assert dict(decision.rejected).get("bank_a") == why_a


def test_lowest_cost_uses_the_fee_for_this_amount():
    r = router("lowest_cost")
    # 10_000: bank_a 60, bank_b 30 -> bank_b
    assert r.route("quick", 10_000, "CNY", 0).channel_id == "bank_b"
    # 5_000: bank_a 30, bank_b max(15, 50)=50 -> bank_a
    assert r.route("quick", 5_000, "CNY", 0).channel_id == "bank_a"


def test_lowest_cost_ties_by_priority_then_id():
    fee = FeeRule(fixed=10)
    a = ChannelInfo("a", "bank", ("quick",), 2, fee)
    b = ChannelInfo("b", "bank", ("quick",), 1, fee)
    c = ChannelInfo("c", "bank", ("quick",), 1, fee)
    d = ChannelInfo("d", "bank", ("quick",), 0, FeeRule(fixed=11))
    ranked = LowestCostPolicy().rank([d, c, a, b], 1000, 0)
    assert [x.id for x in ranked] == ["b", "c", "a", "d"]
    assert [x.id for x in PriorityPolicy().rank([d, c, a, b], 1000, 0)] == ["d", "b", "c", "a"]


def test_no_route_lists_every_rejection():
    decision = router().route("netbank", 100, "CNY", 0)
    assert decision.channel_id is None and decision.reason == "NO_ROUTE"
    assert [cid for cid, _ in decision.rejected] == ["bank_a", "bank_b", "wechat"]
    assert decision.event_data() == {
        "channel": None,
        "reason": "NO_ROUTE",
        "rejected": [[cid, why] for cid, why in decision.rejected],
    }


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(ValueError) as caught:
        Router(CHANNELS, "cheapest", ChannelHealth())
    assert "lowest_cost" in str(caught.value) and "priority" in str(caught.value)


def test_duplicate_channel_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        Router([BANK_A, BANK_A], "priority", ChannelHealth())


def test_channel_info_is_checked():
    with pytest.raises(ValueError):
        ChannelInfo("x", "bank", ["quick"], 1, FeeRule())
    with pytest.raises(ValueError):
        ChannelInfo("x", "bank", ("quick",), 1, FeeRule(), min_amount=10, max_amount=5)


# ---------------------------------------------------------------- circuit breaker


def test_breaker_opens_after_consecutive_failures_only():
    health = ChannelHealth(failure_threshold=3, cooldown_ms=1000)
    for ok in (False, False, True, False, False):
        health.record("a", ok, 0)
    assert health.state("a", 0) == CLOSED and health.available("a", 0)
    health.record("a", False, 10)
    assert health.state("a", 10) == OPEN and not health.available("a", 10)
    assert health.available("other", 10)


def test_breaker_half_opens_after_cooldown_with_one_trial():
    health = ChannelHealth(failure_threshold=1, cooldown_ms=1000)
    health.record("a", False, 0)
    assert not health.available("a", 999)
    assert health.state("a", 1000) == HALF_OPEN and health.available("a", 1000)
    health.acquire("a", 1000)
    assert not health.available("a", 1001)  # the trial is in flight
    health.record("a", True, 1200)
    assert health.state("a", 1200) == CLOSED and health.available("a", 1200)


def test_failed_trial_reopens_for_a_new_cooldown():
    health = ChannelHealth(failure_threshold=5, cooldown_ms=1000)
    for _ in range(5):
        health.record("a", False, 0)
    health.acquire("a", 1000)
    health.record("a", False, 1500)
    assert health.state("a", 2499) == OPEN
    assert health.state("a", 2500) == HALF_OPEN


def test_results_while_open_are_ignored():
    health = ChannelHealth(failure_threshold=1, cooldown_ms=1000)
    health.record("a", False, 0)
    health.record("a", True, 500)  # late success of an older request
    assert health.state("a", 500) == OPEN
    health.record("a", False, 900)  # late failure does not extend the cooldown
    assert health.state("a", 1000) == HALF_OPEN


def test_a_lost_trial_is_given_up_after_a_cooldown():
    health = ChannelHealth(failure_threshold=1, cooldown_ms=1000)
    health.record("a", False, 0)
    health.acquire("a", 1000)
    assert not health.available("a", 1999)
    assert health.available("a", 2000)


def test_router_skips_open_channels_and_takes_the_trial():
    r = router()
    r.record("bank_a", False, 0)
    r.record("bank_a", False, 0)
    decision = r.route("quick", 10_000, "CNY", 10)
    assert decision.channel_id == "bank_b"
    assert ("bank_a", "unavailable (circuit open)") in decision.rejected
    # after the cooldown bank_a gets exactly one trial
    assert r.route("quick", 10_000, "CNY", 1000).channel_id == "bank_a"
    second = r.route("quick", 10_000, "CNY", 1001)
    assert second.channel_id == "bank_b"
    assert ("bank_a", "unavailable (circuit half_open)") in second.rejected
    r.record("bank_a", True, 1100)
    assert r.route("quick", 10_000, "CNY", 1101).channel_id == "bank_a"


def test_a_new_policy_plugs_in_through_the_table(monkeypatch):
    seen = []

    class Reverse:
        name = "reverse"

        def __init__(self, tag):
            self.tag = tag

        def rank(self, candidates, amount, now_ms):
            return sorted(candidates, key=lambda c: c.id, reverse=True)

        def observe(self, channel_id, ok, now_ms):
            seen.append((self.tag, channel_id, ok, now_ms))

    monkeypatch.setitem(POLICIES, "reverse", Reverse)
    r = Router(CHANNELS, "reverse", ChannelHealth(), tag="t")
    decision = r.route("quick", 10_000, "CNY", 0)
    assert (decision.channel_id, decision.reason) == ("bank_b", "reverse")
    r.record("bank_b", False, 7)
    assert seen == [("t", "bank_b", False, 7)]
    assert routing.POLICIES is POLICIES
