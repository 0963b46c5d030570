"""How the trainer picks the subnets to train at each step.

A strategy proposes one or more archs per step (their gradients are summed in
one optimizer step) and carries its own state, saved in the checkpoint so a
resumed run continues the exact same sequence of subnets.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .space import Arch, SearchSpace


class SamplingStrategy(Protocol):
    name: str

    def archs_for_step(self, step: int) -> list[Arch]:
        """The subnets to train at optimizer step ``step``."""

    def state_dict(self) -> dict[str, Any]:
        """Plain data (ints, floats, strings, lists, dicts, tensors) for the checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def metrics(self) -> dict[str, float]:
        """Extra per-epoch columns for ``summary.csv`` (empty if none)."""


class UniformStrategy:
    """AutoFormer: one uniformly random subnet per step."""

    name = "uniform"

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)

    def archs_for_step(self, step: int) -> list[Arch]:
        return [self.space.sample(self.rng)]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def metrics(self) -> dict[str, float]:
        return {}


def build_strategy(name: str, space: SearchSpace, seed: int) -> SamplingStrategy:
    strategies = {"uniform": UniformStrategy}
    return strategies[name](space, seed)
