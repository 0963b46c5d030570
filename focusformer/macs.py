"""Analytic multiply-accumulate (MAC) and parameter counts, from the arch alone.

Counted per image: the patch embedding, every linear layer on every token,
attention's two matmuls (``q @ k^T`` and ``attn @ v``), and the classifier on the
class token only. A bias adds one accumulate per output element, as ptflops and
fvcore count it. Normalisation, softmax, GELU and residual adds are not counted
(a fraction of a percent). The papers' "FLOPs" for ViTs are these MACs.
"""

from __future__ import annotations

import numpy as np

from .space import INACTIVE, Arch, SearchSpace


def _layer_macs(tokens, embed, attn_width, mlp_hidden):
    qkv = tokens * (embed + 1) * 3 * attn_width
    proj = tokens * (attn_width + 1) * embed
    attention_matmuls = 2 * tokens * tokens * attn_width
    mlp = tokens * ((embed + 1) * mlp_hidden + (mlp_hidden + 1) * embed)
    return qkv + proj + attention_matmuls + mlp


def _layer_params(embed, attn_width, mlp_hidden):
    qkv = 3 * attn_width * embed + 3 * attn_width
    proj = attn_width * embed + embed
    mlp = 2 * mlp_hidden * embed + mlp_hidden + embed
    norms = 4 * embed
    return qkv + proj + mlp + norms


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
        _layer_macs(t, e, h * hd, int(e * r)) for h, r in zip(arch.num_heads, arch.mlp_ratio)
    )
    return _stem_and_head_macs(space, e) + layers


def count_params(arch: Arch, space: SearchSpace) -> int:
    """Number of parameters of ``arch`` as an exported dense model."""
    e, hd = arch.embed_dim, space.head_dim
    layers = sum(_layer_params(e, h * hd, int(e * r)) for h, r in zip(arch.num_heads, arch.mlp_ratio))
    return _stem_and_head_params(space, e) + layers


def count_macs_batch(codes: np.ndarray, space: SearchSpace) -> np.ndarray:
    """MACs of many archs at once, given their encodings (``space.encode``), shape ``(n, L)``."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1, space.encoding_length)
    embed = np.asarray(space.embed_dim, dtype=np.int64)[codes[:, 1]]
    heads_idx, ratio_idx = codes[:, 2::2], codes[:, 3::2]
    active = heads_idx != INACTIVE
    attn_width = np.asarray(space.num_heads, dtype=np.int64)[np.where(active, heads_idx, 0)] * space.head_dim
    # int(e * r) exactly as timm computes it, via a table over (embed choice, ratio choice).
    hidden_table = np.array(
        [[int(e * r) for r in space.mlp_ratio] for e in space.embed_dim], dtype=np.int64
    )
    mlp_hidden = hidden_table[codes[:, 1:2], np.where(active, ratio_idx, 0)]
    per_layer = _layer_macs(space.num_tokens, embed[:, None], attn_width, mlp_hidden)
    return _stem_and_head_macs(space, embed) + (per_layer * active).sum(axis=1)
