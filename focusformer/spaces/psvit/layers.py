"""The modules PSViT's supernet and dense subnet share: token pooling between stages, plain and
attention-sharing blocks, and the body that runs them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Iterator

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
    SharedMapValue,
    Side,
    span,
)
from ..supernet import drop_path_schedule

if TYPE_CHECKING:
    from .space import PSViTArch, PSViTSpace


#: Pooling kernel, stride and padding (1D conv has stride 1; the max-pool strides).
KERNEL, STRIDE, PADDING = 3, 2, 1


def pooled(n: int) -> int:
    """Length after a kernel-3, stride-2, padding-1 window: ``ceil(n / 2)``."""
    return (n + 2 * PADDING - KERNEL) // STRIDE + 1



class TokenPool(nn.Module):
    """The pooling layer between two stages, entangled across (input width, output width)."""

    def __init__(self, pooling: str, in_width: int, out_width: int) -> None:
        super().__init__()
        self.pooling = pooling
        if pooling == "1d":
            self.conv = nn.Conv1d(in_width, out_width, KERNEL, padding=PADDING)
            self.cls = ElasticLinear(in_width, out_width)
        else:
            self.conv = nn.Conv2d(in_width, out_width, KERNEL, stride=STRIDE, padding=PADDING)

    def forward(self, x: torch.Tensor, out_width: int, side: Side = "left") -> torch.Tensor:
        batch, tokens, in_width = x.shape
        weight, bias = self._conv_sliced(in_width, out_width, side)
        if self.pooling == "1d":
            y = F.conv1d(x[:, 1:].transpose(1, 2), weight, bias, padding=PADDING)
            y = F.max_pool1d(y, KERNEL, STRIDE, PADDING).transpose(1, 2)
            return torch.cat([F.linear(x[:, :1], *self.cls.sliced(out_width, in_width, side)), y], dim=1)
        grid_side = math.isqrt(tokens)
        grid = x.transpose(1, 2).reshape(batch, in_width, grid_side, grid_side)
        return F.conv2d(grid, weight, bias, stride=STRIDE, padding=PADDING).flatten(2).transpose(1, 2)

    def _conv_sliced(self, in_width: int, out_width: int, side: Side) -> tuple[torch.Tensor, torch.Tensor]:
        rows = span(out_width, self.conv.out_channels, side)
        return self.conv.weight[rows, span(in_width, self.conv.in_channels, side)], self.conv.bias[rows]

    def export_state(self, in_width: int, out_width: int, side: Side = "left") -> dict[str, torch.Tensor]:
        weight, bias = self._conv_sliced(in_width, out_width, side)
        state = {"conv.weight": weight, "conv.bias": bias}
        if self.pooling == "1d":
            state["cls.weight"], state["cls.bias"] = self.cls.sliced(out_width, in_width, side)
        return state


def plain_block(width: int, hidden: int) -> ElasticBlock:
    return ElasticBlock(width, width, hidden, EntangledQKV(width, width))


def sharing_block(width: int, hidden: int) -> ElasticBlock:
    return ElasticBlock(width, width, hidden, SharedMapValue(width, width))


class PSViTBody:
    """Stem, pooling layers, final norm and head at given (largest or exact) widths, and the forward
    pass: the supernet and the dense subnet differ only in which blocks run each stage."""

    space: PSViTSpace
    drop_path_rate: float

    def _build_body(self, widths: tuple[int, ...]) -> None:
        space = self.space
        self.patch_embed = ElasticPatchEmbed(space.in_chans, widths[0], space.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, space.tokens(0), widths[0]))
        if space.has_class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, widths[0]))
        self.pools = nn.ModuleList(TokenPool(space.pooling, a, b) for a, b in zip(widths, widths[1:]))
        self.norm = ElasticLayerNorm(widths[-1], eps=1e-6)
        self.head = ElasticLinear(widths[-1], space.num_classes)

    def _init_tokens(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        if self.space.has_class_token:
            nn.init.normal_(self.cls_token, std=1e-6)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"} if self.space.has_class_token else {"pos_embed"}

    def stage_blocks(self, arch: PSViTArch, stage: int) -> list[tuple[ElasticBlock, str]]:
        """The blocks stage ``stage`` runs, each with its role: ``plain``, ``first`` (its map is
        shared with the next block) or ``second`` (reuses the map of the block before)."""
        raise NotImplementedError

    #: Whether plain layers compute attention with explicit matmuls (the dense export, for MAC
    #: counters) or the fused kernel (the supernet, for speed).
    explicit_attention = False

    def run(self, images: torch.Tensor, arch: PSViTArch, side: Side = "left") -> torch.Tensor:
        self.space.validate(arch)
        w0, head_dim = arch.stages[0].width, self.space.head_dim
        channels = span(w0, self.pos_embed.shape[-1], side)
        x = self.patch_embed(images, w0, side)
        if self.space.has_class_token:
            x = torch.cat([self.cls_token[..., channels].expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed[..., channels]
        blocks = [self.stage_blocks(arch, s) for s in range(len(arch.stages))]
        drop_probs = iter(drop_path_schedule(self.drop_path_rate, sum(map(len, blocks))))
        for s, stage in enumerate(arch.stages):
            if s:
                x = self.pools[s - 1](x, stage.width, side)
            sizes = (stage.width // head_dim, stage.width, stage.mlp_hidden_dim)
            x = run_blocks(blocks[s], x, sizes, drop_probs, self.explicit_attention, side)
        x = self.norm.elastic(x, side)
        x = x[:, 0] if self.space.has_class_token else x.mean(dim=1)
        return F.linear(x, *self.head.sliced(self.space.num_classes, x.shape[-1], side))


def run_blocks(blocks: Iterable[tuple[ElasticBlock, str]], x: torch.Tensor, sizes: tuple[int, int, int],
               drop_probs: Iterator[float], explicit_attention: bool, side: Side = "left") -> torch.Tensor:
    """Run one stage's blocks (with their roles, see ``stage_blocks``) at ``sizes`` (heads, width,
    MLP width) and ``side``; a ``second`` block reuses the attention map of the block before it."""
    attn_map = None
    for block, role in blocks:
        if role == "plain" and not explicit_attention:
            x = block(x, *sizes, next(drop_probs), side)
        else:
            shared = attn_map if role == "second" else None
            x, attn_map = block.forward_explicit(x, *sizes, next(drop_probs), shared, side)
    return x


def cell_roles(cells: Iterable[str]) -> list[tuple[int, str, str]]:
    """(cell, block name, role) of each block the cells run, identities dropped."""
    out = []
    for c, op in enumerate(cells):
        if op == "layer":
            out.append((c, "layer", "plain"))
        elif op == "shared":
            out += [(c, "layer", "first"), (c, "sharing", "second")]
    return out
