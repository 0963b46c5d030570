"""Elastic layers shared by the families' supernets (weight entanglement).

Each layer holds the weights of its largest size; a smaller size uses a slice of them.
Which slice is the *side*: ``left`` takes the leading channels (first rows / columns),
as AutoFormer does; ``right`` takes the trailing ones (last rows / columns), the other
half of ViTAS's bilateral weight sharing (from BCNet), so that a supernet trained on
both sides trains every channel about equally often. One side applies to every sliced
tensor of a subnet. Sizes and the side are arguments of ``forward``, so running one
subnet leaves no state behind. ``sliced`` / ``export_state`` give the weights a size
inherits, under timm's key names.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from timm.layers import drop_path
from torch import nn

WeightAndBias = tuple[torch.Tensor, torch.Tensor]
#: Which end of every elastic dimension a subnet takes its channels from.
Side = Literal["left", "right"]
SIDES: tuple[Side, ...] = ("left", "right")


def span(size: int, full: int, side: Side) -> slice:
    """The ``size`` of ``full`` channels that ``side`` uses: the first (left) or the last (right)."""
    return slice(0, size) if side == "left" else slice(full - size, full)


class ElasticLinear(nn.Linear):
    """A linear layer whose ``rows x cols`` block at one side can be used on its own."""

    def sliced(self, rows: int, cols: int, side: Side = "left") -> WeightAndBias:
        out_features, in_features = self.weight.shape
        rows_at = span(rows, out_features, side)
        return self.weight[rows_at, span(cols, in_features, side)], self.bias[rows_at]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, tokens, width) to (batch, heads, tokens, width / heads)."""
    batch, tokens, width = x.shape
    return x.view(batch, tokens, num_heads, width // num_heads).transpose(1, 2)


class ElasticStackedLinear(nn.Linear):
    """``parts`` projections stacked in one matrix (q/k/v: rows ``[q; k; v]``, each head-major).

    A width ``w`` uses ``w`` rows of *each* part (the first ``w``, or on the right side the last),
    weights and biases alike (slicing the stacked matrix as one block would mix the parts).
    """

    def __init__(self, in_features: int, width: int, parts: int) -> None:
        super().__init__(in_features, parts * width)
        self.max_width, self.parts = width, parts

    def sliced(self, width: int, in_features: int, side: Side = "left") -> WeightAndBias:
        rows = span(width, self.max_width, side)
        weight = self.weight.view(self.parts, self.max_width, -1)[:, rows, span(in_features, self.in_features, side)]
        bias = self.bias.view(self.parts, self.max_width)[:, rows]
        return weight.reshape(self.parts * width, in_features), bias.reshape(self.parts * width)


class ElasticLayerNorm(nn.LayerNorm):
    def sliced(self, dim: int, side: Side = "left") -> WeightAndBias:
        at = span(dim, self.weight.shape[0], side)
        return self.weight[at], self.bias[at]

    def elastic(self, x: torch.Tensor, side: Side = "left") -> torch.Tensor:
        dim = x.shape[-1]
        return F.layer_norm(x, (dim,), *self.sliced(dim, side), self.eps)


class ElasticPatchEmbed(nn.Module):
    """timm's ``PatchEmbed`` (a strided convolution) with an elastic number of output channels."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor, embed: int, side: Side = "left") -> torch.Tensor:
        weight, bias = self.sliced(embed, side)
        x = F.conv2d(images, weight, bias, stride=self.proj.stride)
        return x.flatten(2).transpose(1, 2)

    def sliced(self, embed: int, side: Side = "left") -> WeightAndBias:
        at = span(embed, self.proj.out_channels, side)
        return self.proj.weight[at], self.proj.bias[at]

    def export_state(self, embed: int, side: Side = "left") -> dict[str, torch.Tensor]:
        weight, bias = self.sliced(embed, side)
        return {"proj.weight": weight, "proj.bias": bias}


class EntangledQKV(nn.Module):
    """q, k and v from one stacked projection, shared by every head count (AutoFormer)."""

    def __init__(self, embed_dim: int, attn_width: int) -> None:
        super().__init__()
        self.qkv = ElasticStackedLinear(embed_dim, attn_width, parts=3)

    def project(self, x: torch.Tensor, num_heads: int, width: int, side: Side = "left") -> tuple[torch.Tensor, ...]:
        """q, k and v of ``x`` (batch, tokens, embed), each (batch, heads, tokens, head dim)."""
        batch, tokens, embed = x.shape
        qkv = F.linear(x, *self.qkv.sliced(width, embed, side))
        return qkv.view(batch, tokens, 3, num_heads, width // num_heads).permute(2, 0, 3, 1, 4).unbind(0)

    def export_state(self, num_heads: int, width: int, embed: int, side: Side = "left") -> dict[str, torch.Tensor]:
        weight, bias = self.qkv.sliced(width, embed, side)
        return {"qkv.weight": weight, "qkv.bias": bias}


class PrivateQK(nn.Module):
    """ViTAS's private attention maps: a q/k projection per head-count choice, v shared by all.

    Keys ``qk.<heads>`` hold ``[q; k]``; the exported model fuses ``[q; k; v]`` as timm does.
    """

    def __init__(self, embed_dim: int, attn_width: int, head_choices: tuple[int, ...]) -> None:
        super().__init__()
        self.qk = nn.ModuleDict({str(h): ElasticStackedLinear(embed_dim, attn_width, parts=2) for h in head_choices})
        self.v = ElasticLinear(embed_dim, attn_width)

    def project(self, x: torch.Tensor, num_heads: int, width: int, side: Side = "left") -> tuple[torch.Tensor, ...]:
        """q, k and v of ``x`` (batch, tokens, embed), each (batch, heads, tokens, head dim)."""
        batch, tokens, embed = x.shape
        # Two matmuls rather than one on concatenated weights: no weight copy per step.
        qk = F.linear(x, *self.qk[str(num_heads)].sliced(width, embed, side))
        q, k = qk.view(batch, tokens, 2, num_heads, width // num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, split_heads(F.linear(x, *self.v.sliced(width, embed, side)), num_heads)

    def export_state(self, num_heads: int, width: int, embed: int, side: Side = "left") -> dict[str, torch.Tensor]:
        qk_weight, qk_bias = self.qk[str(num_heads)].sliced(width, embed, side)
        v_weight, v_bias = self.v.sliced(width, embed, side)
        return {"qkv.weight": torch.cat([qk_weight, v_weight]), "qkv.bias": torch.cat([qk_bias, v_bias])}


class SharedMapValue(nn.Module):
    """The attention of a layer that reuses the attention map of the layer before it: v only.

    Attention sharing (PSViT): the map ``softmax(q k^T)`` of one layer serves the next, which
    then has no q, k or softmax of its own, only v and the output projection.
    """

    def __init__(self, embed_dim: int, attn_width: int) -> None:
        super().__init__()
        self.v = ElasticLinear(embed_dim, attn_width)

    def value(self, x: torch.Tensor, num_heads: int, width: int, side: Side = "left") -> torch.Tensor:
        """v of ``x`` (batch, tokens, embed) as (batch, heads, tokens, head dim)."""
        return split_heads(F.linear(x, *self.v.sliced(width, x.shape[-1], side)), num_heads)

    def export_state(self, num_heads: int, width: int, embed: int, side: Side = "left") -> dict[str, torch.Tensor]:
        weight, bias = self.v.sliced(width, embed, side)
        return {"v.weight": weight, "v.bias": bias}


class ElasticBlock(nn.Module):
    """One pre-norm transformer layer at its largest size, runnable at any smaller one.

    ``qkv`` is :class:`EntangledQKV` or :class:`PrivateQK`; a layer's head dim is its attention
    width divided by its heads, so a fixed head dim (AutoFormer) and free widths (ViTAS) share it.
    With :class:`SharedMapValue` the layer reuses an attention map (:meth:`forward_explicit`).
    """

    def __init__(self, embed_dim: int, attn_width: int, mlp_hidden_dim: int, qkv: nn.Module) -> None:
        super().__init__()
        self.norm1 = ElasticLayerNorm(embed_dim, eps=1e-6)
        self.attn = qkv
        self.attn.proj = ElasticLinear(attn_width, embed_dim)
        self.norm2 = ElasticLayerNorm(embed_dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = ElasticLinear(embed_dim, mlp_hidden_dim)
        self.mlp.fc2 = ElasticLinear(mlp_hidden_dim, embed_dim)

    def forward(self, x: torch.Tensor, num_heads: int, attn_width: int, mlp_hidden_dim: int,
                drop_prob: float, side: Side = "left") -> torch.Tensor:
        attended = self._attention(self.norm1.elastic(x, side), num_heads, attn_width, side)
        return self._residuals(x, attended, mlp_hidden_dim, drop_prob, side)

    def forward_explicit(self, x: torch.Tensor, num_heads: int, attn_width: int, mlp_hidden_dim: int,
                         drop_prob: float, attn_map: torch.Tensor | None = None,
                         side: Side = "left") -> tuple[torch.Tensor, torch.Tensor]:
        """As ``forward``, but the attention map ``softmax(q k^T / sqrt(head dim))`` is computed with
        explicit matmuls (which MAC counters see, unlike the fused kernel) and returned, so the next
        layer can share it. Given ``attn_map`` (attention sharing), no q or k is computed: v only."""
        h = self.norm1.elastic(x, side)
        batch, tokens, embed = h.shape
        if attn_map is None:
            q, k, v = self.attn.project(h, num_heads, attn_width, side)
            attn_map = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        else:
            v = self.attn.value(h, num_heads, attn_width, side)
        out = (attn_map @ v).transpose(1, 2).reshape(batch, tokens, attn_width)
        attended = F.linear(out, *self.attn.proj.sliced(embed, attn_width, side))
        return self._residuals(x, attended, mlp_hidden_dim, drop_prob, side), attn_map

    def _residuals(self, x: torch.Tensor, attended: torch.Tensor, hidden: int, drop_prob: float,
                   side: Side) -> torch.Tensor:
        x = x + drop_path(attended, drop_prob, self.training)
        return x + drop_path(self._mlp(self.norm2.elastic(x, side), hidden, side), drop_prob, self.training)

    def _attention(self, x: torch.Tensor, num_heads: int, width: int, side: Side) -> torch.Tensor:
        batch, tokens, embed = x.shape
        q, k, v = self.attn.project(x, num_heads, width, side)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(batch, tokens, width)
        return F.linear(out, *self.attn.proj.sliced(embed, width, side))

    def _mlp(self, x: torch.Tensor, hidden: int, side: Side) -> torch.Tensor:
        embed = x.shape[-1]
        x = F.gelu(F.linear(x, *self.mlp.fc1.sliced(hidden, embed, side)))
        return F.linear(x, *self.mlp.fc2.sliced(embed, hidden, side))

    def export_state(self, embed: int, num_heads: int, attn_width: int, hidden: int,
                     side: Side = "left") -> dict[str, torch.Tensor]:
        """This layer's weights at the given size and side, under timm's ``Block`` key names."""
        tensors = {
            "norm1": self.norm1.sliced(embed, side),
            "attn.proj": self.attn.proj.sliced(embed, attn_width, side),
            "norm2": self.norm2.sliced(embed, side),
            "mlp.fc1": self.mlp.fc1.sliced(hidden, embed, side),
            "mlp.fc2": self.mlp.fc2.sliced(embed, hidden, side),
        }
        state = {f"attn.{k}": v for k, v in self.attn.export_state(num_heads, attn_width, embed, side).items()}
        for name, (weight, bias) in tensors.items():
            state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias
        return state
