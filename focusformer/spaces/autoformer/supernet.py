"""AutoFormer's weight-entangled supernet.

Weight entanglement: each elastic layer keeps the largest choice's weights and a smaller
choice uses their leading slice (:mod:`focusformer.spaces.elastic`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from ..elastic import ElasticBlock, ElasticLayerNorm, ElasticLinear, ElasticPatchEmbed, EntangledQKV, Side, span
from ..supernet import Supernet, fresh
from .space import Arch, AutoFormerSpace


class AutoFormerSupernet(Supernet):
    """AutoFormer's weight-entangled ViT covering every arch of an :class:`AutoFormerSpace`."""

    def __init__(self, space: AutoFormerSpace, drop_path_rate: float = 0.0) -> None:
        super().__init__(space, drop_path_rate)
        largest = space.largest()
        embed = largest.embed_dim
        self.patch_embed = ElasticPatchEmbed(space.in_chans, embed, space.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed))
        self.pos_embed = nn.Parameter(torch.zeros(1, space.num_tokens, embed))
        width = space.num_heads[-1] * space.head_dim
        self.blocks = nn.ModuleList(
            ElasticBlock(embed, width, space.max_mlp_hidden_dim, EntangledQKV(embed, width))
            for _ in range(space.max_depth)
        )
        self.norm = ElasticLayerNorm(embed, eps=1e-6)
        self.head = ElasticLinear(embed, space.num_classes)
        self.init_weights()
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward_side(self, images: torch.Tensor, arch: Arch, side: Side) -> torch.Tensor:
        self.space.validate(arch)
        embed, head_dim = arch.embed_dim, self.space.head_dim
        channels = span(embed, self.space.largest().embed_dim, side)
        x = self.patch_embed(images, embed, side)
        cls = self.cls_token[..., channels].expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed[..., channels]
        for i, drop_prob in enumerate(self.layer_drop_probs(arch.depth)):
            heads = arch.num_heads[i]
            x = self.blocks[i](x, heads, heads * head_dim, arch.mlp_hidden_dim(i), drop_prob, side)
        x = self.norm.elastic(x, side)
        return F.linear(x[:, 0], *self.head.sliced(self.space.num_classes, embed, side))

    def subnet_state_dict(self, arch: Arch, side: Side = "left") -> dict[str, torch.Tensor]:
        """The weights ``arch`` inherits at ``side``, as fresh tensors under timm's key names."""
        self.space.validate(arch)
        e = arch.embed_dim
        channels = span(e, self.space.largest().embed_dim, side)
        head_weight, head_bias = self.head.sliced(self.space.num_classes, e, side)
        norm_weight, norm_bias = self.norm.sliced(e, side)
        state = {
            "cls_token": self.cls_token[..., channels],
            "pos_embed": self.pos_embed[..., channels],
            **{f"patch_embed.{k}": v for k, v in self.patch_embed.export_state(e, side).items()},
            "norm.weight": norm_weight,
            "norm.bias": norm_bias,
            "head.weight": head_weight,
            "head.bias": head_bias,
        }
        for i in range(arch.depth):
            heads = arch.num_heads[i]
            block = self.blocks[i].export_state(e, heads, heads * self.space.head_dim, arch.mlp_hidden_dim(i), side)
            state.update({f"blocks.{i}.{k}": v for k, v in block.items()})
        return fresh(state)
