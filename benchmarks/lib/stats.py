"""The statistics every benchmark reports: mean and spread over seeds, and paired differences by seed
with Student-t 95% intervals.

Runs of two arms are paired by their seed (never by list position): a paired difference is
``mine[seed] - reference[seed]`` over the seeds both arms have. Its interval is
``mean ± t(0.975, n - 1) · sd / sqrt(n)``; at n = 4 that multiplier is 3.18, not 2. A difference
is *significant* (at 95%) only where that interval excludes zero.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def t_multiplier(n: int, confidence: float = CONFIDENCE) -> float:
    """Student's t quantile for a two-sided interval of ``confidence`` from ``n`` values (n - 1 dof)."""
    if n < 2:
        return math.nan
    return float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation of ``n`` values (one per seed)."""

    n: int
    mean: float
    sd: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        values = [float(v) for v in values]
        if not values:
            return cls(0, math.nan, math.nan)
        return cls(len(values), statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan)

    def format(self, digits: int = 2) -> str:
        if self.n == 0:
            return "-"
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"


@dataclass(frozen=True)
class Paired:
    """Paired differences by seed and their t-interval."""

    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    confidence: float = CONFIDENCE

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.diffs) if self.diffs else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.diffs) if self.n > 1 else math.nan

    @property
    def half_width(self) -> float:
        """Half the width of the t-interval (NaN below two pairs)."""
        return t_multiplier(self.n, self.confidence) * self.sd / math.sqrt(self.n) if self.n > 1 else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return self.mean - self.half_width, self.mean + self.half_width

    @property
    def significant(self) -> bool:
        """The interval excludes zero (False below two pairs)."""
        low, high = self.interval
        return self.n > 1 and (low > 0 or high < 0)

    @property
    def positive(self) -> int:
        return sum(d > 0 for d in self.diffs)

    def format(self, digits: int = 2, bold: bool = True) -> str:
        """``+1.23 [+0.45, +2.01] (n=4, 4/4 > 0)``, bold where significant."""
        if self.n == 0:
            return "-"
        if self.n == 1:
            return f"{self.mean:+.{digits}f} (n=1)"
        low, high = self.interval
        text = f"{self.mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"
        text = f"**{text}**" if bold and self.significant else text
        return f"{text} (n={self.n}, {self.positive}/{self.n} > 0)"


def paired_by_seed(mine: Mapping[int, float], reference: Mapping[int, float],
                   confidence: float = CONFIDENCE) -> Paired:
    """``mine[seed] - reference[seed]`` over the seeds both hold a finite value for."""
    seeds = tuple(sorted(s for s in set(mine) & set(reference)
                         if math.isfinite(mine[s]) and math.isfinite(reference[s])))
    return Paired(seeds, tuple(float(mine[s]) - float(reference[s]) for s in seeds), confidence)


def ratio_by_seed(mine: Mapping[int, float], reference: Mapping[int, float],
                  confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float]]:
    """How many times ``mine`` is ``reference`` (for example evolution's seconds over specialize's),
    paired by seed: the geometric mean of the per-seed ratios and its t-interval, computed on their
    logarithms (ratios multiply, so their logarithms are what averages). NaN below two pairs."""
    logs = paired_by_seed({s: math.log(v) for s, v in mine.items() if v > 0},
                          {s: math.log(v) for s, v in reference.items() if v > 0}, confidence)
    if logs.n == 0:
        return math.nan, (math.nan, math.nan)
    low, high = logs.interval
    return math.exp(logs.mean), (math.exp(low), math.exp(high))
