"""Random distributions of non-negative integers, as scenario files declare them.

A scenario writes a distribution as an integer (a fixed value) or as a table naming it:

    {dist = "fixed", value = N}
    {dist = "uniform", low = A, high = B}          A <= B; integers give every integer in [A, B]
    {dist = "normal", mean = M, stdev = S}         samples below 0 are clamped to 0
    {dist = "lognormal", median = M, p99 = P}      P > M > 0; sigma = ln(P / M) / 2.326
    {dist = "exponential", mean = M}               M > 0

plus an optional `max = C` cap on any of them. Durations inside a distribution are integers of
ms. The kinds are the table `KINDS` (kind -> parameter names); `Dist.parse` validates a value,
`Dist.sample(rng)` draws a non-negative int (rounded, capped), `Dist.mean()` gives the
approximate mean for docs and reports. A Dist never touches the global `random`.
"""

import math
import random
from dataclasses import dataclass
from functools import cached_property

from sim.durations import FieldError, show

Z99 = 2.326  # the 99th percentile of the standard normal distribution
KINDS: dict[str, tuple[str, ...]] = {
    "fixed": ("value",),
    "uniform": ("low", "high"),
    "normal": ("mean", "stdev"),
    "lognormal": ("median", "p99"),
    "exponential": ("mean",),
}
_MAX_EXPONENT = 700.0  # e**700 is about 1e304: keeps lognormal samples finite
_EXAMPLE = '{dist = "uniform", low = 1, high = 9}'
MINOR_UNITS = "an integer number of minor units"


@dataclass(frozen=True)
class Dist:
    """One distribution: its `kind` (a key of KINDS), its parameters as (name, value) pairs in the
    order of KINDS, and an optional cap `max` (None = no cap)."""

    kind: str
    params: tuple[tuple[str, int | float], ...]
    max: int | float | None = None

    def __post_init__(self) -> None:
        names = tuple(name for name, _ in self.params)
        if self.kind not in KINDS or names != KINDS[self.kind]:
            raise ValueError(f"bad Dist {self.kind!r} with parameters {names}")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def fixed(cls, value: int) -> "Dist":
        return cls("fixed", (("value", value),))

    @classmethod
    def parse(cls, value: object, where: str, *, money: bool = False) -> "Dist":
        """`value` from a TOML file as a Dist, or FieldError naming `where` ("file: key.path").

        With `money`, every parameter must be an integer (minor units are never floats).
        """
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.fixed(_number(value, where, money, minimum=0))
        if isinstance(value, float) and money:
            raise FieldError(where, f"expected {MINOR_UNITS}, got {show(value)}")
        if not isinstance(value, dict):
            raise FieldError(
                where, f"expected an integer or a table like {_EXAMPLE}, got {show(value)}"
            )
        kind = value.get("dist")
        if kind is None:
            raise FieldError(f"{where}.dist", f"missing; expected one of {_kinds()}")
        if kind not in KINDS:
            raise FieldError(f"{where}.dist", f"expected one of {_kinds()}, got {show(kind)}")
        allowed = ("dist", *KINDS[kind], "max")
        for key in value:
            if key not in allowed:
                raise FieldError(
                    f"{where}.{key}",
                    f'unknown key for dist "{kind}"; expected one of: {", ".join(allowed)}',
                )
        params = {}
        for name in KINDS[kind]:
            if name not in value:
                raise FieldError(
                    f"{where}.{name}", f'missing; dist "{kind}" needs {", ".join(KINDS[kind])}'
                )
            params[name] = _number(value[name], f"{where}.{name}", money, minimum=0)
        _check_shape(kind, params, where)
        cap = value.get("max")
        if cap is not None:
            cap = _number(cap, f"{where}.max", money, minimum=0)
        return cls(kind, tuple(params.items()), cap)

    # -- use ---------------------------------------------------------------------------------
    def param(self, name: str) -> int | float:
        """The value of parameter `name` (KeyError if this kind has none such)."""
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(name)

    def sample(self, rng: random.Random) -> int:
        """One draw from `rng`: a non-negative int, rounded, at most `max`."""
        x = self._draw(rng)
        if self.max is not None:
            x = min(x, self.max)
        return max(0, round(x))

    @cached_property
    def _draw(self):
        """The drawing function of this kind, its parameters bound once (the hot path)."""
        p = dict(self.params)
        if self.kind == "fixed":
            value = p["value"]
            return lambda rng: value
        if self.kind == "uniform":
            low, high = p["low"], p["high"]
            if isinstance(low, int) and isinstance(high, int):
                return lambda rng: rng.randint(low, high)
            return lambda rng: rng.uniform(low, high)
        if self.kind == "normal":
            mean, stdev = p["mean"], p["stdev"]
            return lambda rng: rng.normalvariate(mean, stdev)
        if self.kind == "lognormal":
            mu, sigma = _lognormal(p["median"], p["p99"])
            exp = math.exp
            return lambda rng: exp(min(mu + sigma * rng.normalvariate(0.0, 1.0), _MAX_EXPONENT))
        rate = 1.0 / p["mean"]  # exponential
        return lambda rng: rng.expovariate(rate)

    def mean(self) -> float:
        """The mean of the distribution, approximately: exact without a cap (normal: of the
        clamped value), `min(mean, max)` with one."""
        p = dict(self.params)
        if self.kind == "fixed":
            m = float(p["value"])
        elif self.kind == "uniform":
            m = (p["low"] + p["high"]) / 2
        elif self.kind == "normal":
            mu, sd = p["mean"], p["stdev"]
            if sd == 0:
                m = float(mu)
            else:  # E[max(0, X)] for X ~ N(mu, sd)
                z = mu / sd
                pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
                cdf = (1 + math.erf(z / math.sqrt(2))) / 2
                m = mu * cdf + sd * pdf
        elif self.kind == "lognormal":
            mu, sigma = _lognormal(p["median"], p["p99"])
            m = math.exp(min(mu + sigma * sigma / 2, _MAX_EXPONENT))
        else:
            m = float(p["mean"])
        return m if self.max is None else min(m, float(self.max))

    def as_toml(self) -> dict:
        """The table a scenario file would hold for this distribution (Dist.parse reads it back)."""
        table: dict = {"dist": self.kind, **dict(self.params)}
        if self.max is not None:
            table["max"] = self.max
        return table

    def describe(self) -> str:
        """Short text for docs and reports: `lognormal(median=5000, p99=300000, max=9000)`."""
        args = [f"{k}={v}" for k, v in self.params]
        if self.max is not None:
            args.append(f"max={self.max}")
        return f"{self.kind}({', '.join(args)})"


def _kinds() -> str:
    return ", ".join(f'"{kind}"' for kind in KINDS)


def _number(value: object, where: str, money: bool, minimum: float) -> int | float:
    """A finite number >= minimum (an int when `money`), or FieldError."""
    if money:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(where, f"expected {MINOR_UNITS}, got {show(value)}")
        if value < minimum:
            raise FieldError(where, f"expected {MINOR_UNITS} >= {minimum}, got {show(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(where, f"expected a number >= {minimum}, got {show(value)}")
    if value < minimum:
        raise FieldError(where, f"expected a number >= {minimum}, got {show(value)}")
    return value


def _check_shape(kind: str, p: dict, where: str) -> None:
    """The relations between parameters that a single number check cannot see."""
    if kind == "uniform" and p["low"] > p["high"]:
        raise FieldError(
            f"{where}.high", f"expected a number >= low ({p['low']}), got {show(p['high'])}"
        )
    if kind == "lognormal":
        if p["median"] <= 0:
            raise FieldError(f"{where}.median", f"expected a number > 0, got {show(p['median'])}")
        if p["p99"] <= p["median"]:
            raise FieldError(
                f"{where}.p99",
                f"expected a number > median ({p['median']}), got {show(p['p99'])}",
            )
    if kind == "exponential" and p["mean"] <= 0:
        raise FieldError(f"{where}.mean", f"expected a number > 0, got {show(p['mean'])}")


def _lognormal(median: float, p99: float) -> tuple[float, float]:
    """(mu, sigma) of the normal behind a lognormal with this median and 99th percentile."""
    return math.log(median), math.log(p99 / median) / Z99
