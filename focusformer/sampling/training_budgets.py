"""Where training spends its steps: the budgets users deploy at, and the share of steps per band.

Budget-aware strategies (focus, attentive) draw each step's MAC budget from a
:class:`BudgetDistribution`. With target budgets (``train.target_budgets``, where users
deploy) it is one of them. Without, by default (``train.budget_prior: uniform``) it is the
MAC count of a uniformly drawn subnet: the budgets uniform sampling trains at, so a steered
step costs what a uniform step costs and no compute drifts to a degenerate end of the range
(where a space's range reaches networks of identity layers only, log-uniform budgets spend
much of training there). ``log-uniform`` over the space's MAC range remains an option.
:class:`BandTally` counts the share of trained
subnets that fall in each band, for every strategy, so runs can be compared by where their
compute went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from ..budget import format_count
from ..config import BudgetPrior
from ..spaces import SearchSpace
from ..spaces.counts import count_macs


class BudgetDistribution(Protocol):
    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` MAC budgets (float64)."""
        ...


@dataclass(frozen=True)
class TargetBudgets:
    """One of the budgets users deploy at, uniformly."""

    targets: tuple[float, ...]

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.targets, dtype=np.float64), size=n)


@dataclass(frozen=True)
class LogUniformBudgets:
    """Log-uniform in ``[low, high]``: every doubling of MACs gets the same share of steps."""

    low: float
    high: float

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.exp(rng.uniform(np.log(self.low), np.log(self.high), size=n))


@dataclass(frozen=True)
class UniformSubnetBudgets:
    """The MACs of uniformly drawn subnets of ``space``: where uniform sampling trains."""

    space: SearchSpace

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray([count_macs(self.space.sample(rng), self.space) for _ in range(n)], dtype=np.float64)


def budget_distribution(space: SearchSpace, targets: Sequence[float] = (),
                        prior: BudgetPrior = "uniform") -> BudgetDistribution:
    """The targets if any, else the ``prior`` over ``space``'s MAC range."""
    if targets:
        return TargetBudgets(tuple(float(t) for t in targets))
    if prior == "log-uniform":
        macs = space.cost_model("macs")
        return LogUniformBudgets(macs.min_cost, macs.max_cost)
    return UniformSubnetBudgets(space)


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
