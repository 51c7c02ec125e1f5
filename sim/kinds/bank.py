"""The bank kind: quick pay (card agreements), netbank pages, withholding mandates, statements,
payouts and the reserve."""

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
    node.api_key = channel.api_key      # signs its netbank notifications (HMAC-SHA256)
    for u in b.users:
        node.open_account(u.user_id, u.card_no, u.bank_balance, sc.population.daily_limit,
                          frozen=u.frozen)
    return node


def user_pay(code_url: str, user_id: str, order_id: str) -> dict:
    """The user pays on the bank's netbank page: `bank.user.netbank` with the page it names."""
    return {"type": "bank.user.netbank", "page_id": code_url.rsplit("page=", 1)[-1],
            "user_id": user_id}


# (netbank payments are notified, but the bank takes no duplicate_notify_probability: notifies
# stays False so that the scenario refuses that key on a bank)
BANK = Kind(products=("quick", "netbank", "withhold"), formats=("mt940",), build=build,
            user_pay=user_pay)
