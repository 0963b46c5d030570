"""What a training strategy is to the trainer.

A strategy proposes one or more archs per step (their gradients are summed in one optimizer
step), may learn after each step, and carries its own state, saved in the checkpoint so a resumed
run continues the exact same sequence of subnets.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import torch

from ..spaces.base import ArchBase

#: Per-image scores ``(len(archs), images)`` of archs with the supernet's current weights, on
#: a fixed set of reward images, never search-val's (higher is better; ``CandidateScorer.per_image``).
PerImageRewardFn = Callable[[Sequence[ArchBase]], torch.Tensor]
#: Loss of each arch on the current training minibatch, without gradients.
MinibatchLossFn = Callable[[Sequence[ArchBase]], list[float]]


class SamplingStrategy(Protocol):
    name: str

    def archs_for_step(self, step: int, minibatch_loss: MinibatchLossFn | None = None) -> list[ArchBase]:
        """The subnets to train at optimizer step ``step`` (``minibatch_loss`` scores candidates
        on the step's own batch, for strategies that pick by it)."""

    def after_step(self, step: int) -> None:
        """Called once ``step`` optimizer steps are done."""

    def status(self) -> str:
        """A few words for the progress bar."""

    def epoch_metrics(self) -> dict[str, float]:
        """Extra per-epoch columns for ``summary.csv``; resets the epoch's tallies."""

    def state_dict(self) -> dict[str, Any]:
        """Plain data (ints, floats, strings, lists, dicts, tensors) for the checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
