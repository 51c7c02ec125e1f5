"""The bank kind: quick pay (card agreements), statements, payouts and the reserve."""

from mockbanks.bank import Bank
from sim.kinds.base import Build, Kind


def build(b: Build) -> Bank:
    sc, channel = b.scenario, b.channel
    settlement = sc.settlement
    reserve = settlement.reserve if settlement and settlement.payout_channel == channel.id else 0
    node = Bank(name=channel.id, rng=b.rng, fee_rule=b.fee, capacity=channel.capacity,
                max_queue_ms=channel.max_queue_ms, service_time=channel.service_time.sample,
                currency=b.currency, faults=b.faults, buggify=b.buggify,
                statement_ready_ms=channel.statement_ready_ms, reserve_balance=reserve)
    for u in b.users:
        node.open_account(u.user_id, u.card_no, u.bank_balance, sc.population.daily_limit,
                          frozen=u.frozen)
    return node


BANK = Kind(products=("quick",), formats=("mt940",), build=build)
