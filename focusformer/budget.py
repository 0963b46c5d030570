"""Resource budgets given on the command line: ``1.2G``, ``350M``, ``1.2e9``, ``6M`` parameters."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError

BudgetKind = Literal["macs", "params"]
_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgGtT]?)\s*$")


@dataclass(frozen=True)
class Budget:
    value: float
    kind: BudgetKind = "macs"

    def __str__(self) -> str:
        return f"{format_count(self.value)} {'MACs' if self.kind == 'macs' else 'params'}"

    @property
    def label(self) -> str:
        """A short name, safe as a folder name: ``1.2G``, ``6M-params``."""
        return format_count(self.value) + ("" if self.kind == "macs" else "-params")


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
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"budgets {text!r}: expected a comma-separated list such as 300M,600M,1.2G")
    return [parse_budget(part, kind) for part in parts]


def format_count(value: float) -> str:
    """``1234567`` -> ``1.23M``: three significant digits and a K/M/G/T suffix."""
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def check_in_range(budget: Budget, smallest: float, largest: float) -> None:
    """Raise ConfigError naming the valid range unless ``smallest <= budget <= largest``."""
    unit = "MACs" if budget.kind == "macs" else "params"
    if not smallest <= budget.value <= largest:
        raise ConfigError(
            f"budget {format_count(budget.value)} {unit} is outside this space's range: "
            f"{format_count(smallest)} (smallest subnet) to {format_count(largest)} (largest)"
        )
