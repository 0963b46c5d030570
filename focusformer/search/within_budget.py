"""Archs within a MAC, parameter or latency budget, on exact cost bounds.

Sampling within budget (:func:`sample_within_budget`) makes a space's decisions in order (the
network-wide ones, then each layer's), each uniformly among the choices that can still be
completed within budget, on exact bounds (:class:`~focusformer.spaces.costs.PartialArchs`), so
some choice is always feasible at every decision once the first one was: no rejection loop.
Every arch it gives is valid and within budget (cost ``<=`` budget, counted exactly as
:func:`~focusformer.spaces.counts.count_macs` / ``count_params``). The searches
(:mod:`~focusformer.search.evolution`, :mod:`~focusformer.search.random_search`) draw, repair
and check their archs with it.
"""

from __future__ import annotations

import math
from typing import get_args

import numpy as np

from ..budget import Budget, BudgetKind, check_reachable
from ..errors import ConfigError
from ..spaces import SearchSpace
from ..spaces.base import ArchBase
from ..spaces.costs import decide

#: Consecutive draws of :func:`sample_within_budget` without a new arch after which the
#: in-budget space counts as exhausted (initial population, random search).
STALE_DRAWS = 200


class BudgetCosts:
    """Exact cost (MACs or params) of a space's archs, and walks through its decisions within a
    limit, on the same exact bounds the sampler masks with (:class:`~focusformer.spaces.costs.PartialArchs`)."""

    def __init__(self, space: SearchSpace, budget: Budget) -> None:
        self.space = space
        self.model = budget.cost_model(space)
        self.min_cost, self.max_cost = self.model.min_cost, self.model.max_cost

    def cost(self, arch: ArchBase) -> float:
        return float(self.model.count(self.space.encode(arch)[None])[0])

    def walk(self, limit: float, rng: np.random.Generator, preferred: ArchBase | None = None) -> ArchBase:
        """An arch within ``limit``, decided in order (the network-wide decisions, then each layer's).

        At each decision the feasible choices are those with a completion within ``limit``
        (exact lower bounds). ``preferred``'s value is kept when it is active there and feasible;
        otherwise the choice is uniform among the feasible ones. Needs ``limit >= self.min_cost``.
        """
        wanted = self.space.encode(preferred) if preferred is not None else None

        def rule(slot: int, valid: list[int], feasible: list[int]) -> int:
            if wanted is not None and wanted[slot] in feasible:
                return int(wanted[slot])
            return uniform_choice(rng, feasible)

        return self.space.decode(decide(self.model, rule, limit))


def checked_costs(space: SearchSpace, budget: Budget) -> BudgetCosts:
    """The cost tables for ``budget``'s kind; ConfigError if no subnet of ``space`` fits it."""
    _check_kind(budget)
    value = budget.value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ConfigError(f"budget {value!r}: must be a finite number")
    costs = BudgetCosts(space, budget)
    check_reachable(budget, costs.min_cost, costs.max_cost)
    return costs


def _check_kind(budget: Budget) -> None:
    if budget.kind not in get_args(BudgetKind):
        raise ConfigError(f"budget kind {budget.kind!r}: must be one of {', '.join(map(repr, get_args(BudgetKind)))}")


def within_budget(arch: ArchBase, space: SearchSpace, budget: Budget) -> bool:
    """Whether ``arch`` (which must be an arch of ``space``, else ConfigError) costs at most ``budget``."""
    space.validate(arch)
    _check_kind(budget)
    return BudgetCosts(space, budget).cost(arch) <= budget.value


def sample_within_budget(space: SearchSpace, budget: Budget, rng: np.random.Generator) -> ArchBase:
    """A random arch of ``space`` within ``budget``, with no rejection loop.

    Decisions are made in order (the network-wide ones, then each layer's), each uniformly
    among the choices that can still be completed within budget. Not uniform over archs:
    cheap choices are feasible more often. ConfigError, naming the valid range, if the
    budget is below the smallest subnet. A budget above the largest subnet allows every arch.
    """
    return checked_costs(space, budget).walk(budget.value, rng)


def uniform_choice(rng: np.random.Generator, valid: list[int]) -> int:
    return valid[int(rng.integers(len(valid)))]


def draw_new(count: int, seen: set[ArchBase], costs: BudgetCosts, limit: float, rng: np.random.Generator) -> list[ArchBase]:
    """Up to ``count`` distinct archs not in ``seen``; stops after STALE_DRAWS draws in a row bring nothing new."""
    seen = set(seen)
    drawn: list[ArchBase] = []
    stale = 0
    while len(drawn) < count and stale < STALE_DRAWS:
        arch = costs.walk(limit, rng)
        if arch in seen:
            stale += 1
        else:
            seen.add(arch)
            drawn.append(arch)
            stale = 0
    return drawn
