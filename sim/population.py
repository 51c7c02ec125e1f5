"""The simulated population: users with cards and wallets, and merchants with their keys.

Names and devices come from Faker, seeded from the scenario seed, so the same seed gives the
same people. Card numbers are Luhn-valid 16-digit numbers; the scenario's `magic_cards` shares
give some users a card ending in a magic suffix (docs/protocol.md) for deterministic outcomes.
"""

from dataclasses import dataclass

from faker import Faker

from sim.rng import stream
from sim.scenario import Scenario


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    card_no: str
    device_id: str
    bank_balance: int
    wallet_balance: int
    frozen: bool
    phone: str = ""        # the mobile number (carrier billing), derived from the user's number


@dataclass(frozen=True, slots=True)
class MerchantKeys:
    merchant_id: str
    name: str
    sign_type: str
    secret: str
    host: str

    @property
    def notify_url(self) -> str:
        return f"https://{self.host}/paysim/notify"


def luhn_complete(prefix: str) -> str:
    """`prefix` plus the Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix + str((10 - total % 10) % 10)


def _card(rng, suffix: str | None) -> str:
    if suffix is None:
        return luhn_complete("622202" + "".join(str(rng.randrange(10)) for _ in range(9)))
    # a magic suffix fixes the last four digits; the check is then not Luhn, as test cards aren't
    return "622202" + "".join(str(rng.randrange(10)) for _ in range(6)) + suffix


def users(scenario: Scenario) -> list[User]:
    pop = scenario.population
    rng = stream(scenario.seed, "population.users")
    fake = Faker(pop.locale)
    fake.seed_instance(rng.getrandbits(32))
    magic = list(pop.magic_cards.items())
    result = []
    seen_cards: set[str] = set()
    for i in range(1, pop.users + 1):
        draw, suffix = rng.random(), None
        for s, share in magic:
            if draw < share:
                suffix = s
                break
            draw -= share
        card = _card(rng, suffix)
        while card in seen_cards:
            card = _card(rng, suffix)
        seen_cards.add(card)
        result.append(User(
            user_id=f"U{i:06d}", name=fake.name(), card_no=card,
            device_id=f"D{rng.getrandbits(40):010x}",
            bank_balance=pop.bank_balance.sample(rng), wallet_balance=pop.wallet_balance.sample(rng),
            frozen=rng.random() < pop.frozen_share, phone=f"138{i:08d}",
        ))
    return result


def merchants(scenario: Scenario) -> list[MerchantKeys]:
    rng = stream(scenario.seed, "population.merchants")
    fake = Faker(scenario.population.locale)
    fake.seed_instance(rng.getrandbits(32))
    types = scenario.merchants.sign_types
    return [
        MerchantKeys(merchant_id=mid, name=fake.company(), sign_type=types[i % len(types)],
                     secret=f"{rng.getrandbits(128):032x}", host=f"{mid.lower()}.merchant.test")
        for i, mid in enumerate(scenario.merchant_ids)
    ]
