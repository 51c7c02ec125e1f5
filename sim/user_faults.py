"""The user faults of a scenario (family "user" of `sim.faults.FAULTS`): when they act, and the
attacker's forged notification.

`UserFaults` holds the scenario's user faults with their windows in absolute ms and, for each,
its own random stream `stream(seed, f"fault:{index}")` (the only consumer of that stream).
`sim/actors.py` asks it at each occasion whether a fault acts:

| kind | occasion (one draw of `probability`) | window covers |
|---|---|---|
| `pay_twice` | a payment started | the start |
| `abandon`, `partial_pay` | a platform payment whose QR code reached the user | the payment's start |
| `forged_notify` | a payment of the target channel whose QR code paysys answered | the payment's start |
| `retry_storm` | a merchant request sent (not the merchant's own retries) | the send |

Faults of one kind are asked in index order; the first that acts wins and the others draw
nothing. Without user faults nothing here draws, so a scenario without them runs as before.
Whenever a fault acts the caller logs `fault.fired` through `fired()`.
"""

import base64
from dataclasses import dataclass
from random import Random

from paysys.signing import sign
from sim.rng import stream
from sim.scenario import Scenario

PAY_TWICE_DELAY_MS = (1_000, 20_000)    # the second tab's pay.create, after the first one
FORGED_DELAY_MS = (1_000, 5_000)        # the attacker's notify, after paysys answered the QR
PRODUCT_OTHER = {"quick": "platform", "platform": "quick"}


@dataclass(slots=True)
class UserFault:
    index: int
    kind: str
    target: str
    start_ms: int       # absolute
    end_ms: int         # absolute, excluded
    probability: float
    params: dict
    rng: Random

    def covers(self, at_ms: int) -> bool:
        return self.start_ms <= at_ms < self.end_ms


class UserFaults:
    def __init__(self, scenario: Scenario, log):
        self.log = log
        self.by_kind: dict[str, list[UserFault]] = {}
        for f in scenario.faults:
            if f.family != "user":
                continue
            fault = UserFault(f.index, f.kind, f.target, scenario.start_ms + f.start_ms,
                              scenario.start_ms + f.end_ms, f.probability, dict(f.params),
                              stream(scenario.seed, f"fault:{f.index}"))
            self.by_kind.setdefault(f.kind, []).append(fault)
        self.api_keys = {c.id: c.api_key for c in scenario.channels}
        self.kinds = {c.id: c.kind for c in scenario.channels}
        self._forged = 0

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def draw(self, kind: str, at_ms: int, target: str | None = None) -> UserFault | None:
        """The first fault of `kind` (on `target`, if given) whose window covers `at_ms` and
        whose draw says it acts now; None if none does (faults out of their window draw
        nothing)."""
        for fault in self.by_kind.get(kind, ()):
            if target is not None and fault.target != target:
                continue
            if fault.covers(at_ms) and fault.rng.random() < fault.probability:
                return fault
        return None

    def fired(self, now: int, fault: UserFault, ref: str, src: str, dst: str, **data) -> None:
        """Log that `fault` acted on `ref` (a merchant order no or a paysys order id)."""
        self.log.add(now, "fault.fired", ref, src, dst,
                     {"fault_id": fault.index, "kind": fault.kind, **data})

    # -- the attacker -------------------------------------------------------------------------

    def forged_notify(self, fault: UserFault, order_id: str, amount: int, currency: str,
                      now: int) -> dict:
        """A payment notification claiming that `order_id` was paid `amount`, with a made-up
        transaction id: WeChat's, MD5-signed with a key that is not the channel's; Alipay's,
        with an RSA2 signature nobody's key made."""
        rng = fault.rng
        self._forged += 1
        if self.kinds.get(fault.target) == "alipay":   # Alipay's style: RSA2, signed by nobody
            return {"type": "ali.notify", "notify_id": f"ALF{self._forged:06d}",
                    "out_trade_no": order_id, "trade_no": f"ALF{rng.getrandbits(48):012x}",
                    "total_amount": amount, "trade_status": "TRADE_SUCCESS", "sign_type": "RSA2",
                    "sign": base64.b64encode(rng.randbytes(256)).decode()}
        body = {"type": "wx.notify", "out_trade_no": order_id,
                "transaction_id": f"WXF{self._forged:06d}{rng.getrandbits(32):08x}",
                "total_fee": amount, "fee_type": currency, "result_code": "SUCCESS",
                "time_end": now, "nonce_str": f"{rng.getrandbits(64):016x}"}
        key = f"{rng.getrandbits(128):032x}"
        if key == self.api_keys.get(fault.target):   # never, but a forged key must be wrong
            key += "x"
        body["sign"] = sign(body, key, "MD5")
        return body
