"""The base of the families' weight-sharing supernets.

``create_supernet(space)`` (``registry.py``) builds the supernet of ``space``'s family. The subnet to run is an
argument of ``forward``, so running one subnet leaves no state behind. Parameter names
follow timm's ``VisionTransformer`` wherever a family has a timm counterpart, so a
subnet's inherited weights load into the dense export (and, for plain ViTs, into timm).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import torch
from timm.models import named_apply
from timm.models.vision_transformer import init_weights_vit_timm
from torch import nn

from .base import ArchBase, SearchSpace
from .elastic import SIDES, Side

#: What a supernet's forward runs: one side's slices, or (``bilateral``) the sum of both sides'
#: logits, ViTAS's training step.
ForwardSide = Literal["left", "right", "bilateral"]


class ArchNetwork(Protocol):
    """What runs an arch on images, as scoring needs it: a supernet, or a subnet run's dense model
    behind the same call (``training.subnet.DenseSubnet``)."""

    space: SearchSpace
    training: bool

    def __call__(self, images: torch.Tensor, arch: ArchBase, side: ForwardSide = "left") -> torch.Tensor: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


class Supernet(nn.Module):
    """Base of the families' supernets; ``create_supernet(space)`` builds the one ``space`` needs.

    A family's supernet implements ``forward_side(images, arch, side)`` and
    ``subnet_state_dict(arch, side)`` (the weights ``arch`` inherits at that side, under the
    dense subnet's key names); ``side`` is ``left`` (leading channels) or ``right`` (trailing).
    """

    def __init__(self, space: SearchSpace, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.space = space
        self.drop_path_rate = drop_path_rate

    def init_weights(self) -> None:
        """timm's ViT initialisation: truncated-normal linear weights, zero biases, unit norms."""
        named_apply(init_weights_vit_timm, self)

    def layer_drop_probs(self, num_layers: int) -> list[float]:
        """Stochastic depth growing linearly over the subnet's own layers, as in timm's ViT."""
        return drop_path_schedule(self.drop_path_rate, num_layers)

    def forward(self, images: torch.Tensor, arch: ArchBase, side: ForwardSide = "left") -> torch.Tensor:
        """Logits of ``arch`` at ``side``; ``bilateral`` sums both sides' logits in one call, so
        a bilateral training step is one forward (and one DDP reduction), as ViTAS trains."""
        if side == "bilateral":
            left, right = (self.forward_side(images, arch, s) for s in SIDES)
            return left + right
        if side not in SIDES:
            raise ValueError(f"side: expected one of left, right, bilateral, got {side!r}")
        return self.forward_side(images, arch, side)

    def forward_side(self, images: torch.Tensor, arch: ArchBase, side: Side) -> torch.Tensor:
        raise NotImplementedError

    def extract(self, arch: ArchBase, side: Side = "left") -> nn.Module:
        """A standalone dense model of ``arch`` with its own copy of the weights it inherits at ``side``."""
        model = self.space.build_subnet(arch, drop_path_rate=self.drop_path_rate)
        model.load_state_dict(self.subnet_state_dict(arch, side))
        param = next(self.parameters())
        return model.to(device=param.device, dtype=param.dtype).train(self.training)

    def subnet_state_dict(self, arch: ArchBase, side: Side = "left") -> dict[str, torch.Tensor]:
        raise NotImplementedError


def drop_path_schedule(rate: float, num_layers: int) -> list[float]:
    """Stochastic-depth probabilities growing linearly from 0 to ``rate`` over ``num_layers`` layers."""
    last = max(num_layers - 1, 1)
    return [rate * i / last for i in range(num_layers)]


def fresh(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous copies: an exported state shares no memory with the supernet."""
    return {k: v.detach().clone().contiguous() for k, v in state.items()}
