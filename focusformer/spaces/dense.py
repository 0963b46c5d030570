"""The dense model of one plain-ViT subnet, built from timm's own ViT building blocks.

Its state-dict keys are those of ``timm.models.vision_transformer.VisionTransformer``
(``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.attn.qkv``, ...,
``norm``, ``head``), so an arch whose layers share one head count, head dim and MLP
width loads straight into timm's class. AutoFormer and ViTAS subnets (identity
layers dropped) are such models; a family describes its subnet as a
:class:`DenseLayout`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from timm.layers import Mlp, PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Attention, Block
from torch import nn

from .timing import Probe, Residual

if TYPE_CHECKING:
    from .base import ArchBase, SearchSpace

#: LayerNorm as timm's VisionTransformer builds it.
ViTLayerNorm = partial(nn.LayerNorm, eps=1e-6)


@dataclass(frozen=True)
class BlockLayout:
    num_heads: int
    head_dim: int
    mlp_hidden_dim: int


@dataclass(frozen=True)
class DenseLayout:
    """Everything a plain ViT needs: input, patch size, width and each block's sizes."""

    image_size: int
    in_chans: int
    patch_size: int
    num_classes: int
    embed_dim: int
    blocks: tuple[BlockLayout, ...]

    @property
    def num_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1


class SubnetViT(nn.Module):
    """A plain ViT with per-layer head counts, head dims and MLP widths; classifies from the class token.

    Built by a family's ``space.build_subnet(arch)``, which records ``arch`` and ``space`` on it.
    """

    def __init__(self, layout: DenseLayout, arch: ArchBase | None, space: SearchSpace | None, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.arch, self.space, self.layout = arch, space, layout
        e = layout.embed_dim
        self.patch_embed = PatchEmbed(layout.image_size, layout.patch_size, layout.in_chans, e)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e))
        self.pos_embed = nn.Parameter(torch.zeros(1, layout.num_tokens, e))
        drop_path = torch.linspace(0, drop_path_rate, len(layout.blocks)).tolist()
        self.blocks = nn.Sequential(*(_block(e, b, dp) for b, dp in zip(layout.blocks, drop_path)))
        self.norm = ViTLayerNorm(e)
        self.head = nn.Linear(e, layout.num_classes)
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def _block(dim: int, layout: BlockLayout, drop_path: float) -> Block:
    # timm's Block cannot pass a head dim to its attention (q/k/v width is heads x head_dim,
    # not dim) nor an MLP width that is no whole ratio of dim, so it is built with placeholders
    # that the real attention and MLP then replace (same key names).
    block = Block(
        dim, layout.num_heads, 1.0, qkv_bias=True, drop_path=drop_path,
        norm_layer=ViTLayerNorm, attn_layer=nn.Identity, mlp_layer=_NoMlp,
    )
    block.attn = Attention(dim, layout.num_heads, attn_head_dim=layout.head_dim, qkv_bias=True)
    block.mlp = Mlp(dim, hidden_features=layout.mlp_hidden_dim, act_layer=nn.GELU)
    return block


class _NoMlp(nn.Identity):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()


def vit_base_probe(layout: DenseLayout) -> Probe:
    """The model of ``layout`` without its blocks: patch embedding, tokens, final norm and head."""
    stem = replace(layout, blocks=())
    key = ("vit-base", layout.patch_size, layout.embed_dim)
    return Probe(key, (layout.in_chans, layout.image_size, layout.image_size), lambda: SubnetViT(stem, None, None))


def vit_layer_probes(tokens: int, embed: int, layout: BlockLayout) -> tuple[Probe, Probe]:
    """One block of a :class:`SubnetViT` as its two residual halves, norm and attention, then norm
    and MLP: timed apart, the attention half is shared by every MLP width and the reverse."""
    attention = ("vit-attention", tokens, embed, layout.num_heads, layout.head_dim)
    mlp = ("vit-mlp", tokens, embed, layout.mlp_hidden_dim)

    def half(which: str) -> nn.Module:
        block = _block(embed, layout, 0.0)
        return Residual(block.norm1, block.attn) if which == "attention" else Residual(block.norm2, block.mlp)

    return (Probe(attention, (tokens, embed), lambda: half("attention")),
            Probe(mlp, (tokens, embed), lambda: half("mlp")))
