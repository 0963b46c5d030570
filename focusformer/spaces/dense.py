"""The dense model of one subnet, built from timm's own ViT building blocks.

Its state-dict keys are those of ``timm.models.vision_transformer.VisionTransformer``
(``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.attn.qkv``, ...,
``norm``, ``head``), so an arch whose layers share one head count and MLP ratio
loads straight into timm's class.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Attention, Block
from torch import nn

from .autoformer import Arch, SearchSpace

#: LayerNorm as timm's VisionTransformer builds it.
ViTLayerNorm = partial(nn.LayerNorm, eps=1e-6)


class SubnetViT(nn.Module):
    """A plain ViT with per-layer head counts and MLP ratios; classifies from the class token."""

    def __init__(self, arch: Arch, space: SearchSpace, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        space.validate(arch)
        self.arch, self.space = arch, space
        e = arch.embed_dim
        self.patch_embed = PatchEmbed(space.image_size, space.patch_size, space.in_chans, e)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e))
        self.pos_embed = nn.Parameter(torch.zeros(1, space.num_tokens, e))
        drop_path = torch.linspace(0, drop_path_rate, arch.depth).tolist()
        self.blocks = nn.Sequential(
            *(
                _block(e, heads, ratio, space.head_dim, dp)
                for heads, ratio, dp in zip(arch.num_heads, arch.mlp_ratio, drop_path)
            )
        )
        self.norm = ViTLayerNorm(e)
        self.head = nn.Linear(e, space.num_classes)
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def _block(dim: int, num_heads: int, mlp_ratio: float, head_dim: int, drop_path: float) -> Block:
    # timm's Block cannot pass a head dim to its attention (q/k/v width is heads x head_dim,
    # not dim), so it is built with a placeholder that the real attention then replaces.
    block = Block(
        dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=drop_path,
        norm_layer=ViTLayerNorm, attn_layer=nn.Identity,
    )
    block.attn = Attention(dim, num_heads, attn_head_dim=head_dim, qkv_bias=True)
    return block
