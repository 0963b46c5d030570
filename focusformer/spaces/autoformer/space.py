"""The AutoFormer family's arch and space: one embed dim per network, a depth, and per layer heads
and MLP ratio; its decisions, exact costs and timing probes.

Chen et al., 2021. Every layer's q/k/v width is ``heads x head_dim`` (head dim fixed
by the space), its MLP hidden width ``int(embed_dim x mlp_ratio)`` as timm computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

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


@dataclass(frozen=True)
class Arch(ArchBase):
    """One AutoFormer subnet: an embed dim, a depth, and per-layer heads and MLP ratios.

    Frozen and hashable. Structural checks happen here; whether the values are
    choices of a given space is checked by :meth:`AutoFormerSpace.validate`.
    """

    embed_dim: int
    depth: int
    num_heads: tuple[int, ...]
    mlp_ratio: tuple[float, ...]

    def __post_init__(self) -> None:
        # Canonical Python types, so archs built from numpy scalars hash, compare and serialise alike.
        object.__setattr__(self, "embed_dim", int(self.embed_dim))
        object.__setattr__(self, "depth", int(self.depth))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        object.__setattr__(self, "mlp_ratio", tuple(float(r) for r in self.mlp_ratio))
        if len(self.num_heads) != self.depth or len(self.mlp_ratio) != self.depth:
            raise ConfigError(
                f"arch: num_heads and mlp_ratio need one entry per layer (depth {self.depth}), "
                f"got {len(self.num_heads)} and {len(self.mlp_ratio)}"
            )

    def mlp_hidden_dim(self, layer: int) -> int:
        """Hidden width of layer ``layer``'s MLP, computed as timm does."""
        return int(self.embed_dim * self.mlp_ratio[layer])

    def __str__(self) -> str:
        heads = ",".join(map(str, self.num_heads))
        ratios = ",".join(f"{r:g}" for r in self.mlp_ratio)
        return f"Arch(embed={self.embed_dim}, depth={self.depth}, heads=[{heads}], mlp=[{ratios}])"


@dataclass(frozen=True)
class AutoFormerSpace(SearchSpace):
    """The choices an AutoFormer supernet covers, plus what all its subnets share."""

    image_size: int
    in_chans: int
    patch_size: int
    num_classes: int
    head_dim: int
    embed_dim: tuple[int, ...]
    depth: tuple[int, ...]
    num_heads: tuple[int, ...]
    mlp_ratio: tuple[float, ...]
    #: ``left`` or ``bilateral`` (see ``spaces.base.WeightSharing``).
    weight_sharing: WeightSharing = "left"
    name: str = "custom"
    family: Literal["autoformer"] = "autoformer"

    arch_type = Arch

    def __post_init__(self) -> None:
        check_positive(self, ("image_size", "in_chans", "patch_size", "num_classes", "head_dim"))
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"space.patch_size: {self.patch_size} does not divide image_size {self.image_size}"
            )
        check_and_sort_choices(self, ("embed_dim", "depth", "num_heads", "mlp_ratio"))
        if int(min(self.embed_dim) * min(self.mlp_ratio)) < 1:
            raise ConfigError("space.mlp_ratio: smallest embed_dim x smallest mlp_ratio is below 1")

    # -- geometry -----------------------------------------------------------------------------
    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        """Patches plus the class token."""
        return self.num_patches + 1

    @property
    def max_depth(self) -> int:
        return self.depth[-1]

    @property
    def max_mlp_hidden_dim(self) -> int:
        return int(self.embed_dim[-1] * self.mlp_ratio[-1])

    # -- decisions ----------------------------------------------------------------------------
    def build_decision_plan(self) -> DecisionPlan:
        return DecisionPlan(
            network=(Decision("depth", self.depth, structural=True), Decision("embed_dim", self.embed_dim)),
            layer=(Decision("num_heads", self.num_heads), Decision("mlp_ratio", self.mlp_ratio)),
            num_layers=self.max_depth,
        )

    def layer_options(self, layer: int, network: tuple) -> Iterable[tuple]:
        depth, _ = network
        if layer >= depth:
            return [(None, None)]
        return [(h, r) for h in self.num_heads for r in self.mlp_ratio]

    def arch_values(self, arch: Arch) -> tuple[tuple, tuple[tuple, ...]]:
        layers = [(h, r) for h, r in zip(arch.num_heads, arch.mlp_ratio)]
        layers += [(None, None)] * (self.max_depth - arch.depth)
        return (arch.depth, arch.embed_dim), tuple(layers)

    def arch_from_values(self, network: tuple, layers: tuple[tuple, ...]) -> Arch:
        depth, embed = network
        return Arch(embed, depth, tuple(h for h, _ in layers[:depth]), tuple(r for _, r in layers[:depth]))

    # -- costs --------------------------------------------------------------------------------
    def base_cost(self, kind: CostKind, network: tuple) -> int:
        _, e = network
        if kind == "macs":
            return patch_embed_macs(self.num_patches, e, self.in_chans, self.patch_size) + \
                classifier_macs(e, self.num_classes)
        return vit_stem_and_head_params(e, self.in_chans, self.patch_size, self.num_tokens, self.num_classes)

    def layer_cost(self, kind: CostKind, layer: int, network: tuple, values: tuple) -> int:
        heads, ratio = values
        if heads is None:
            return 0
        _, e = network
        width, hidden = heads * self.head_dim, int(e * ratio)
        if kind == "macs":
            return attention_macs(self.num_tokens, e, width) + mlp_macs(self.num_tokens, e, hidden)
        return attention_params(e, width) + mlp_params(e, hidden)

    def timing_base(self, network: tuple) -> Probe:
        _, e = network
        return vit_base_probe(DenseLayout(self.image_size, self.in_chans, self.patch_size, self.num_classes, e, ()))

    def timing_layer(self, layer: int, network: tuple, values: tuple) -> tuple[Probe, ...]:
        heads, ratio = values
        if heads is None:
            return ()
        _, e = network
        return vit_layer_probes(self.num_tokens, e, BlockLayout(heads, self.head_dim, int(e * ratio)))

    # -- archs --------------------------------------------------------------------------------
    def largest(self) -> Arch:
        d = self.max_depth
        return Arch(self.embed_dim[-1], d, (self.num_heads[-1],) * d, (self.mlp_ratio[-1],) * d)

    def smallest(self) -> Arch:
        d = self.depth[0]
        return Arch(self.embed_dim[0], d, (self.num_heads[0],) * d, (self.mlp_ratio[0],) * d)

    def sample(self, rng: np.random.Generator | int | None = None, identity_prob: float | None = None) -> Arch:
        """A uniformly random arch (each choice drawn independently, as in AutoFormer)."""
        if identity_prob is not None:
            raise ConfigError("autoformer spaces have no identity layers; identity_prob does not apply")
        rng = np.random.default_rng(rng)
        depth = int(rng.choice(self.depth))
        return Arch(
            embed_dim=int(rng.choice(self.embed_dim)),
            depth=depth,
            num_heads=tuple(int(h) for h in rng.choice(self.num_heads, size=depth)),
            mlp_ratio=tuple(float(r) for r in rng.choice(self.mlp_ratio, size=depth)),
        )

    def validate(self, arch: Arch) -> Arch:
        """Return ``arch`` if all its values are choices of this space, else raise ConfigError."""
        if not isinstance(arch, Arch):
            raise ConfigError(f"arch: expected an autoformer Arch, got {type(arch).__name__}")
        check_choice("embed_dim", arch.embed_dim, self.embed_dim)
        check_choice("depth", arch.depth, self.depth)
        for i, (h, r) in enumerate(zip(arch.num_heads, arch.mlp_ratio)):
            check_choice(f"num_heads[{i}]", h, self.num_heads)
            check_choice(f"mlp_ratio[{i}]", r, self.mlp_ratio)
        return arch

    # -- models -------------------------------------------------------------------------------
    def build_subnet(self, arch: Arch, drop_path_rate: float = 0.0):
        self.validate(arch)
        blocks = tuple(BlockLayout(h, self.head_dim, arch.mlp_hidden_dim(i)) for i, h in enumerate(arch.num_heads))
        layout = DenseLayout(self.image_size, self.in_chans, self.patch_size, self.num_classes, arch.embed_dim, blocks)
        return SubnetViT(layout, arch, self, drop_path_rate)
