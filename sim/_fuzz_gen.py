"""What `paysim fuzz` generates: scenarios as dicts (the TOML shape), swarm style.

`scenarios(base, flaws)` is a Hypothesis strategy of scenario dicts built on `base` (a dict as
tomllib reads a scenario file). Each example:

- draws the run's seed and `buggify = true/false`;
- moves a few user-behaviour knobs (double submits, refunds, abandons, OTP failures, unbinding,
  merchant endpoint errors, magic cards) away from the base's values;
- switches on a random subset of the fault kinds of the catalogue `sim.faults.FAULTS` (every
  family, crash included: swarm testing), each with one or two faults, each with a target the
  catalogue allows among the base's nodes, a window inside duration + grace, a probability and
  its own parameters within bounds;
- adds `flaws` to `[paysys] flaws` and expects every invariant.

Every choice shrinks towards the simplest form: fewer kinds, fewer faults, the base's knob values,
the parameters' defaults, probability 1, early short windows, buggify off. The catalogue is the
only source of kinds, targets and parameters: a kind added there is fuzzed without a change here.
"""

import copy

from hypothesis import strategies as st

from sim.durations import format_duration
from sim.faults import FAULTS, FaultKind, Param
from sim.scenario import Scenario, from_dict

MAX_KINDS = 6                 # fault kinds switched on in one example
MAX_PER_KIND = 2              # faults of one kind
PROBABILITIES = (1.0, 0.5, 0.2, 0.1, 0.05)
CRASH_PROBABILITIES = (0.05, 0.02, 0.1, 0.2)       # per unit of work: 1.0 would never progress
KNOBS: dict[tuple[str, str], tuple] = {             # (section, key) -> values besides the base's
    ("traffic", "double_submit_probability"): (0.0, 0.2, 0.5),
    ("traffic", "refund_probability"): (0.0, 0.3, 0.7),
    ("traffic", "partial_refund_probability"): (0.0, 0.5, 1.0),
    ("traffic", "abandon_probability"): (0.0, 0.3),
    ("traffic", "otp_fail_probability"): (0.0, 0.5),
    ("traffic", "unsign_probability"): (0.0, 0.1, 0.3),
    ("merchants", "endpoint_error_probability"): (0.0, 0.2, 0.5),
    ("population", "magic_cards"): ({}, {"0119": 0.05, "3220": 0.05},
                                    {"0002": 0.05, "9995": 0.05}),
}


def scenarios(base: dict, flaws: tuple[str, ...] = (),
              kinds: tuple[str, ...] | None = None) -> st.SearchStrategy[dict]:
    """Scenario dicts built on `base` (validated first: ScenarioError if it is not valid), with
    faults of `kinds` only when given (ValueError naming an unknown kind)."""
    parsed = from_dict(base, "<base>")
    unknown = [k for k in kinds or () if k not in FAULTS]
    if unknown:
        raise ValueError(f"kinds: unknown fault kind {unknown[0]!r}; expected one of "
                         + ", ".join(FAULTS))
    allowed = tuple(k for k in fault_kinds(parsed) if kinds is None or k in kinds)
    return _scenario(copy.deepcopy(base), parsed, tuple(flaws), allowed)


def fault_kinds(parsed: Scenario) -> tuple[str, ...]:
    """The kinds of the catalogue that have at least one possible target in `parsed`."""
    return tuple(k for k, spec in FAULTS.items() if _targets(spec, parsed))


@st.composite
def _scenario(draw, base: dict, parsed: Scenario, flaws: tuple[str, ...],
              kinds: tuple[str, ...]) -> dict:
    data = copy.deepcopy(base)
    section = data.setdefault("scenario", {})
    section["seed"] = draw(st.integers(0, 2**32 - 1))
    section["buggify"] = draw(st.booleans())
    for (table, key), values in KNOBS.items():
        now = data.get(table, {}).get(key, _base_value(parsed, table, key))
        value = draw(st.sampled_from((now, *(v for v in values if v != now))))
        if value != now:
            data.setdefault(table, {})[key] = value
    enabled = draw(st.lists(st.sampled_from(kinds), unique=True, max_size=MAX_KINDS)) \
        if kinds else []
    generated = []
    for kind in sorted(enabled, key=kinds.index):
        for _ in range(draw(st.integers(1, MAX_PER_KIND))):
            generated.append(draw(_fault(kind, parsed)))
    data["faults"] = [*base.get("faults", []), *generated]
    if flaws:
        paysys = data.setdefault("paysys", {})
        paysys["flaws"] = sorted({*paysys.get("flaws", []), *flaws})
    data["expectations"] = {**data.get("expectations", {}), "invariants": "all"}
    return data


def _base_value(parsed: Scenario, table: str, key: str):
    value = getattr(getattr(parsed, table), key)
    return dict(value) if isinstance(value, dict) else value


@st.composite
def _fault(draw, kind: str, parsed: Scenario) -> dict:
    spec = FAULTS[kind]
    if spec.target == "groups":
        others = _others(parsed)
        side = draw(st.lists(st.sampled_from(others), unique=True, min_size=1, max_size=3))
        target = "paysys | " + ", ".join(sorted(side, key=others.index))
    else:
        target = draw(st.sampled_from(_targets(spec, parsed)))
    fault = {"kind": kind, "target": target}
    duration_s, horizon_s = parsed.duration_ms // 1000, (parsed.duration_ms + parsed.grace_ms) // 1000
    start = draw(st.integers(0, max(0, duration_s - 1)))
    length = draw(st.integers(30, max(30, duration_s)))
    end = min(start + length, horizon_s)
    fault["start"], fault["end"] = format_duration(start * 1000), format_duration(end * 1000)
    choices = CRASH_PROBABILITIES if spec.family == "process" else PROBABILITIES
    fault["probability"] = draw(st.sampled_from(choices))
    if spec.extra == "required" or (spec.extra == "optional" and draw(st.booleans())):
        fault["extra"] = draw(_extra(spec))
    for name, param in spec.params.items():
        value = draw(_param(param))
        if value != param.default:
            fault[name] = value
    return fault


def _extra(spec: FaultKind) -> st.SearchStrategy[dict]:
    """A uniform delay in ms: up to 30 s (a crash's downtime: 1 to 30 s)."""
    if spec.family == "process":
        return st.integers(1, 30).map(lambda s: {"dist": "uniform", "low": 1000, "high": s * 1000})
    return st.tuples(st.integers(0, 10), st.integers(1, 30)).map(
        lambda t: {"dist": "uniform", "low": t[0] * 500, "high": t[0] * 500 + t[1] * 1000})


def _param(p: Param) -> st.SearchStrategy:
    """A value of parameter `p` within bounds, shrinking to its default."""
    if p.type == "choice":
        return st.sampled_from((p.default, *(c for c in p.choices if c != p.default)))
    if p.type == "int":
        values = st.integers(p.low, p.low + 19)
    elif p.type == "duration":
        values = st.integers(1, 10).map(lambda s: f"{s}s")
    else:  # money: signed minor units, not 0
        values = st.integers(-500, 500).filter(lambda v: v != 0)
    return st.one_of(st.just(p.default), values)


def _others(parsed: Scenario) -> list[str]:
    """The nodes other than paysys a fault may name: channels first, then merchants."""
    return [c.id for c in parsed.channels] + [f"merchant:{m}" for m in parsed.merchant_ids]


def _targets(spec: FaultKind, parsed: Scenario) -> list[str]:
    """Every target the catalogue allows for `spec` among the nodes of `parsed`."""
    if spec.target == "link":
        return [t for n in _others(parsed) for t in (f"paysys<->{n}", f"paysys->{n}",
                                                     f"{n}->paysys")]
    if spec.target == "groups":
        return ["paysys | " + ", ".join(_others(parsed))]   # _fault draws the other side
    if spec.target == "merchant":
        return ["merchant:*", *(f"merchant:{m}" for m in parsed.merchant_ids)]
    if spec.family == "statement" and parsed.recon is None:
        return []       # statement files are only read by a scenario that reconciles
    if spec.target == "channel":
        return [c.id for c in parsed.channels if c.kind in spec.channel_kinds
                and (spec.family != "statement" or c.statement in spec.formats)]
    return ["users"] if spec.target == "users" else ["paysys"]
