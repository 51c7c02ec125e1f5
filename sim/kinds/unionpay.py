"""The UnionPay-like card network kind: card payments routed to issuing banks by BIN range.

`[[channels]] options` (all optional):
- `issuers = ["icbc", "ccb", "abc"]` (the default): the issuing banks, in order; a card goes to
  `issuers[int(card_no[6:12]) % len(issuers)]` (digits 7-12 of the card number).
- `issuer_down = {ccb = ["2026-11-02T10:30:00+08:00", "2026-11-02T11:00:00+08:00"]}`: outage
  windows per issuer, each a pair [start, end) of date-times with a UTC offset or of durations
  from the scenario's start ("30m"); several windows as a list of pairs. While its issuer is
  down, a card's pays and refunds are rejected ISSUER_UNAVAILABLE (nothing done: paysys fails the
  pay over to another channel serving "unionpay", and sends the refund again later).
The sim opens each user's card (`card_no`, `bank_balance`, `frozen`) at its issuer. Statements
are not served: keep `[recon]` out of scenarios with this kind (the format is only nominal).
"""

import re

from mockbanks.unionpay import UnionPay
from mockbanks.unionpay_records import Window
from sim.kinds.base import Build, Kind

DEFAULT_ISSUERS = ("icbc", "ccb", "abc")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _bound(parser, value, key: str) -> tuple[str, int]:
    """A window bound: ("at", absolute ms) or ("after", ms from the scenario's start)."""
    if isinstance(value, str) and value[:1].isdigit() and "T" not in value and "-" not in value:
        return "after", parser.duration(value, key)
    return "at", parser.start(value, key)


def _windows(parser, value, key: str) -> list:
    pairs = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    out = []
    for i, pair in enumerate(pairs):
        where = key if pairs is not value else f"{key}[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise parser.fail(where, "expected a pair [start, end] of date-times or durations "
                                     '(like ["10m", "40m"]), or a list of such pairs', pair)
        start, end = _bound(parser, pair[0], f"{where}[0]"), _bound(parser, pair[1], f"{where}[1]")
        if start[0] == end[0] and end[1] <= start[1]:
            raise parser.fail(f"{where}[1]", "expected an end after the start", pair[1])
        out.append((start, end))
    return out


def options(parser, value, key: str) -> dict:
    if not isinstance(value, dict):
        raise parser.fail(key, "expected a table like {issuers = [...], issuer_down = {...}}",
                          value)
    parser.known(value, key, ("issuers", "issuer_down"))
    issuers = value.get("issuers", list(DEFAULT_ISSUERS))
    if not isinstance(issuers, list) or not issuers:
        raise parser.fail(f"{key}.issuers", "expected a non-empty list of issuer names", issuers)
    for i, name in enumerate(issuers):
        parser.string(name, f"{key}.issuers[{i}]", pattern=_NAME,
                      what="an issuer name matching [a-z][a-z0-9_]*")
        if name in issuers[:i]:
            raise parser.fail(f"{key}.issuers[{i}]", "expected each issuer once, got a repeat",
                              name)
    down = value.get("issuer_down", {})
    if not isinstance(down, dict):
        raise parser.fail(f"{key}.issuer_down", "expected a table like {ccb = [start, end]}",
                          down)
    windows = {}
    for name, spec in down.items():
        where = f"{key}.issuer_down.{name}"
        parser.string(name, where, choices=tuple(issuers))
        windows[name] = _windows(parser, spec, where)
    return {"issuers": list(issuers), "issuer_down": windows}


def _absolute(bound: tuple[str, int], start_ms: int) -> int:
    kind, ms = bound
    return ms if kind == "at" else start_ms + ms


def build(b: Build) -> UnionPay:
    opts = b.channel.options or {}
    start_ms = b.scenario.start_ms
    down = {name: [Window(_absolute(s, start_ms), _absolute(e, start_ms)) for s, e in spans]
            for name, spans in opts.get("issuer_down", {}).items()}
    node = UnionPay(name=b.channel.id, rng=b.rng, fee_rule=b.fee,
                    issuers=opts.get("issuers", DEFAULT_ISSUERS),
                    service_time=b.channel.service_time.sample, currency=b.currency,
                    issuer_down=down, faults=b.faults)
    for u in b.users:
        node.open_card(u.user_id, u.card_no, u.bank_balance, frozen=u.frozen)
    return node


UNIONPAY = Kind(products=("unionpay",), formats=("alipay",), build=build, options=options)
