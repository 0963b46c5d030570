"""Where training spends its steps: the budgets users deploy at, and the share of steps per band.

Budget-aware strategies (focus, attentive) draw each step's MAC budget from a
:class:`BudgetDistribution`: log-uniform over the space's MAC range by default (deployment
budgets spread over orders of magnitude, from phones to servers), or a list of target
budgets. :class:`BandTally` counts the share of trained subnets that fall in each band,
for every strategy, so runs can be compared by where their compute went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..budget import format_count


@dataclass(frozen=True)
class BudgetDistribution:
    """MAC budgets for training: one of ``targets`` uniformly, else log-uniform in ``[low, high]``."""

    low: float
    high: float
    targets: tuple[float, ...] = ()

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.targets:
            return rng.choice(np.asarray(self.targets, dtype=np.float64), size=n)
        return np.exp(rng.uniform(np.log(self.low), np.log(self.high), size=n))


@dataclass(frozen=True)
class Band:
    label: str
    low: float  # inclusive
    high: float  # inclusive


def budget_bands(low: float, high: float, targets: Sequence[float], band: float, bins: int = 4) -> tuple[Band, ...]:
    """The bands ``summary.csv`` reports step shares for.

    With targets: each target's band ``[(1 - band) * b, b]`` (where a budget-aware strategy
    aims). Without: ``bins`` equal slices of the log-MAC range. Subnets outside every band
    count as ``other``.
    """
    if targets:
        return tuple(Band(format_count(b), (1.0 - band) * b, b) for b in targets)
    edges = np.exp(np.linspace(np.log(low), np.log(high), bins + 1))
    edges[0], edges[-1] = low, high  # exactly: the smallest and largest subnets fall inside
    return tuple(Band(f"{format_count(a)}-{format_count(b)}", a, b) for a, b in zip(edges[:-1], edges[1:]))


@dataclass
class BandTally:
    """Counts of trained subnets per band (per epoch); ``shares`` gives the ``summary.csv`` columns."""

    bands: tuple[Band, ...]
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, macs: float) -> None:
        label = next((b.label for b in self.bands if b.low <= macs <= b.high), "other")
        self.counts[label] = self.counts.get(label, 0) + 1

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values())
        labels = [b.label for b in self.bands] + ["other"]
        return {f"share_{label}": (self.counts.get(label, 0) / total if total else float("nan")) for label in labels}

    def reset(self) -> None:
        self.counts = {}
