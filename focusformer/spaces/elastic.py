"""Elastic layers shared by the families' supernets (weight entanglement).

Each layer holds the weights of its largest size; a smaller size uses their leading
slice (first rows / columns), as AutoFormer does. Sizes are arguments of
``forward``, so running one subnet leaves no state behind. ``sliced`` /
``export_state`` give the weights a size inherits, under timm's key names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import drop_path
from torch import nn

WeightAndBias = tuple[torch.Tensor, torch.Tensor]


class ElasticLinear(nn.Linear):
    """A linear layer whose leading ``rows x cols`` block can be used on its own."""

    def sliced(self, rows: int, cols: int) -> WeightAndBias:
        return self.weight[:rows, :cols], self.bias[:rows]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, tokens, width) to (batch, heads, tokens, width / heads)."""
    batch, tokens, width = x.shape
    return x.view(batch, tokens, num_heads, width // num_heads).transpose(1, 2)


class ElasticStackedLinear(nn.Linear):
    """``parts`` projections stacked in one matrix (q/k/v: rows ``[q; k; v]``, each head-major).

    A width ``w`` uses the first ``w`` rows of *each* part, weights and biases alike (slicing
    the stacked matrix as one block would mix the parts).
    """

    def __init__(self, in_features: int, width: int, parts: int) -> None:
        super().__init__(in_features, parts * width)
        self.max_width, self.parts = width, parts

    def sliced(self, width: int, in_features: int) -> WeightAndBias:
        weight = self.weight.view(self.parts, self.max_width, -1)[:, :width, :in_features]
        bias = self.bias.view(self.parts, self.max_width)[:, :width]
        return weight.reshape(self.parts * width, in_features), bias.reshape(self.parts * width)


class ElasticLayerNorm(nn.LayerNorm):
    def sliced(self, dim: int) -> WeightAndBias:
        return self.weight[:dim], self.bias[:dim]

    def elastic(self, x: torch.Tensor) -> torch.Tensor:
        dim = x.shape[-1]
        return F.layer_norm(x, (dim,), *self.sliced(dim), self.eps)


class ElasticPatchEmbed(nn.Module):
    """timm's ``PatchEmbed`` (a strided convolution) with an elastic number of output channels."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor, embed: int) -> torch.Tensor:
        x = F.conv2d(images, self.proj.weight[:embed], self.proj.bias[:embed], stride=self.proj.stride)
        return x.flatten(2).transpose(1, 2)

    def export_state(self, embed: int) -> dict[str, torch.Tensor]:
        return {"proj.weight": self.proj.weight[:embed], "proj.bias": self.proj.bias[:embed]}


class EntangledQKV(nn.Module):
    """q, k and v from one stacked projection, shared by every head count (AutoFormer)."""

    def __init__(self, embed_dim: int, attn_width: int) -> None:
        super().__init__()
        self.qkv = ElasticStackedLinear(embed_dim, attn_width, parts=3)

    def project(self, x: torch.Tensor, num_heads: int, width: int) -> tuple[torch.Tensor, ...]:
        """q, k and v of ``x`` (batch, tokens, embed), each (batch, heads, tokens, head dim)."""
        batch, tokens, embed = x.shape
        qkv = F.linear(x, *self.qkv.sliced(width, embed))
        return qkv.view(batch, tokens, 3, num_heads, width // num_heads).permute(2, 0, 3, 1, 4).unbind(0)

    def export_state(self, num_heads: int, width: int, embed: int) -> dict[str, torch.Tensor]:
        weight, bias = self.qkv.sliced(width, embed)
        return {"qkv.weight": weight, "qkv.bias": bias}


class PrivateQK(nn.Module):
    """ViTAS's private attention maps: a q/k projection per head-count choice, v shared by all.

    Keys ``qk.<heads>`` hold ``[q; k]``; the exported model fuses ``[q; k; v]`` as timm does.
    """

    def __init__(self, embed_dim: int, attn_width: int, head_choices: tuple[int, ...]) -> None:
        super().__init__()
        self.qk = nn.ModuleDict({str(h): ElasticStackedLinear(embed_dim, attn_width, parts=2) for h in head_choices})
        self.v = ElasticLinear(embed_dim, attn_width)

    def project(self, x: torch.Tensor, num_heads: int, width: int) -> tuple[torch.Tensor, ...]:
        """q, k and v of ``x`` (batch, tokens, embed), each (batch, heads, tokens, head dim)."""
        batch, tokens, embed = x.shape
        # Two matmuls rather than one on concatenated weights: no weight copy per step.
        qk = F.linear(x, *self.qk[str(num_heads)].sliced(width, embed))
        q, k = qk.view(batch, tokens, 2, num_heads, width // num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, split_heads(F.linear(x, *self.v.sliced(width, embed)), num_heads)

    def export_state(self, num_heads: int, width: int, embed: int) -> dict[str, torch.Tensor]:
        qk_weight, qk_bias = self.qk[str(num_heads)].sliced(width, embed)
        v_weight, v_bias = self.v.sliced(width, embed)
        return {"qkv.weight": torch.cat([qk_weight, v_weight]), "qkv.bias": torch.cat([qk_bias, v_bias])}


class SharedMapValue(nn.Module):
    """The attention of a layer that reuses the attention map of the layer before it: v only.

    Attention sharing (PSViT): the map ``softmax(q k^T)`` of one layer serves the next, which
    then has no q, k or softmax of its own, only v and the output projection.
    """

    def __init__(self, embed_dim: int, attn_width: int) -> None:
        super().__init__()
        self.v = ElasticLinear(embed_dim, attn_width)

    def value(self, x: torch.Tensor, num_heads: int, width: int) -> torch.Tensor:
        """v of ``x`` (batch, tokens, embed) as (batch, heads, tokens, head dim)."""
        return split_heads(F.linear(x, *self.v.sliced(width, x.shape[-1])), num_heads)

    def export_state(self, num_heads: int, width: int, embed: int) -> dict[str, torch.Tensor]:
        weight, bias = self.v.sliced(width, embed)
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
                drop_prob: float) -> torch.Tensor:
        attended = self._attention(self.norm1.elastic(x), num_heads, attn_width)
        return self._residuals(x, attended, mlp_hidden_dim, drop_prob)

    def forward_explicit(self, x: torch.Tensor, num_heads: int, attn_width: int, mlp_hidden_dim: int,
                         drop_prob: float, attn_map: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``forward``, but the attention map ``softmax(q k^T / sqrt(head dim))`` is computed with
        explicit matmuls (which MAC counters see, unlike the fused kernel) and returned, so the next
        layer can share it. Given ``attn_map`` (attention sharing), no q or k is computed: v only."""
        h = self.norm1.elastic(x)
        batch, tokens, embed = h.shape
        if attn_map is None:
            q, k, v = self.attn.project(h, num_heads, attn_width)
            attn_map = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        else:
            v = self.attn.value(h, num_heads, attn_width)
        out = (attn_map @ v).transpose(1, 2).reshape(batch, tokens, attn_width)
        attended = F.linear(out, *self.attn.proj.sliced(embed, attn_width))
        return self._residuals(x, attended, mlp_hidden_dim, drop_prob), attn_map

    def _residuals(self, x: torch.Tensor, attended: torch.Tensor, hidden: int, drop_prob: float) -> torch.Tensor:
        x = x + drop_path(attended, drop_prob, self.training)
        return x + drop_path(self._mlp(self.norm2.elastic(x), hidden), drop_prob, self.training)

    def _attention(self, x: torch.Tensor, num_heads: int, width: int) -> torch.Tensor:
        batch, tokens, embed = x.shape
        q, k, v = self.attn.project(x, num_heads, width)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(batch, tokens, width)
        return F.linear(out, *self.attn.proj.sliced(embed, width))

    def _mlp(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        embed = x.shape[-1]
        x = F.gelu(F.linear(x, *self.mlp.fc1.sliced(hidden, embed)))
        return F.linear(x, *self.mlp.fc2.sliced(embed, hidden))

    def export_state(self, embed: int, num_heads: int, attn_width: int, hidden: int) -> dict[str, torch.Tensor]:
        """This layer's weights at the given size, under timm's ``Block`` key names."""
        tensors = {
            "norm1": self.norm1.sliced(embed),
            "attn.proj": self.attn.proj.sliced(embed, attn_width),
            "norm2": self.norm2.sliced(embed),
            "mlp.fc1": self.mlp.fc1.sliced(hidden, embed),
            "mlp.fc2": self.mlp.fc2.sliced(embed, hidden),
        }
        state = {f"attn.{k}": v for k, v in self.attn.export_state(num_heads, attn_width, embed).items()}
        for name, (weight, bias) in tensors.items():
            state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias
        return state
