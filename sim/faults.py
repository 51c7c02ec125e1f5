"""The fault catalogue: every kind of fault a scenario may declare, where it acts, what it takes.

One table, `FAULTS`: kind -> `FaultKind` (its family, what its `target` names, whether it takes an
`extra` distribution, its own parameters, one line of meaning). The scenario parser validates
every `[[faults]]` entry against it and `docs/scenarios.md` lists it (a test keeps them equal).
Each family is carried out by one part of the simulator:

| family | `target` | carried out by |
|---|---|---|
| network | a link `"A->B"` / `"A<->B"`; `partition`: two groups `"paysys | bank, wechat"` | `sim/network.py` |
| merchant | `"merchant:M001"` or `"merchant:*"` | `sim/network.py`, `sim/actors.py` |
| channel | a channel id | the mock itself (`mockbanks/faults.py` decides when a window is on) |
| statement | a channel id | the mock's statement files (`mockbanks/statements.py`): the days whose local midnight falls in the window |
| user | `"users"`, or a channel id for `forged_notify` | `sim/actors.py` |
| process | `"paysys"` | `sim/world.py` (crash, then restart from the database) |

`probability` is the chance that the fault acts on one occasion: a message (network), a request
(merchant, channel), a payment (user), a unit of work of the payment system (crash) or a day's statement file
(statement).
"""

from dataclasses import dataclass, field

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """A fault parameter: `type` is "int", "money" (signed minor units, not 0), "duration" or
    "choice"; `default` is in TOML spelling (REQUIRED: none)."""

    type: str
    default: object = REQUIRED
    choices: tuple[str, ...] = ()
    low: int = 0
    doc: str = ""


@dataclass(frozen=True)
class FaultKind:
    family: str               # network | merchant | channel | statement | user | process
    target: str               # link | groups | merchant | channel | users | paysys
    extra: str | None         # None (refused), "optional" or "required": a Dist of ms
    doc: str
    params: dict[str, Param] = field(default_factory=dict)
    channel_kinds: tuple[str, ...] = ("bank", "wechat")   # for target "channel"
    formats: tuple[str, ...] = ("mt940", "wechat", "alipay")   # statement faults: file formats


_MESSAGES = Param("choice", "all", ("all", "requests", "replies"),
                  doc='which messages it acts on: "requests", "replies" (types ending in .reply) '
                      'or "all"')
_NET = {"messages": _MESSAGES}
_COUNT = Param("int", 1, low=1, doc="rows affected in each file")

EVERY_KIND = ("bank", "wechat", "alipay", "unionpay", "carrier", "paypal")   # maintenance, rate limits
FAULTS: dict[str, FaultKind] = {
    # -- network: Toxiproxy's vocabulary, per direction --------------------------------------
    "latency": FaultKind("network", "link", "required", "the message is delayed by `extra` (a spike)",
                         _NET),
    "jitter": FaultKind("network", "link", "required",
                        "the latency varies by up to ± `extra` per message, so messages overtake "
                        "each other", _NET),
    "drop": FaultKind("network", "link", None,
                      "the message is lost: a lost request was never seen; a lost reply leaves "
                      "the sender not knowing what was done", _NET),
    "hang": FaultKind("network", "link", "optional",
                      "the message is held for `extra` (absent: forever); the sender relies on "
                      "its timeout", _NET),
    "duplicate": FaultKind("network", "link", None, "the message is delivered twice", _NET),
    "reorder": FaultKind("network", "link", "required",
                         "the message is held back by `extra` so that later ones overtake it",
                         _NET),
    "down": FaultKind("network", "link", None,
                      "the link refuses the message: the sender receives net.error \"refused\" at "
                      "once (nothing was delivered)", _NET),
    "reset": FaultKind("network", "link", None,
                       "the connection is reset after the message went out: it is delivered, "
                       "but the sender receives net.error \"reset\" and never sees the answer",
                       _NET),
    "partition": FaultKind("network", "groups", None,
                           "every message between the two groups of nodes is lost, both ways"),
    # -- merchants' endpoints ----------------------------------------------------------------
    "merchant_down": FaultKind("merchant", "merchant", None,
                               "the merchant's notification endpoint is unreachable"),
    "merchant_error": FaultKind("merchant", "merchant", None, 'the endpoint answers "fail"'),
    "merchant_slow": FaultKind("merchant", "merchant", "required",
                               "the endpoint answers `extra` ms later"),
    # -- channels: the bank's or platform's own behaviour -------------------------------------
    "maintenance": FaultKind("channel", "channel", None,
                             "the channel answers every request SYSTEM_MAINTENANCE: nothing is "
                             "done, nothing is charged", channel_kinds=EVERY_KIND),
    "rate_limit": FaultKind("channel", "channel", None,
                            "the channel accepts at most `max_per_s` requests a second and "
                            "answers the others RATE_LIMITED (nothing done)",
                            {"max_per_s": Param("int", 5, low=1,
                                                doc="requests accepted per second")},
                            channel_kinds=EVERY_KIND),
    "cutoff": FaultKind("channel", "channel", None,
                        "the channel's daily cut-off: payments are refused CUTOFF_IN_PROGRESS "
                        "(nothing charged); queries and refunds still work"),
    "notify_late": FaultKind("channel", "channel", "required",
                             "the platform's payment notifications leave `extra` ms late",
                             channel_kinds=("wechat", "paypal")),
    "notify_lost": FaultKind("channel", "channel", None,
                             "the platform never notifies payments made in the window",
                             channel_kinds=("wechat", "paypal")),
    "notify_duplicate": FaultKind("channel", "channel", None,
                                  "every platform notification is sent twice",
                                  channel_kinds=("wechat", "paypal")),
    "amount_mismatch": FaultKind("channel", "channel", None,
                                 "the channel charges the order's amount + `delta` and reports "
                                 "what it charged",
                                 {"delta": Param("money", -1, doc="signed minor units, not 0")}),
    "double_charge": FaultKind("channel", "channel", None,
                               "the channel charges a payment twice (two transaction ids) and "
                               "reports both charges"),
    "pay_after_close": FaultKind("channel", "channel", None,
                                 "the channel confirms a close, then charges the payment anyway "
                                 "and reports the success late"),
    # -- statements: what the channel's file of a business day says ---------------------------
    "stmt_missing_row": FaultKind("statement", "channel", None,
                                  "`count` transactions of the day are left out of its file",
                                  {"count": _COUNT}),
    "stmt_extra_row": FaultKind("statement", "channel", None,
                                "the file lists `count` payments that never happened (unknown "
                                "order ids)", {"count": _COUNT}),
    "stmt_amount": FaultKind("statement", "channel", None,
                             "`count` rows show their amount ± `delta`",
                             {"count": _COUNT, "delta": Param("int", 100, low=1,
                                                              doc="minor units added or taken")}),
    "stmt_status": FaultKind("statement", "channel", None,
                             "`count` rows show another status (reversed, closed, failed)",
                             {"count": _COUNT}),
    "stmt_fee": FaultKind("statement", "channel", None, "`count` rows show their fee + `delta`",
                          {"count": _COUNT, "delta": Param("int", 1, low=1,
                                                           doc="minor units added to the fee")}),
    "stmt_currency": FaultKind("statement", "channel", None,
                               "`count` rows show another currency (bank MT940 and WeChat bills "
                               "only: Alipay bills carry no currency)",
                               {"count": _COUNT,
                                "currency": Param("choice", "USD", ("USD", "EUR", "HKD", "JPY"),
                                                  doc="the currency the file shows")},
                               formats=("mt940", "wechat")),
    "stmt_next_day": FaultKind("statement", "channel", None,
                               "`count` transactions of the day appear in the next day's file",
                               {"count": _COUNT}),
    "stmt_late": FaultKind("statement", "channel", None, "the day's file is ready `delay` late",
                           {"delay": Param("duration", "6h", doc="how much later than usual")}),
    "stmt_none": FaultKind("statement", "channel", None, "the day's file never comes"),
    "stmt_malformed": FaultKind("statement", "channel", None,
                                "the first download of the day's file is broken (a bad amount); "
                                "downloading it again gives a good copy"),
    # -- users -------------------------------------------------------------------------------
    "pay_twice": FaultKind("user", "users", None,
                           "the user pays one merchant order twice: a second tab opens a second "
                           "payment attempt through the other product"),
    "partial_pay": FaultKind("user", "users", None,
                             "the user pays part of a platform order (the platform takes any "
                             "amount up to the order's)"),
    "abandon": FaultKind("user", "users", None, "the user walks away from the platform's QR code"),
    "retry_storm": FaultKind("user", "users", None,
                             "the merchant's system sends each request `retries` more times, "
                             "every `interval`",
                             {"retries": Param("int", 5, low=1, doc="extra sends per request"),
                              "interval": Param("duration", "1s", doc="between two sends")}),
    "forged_notify": FaultKind("user", "channel", None,
                               "an attacker sends payment notifications with a bad signature, "
                               "claiming that open orders of this channel were paid",
                               channel_kinds=("wechat", "alipay")),
    # -- the payment system itself -----------------------------------------------------------
    "crash": FaultKind("process", "paysys", "optional",
                       "the payment system crashes during a unit of work: memory is lost, the "
                       "database keeps what was committed; it restarts after `extra` (default "
                       "5 s) and recovers from the database",
                       {"point": Param("choice", "any",
                                       ("before_commit", "after_commit", "any"),
                                       doc="before the unit commits (its work is lost) or after "
                                           "(its messages are lost)")}),
}

CRASH_DOWNTIME_MS = 5_000
