"""The carrier billing kind (话费支付): charges on the user's phone bill, capped per month.

`[[channels]] options` (all optional, minor units): `monthly_cap` (default 20000 = 200.00 CNY per
phone number and billing month, UTC+8) and `per_charge_max` (default 10000). The sim opens a
phone line per user (`users[i].phone`; a frozen user's line is suspended). Statements are not
served: keep `[recon]` out of scenarios with this kind (the format is only nominal).
"""

from mockbanks.carrier import Carrier
from mockbanks.carrier_records import DEFAULT_MONTHLY_CAP, DEFAULT_PER_CHARGE_MAX
from sim.kinds.base import Build, Kind


def options(parser, value, key: str) -> dict:
    if not isinstance(value, dict):
        raise parser.fail(key, "expected a table like {monthly_cap = 20000}", value)
    parser.known(value, key, ("monthly_cap", "per_charge_max"))
    return {"monthly_cap": parser.money(value.get("monthly_cap", DEFAULT_MONTHLY_CAP),
                                        f"{key}.monthly_cap", 1),
            "per_charge_max": parser.money(value.get("per_charge_max", DEFAULT_PER_CHARGE_MAX),
                                           f"{key}.per_charge_max", 1)}


def build(b: Build) -> Carrier:
    opts = b.channel.options or {}
    node = Carrier(name=b.channel.id, rng=b.rng, fee_rule=b.fee,
                   service_time=b.channel.service_time.sample, currency=b.currency,
                   monthly_cap=opts.get("monthly_cap", DEFAULT_MONTHLY_CAP),
                   per_charge_max=opts.get("per_charge_max", DEFAULT_PER_CHARGE_MAX),
                   faults=b.faults)
    for u in b.users:
        node.open_line(u.user_id, u.phone, suspended=u.frozen)
    return node


CARRIER = Kind(products=("carrier",), formats=("alipay",), build=build, options=options)
