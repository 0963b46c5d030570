"""The ViTAS family: patch-size search, private tokens and attention maps, identity layers.

Su et al., 2021. Network-wide: the patch size and one embed dim. Per layer (up to
``depth`` of them): identity, or a block with its own head count, q/k/v width and
MLP width, each chosen from the space's lists (widths, not ratios: ViTAS's own
space). A block is written as ViTAS writes its released models, ``(heads, q/k/v
outputs, MLP hidden)``: ``qkv_dim`` counts the q, k and v outputs together, so the
attention width is ``qkv_dim / 3`` and the head dim ``qkv_dim / 3 / heads``.

The supernet keeps, per patch size, a private patch embedding, class token and
position embedding (each entangled across embed dims), and per head-count choice a
private q/k projection with v shared (``private_qk``; off, q/k/v are entangled as in
AutoFormer). Exported subnets drop identity layers and load into timm's
``VisionTransformer`` when their blocks are uniform.

MACs here follow this package's convention (ptflops on the exported model: class
token, biases and the classifier on the class token counted).
:func:`vitas_published_macs` gives ViTAS's own: patch tokens only, no biases, and the
classifier counted on every patch token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Optional

import numpy as np

from ...errors import ConfigError
from ..base import ArchBase, CostKind, SearchSpace, WeightSharing, check_and_sort_choices, check_choice, check_positive
from ..counts import (
    attention_macs,
    attention_params,
    classifier_macs,
    mlp_macs,
    mlp_params,
    patch_embed_macs,
    vit_stem_and_head_params,
)
from ..decisions import Decision, DecisionPlan
from ..dense import BlockLayout, DenseLayout, SubnetViT, vit_base_probe, vit_layer_probes
from ..timing import Probe

#: The ``num_heads`` decision's value for an identity layer.
IDENTITY = 0


@dataclass(frozen=True)
class ViTASBlock:
    """One non-identity layer: heads, q/k/v outputs together (3 x attention width), MLP hidden width."""

    num_heads: int
    qkv_dim: int
    mlp_dim: int

    def __post_init__(self) -> None:
        for name in ("num_heads", "qkv_dim", "mlp_dim"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def attn_width(self) -> int:
        return self.qkv_dim // 3

    @property
    def head_dim(self) -> int:
        return self.attn_width // self.num_heads


@dataclass(frozen=True)
class ViTASArch(ArchBase):
    """One ViTAS subnet: a patch size, an embed dim, and per layer a block or ``None`` (identity)."""

    patch_size: int
    embed_dim: int
    blocks: tuple[Optional[ViTASBlock], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", int(self.patch_size))
        object.__setattr__(self, "embed_dim", int(self.embed_dim))
        blocks = tuple(b if b is None or isinstance(b, ViTASBlock) else ViTASBlock(*b) for b in self.blocks)
        object.__setattr__(self, "blocks", blocks)

    @property
    def depth(self) -> int:
        """Layers that are not identities."""
        return sum(b is not None for b in self.blocks)

    def __str__(self) -> str:
        layers = ",".join("id" if b is None else f"{b.num_heads}/{b.qkv_dim}/{b.mlp_dim}" for b in self.blocks)
        return f"ViTASArch(patch={self.patch_size}, embed={self.embed_dim}, blocks=[{layers}])"


@dataclass(frozen=True)
class ViTASSpace(SearchSpace):
    """The choices a ViTAS supernet covers, plus what all its subnets share."""

    image_size: int
    in_chans: int
    num_classes: int
    patch_size: tuple[int, ...]
    embed_dim: tuple[int, ...]
    #: Number of layers; each is a block or, with ``identity``, may be an identity.
    depth: int
    num_heads: tuple[int, ...]
    #: q, k and v outputs together (3 x attention width); each must split into whole heads.
    qkv_dim: tuple[int, ...]
    mlp_dim: tuple[int, ...]
    identity: bool = True
    #: With ``identity``: the first ``min_depth`` layers are always blocks, so every subnet has at
    #: least that many (an all-identity network never lets the class token meet a patch).
    min_depth: int = 1
    #: Private q/k projections per head-count choice (ViTAS); false entangles q/k/v (AutoFormer).
    private_qk: bool = True
    #: ``left`` or ``bilateral`` (see ``spaces.base.WeightSharing``).
    weight_sharing: WeightSharing = "left"
    name: str = "custom"
    family: Literal["vitas"] = "vitas"

    arch_type = ViTASArch

    def __post_init__(self) -> None:
        check_positive(self, ("image_size", "in_chans", "num_classes", "depth"))
        check_and_sort_choices(self, ("patch_size", "embed_dim", "num_heads", "qkv_dim", "mlp_dim"))
        for p in self.patch_size:
            if self.image_size % p:
                raise ConfigError(f"space.patch_size: {p} does not divide image_size {self.image_size}")
        if not 0 <= self.min_depth <= self.depth:
            raise ConfigError(f"space.min_depth: must be between 0 and depth {self.depth}, got {self.min_depth}")
        for q in self.qkv_dim:
            if q % 3:
                raise ConfigError(f"space.qkv_dim: {q} is not 3 x an attention width (q, k and v outputs together)")
        for h in self.num_heads:
            if not self._widths_for(h):
                raise ConfigError(
                    f"space.num_heads: {h} heads split no qkv_dim choice ({', '.join(map(str, self.qkv_dim))}) "
                    "into whole heads; qkv_dim / 3 must be a multiple of the heads"
                )

    def _widths_for(self, heads: int) -> tuple[int, ...]:
        return tuple(q for q in self.qkv_dim if (q // 3) % heads == 0)

    # -- geometry -----------------------------------------------------------------------------
    def num_tokens(self, patch_size: int) -> int:
        """Patches plus the class token."""
        return (self.image_size // patch_size) ** 2 + 1

    @property
    def has_identity(self) -> bool:
        return self.identity

    # -- decisions ----------------------------------------------------------------------------
    def build_decision_plan(self) -> DecisionPlan:
        heads = ((IDENTITY,) if self.identity else ()) + self.num_heads
        return DecisionPlan(
            network=(Decision("patch_size", self.patch_size), Decision("embed_dim", self.embed_dim)),
            layer=(Decision("num_heads", heads), Decision("qkv_dim", self.qkv_dim), Decision("mlp_dim", self.mlp_dim)),
            num_layers=self.depth,
        )

    def layer_options(self, layer: int, network: tuple) -> Iterable[tuple]:
        blocks = [(h, q, m) for h in self.num_heads for q in self._widths_for(h) for m in self.mlp_dim]
        return ([(IDENTITY, None, None)] if self.may_skip(layer) else []) + blocks

    def may_skip(self, layer: int) -> bool:
        """Whether layer ``layer`` may be an identity."""
        return self.identity and layer >= self.min_depth

    def arch_values(self, arch: ViTASArch) -> tuple[tuple, tuple[tuple, ...]]:
        layers = tuple((IDENTITY, None, None) if b is None else (b.num_heads, b.qkv_dim, b.mlp_dim)
                       for b in arch.blocks)
        return (arch.patch_size, arch.embed_dim), layers

    def arch_from_values(self, network: tuple, layers: tuple[tuple, ...]) -> ViTASArch:
        blocks = tuple(None if h == IDENTITY else ViTASBlock(h, q, m) for h, q, m in layers)
        return ViTASArch(network[0], network[1], blocks)

    # -- costs --------------------------------------------------------------------------------
    def base_cost(self, kind: CostKind, network: tuple) -> int:
        p, e = network
        if kind == "macs":
            num_patches = (self.image_size // p) ** 2
            return patch_embed_macs(num_patches, e, self.in_chans, p) + classifier_macs(e, self.num_classes)
        return vit_stem_and_head_params(e, self.in_chans, p, self.num_tokens(p), self.num_classes)

    def layer_cost(self, kind: CostKind, layer: int, network: tuple, values: tuple) -> int:
        heads, qkv, mlp = values
        if heads == IDENTITY:
            return 0
        p, e = network
        if kind == "macs":
            tokens = self.num_tokens(p)
            return attention_macs(tokens, e, qkv // 3) + mlp_macs(tokens, e, mlp)
        return attention_params(e, qkv // 3) + mlp_params(e, mlp)

    def timing_base(self, network: tuple) -> Probe:
        p, e = network
        return vit_base_probe(DenseLayout(self.image_size, self.in_chans, p, self.num_classes, e, ()))

    def timing_layer(self, layer: int, network: tuple, values: tuple) -> tuple[Probe, ...]:
        heads, qkv, mlp = values
        if heads == IDENTITY:
            return ()
        p, e = network
        return vit_layer_probes(self.num_tokens(p), e, BlockLayout(heads, qkv // 3 // heads, mlp))

    # -- archs --------------------------------------------------------------------------------
    def largest(self) -> ViTASArch:
        qkv = self.qkv_dim[-1]
        heads = max(h for h in self.num_heads if qkv in self._widths_for(h))
        block = ViTASBlock(heads, qkv, self.mlp_dim[-1])
        return ViTASArch(self.patch_size[0], self.embed_dim[-1], (block,) * self.depth)

    def smallest(self) -> ViTASArch:
        qkv = self.qkv_dim[0]
        heads = max((h for h in self.num_heads if qkv in self._widths_for(h)), default=None)
        if heads is None:  # the narrowest width splits into no head choice: take the narrowest that does
            heads = self.num_heads[0]
            qkv = self._widths_for(heads)[0]
        narrowest = ViTASBlock(heads, qkv, self.mlp_dim[0])
        blocks = tuple(None if self.may_skip(i) else narrowest for i in range(self.depth))
        return ViTASArch(self.patch_size[-1], self.embed_dim[0], blocks)

    def sample(self, rng: np.random.Generator | int | None = None, identity_prob: float | None = None) -> ViTASArch:
        """Patch size and embed dim uniform; each layer an identity with probability ``identity_prob``
        (None: identity is one more head-count choice, drawn uniformly), else heads uniform, then a
        q/k/v width uniform among those that split into whole heads, and an MLP width uniform."""
        rng = np.random.default_rng(rng)
        if identity_prob is not None and not self.identity:
            raise ConfigError("this vitas space has identity: false; identity_prob does not apply")
        patch = int(rng.choice(self.patch_size))
        embed = int(rng.choice(self.embed_dim))
        blocks = []
        for layer in range(self.depth):
            if identity_prob is None or not self.may_skip(layer):
                ops = ((IDENTITY,) if self.may_skip(layer) else ()) + self.num_heads
                heads = int(ops[rng.integers(len(ops))])
            else:
                heads = IDENTITY if rng.random() < identity_prob else int(rng.choice(self.num_heads))
            if heads == IDENTITY:
                blocks.append(None)
                continue
            widths = self._widths_for(heads)
            blocks.append(ViTASBlock(heads, int(widths[rng.integers(len(widths))]), int(rng.choice(self.mlp_dim))))
        return ViTASArch(patch, embed, tuple(blocks))

    def validate(self, arch: ViTASArch) -> ViTASArch:
        if not isinstance(arch, ViTASArch):
            raise ConfigError(f"arch: expected a ViTASArch, got {type(arch).__name__}")
        check_choice("patch_size", arch.patch_size, self.patch_size)
        check_choice("embed_dim", arch.embed_dim, self.embed_dim)
        if len(arch.blocks) != self.depth:
            raise ConfigError(f"arch.blocks: expected {self.depth} entries (a block or null each), got {len(arch.blocks)}")
        for i, block in enumerate(arch.blocks):
            if block is None:
                if not self.identity:
                    raise ConfigError(f"arch.blocks[{i}]: identity layers are off in this space (identity: false)")
                if not self.may_skip(i):
                    raise ConfigError(f"arch.blocks[{i}]: the first {self.min_depth} layer(s) are always blocks "
                                      f"in this space (space.min_depth {self.min_depth})")
                continue
            check_choice(f"blocks[{i}].num_heads", block.num_heads, self.num_heads)
            check_choice(f"blocks[{i}].qkv_dim", block.qkv_dim, self.qkv_dim)
            check_choice(f"blocks[{i}].mlp_dim", block.mlp_dim, self.mlp_dim)
            if block.attn_width % block.num_heads:
                raise ConfigError(
                    f"arch.blocks[{i}]: attention width {block.attn_width} (qkv_dim {block.qkv_dim} / 3) "
                    f"does not split into {block.num_heads} whole heads"
                )
        return arch

    # -- models -------------------------------------------------------------------------------
    def build_subnet(self, arch: ViTASArch, drop_path_rate: float = 0.0) -> SubnetViT:
        self.validate(arch)
        blocks = tuple(BlockLayout(b.num_heads, b.head_dim, b.mlp_dim) for b in arch.blocks if b is not None)
        layout = DenseLayout(self.image_size, self.in_chans, arch.patch_size, self.num_classes, arch.embed_dim, blocks)
        return SubnetViT(layout, arch, self, drop_path_rate)


def vitas_published_macs(arch: ViTASArch, space: ViTASSpace) -> int:
    """MACs as ViTAS reports its "FLOPs": patch tokens only (no class token), no biases, norms or
    softmax, and the classifier counted on every patch token."""
    space.validate(arch)
    n, e, p = (space.image_size // arch.patch_size) ** 2, arch.embed_dim, arch.patch_size
    total = n * e * space.in_chans * p * p + n * e * space.num_classes
    for b in arch.blocks:
        if b is not None:
            a = b.attn_width
            total += n * e * 3 * a + 2 * n * n * a + n * a * e + 2 * n * e * b.mlp_dim
    return total
