"""Exact multiply-accumulate (MAC) and parameter counts of plain-ViT parts, and the public counters.

Counted per image: the patch embedding, every linear layer on every token,
attention's two matmuls (``q @ k^T`` and ``attn @ v``), and the classifier on the
class token only. A bias adds one accumulate per output element, as ptflops and
fvcore count it. Normalisation, softmax, GELU and residual adds are not counted
(a fraction of a percent). The papers' "FLOPs" for ViTs are these MACs.

The families build their cost terms from these functions; :func:`count_macs` and
:func:`count_params` count any family's arch.
"""

from __future__ import annotations

import numpy as np

from .base import ArchBase, SearchSpace


def attention_macs(tokens: int, embed: int, attn_width: int) -> int:
    qkv = tokens * (embed + 1) * 3 * attn_width
    proj = tokens * (attn_width + 1) * embed
    matmuls = 2 * tokens * tokens * attn_width
    return qkv + proj + matmuls


def shared_attention_macs(tokens: int, embed: int, attn_width: int) -> int:
    """A layer that reuses the previous layer's attention map: v, ``map @ v`` and the projection."""
    return tokens * (embed + 1) * attn_width + tokens * tokens * attn_width + tokens * (attn_width + 1) * embed


def mlp_macs(tokens: int, embed: int, mlp_hidden: int) -> int:
    return tokens * ((embed + 1) * mlp_hidden + (mlp_hidden + 1) * embed)


def attention_params(embed: int, attn_width: int) -> int:
    qkv = 3 * attn_width * embed + 3 * attn_width
    proj = attn_width * embed + embed
    return qkv + proj + 2 * embed  # and the LayerNorm before it


def shared_attention_params(embed: int, attn_width: int) -> int:
    """v and the projection of a layer that reuses an attention map, and the LayerNorm before it."""
    return attn_width * embed + attn_width + attn_width * embed + embed + 2 * embed


def mlp_params(embed: int, mlp_hidden: int) -> int:
    return 2 * mlp_hidden * embed + mlp_hidden + embed + 2 * embed  # and the LayerNorm before it


def patch_embed_macs(num_patches: int, embed: int, in_chans: int, patch_size: int) -> int:
    return num_patches * embed * (in_chans * patch_size**2 + 1)


def vit_stem_and_head_params(embed: int, in_chans: int, patch_size: int, num_tokens: int, num_classes: int) -> int:
    """Patch embedding, class token, position embedding, final norm and classifier."""
    patch_embed = embed * in_chans * patch_size**2 + embed
    tokens = embed + num_tokens * embed
    return patch_embed + tokens + 2 * embed + embed * num_classes + num_classes


def classifier_macs(embed: int, num_classes: int) -> int:
    return (embed + 1) * num_classes


def count_macs(arch: ArchBase, space: SearchSpace) -> int:
    """Multiply-accumulates of one forward pass of ``arch`` on one image."""
    return space.count(arch, "macs")


def count_params(arch: ArchBase, space: SearchSpace) -> int:
    """Number of parameters of ``arch`` as an exported dense model."""
    return space.count(arch, "params")


def count_macs_batch(codes: np.ndarray, space: SearchSpace) -> np.ndarray:
    """MACs of many archs at once, given their encodings (``space.encode``), shape ``(n, L)``."""
    return space.cost_model("macs").count(np.asarray(codes).reshape(-1, space.encoding_length)).astype(np.int64)
