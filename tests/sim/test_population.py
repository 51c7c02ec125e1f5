"""sim.population: the same seed gives the same people; cards are 16-digit, unique and
Luhn-valid unless they carry a magic suffix; magic and frozen shares are honoured approximately;
merchants get ids, round-robin sign types, secrets and notify URLs."""

import pytest

from sim import population
from sim.population import luhn_complete
from sim.scenario import from_dict


def scenario(seed=1, users=300, magic=None, frozen=0.0, merchants=3, sign_types=None):
    data = {
        "scenario": {"name": "pop", "seed": seed, "duration": "1h"},
        "population": {"users": users, "merchants": merchants, "magic_cards": magic or {},
                       "frozen_share": frozen},
        "channels": [{"id": "bank", "kind": "bank"}, {"id": "wechat", "kind": "wechat"}],
    }
    if sign_types:
        data["merchants"] = {"sign_types": sign_types}
    return from_dict(data)


def luhn_ok(number: str) -> bool:
    """The Luhn check, written independently of the code under test."""
    digits = [int(c) for c in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


@pytest.fixture(scope="module")
def magic_users():
    return population.users(scenario(seed=3, users=2_000, magic={"0002": 0.1, "9995": 0.05},
                                     frozen=0.2))


def test_luhn_complete_gives_the_check_digit():
    assert luhn_complete("7992739871") == "79927398713"  # the textbook example
    assert luhn_complete("622202000000000") == "6222020000000007"
    assert all(luhn_ok(luhn_complete(f"62220212345678{d}")) for d in "0123456789")


def test_same_seed_same_people():
    assert population.users(scenario(seed=9)) == population.users(scenario(seed=9))
    assert population.merchants(scenario(seed=9)) == population.merchants(scenario(seed=9))


def test_another_seed_other_people():
    a, b = population.users(scenario(seed=9)), population.users(scenario(seed=10))
    assert [u.card_no for u in a] != [u.card_no for u in b]
    assert [u.bank_balance for u in a] != [u.bank_balance for u in b]
    ma, mb = population.merchants(scenario(seed=9)), population.merchants(scenario(seed=10))
    assert [m.secret for m in ma] != [m.secret for m in mb]


def test_cards_without_magic_are_luhn_valid_and_unique():
    users = population.users(scenario(users=500))
    cards = [u.card_no for u in users]
    assert all(len(c) == 16 and c.isdigit() and c.startswith("622202") for c in cards)
    assert all(luhn_ok(c) for c in cards)
    assert len(set(cards)) == len(cards)


def test_users_have_ids_devices_names_and_balances_in_range():
    users = population.users(scenario(users=300))
    assert [u.user_id for u in users] == [f"U{i:06d}" for i in range(1, 301)]
    assert len({u.device_id for u in users}) == 300
    assert all(u.name for u in users)
    # the defaults: bank uniform 50000..2000000, wallet uniform 0..500000 (integers, minor units)
    assert all(type(u.bank_balance) is int and 50_000 <= u.bank_balance <= 2_000_000 for u in users)
    assert all(type(u.wallet_balance) is int and 0 <= u.wallet_balance <= 500_000 for u in users)
    assert not any(u.frozen for u in users)


def test_magic_shares_are_honoured_approximately(magic_users):
    ends = [u.card_no[-4:] for u in magic_users]
    assert 140 <= ends.count("0002") <= 260  # 200 expected, sd ~13
    assert 60 <= ends.count("9995") <= 140  # 100 expected, sd ~10


def test_cards_without_a_magic_suffix_are_luhn_valid(magic_users):
    plain = [u.card_no for u in magic_users if u.card_no[-4:] not in ("0002", "9995")]
    assert len(plain) > 1_500
    assert all(luhn_ok(c) for c in plain)
    assert all(len(u.card_no) == 16 for u in magic_users)
    assert len({u.card_no for u in magic_users}) == len(magic_users)


def test_frozen_share_is_honoured_approximately(magic_users):
    assert 330 <= sum(u.frozen for u in magic_users) <= 470  # 400 expected, sd ~18


def test_merchants_ids_sign_types_secrets_and_urls():
    merchants = population.merchants(scenario(merchants=5, sign_types=["HMAC-SHA256", "MD5"]))
    assert [m.merchant_id for m in merchants] == ["M001", "M002", "M003", "M004", "M005"]
    assert [m.sign_type for m in merchants] == ["HMAC-SHA256", "MD5", "HMAC-SHA256", "MD5",
                                                "HMAC-SHA256"]
    assert len({m.secret for m in merchants}) == 5
    assert all(len(m.secret) == 32 and int(m.secret, 16) >= 0 for m in merchants)
    assert merchants[0].notify_url == "https://m001.merchant.test/paysim/notify"
    assert len({m.host for m in merchants}) == 5
    assert all(m.name for m in merchants)
