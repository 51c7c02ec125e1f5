"""The shape of a channel kind (`sim/kinds/__init__.py`) and what its builder receives."""

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Build:
    """What a kind's builder gets: the scenario, the channel (sim.scenario.Channel), the users
    (sim.population.User), and what every mock takes: its random stream, its fee rule
    (mockbanks.fees.Fee), its channel faults (mockbanks.faults.ChannelFault), BUGGIFY (or None)
    and the scenario's currency."""

    scenario: object
    channel: object
    users: list
    rng: random.Random
    fee: object
    faults: list
    buggify: Callable[[str], bool] | None
    currency: str


@dataclass(frozen=True)
class Kind:
    """A channel kind.

    - `products`: what its channels serve (a channel may narrow it with `products = [...]`).
    - `formats`: its statement formats, the default first.
    - `build(b: Build) -> node`: the mock (a sans-IO node of mockbanks/) with the users' accounts
      opened; it must expose `name`, `truth` (mockbanks.truth.Truth) and `statement_log`.
    - `options(parser, value, key) -> dict`: parse the channel's `options = {...}` table (None:
      the kind takes no options); errors through `parser.fail(key, expected, value)`.
    - `user_pay(code_url, user_id, order_id) -> dict`: the message the user sends to the channel
      to pay (or approve) what paysys answered with a `code_url`; None: its products never do.
    - `notifies`: its channels send payment notifications (duplicate_notify_probability).
    """

    products: tuple[str, ...]
    formats: tuple[str, ...]
    build: Callable[[Build], object]
    options: Callable | None = None
    user_pay: Callable[[str, str, str], dict] | None = None
    notifies: bool = False
