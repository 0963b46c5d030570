"""Specialization: ask the trained sampler for a few candidates for a budget, keep the best.

Instead of a full evolutionary search, the sampler (trained with the supernet) proposes
``num_candidates`` archs within the budget: its most likely arch plus samples. They are
scored with inherited weights on the search-val split and the best one is returned. The same
check of uniform draws within the budget's band needs no trained policy: the baseline for
what the policy adds.

A budget is a cap, and where the front is not monotone a subnet well below the budget's band
can beat every subnet in it (on ViTAS's space, a cheap net of the larger patch size can beat every
net of the smaller one near the budget). So the candidates also come from the bands of a few
cheaper budgets, the *rungs* (:func:`budget_rungs`), and the count is shared between the bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..budget import Budget
from ..config import Config
from ..errors import CheckpointError
from ..spaces.base import ArchBase, ArchScoreFn
from .predictor import AccuracyPredictor
from .sampler import ArchSampler


@dataclass(frozen=True)
class Specialized:
    best: ArchBase
    best_score: float
    candidates: tuple[ArchBase, ...]
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
                    uniform: bool = False) -> tuple[ArchBase, ...]:
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
        candidates: list[ArchBase] = []
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


def budget_rungs(budget: Budget, target_budgets: Sequence[float], smallest: float,
                 largest: float = math.inf) -> tuple[Budget, ...]:
    """The cheaper budgets whose bands specialize also checks for ``budget``, largest first.

    For a MAC budget: the run's target budgets below it (the budgets its policy was trained
    for). Otherwise, or where the run has none below it: ``FALLBACK_RUNGS`` of it. Rungs below
    the space's ``smallest`` cost are dropped. A budget above the space's ``largest`` subnet is
    answered as that cost (the sampler samples it so), and has its rungs.
    """
    top = min(budget.value, largest)
    below = sorted((t for t in target_budgets if t < top), reverse=True) if budget.kind == "macs" else []
    values = below or [top * f for f in FALLBACK_RUNGS]
    return tuple(replace(budget, value=float(v)) for v in values if smallest <= v < top)


def run_rungs(sampler: ArchSampler, budget: Budget, config: Config) -> tuple[Budget, ...]:
    """:func:`budget_rungs` for a run: its target budgets, its space's smallest and largest subnets."""
    table = sampler.cost_table(budget.kind, budget.cost_model(sampler.space))
    return budget_rungs(budget, config.train.budgets, table.min_cost, table.max_cost)


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts, the first ones larger by at most one."""
    return [total // parts + (i < total % parts) for i in range(parts)]


@torch.no_grad()
def specialize_all(sampler: ArchSampler, budgets: Sequence[Budget], score: ArchScoreFn, num_candidates: int, seed: int,
                   uniform: bool = False,
                   rungs_of: Callable[[Budget], Sequence[Budget]] = lambda budget: ()) -> list[Specialized]:
    """The best scored arch under each of ``budgets``: answers never get worse as the budget grows.

    Each budget asks for ``num_candidates`` archs, shared between its own band and the bands of
    its rungs (``rungs_of``, see :func:`budget_rungs`), the budget's own band first. A band that
    several budgets ask for (a rung of one is another's own, say, or two budgets above the largest
    subnet, whose band is the largest's) is drawn once, with the largest count asked; the union is
    scored once (``score``), and each budget answers with the best scored arch under its cap,
    whichever band drew it (ties: the first drawn). Since a larger budget's cap admits every arch
    a smaller one's does, its answer scores at least as well.
    """
    wanted: dict[Budget, int] = {}
    for budget in budgets:
        bands = [_in_space(sampler, budget), *rungs_of(budget)][:num_candidates]
        for band, count in zip(bands, _shares(num_candidates, len(bands))):
            wanted[band] = max(wanted.get(band, 0), count)
    order = sorted(wanted, key=lambda band: -band.value)  # larger bands first, as one budget's list is
    candidates = tuple(dict.fromkeys(
        arch for i, band in enumerate(order) for arch in draw_candidates(sampler, band, wanted[band], seed + i, uniform)
    ))
    scores = tuple(score(candidates))
    answers = []
    for budget in budgets:
        costs = budget.cost_model(sampler.space).count(np.stack([sampler.space.encode(a) for a in candidates]))
        eligible = [i for i in range(len(candidates)) if costs[i] <= budget.value]
        best = max(eligible, key=lambda i: scores[i])  # max keeps the first of equal scores
        answers.append(Specialized(candidates[best], scores[best], tuple(candidates[i] for i in eligible),
                                   tuple(scores[i] for i in eligible)))
    return answers


def _in_space(sampler: ArchSampler, budget: Budget) -> Budget:
    """``budget``, capped at the space's largest subnet: the band the sampler draws for it, so
    that budgets above the largest share one band."""
    largest = sampler.cost_table(budget.kind, budget.cost_model(sampler.space)).max_cost
    return replace(budget, value=float(largest)) if budget.value > largest else budget


def specialize(sampler: ArchSampler, budget: Budget, score: ArchScoreFn, num_candidates: int, seed: int,
               uniform: bool = False, rungs: Sequence[Budget] = ()) -> Specialized:
    """:func:`specialize_all` for one budget: up to ``num_candidates`` distinct archs within
    ``budget``, shared between its band and its ``rungs``' bands; the best scored one."""
    return specialize_all(sampler, [budget], score, num_candidates, seed, uniform, lambda _: rungs)[0]


@torch.no_grad()
def data_free_answer(sampler: ArchSampler, budget: Budget, rungs: Sequence[Budget] = (),
                     predictor: AccuracyPredictor | None = None) -> ArchBase:
    """An answer without data: the trained policy's most probable arch in ``budget``'s band and in
    each rung's band, and of those the one the run's accuracy predictor rates highest (only the
    budget's own with no rungs or no predictor). No images are read and the supernet never runs,
    so it needs no labelled data at deployment time. The predictor was fitted on comparisons within
    one budget; how well its choice across bands holds is measured (benchmarks/RESULTS.md)."""
    archs = []
    for band in [budget, *rungs]:
        costs = band.cost_model(sampler.space)
        sampler.check_budget(band.value, band.kind, costs)
        budgets = torch.full((1,), band.value, dtype=torch.float64)
        archs.append(sampler.space.decode(sampler.sample(budgets, greedy=True, kind=band.kind, costs=costs)
                                          .codes[0].numpy()))
    if predictor is None or len(archs) == 1:
        return archs[0]
    codes = torch.as_tensor(np.stack([sampler.space.encode(arch) for arch in archs]), dtype=torch.long)
    return archs[int(predictor.eval()(codes).argmax())]


def predictor_from_checkpoint(payload: dict[str, Any], config: Config) -> AccuracyPredictor:
    """The accuracy predictor a focus run fitted while it trained (its checkpoint holds it)."""
    predictor = AccuracyPredictor(config.space, config.focus.hidden_dim)
    try:
        predictor.load_state_dict(payload["strategy"]["predictor"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"its accuracy predictor does not match its config ({exc})") from None
    return predictor.eval()
