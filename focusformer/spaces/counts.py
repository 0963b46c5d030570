"""Analytic multiply-accumulate (MAC) and parameter counts, from the arch alone.

Counted per image: the patch embedding, every linear layer on every token,
attention's two matmuls (``q @ k^T`` and ``attn @ v``), and the classifier on the
class token only. A bias adds one accumulate per output element, as ptflops and
fvcore count it. Normalisation, softmax, GELU and residual adds are not counted
(a fraction of a percent). The papers' "FLOPs" for ViTs are these MACs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .autoformer import INACTIVE, Arch, SearchSpace


def _attention_macs(tokens, embed, attn_width):
    qkv = tokens * (embed + 1) * 3 * attn_width
    proj = tokens * (attn_width + 1) * embed
    matmuls = 2 * tokens * tokens * attn_width
    return qkv + proj + matmuls


def _mlp_macs(tokens, embed, mlp_hidden):
    return tokens * ((embed + 1) * mlp_hidden + (mlp_hidden + 1) * embed)


def _attention_params(embed, attn_width):
    qkv = 3 * attn_width * embed + 3 * attn_width
    proj = attn_width * embed + embed
    return qkv + proj + 2 * embed  # and the LayerNorm before it


def _mlp_params(embed, mlp_hidden):
    return 2 * mlp_hidden * embed + mlp_hidden + embed + 2 * embed  # and the LayerNorm before it


def _stem_and_head_macs(space: SearchSpace, embed):
    patch_embed = space.num_patches * embed * (space.in_chans * space.patch_size**2 + 1)
    return patch_embed + (embed + 1) * space.num_classes


def _stem_and_head_params(space: SearchSpace, embed):
    patch_embed = embed * space.in_chans * space.patch_size**2 + embed
    tokens = embed + space.num_tokens * embed  # class token, position embedding
    final_norm = 2 * embed
    head = embed * space.num_classes + space.num_classes
    return patch_embed + tokens + final_norm + head


def count_macs(arch: Arch, space: SearchSpace) -> int:
    """Multiply-accumulates of one forward pass of ``arch`` on one image."""
    e, t, hd = arch.embed_dim, space.num_tokens, space.head_dim
    layers = sum(
        _attention_macs(t, e, h * hd) + _mlp_macs(t, e, int(e * r))
        for h, r in zip(arch.num_heads, arch.mlp_ratio)
    )
    return _stem_and_head_macs(space, e) + layers


def count_params(arch: Arch, space: SearchSpace) -> int:
    """Number of parameters of ``arch`` as an exported dense model."""
    e, hd = arch.embed_dim, space.head_dim
    layers = sum(
        _attention_params(e, h * hd) + _mlp_params(e, int(e * r)) for h, r in zip(arch.num_heads, arch.mlp_ratio)
    )
    return _stem_and_head_params(space, e) + layers


@dataclass(frozen=True)
class CostTable:
    """An arch's MACs (or parameters) as a sum of per-choice parts, for vectorised counts and bounds.

    ``cost = stem_head[e] + sum over layers i of (attention[e, h_i] + mlp[e, r_i])``,
    where ``e``, ``h_i`` and ``r_i`` are choice indices (as in ``space.encode``).
    """

    stem_head: np.ndarray  # (embed choices,)
    attention: np.ndarray  # (embed choices, heads choices)
    mlp: np.ndarray  # (embed choices, mlp-ratio choices)

    @classmethod
    def macs(cls, space: SearchSpace) -> CostTable:
        t = space.num_tokens
        return cls._build(
            space,
            stem_head=lambda e: _stem_and_head_macs(space, e),
            attention=lambda e, a: _attention_macs(t, e, a),
            mlp=lambda e, m: _mlp_macs(t, e, m),
        )

    @classmethod
    def params(cls, space: SearchSpace) -> CostTable:
        return cls._build(
            space,
            stem_head=lambda e: _stem_and_head_params(space, e),
            attention=_attention_params,
            mlp=_mlp_params,
        )

    @classmethod
    def _build(cls, space: SearchSpace, stem_head, attention, mlp) -> CostTable:
        embeds, hd = space.embed_dim, space.head_dim
        return cls(
            stem_head=np.array([stem_head(e) for e in embeds], dtype=np.int64),
            attention=np.array([[attention(e, h * hd) for h in space.num_heads] for e in embeds], dtype=np.int64),
            mlp=np.array([[mlp(e, int(e * r)) for r in space.mlp_ratio] for e in embeds], dtype=np.int64),
        )

    def count_batch(self, codes: np.ndarray) -> np.ndarray:
        """The cost of many archs given their encodings, shape ``(n, L)``."""
        codes = np.asarray(codes, dtype=np.int64)
        embed, heads, ratios = codes[:, 1:2], codes[:, 2::2], codes[:, 3::2]
        active = heads != INACTIVE
        per_layer = self.attention[embed, np.where(active, heads, 0)] + self.mlp[embed, np.where(active, ratios, 0)]
        return self.stem_head[codes[:, 1]] + (per_layer * active).sum(axis=1)


def count_macs_batch(codes: np.ndarray, space: SearchSpace, table: CostTable | None = None) -> np.ndarray:
    """MACs of many archs at once, given their encodings (``space.encode``), shape ``(n, L)``."""
    table = table or CostTable.macs(space)
    return table.count_batch(np.asarray(codes).reshape(-1, space.encoding_length))

