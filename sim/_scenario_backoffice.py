"""The scenario parser's back-office sections: `[recon]` and `[settlement]`.

Split from `sim/_scenario_parser.py` (which calls these with itself as `p`, for its value
parsers and its error messages); the defaults are in its `DEFAULTS` table like every other.
Times of day are durations from the local midnight (UTC+8): `time = "10h"` is 10:00.
"""

import re

from sim.scenario import MerchantSettlement, Recon, Settlement

DAY_MS = 86_400_000
_CYCLE = re.compile(r"D\+0|T\+([1-9][0-9]?)")


def recon(p, value) -> Recon:
    t = p.table(value, "recon", "recon")
    out = Recon(
        time_ms=_time_of_day(p, t["time"], "recon.time"),
        retry_ms=p.duration(t["retry"], "recon.retry", positive=True),
        late_after_ms=_time_of_day(p, t["late_after"], "recon.late_after"),
        give_up_ms=p.duration(t["give_up"], "recon.give_up", positive=True),
        carry=p.integer(t["carry"], "recon.carry", 1, 30),
        fees=p.string(t["fees"], "recon.fees", choices=("dispute", "adjust")),
    )
    if out.late_after_ms < out.time_ms:
        raise p.fail("recon.late_after", "expected a time of day at or after recon.time "
                     f"({_hhmm(out.time_ms)})", t["late_after"])
    return out


def settlement(p, value, channels, population, fee_rate_bp: int) -> Settlement:
    t = p.table(value, "settlement", "settlement")
    banks = tuple(c.id for c in channels if c.kind == "bank")
    payout = t["payout_channel"]
    if payout not in banks:
        raise p.fail("settlement.payout_channel", "expected the id of a bank channel among "
                     f"{', '.join(banks) or '(none declared)'}: merchants are paid out through it",
                     payout)
    ids = tuple(f"M{i:03d}" for i in range(1, population.merchants + 1))
    default = MerchantSettlement(
        cycle=_cycle(p, t["cycle"], "settlement.cycle"),
        min_amount=p.money(t["min_amount"], "settlement.min_amount"),
        splits=_splits(p, t["splits"], "settlement.splits", ids, None, fee_rate_bp),
    )
    if not isinstance(t["merchants"], dict):
        raise p.fail("settlement.merchants", "expected a table of merchant id -> rule",
                     t["merchants"])
    rules = {}
    for merchant_id, raw in t["merchants"].items():
        key = f"settlement.merchants.{merchant_id}"
        if merchant_id not in ids:
            raise p.fail(key, f"expected a merchant among {ids[0]}..{ids[-1]}", merchant_id)
        m = p.table(raw, key, "merchant_settlement")
        rules[merchant_id] = MerchantSettlement(
            cycle=default.cycle if m["cycle"] is None else _cycle(p, m["cycle"], f"{key}.cycle"),
            min_amount=default.min_amount if m["min_amount"] is None
            else p.money(m["min_amount"], f"{key}.min_amount"),
            splits=default.splits if m["splits"] is None
            else _splits(p, m["splits"], f"{key}.splits", ids, merchant_id, fee_rate_bp),
        )
    return Settlement(
        default=default, merchants=rules, payout_channel=payout,
        reserve=p.money(t["reserve"], "settlement.reserve"),
        position_floor=p.money(t["position_floor"], "settlement.position_floor"),
        time_ms=_time_of_day(p, t["time"], "settlement.time"),
        same_day_time_ms=_time_of_day(p, t["same_day_time"], "settlement.same_day_time"),
    )


def _cycle(p, value, key: str) -> str:
    if not isinstance(value, str) or not _CYCLE.fullmatch(value):
        raise p.fail(key, 'expected "D+0" (the same day), "T+1" (the next day) or "T+<n>" '
                     "(n days later, a risk hold; n at most 99)", value)
    return value


def _splits(p, value, key: str, ids: tuple[str, ...], payer: str | None, fee_rate_bp: int):
    if not isinstance(value, dict):
        raise p.fail(key, 'expected a table of receiver merchant -> basis points, like '
                     '{M002 = 500}', value)
    out = []
    for receiver, bp in value.items():
        if receiver not in ids:
            raise p.fail(f"{key}.{receiver}", f"expected a receiver among {ids[0]}..{ids[-1]}",
                         receiver)
        if receiver == payer:
            raise p.fail(f"{key}.{receiver}", "expected another merchant than the payer", receiver)
        out.append((receiver, p.integer(bp, f"{key}.{receiver}", 1, 10_000)))
    if sum(bp for _, bp in out) + fee_rate_bp > 10_000:
        raise p.fail(key, f"expected splits totalling at most {10_000 - fee_rate_bp} basis points "
                     f"(100 % less the merchants' fee rate, merchants.fee_rate_bp = {fee_rate_bp})",
                     value)
    return tuple(sorted(out))


def _time_of_day(p, value, key: str) -> int:
    ms = p.duration(value, key)
    if ms >= DAY_MS:
        raise p.fail(key, 'expected a time of day under 24h, like "10h" or "23h30m"', value)
    return ms


def _hhmm(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}"
