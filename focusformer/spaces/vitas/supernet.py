"""ViTAS's supernet: per patch size a private patch embedding, class token and position embedding;
per head-count choice a private q/k projection with v shared (``private_qk``), or q/k/v entangled
as in AutoFormer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from ..elastic import (
    ElasticBlock,
    ElasticLayerNorm,
    ElasticLinear,
    ElasticPatchEmbed,
    EntangledQKV,
    PrivateQK,
    Side,
    span,
)
from ..supernet import Supernet, fresh
from .space import ViTASArch, ViTASSpace


class ViTASSupernet(Supernet):
    """ViTAS's supernet: private stems per patch size, private q/k per head count, identity layers."""

    def __init__(self, space: ViTASSpace, drop_path_rate: float = 0.0) -> None:
        super().__init__(space, drop_path_rate)
        embed, width, hidden = space.embed_dim[-1], space.qkv_dim[-1] // 3, space.mlp_dim[-1]
        self.patch_embed = nn.ModuleDict(
            {str(p): ElasticPatchEmbed(space.in_chans, embed, p) for p in space.patch_size}
        )
        self.cls_token = nn.ParameterDict({str(p): nn.Parameter(torch.zeros(1, 1, embed)) for p in space.patch_size})
        self.pos_embed = nn.ParameterDict(
            {str(p): nn.Parameter(torch.zeros(1, space.num_tokens(p), embed)) for p in space.patch_size}
        )

        def qkv() -> nn.Module:
            return PrivateQK(embed, width, space.num_heads) if space.private_qk else EntangledQKV(embed, width)

        self.blocks = nn.ModuleList(ElasticBlock(embed, width, hidden, qkv()) for _ in range(space.depth))
        self.norm = ElasticLayerNorm(embed, eps=1e-6)
        self.head = ElasticLinear(embed, space.num_classes)
        self.init_weights()
        for p in space.patch_size:
            trunc_normal_(self.pos_embed[str(p)], std=0.02)
            nn.init.normal_(self.cls_token[str(p)], std=1e-6)

    def no_weight_decay(self) -> set[str]:
        return {f"{name}.{p}" for name in ("pos_embed", "cls_token") for p in self.space.patch_size}

    def forward_side(self, images: torch.Tensor, arch: ViTASArch, side: Side) -> torch.Tensor:
        self.space.validate(arch)
        p, embed = str(arch.patch_size), arch.embed_dim
        channels = span(embed, self.space.embed_dim[-1], side)
        x = self.patch_embed[p](images, embed, side)
        cls = self.cls_token[p][..., channels].expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed[p][..., channels]
        layers = [(i, b) for i, b in enumerate(arch.blocks) if b is not None]
        for (i, block), drop_prob in zip(layers, self.layer_drop_probs(len(layers))):
            x = self.blocks[i](x, block.num_heads, block.attn_width, block.mlp_dim, drop_prob, side)
        x = self.norm.elastic(x, side)
        return F.linear(x[:, 0], *self.head.sliced(self.space.num_classes, embed, side))

    def subnet_state_dict(self, arch: ViTASArch, side: Side = "left") -> dict[str, torch.Tensor]:
        """The weights ``arch`` inherits at ``side`` under the dense model's (timm's) key names;
        identity layers are dropped, so dense block ``j`` is the ``j``-th non-identity layer."""
        self.space.validate(arch)
        p, e = str(arch.patch_size), arch.embed_dim
        channels = span(e, self.space.embed_dim[-1], side)
        head_weight, head_bias = self.head.sliced(self.space.num_classes, e, side)
        norm_weight, norm_bias = self.norm.sliced(e, side)
        state = {
            "cls_token": self.cls_token[p][..., channels],
            "pos_embed": self.pos_embed[p][..., channels],
            **{f"patch_embed.{k}": v for k, v in self.patch_embed[p].export_state(e, side).items()},
            "norm.weight": norm_weight,
            "norm.bias": norm_bias,
            "head.weight": head_weight,
            "head.bias": head_bias,
        }
        layers = [(i, b) for i, b in enumerate(arch.blocks) if b is not None]
        for j, (i, b) in enumerate(layers):
            block = self.blocks[i].export_state(e, b.num_heads, b.attn_width, b.mlp_dim, side)
            state.update({f"blocks.{j}.{k}": v for k, v in block.items()})
        return fresh(state)
