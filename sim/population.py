"""The simulated population: users with cards and wallets, and merchants with their keys.

Names and devices come from Faker, seeded from the scenario seed, so the same seed gives the
same people. Merchants may have business applications (`[merchants] apps`), each with its own
key and fee rate. Card numbers are Luhn-valid 16-digit numbers; the scenario's `magic_cards` shares
give some users a card ending in a magic suffix (docs/protocol.md) for deterministic outcomes.
"""

from dataclasses import dataclass, replace

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
class AppKeys:
    """One business application of a merchant (`[merchants] apps`): its own key and fee rate."""

    app_id: str
    name: str
    sign_type: str
    secret: str
    fee_rate_bp: int


@dataclass(frozen=True, slots=True)
class MerchantKeys:
    merchant_id: str
    name: str
    sign_type: str
    secret: str
    host: str
    apps: tuple[AppKeys, ...] = ()

    @property
    def notify_url(self) -> str:
        return f"https://{self.host}/paysim/notify"

    def signing(self, app_id: str | None = None) -> tuple[str, str]:
        """(sign_type, secret) a request sent through `app_id` is signed with (the merchant's
        own when no app is named)."""
        for app in self.apps:
            if app.app_id == app_id:
                return app.sign_type, app.secret
        return self.sign_type, self.secret


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
    out = [
        MerchantKeys(merchant_id=mid, name=fake.company(), sign_type=types[i % len(types)],
                     secret=f"{rng.getrandbits(128):032x}", host=f"{mid.lower()}.merchant.test")
        for i, mid in enumerate(scenario.merchant_ids)
    ]
    return [replace(m, apps=_apps(scenario, m)) for m in out] if scenario.merchants.apps else out


def _apps(scenario: Scenario, merchant: MerchantKeys) -> tuple[AppKeys, ...]:
    """The merchant's applications A1..An, each with its own key (drawn from the merchant's own
    stream, so adding apps changes no other draw) and fee rate."""
    cfg = scenario.merchants
    rng = stream(scenario.seed, f"population.apps:{merchant.merchant_id}")
    rates = cfg.app_fee_rates_bp or (cfg.fee_rate_bp,) * cfg.apps
    return tuple(AppKeys(app_id=f"A{n}", name=f"{merchant.name} app {n}",
                         sign_type=merchant.sign_type, secret=f"{rng.getrandbits(128):032x}",
                         fee_rate_bp=rates[n - 1])
                 for n in range(1, cfg.apps + 1))
