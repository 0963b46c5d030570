"""Uniform sampling's draws: what AutoFormer trains, and where every focus step starts.

:class:`UniformDraws` draws from the caller's stream (:func:`draw_stream`), so that the focus
sampler, which starts each step from the draw uniform sampling would make, makes the very
draws of a uniform run with the same seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..config import UNIFORM_TARGET_BAND
from ..spaces import SearchSpace
from ..spaces.base import ArchBase
from ..spaces.counts import count_macs
from .calibration import calibrate_identity
from .sampler import ArchSampler


def draw_stream(seed: int) -> np.random.Generator:
    """The stream uniform draws come from, for uniform sampling and the focus sampler alike."""
    return np.random.default_rng(seed)


class UniformDraws:
    """Uniformly random subnets, as AutoFormer trains them.

    With ``budgets`` each draw first picks one of them uniformly, then draws a subnet for it: on a
    space with identity layers, every layer an identity with the probability calibrated for that
    budget (ViTAS's way); on a space without, uniformly within the budget's band
    ``[(1 - band) * budget, budget]`` (exact cost masking, no rejection). Either way the subnets
    sit at the budgets users deploy at. Draws use the caller's ``rng`` only.
    """

    def __init__(self, space: SearchSpace, rng: np.random.Generator, budgets: Sequence[float] = (),
                 seed: int = 0, band: float = UNIFORM_TARGET_BAND) -> None:
        self.space, self.rng, self.budgets = space, rng, tuple(float(b) for b in budgets)
        calibrated = space.has_identity
        self.calibrations = tuple(calibrate_identity(space, b, seed=seed) for b in self.budgets) if calibrated else ()
        self.in_band = ArchSampler(space, band=band) if self.budgets and not calibrated else None

    def draw(self) -> tuple[ArchBase, float]:
        """A subnet and the budget it stands for: the target budget it was drawn for, else its MACs."""
        if not self.budgets:
            arch = self.space.sample(self.rng)
            return arch, float(count_macs(arch, self.space))
        which = int(self.rng.integers(len(self.budgets)))
        if self.calibrations:
            return self.space.sample(self.rng, identity_prob=self.calibrations[which].identity_prob), self.budgets[which]
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        budget = torch.tensor([self.budgets[which]], dtype=torch.float64)
        code = self.in_band.sample(budget, generator=generator, uniform=True).codes[0]
        return self.space.decode(code.numpy()), self.budgets[which]
