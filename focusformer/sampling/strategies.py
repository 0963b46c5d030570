"""How the trainer picks the subnets to train at each step: the strategies (their contract is
:class:`~focusformer.sampling.base.SamplingStrategy`) and :func:`build_strategy`, which picks
one for a config. The focus sampler's strategy is in :mod:`~focusformer.sampling.focus`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from ..config import AttentiveConfig, BudgetPrior, Config
from ..distributed import Ranks
from ..spaces import SearchSpace
from ..spaces.base import ArchBase
from .base import MinibatchLossFn, PerImageRewardFn, SamplingStrategy
from .focus import FocusStrategy
from .sampler import ArchSampler
from .training_budgets import budget_distribution
from .uniform import UniformDraws, draw_stream


class _Unsteered:
    """A strategy that learns nothing while training: no per-step work, no summary columns (and,
    unless it says otherwise, no status)."""

    def after_step(self, step: int) -> None:
        pass

    def status(self) -> str:
        return ""

    def epoch_metrics(self) -> dict[str, float]:
        return {}


class UniformStrategy(_Unsteered):
    """AutoFormer: one uniformly random subnet per step (see :class:`UniformDraws`)."""

    name = "uniform"

    def __init__(self, space: SearchSpace, seed: int, budgets: Sequence[float] = ()) -> None:
        self.space = space
        self.rng = draw_stream(seed)
        self.draws = UniformDraws(space, self.rng, budgets, seed)

    def _sample(self) -> ArchBase:
        return self.draws.draw()[0]

    def archs_for_step(self, step: int, minibatch_loss: MinibatchLossFn | None = None) -> list[ArchBase]:
        return [self._sample()]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class AttentiveStrategy(_Unsteered):
    """AttentiveNAS's BestUp: per step a budget from the deployment distribution, ``candidates``
    uniform draws in its band, and the one with the lowest loss on the step's minibatch is
    trained (no gradient for the others)."""

    name = "attentive"

    def __init__(self, space: SearchSpace, config: AttentiveConfig, seed: int, budgets: Sequence[float] = (),
                 budget_prior: BudgetPrior = "uniform", ranks: Ranks | None = None) -> None:
        self.space, self.config, self.ranks = space, config, ranks or Ranks()
        self.sampler = ArchSampler(space, band=config.band)  # only its exact in-band masking is used
        self.budgets = budget_distribution(space, budgets, budget_prior)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.budget = float("nan")

    @torch.no_grad()
    def archs_for_step(self, step: int, minibatch_loss: MinibatchLossFn | None = None) -> list[ArchBase]:
        # Rank 0 draws the candidates; every rank then scores them on its share of the batch.
        self.budget, codes = self.ranks.from_main(self._candidates() if self.ranks.is_main else None)
        candidates = [self.space.decode(code.numpy()) for code in codes]
        if len(candidates) == 1 or minibatch_loss is None:
            return candidates[:1]
        losses = minibatch_loss(candidates)
        return [candidates[min(range(len(losses)), key=losses.__getitem__)]]

    def _candidates(self) -> tuple[float, torch.Tensor]:
        budget = float(self.budgets.draw(self.rng, 1)[0])
        budgets = torch.full((self.config.candidates,), budget, dtype=torch.float64)
        return budget, self.sampler.sample(budgets, generator=self.generator, uniform=True).codes

    def status(self) -> str:
        return "" if math.isnan(self.budget) else f"budget {self.budget / 1e6:.3g}M"

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "generator": self.generator.get_state(), "budget": self.budget}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        self.budget = state["budget"]


class FixedArchStrategy(_Unsteered):
    """A subnet run: the one arch, every step."""

    name = "fixed"

    def __init__(self, arch: ArchBase) -> None:
        self.arch = arch

    def archs_for_step(self, step: int, minibatch_loss: MinibatchLossFn | None = None) -> list[ArchBase]:
        return [self.arch]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def build_strategy(config: Config, total_steps: int, score: PerImageRewardFn | None,
                   ranks: Ranks | None = None) -> SamplingStrategy:
    if config.subnet_arch is not None:
        return FixedArchStrategy(config.subnet_arch)
    name, seed, budgets, prior = config.train.sampler, config.train.seed, config.train.budgets, config.train.budget_prior
    if name == "focus":
        return FocusStrategy(config.space, config.focus, seed, total_steps, score, budgets, prior, ranks)
    if name == "attentive":
        return AttentiveStrategy(config.space, config.attentive, seed, budgets, prior, ranks)
    return UniformStrategy(config.space, seed, budgets)
