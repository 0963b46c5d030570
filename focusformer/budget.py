"""Resource budgets given on the command line: ``1.2G``, ``350M``, ``1.2e9`` MACs, ``6M`` parameters,
``2.5ms`` of latency on a measured latency table."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError

if TYPE_CHECKING:
    from .latency.table import LatencyTable
    from .spaces import SearchSpace
    from .spaces.costs import LayeredCost

BudgetKind = Literal["macs", "params", "latency"]
_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgGtT]?)\s*$")
#: Latency units, in milliseconds.
_TIME_UNITS = {"s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3}
_TIME_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|µs)\s*$")


@dataclass(frozen=True)
class Budget:
    """At most ``value`` MACs, parameters, or milliseconds (``kind``).

    A latency budget is only defined on a latency table measured on the target device (``lut``);
    budgets read back from result files carry none.
    """

    value: float
    kind: BudgetKind = "macs"
    lut: LatencyTable | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        if self.kind == "latency":
            return format_latency(self.value)
        return f"{format_count(self.value)} {'MACs' if self.kind == 'macs' else 'params'}"

    @property
    def label(self) -> str:
        """A short name, safe as a folder name: ``1.2G``, ``6M-params``, ``2.5ms``."""
        if self.kind == "latency":
            return f"{self.value:.3g}ms"
        return format_count(self.value) + ("" if self.kind == "macs" else "-params")

    def cost_model(self, space: SearchSpace) -> LayeredCost:
        """The exact cost table this budget limits: the space's MACs or parameters, or the latency table."""
        if self.kind != "latency":
            return space.cost_model(self.kind)
        if self.lut is None:
            raise ConfigError("a latency budget needs a latency table (build one with focusformer-latency build)")
        return self.lut.cost_model(space)

    def record(self) -> dict[str, Any]:
        """What a recorded search depends on: the value, the kind, and a latency table's fingerprint."""
        lut = {} if self.lut is None else {"lut": self.lut.fingerprint}
        return {"value": float(self.value), "kind": self.kind, **lut}


def parse_budget(text: str, kind: BudgetKind = "macs") -> Budget:
    match = _PATTERN.match(text)
    if not match:
        raise ConfigError(f"budget {text!r}: not a number; write it like 1.2G, 350M or 1.2e9")
    value = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"budget {text!r}: must be a positive number")
    return Budget(value, kind)


def parse_budgets(text: str, kind: BudgetKind = "macs") -> list[Budget]:
    """A comma-separated list of budgets, e.g. ``300M,600M,1.2G``."""
    return [parse_budget(part, kind) for part in _split(text, "300M,600M,1.2G")]


def parse_latency(text: str, lut: LatencyTable | None = None) -> Budget:
    """A latency budget such as ``2.5ms``, ``800us`` or ``0.01s`` (a unit is required)."""
    match = _TIME_PATTERN.match(text)
    if not match:
        raise ConfigError(f"latency {text!r}: write a number and a unit, like 2.5ms, 800us or 0.01s")
    value = float(match.group(1)) * _TIME_UNITS[match.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"latency {text!r}: must be a positive time")
    return Budget(value, "latency", lut)


def parse_latencies(text: str, lut: LatencyTable | None = None) -> list[Budget]:
    """A comma-separated list of latency budgets, e.g. ``1ms,2.5ms``."""
    return [parse_latency(part, lut) for part in _split(text, "1ms,2.5ms")]


def _split(text: str, example: str) -> list[str]:
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"budgets {text!r}: expected a comma-separated list such as {example}")
    return parts


def format_count(value: float) -> str:
    """``1234567`` -> ``1.23M``: three significant digits and a K/M/G/T suffix."""
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_latency(ms: float) -> str:
    return f"{ms:.3g} ms"


def check_in_range(budget: Budget, smallest: float, largest: float) -> None:
    """Raise ConfigError naming the valid range unless ``smallest <= budget <= largest``."""
    if smallest <= budget.value <= largest:
        return
    value, low, high, where = _range_words(budget, smallest, largest)
    raise ConfigError(f"budget {value} is outside this space's {where}: {low} (smallest subnet) to {high} (largest)")


def check_reachable(budget: Budget, smallest: float, largest: float) -> bool:
    """Raise ConfigError naming the valid range if no subnet fits ``budget`` (it is below
    ``smallest``); return whether it lies above ``largest`` (so that every subnet fits).

    A budget above the largest subnet is a question with an answer, the whole space: a latency
    table's range depends on the machine it was measured on, so a user cannot always know it.
    """
    if budget.value >= smallest:
        return budget.value > largest
    value, low, high, where = _range_words(budget, smallest, largest)
    raise ConfigError(f"budget {value} is below this space's {where}: {low} (smallest subnet) to {high} "
                      "(largest) or more")


def _range_words(budget: Budget, smallest: float, largest: float) -> tuple[str, str, str, str]:
    """``budget``, ``smallest`` and ``largest`` written in its unit, and the range's name; with
    more digits where three would not tell the budget from a bound."""
    if budget.kind == "latency":
        value, low, high = (format_latency(v) for v in (budget.value, smallest, largest))
        if value in (low, high):
            value, low, high = (f"{v:.6g} ms" for v in (budget.value, smallest, largest))
        return value, low, high, "range on its latency table"
    value = f"{format_count(budget.value)} {'MACs' if budget.kind == 'macs' else 'params'}"
    low, high = format_count(smallest), format_count(largest)
    if format_count(budget.value) in (low, high):
        value, low, high = f"{value} ({budget.value:,.0f})", f"{low} ({smallest:,.0f})", f"{high} ({largest:,.0f})"
    return value, low, high, "range"
