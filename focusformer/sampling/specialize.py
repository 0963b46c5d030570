"""Specialization: ask the trained sampler for a few candidates for a budget, keep the best.

Instead of a full evolutionary search, the sampler (trained with the supernet) proposes
``num_candidates`` archs within the budget: its most likely arch plus samples. They are
scored with inherited weights on the search-val split and the best one is returned. The same
check of uniform draws within the budget's band needs no trained policy: the baseline for
what the policy adds.

A budget is a cap, and where the front is not monotone a subnet well below the budget's band
can beat every subnet in it (on ``vitas-fashion-mnist`` the best 8M-MAC patch-7 nets beat every
25M-MAC patch-4 one by 2 points). So the candidates also come from the bands of a few cheaper
budgets, the *rungs* (:func:`budget_rungs`), and the count is shared between the bands.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch

from ..budget import Budget
from ..config import Config
from ..errors import CheckpointError
from ..spaces.base import AnyArch
from .sampler import ArchSampler

ScoreFn = Callable[[Sequence[AnyArch]], list[float]]


@dataclass(frozen=True)
class Specialized:
    best: AnyArch
    best_score: float
    candidates: tuple[AnyArch, ...]
    scores: tuple[float, ...]


def untrained_sampler(config: Config) -> ArchSampler:
    """A sampler for the run's space whose policy was never trained, for
    ``draw_candidates(..., uniform=True)`` (only its exact in-band masking is used)."""
    return ArchSampler(config.space, config.focus.hidden_dim, config.focus.band).eval()


def sampler_from_checkpoint(payload: dict[str, Any], config: Config, run: str) -> ArchSampler:
    """The trained sampler of a focus run, or a CheckpointError saying why there is none."""
    if config.train.sampler != "focus":
        raise CheckpointError(
            f"{run}: trained with --sampler {config.train.sampler}, so it has no learned sampler; "
            "use --draws uniform (the best of uniform draws within the budget), focusformer-search, "
            "or train with --sampler focus"
        )
    state = payload.get("strategy", {})
    if not state.get("policy_updates"):
        raise CheckpointError(
            f"{run}: its sampler was never updated (the run stopped before the predictor could rank "
            "candidates: see predictor_tau in summary.csv against focus.min_tau); use --draws uniform "
            "or focusformer-search"
        )
    sampler = ArchSampler(config.space, config.focus.hidden_dim, config.focus.band, config.focus.balanced)
    try:
        sampler.load_state_dict(state["sampler"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{run}: its sampler state does not match its config ({exc})") from None
    return sampler.eval()


#: If the policy keeps proposing the same archs, further draws flatten it by these temperatures.
WIDENING_TEMPERATURES = (1.0, 1.5, 2.0, 3.0)
#: Rounds of uniform draws tried before settling for fewer distinct candidates (a narrow band
#: of a small space may hold fewer than asked for).
UNIFORM_ROUNDS = 8


@torch.no_grad()
def draw_candidates(sampler: ArchSampler, budget: Budget, num_candidates: int, seed: int,
                    uniform: bool = False) -> tuple[AnyArch, ...]:
    """Up to ``num_candidates`` distinct archs within ``budget``.

    From the trained policy: its most likely arch, then samples. A sharpened policy repeats
    itself, and a repeated arch is a wasted check, so while fewer than ``num_candidates``
    distinct archs have been drawn, further draws use the next of ``WIDENING_TEMPERATURES``.
    With ``uniform``, the policy is ignored and every draw is uniform within the budget's target
    band: what an untrained sampler would check, the baseline that isolates what the learned
    policy adds (``focusformer-specialize --draws uniform``).
    """
    costs = budget.cost_model(sampler.space)
    sampler.check_budget(budget.value, budget.kind, costs)
    generator = torch.Generator().manual_seed(seed)
    budgets = torch.full((num_candidates,), budget.value, dtype=torch.float64)
    decode = sampler.space.decode
    if uniform:
        candidates: list[AnyArch] = []
        rounds = [{"uniform": True}] * UNIFORM_ROUNDS
    else:
        candidates = [decode(sampler.sample(budgets[:1], greedy=True, kind=budget.kind, costs=costs).codes[0].numpy())]
        rounds = [{"temperature": t} for t in WIDENING_TEMPERATURES]
    for extra in rounds:
        if len(candidates) >= num_candidates:
            break
        drawn = sampler.sample(budgets, generator=generator, kind=budget.kind, costs=costs, **extra)
        candidates = list(dict.fromkeys(candidates + [decode(code.numpy()) for code in drawn.codes]))
    return tuple(candidates[:num_candidates])


#: A budget's cheaper rungs where the run has no target budgets below it: these fractions of it.
FALLBACK_RUNGS = (0.5, 0.25)


def budget_rungs(budget: Budget, target_budgets: Sequence[float], smallest: float) -> tuple[Budget, ...]:
    """The cheaper budgets whose bands specialize also checks for ``budget``, largest first.

    For a MAC budget: the run's target budgets below it (the budgets its policy was trained
    for). Otherwise, or where the run has none below it: ``FALLBACK_RUNGS`` of it. Rungs below
    the space's ``smallest`` cost are dropped.
    """
    below = sorted((t for t in target_budgets if t < budget.value), reverse=True) if budget.kind == "macs" else []
    values = below or [budget.value * f for f in FALLBACK_RUNGS]
    return tuple(replace(budget, value=float(v)) for v in values if smallest <= v < budget.value)


def run_rungs(sampler: ArchSampler, budget: Budget, config: Config) -> tuple[Budget, ...]:
    """:func:`budget_rungs` for a run: its target budgets, its space's smallest subnet."""
    smallest = sampler.cost_table(budget.kind, budget.cost_model(sampler.space)).min_cost
    return budget_rungs(budget, config.train.budgets, smallest)


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts, the first ones larger by at most one."""
    return [total // parts + (i < total % parts) for i in range(parts)]


@torch.no_grad()
def specialize(sampler: ArchSampler, budget: Budget, score: ScoreFn, num_candidates: int, seed: int,
               uniform: bool = False, rungs: Sequence[Budget] = ()) -> Specialized:
    """Score up to ``num_candidates`` distinct archs within ``budget``; return the best (ties: first).

    The candidates are ``draw_candidates``'s: from the trained policy, or with ``uniform`` drawn
    uniformly within the budget's band. With ``rungs`` (cheaper budgets, see
    :func:`budget_rungs`) the count is shared between the budget's band and theirs, the
    budget's own band first.
    """
    bands = [budget, *rungs][:num_candidates]
    candidates = tuple(dict.fromkeys(
        arch
        for i, (band, count) in enumerate(zip(bands, _shares(num_candidates, len(bands))))
        for arch in draw_candidates(sampler, band, count, seed + i, uniform)
    ))
    scores = tuple(score(candidates))
    best = max(range(len(candidates)), key=lambda i: scores[i])
    return Specialized(candidates[best], scores[best], candidates, scores)
