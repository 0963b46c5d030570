"""Training one subnet as a dense model: a fine-tune from inherited weights or a retrain from scratch.

:class:`DenseSubnet` puts a subnet's dense model (the one an export holds) behind the supernet's
calling convention, ``model(images, arch, side)`` and ``.space``, so the trainer, the scorers,
DDP, checkpoints and reports run it as they run a supernet. The arch is fixed: the strategy
(``FixedArchStrategy``) trains it every step, and asking for another is a programming error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from timm.models import named_apply
from timm.models.vision_transformer import init_weights_vit_timm
from torch import nn

from ..errors import CheckpointError
from ..export import load_subnet
from ..spaces import ArchBase, SearchSpace
from ..spaces.elastic import Side


class DenseSubnet(nn.Module):
    """The dense model of ``arch`` (``space.build_subnet``), initialised as timm initialises a ViT."""

    def __init__(self, space: SearchSpace, arch: ArchBase, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.arch = space.validate(arch)
        # One set of weights: scorers see a single (left) side, whatever the supernet used.
        self.space = dataclasses.replace(space, weight_sharing="left")
        self.dense = space.build_subnet(arch, drop_path_rate=drop_path_rate)
        named_apply(init_weights_vit_timm, self.dense)

    def forward(self, images: torch.Tensor, arch: ArchBase | None = None, side: Side = "left") -> torch.Tensor:
        if arch is not None and arch != self.arch:
            raise ValueError(f"this dense model is {self.arch}; it cannot run {arch}")
        return self.dense(images)

    def no_weight_decay(self) -> set[str]:
        return {f"dense.{name}" for name in self.dense.no_weight_decay()}

    def load_export(self, directory: str | Path) -> None:
        """Start from the weights of the exported subnet in ``directory`` (fine-tuning)."""
        exported = load_subnet(directory)
        if exported.arch != self.arch:
            raise CheckpointError(f"{directory}: holds {exported.arch}, not {self.arch}")
        self.dense.load_state_dict(exported.state_dict())
