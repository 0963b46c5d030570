"""PSViT's weight-sharing supernet: widths entangled within a stage, pooling across (input,
output) widths, a cell's layer and its sharing pair's first layer one set of weights."""

from __future__ import annotations

import torch
from torch import nn

from ..elastic import ElasticBlock, Side, span
from ..supernet import Supernet, fresh
from .layers import PSViTBody, cell_roles, plain_block, sharing_block
from .space import PSViTArch, PSViTSpace


class PSViTSupernet(Supernet, PSViTBody):
    """Every cell holds a plain block (a ``layer`` op, and the first of a ``shared`` pair) and a
    sharing block (the second of the pair), both at the stage's largest width and MLP width."""

    def __init__(self, space: PSViTSpace, drop_path_rate: float = 0.0) -> None:
        super().__init__(space, drop_path_rate)
        widths = tuple(choices[-1] for choices in space.widths)
        self._build_body(widths)
        hidden = [int(w * space.mlp_ratio[-1]) for w in widths]
        self.stages = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleDict({"layer": plain_block(w, h), "sharing": sharing_block(w, h)})
                for _ in range(space.cells_per_stage)
            )
            for w, h in zip(widths, hidden)
        )
        self.init_weights()
        self._init_tokens()

    def stage_blocks(self, arch: PSViTArch, stage: int) -> list[tuple[ElasticBlock, str]]:
        cells = self.stages[stage]
        return [(cells[c][name], role) for c, name, role in cell_roles(arch.stages[stage].cells)]

    def forward_side(self, images: torch.Tensor, arch: PSViTArch, side: Side) -> torch.Tensor:
        return self.run(images, arch, side)

    def subnet_state_dict(self, arch: PSViTArch, side: Side = "left") -> dict[str, torch.Tensor]:
        """The weights ``arch`` inherits at ``side`` under the dense model's key names; dense block
        ``j`` of a stage is the ``j``-th block the stage runs (identity cells dropped, a pair gives two)."""
        self.space.validate(arch)
        widths = [s.width for s in arch.stages]
        w0, last = widths[0], widths[-1]
        channels = span(w0, self.pos_embed.shape[-1], side)
        norm_weight, norm_bias = self.norm.sliced(last, side)
        head_weight, head_bias = self.head.sliced(self.space.num_classes, last, side)
        state = {
            "pos_embed": self.pos_embed[..., channels],
            **{f"patch_embed.{k}": v for k, v in self.patch_embed.export_state(w0, side).items()},
            "norm.weight": norm_weight,
            "norm.bias": norm_bias,
            "head.weight": head_weight,
            "head.bias": head_bias,
        }
        if self.space.has_class_token:
            state["cls_token"] = self.cls_token[..., channels]
        for s, (pool, a, b) in enumerate(zip(self.pools, widths, widths[1:])):
            state.update({f"pools.{s}.{k}": v for k, v in pool.export_state(a, b, side).items()})
        for s, stage in enumerate(arch.stages):
            sizes = (stage.width, stage.width // self.space.head_dim, stage.width, stage.mlp_hidden_dim)
            for j, (block, _) in enumerate(self.stage_blocks(arch, s)):
                state.update({f"stages.{s}.{j}.{k}": v for k, v in block.export_state(*sizes, side).items()})
        return fresh(state)
