"""The dense model of one PSViT arch, and one cell of it on its own (for latency tables)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..elastic import ElasticBlock

if TYPE_CHECKING:
    from .space import PSViTArch, PSViTSpace
from .layers import PSViTBody, cell_roles, plain_block, run_blocks, sharing_block


class PSViTSubnet(nn.Module, PSViTBody):
    """The dense model of one PSViT arch: only the blocks it runs, at its sizes; attention with
    explicit matmuls. A sharing block's attention holds ``v`` and ``proj`` only."""

    explicit_attention = True

    def __init__(self, space: PSViTSpace, arch: PSViTArch, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.space, self.arch, self.drop_path_rate = space, arch, drop_path_rate
        self._build_body(tuple(s.width for s in arch.stages))
        make = {"layer": plain_block, "sharing": sharing_block}
        self.stages = nn.ModuleList(
            nn.ModuleList(make[name](stage.width, stage.mlp_hidden_dim) for _, name, _ in cell_roles(stage.cells))
            for stage in arch.stages
        )
        self._init_tokens()

    def stage_blocks(self, arch: PSViTArch, stage: int) -> list[tuple[ElasticBlock, str]]:
        roles = cell_roles(arch.stages[stage].cells)
        return [(block, role) for block, (_, _, role) in zip(self.stages[stage], roles)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images, self.arch)


class PSViTCell(nn.Module):
    """One cell of a dense subnet on its own (a layer, or a pair sharing one attention map), to time."""

    def __init__(self, op: str, width: int, hidden: int, head_dim: int) -> None:
        super().__init__()
        make = {"layer": plain_block, "sharing": sharing_block}
        roles = cell_roles([op])
        self.blocks = nn.ModuleList(make[name](width, hidden) for _, name, _ in roles)
        self.roles = [role for _, _, role in roles]
        self.sizes = (width // head_dim, width, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        no_drop = itertools.repeat(0.0)
        return run_blocks(zip(self.blocks, self.roles), x, self.sizes, no_drop, explicit_attention=True)
