"""The PSViT family: token pooling between stages and attention sharing between layers.

Chen et al., 2021 (PSViT has no public code; the choices below are this package's).

**Stages.** Three stages by default (one per entry of ``widths``). Within a stage every
layer has the same token count and width; a token-pooling layer between two stages
halves the tokens (stride 2) and maps the width to the next stage's. Each stage's width
is a network-wide decision with its own choice list (decision kind ``width[s]``); archs
whose width shrinks from one stage to the next are not in the space (``network_valid``).
A stage's heads are ``width / head_dim``: a fixed head dim keeps the space PSViT-sized
(no head-count decision multiplying it) and every head a sane size at every width. The
MLP ratio is a per-stage decision (``mlp_ratio[s]``); the hidden width is
``int(width * ratio)`` as timm computes it.

**Cells.** Each stage has ``cells_per_stage`` cells; each picks one op (the per-layer
decision ``op``): ``identity``; ``layer``, one plain pre-norm transformer layer;
``shared``, a pair of layers where the second reuses the first's attention map
(``softmax(q k^T)``): it has no q, k or softmax, only v, the output projection and its
MLP. A cell's ``layer`` and the first layer of its ``shared`` pair are the same weights.

**Pooling** (``pooling``), kernel 3, stride 2, padding 1 throughout (overlapping windows,
as PiT and ResNet pool; tokens ``n -> ceil(n / 2)``):

* ``1d``: a class token; patch tokens stay a sequence. A 1D convolution along the
  sequence (stride 1) maps the width, a 1D max-pool halves the sequence, and the class
  token gets the new width from its own linear layer. The head reads the class token.
* ``2d``: no class token; patch tokens stay a grid. A stride-2 2D convolution maps the
  width and halves each side. The head reads the mean of the last stage's tokens.

The patch embedding and position embedding (and class token) are entangled across
stage-0 widths, each stage's layers across its widths and MLP widths, and each pooling
layer across (input width, output width), all by leading slices (``elastic.py``).

**Counts.** MACs are what ptflops' aten backend counts on the exported model: it counts
``mm``/``matmul``/``addmm``/``bmm`` (every linear layer with its bias, attention's
``q @ k^T`` and ``map @ v``) and convolutions (with bias) only; max-pool, mean,
softmax, norms, GELU and adds count zero. So a pooling layer costs its convolution (and in
1D the class token's linear layer), and a sharing layer saves the q/k projection and
the ``q @ k^T`` matmul. The exported model computes attention with explicit matmuls.
"""

from __future__ import annotations

import dataclasses
import itertools
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
    shared_attention_macs,
    shared_attention_params,
)
from ..decisions import Decision, DecisionPlan
from ..timing import Probe
from .layers import KERNEL, pooled
from .subnet import PSViTCell, PSViTSubnet

Op = Literal["identity", "layer", "shared"]
OPS: tuple[str, ...] = ("identity", "layer", "shared")
#: Transformer layers each op adds.
OP_LAYERS = {"identity": 0, "layer": 1, "shared": 2}


@dataclass(frozen=True)
class PSViTStage:
    """One stage of an arch: its width, MLP ratio and each cell's op."""

    width: int
    mlp_ratio: float
    cells: tuple[Op, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "mlp_ratio", float(self.mlp_ratio))
        object.__setattr__(self, "cells", tuple(str(c) for c in self.cells))

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.width * self.mlp_ratio)

    @property
    def depth(self) -> int:
        return sum(OP_LAYERS.get(c, 0) for c in self.cells)


@dataclass(frozen=True)
class PSViTArch(ArchBase):
    """One PSViT subnet: its stages, first to last."""

    stages: tuple[PSViTStage, ...]

    def __post_init__(self) -> None:
        stages = tuple(s if isinstance(s, PSViTStage) else PSViTStage(*s) for s in self.stages)
        object.__setattr__(self, "stages", stages)

    @property
    def depth(self) -> int:
        """Transformer layers (a shared pair counts two)."""
        return sum(s.depth for s in self.stages)

    def __str__(self) -> str:
        short = {"identity": "-", "layer": "L", "shared": "S"}
        parts = (f"{s.width}x{s.mlp_ratio:g}:{''.join(short.get(c, '?') for c in s.cells)}" for s in self.stages)
        return f"PSViTArch({', '.join(parts)})"


@dataclass(frozen=True)
class PSViTSpace(SearchSpace):
    """The choices a PSViT supernet covers, plus what all its subnets share."""

    image_size: int
    in_chans: int
    num_classes: int
    patch_size: int
    #: Every head's width; a stage of width ``w`` has ``w / head_dim`` heads.
    head_dim: int
    pooling: Literal["1d", "2d"]
    #: One list of width choices per stage.
    widths: tuple[tuple[int, ...], ...]
    mlp_ratio: tuple[float, ...]
    cells_per_stage: int = 6
    #: The first ``min_depth`` cells (counted from the first stage's first) are never identities.
    #: Unset: 1 with 1D pooling (an all-identity 1D network never lets its class token meet a
    #: patch), 0 with 2D (its all-identity network is still a small convolutional one).
    min_depth: Optional[int] = None
    #: ``left`` or ``bilateral`` (see ``spaces.base.WeightSharing``).
    weight_sharing: WeightSharing = "left"
    name: str = "custom"
    family: Literal["psvit"] = "psvit"

    arch_type = PSViTArch

    def __post_init__(self) -> None:
        check_positive(self, ("image_size", "in_chans", "num_classes", "patch_size", "head_dim", "cells_per_stage"))
        check_and_sort_choices(self, ("mlp_ratio",))
        if self.image_size % self.patch_size:
            raise ConfigError(f"space.patch_size: {self.patch_size} does not divide image_size {self.image_size}")
        if not self.widths:
            raise ConfigError("space.widths: needs at least one stage (a list of width choices per stage)")
        for s, choices in enumerate(self.widths):
            field = f"space.widths[{s}]"
            if not choices:
                raise ConfigError(f"{field}: stage {s} has no width choices")
            if len(set(choices)) != len(choices) or any(c <= 0 for c in choices):
                raise ConfigError(f"{field}: choices must be positive and distinct, got {list(choices)}")
            for c in choices:
                if c % self.head_dim:
                    raise ConfigError(f"{field}: width {c} is not a multiple of head_dim {self.head_dim}")
        object.__setattr__(self, "widths", tuple(tuple(sorted(c)) for c in self.widths))
        if self.min_depth is None:
            object.__setattr__(self, "min_depth", 1 if self.pooling == "1d" else 0)
        cells = len(self.widths) * self.cells_per_stage
        if not 0 <= self.min_depth <= cells:
            raise ConfigError(f"space.min_depth: must be between 0 and the {cells} cells, got {self.min_depth}")
        if not self.width_choices():
            raise ConfigError("space.widths: no choice of stage widths that never narrows from one stage to the next")

    # -- geometry -----------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.widths)

    @property
    def has_class_token(self) -> bool:
        return self.pooling == "1d"

    def patch_tokens(self) -> tuple[int, ...]:
        """Patch tokens of each stage (1D: sequence lengths; 2D: grid sides squared)."""
        side = self.image_size // self.patch_size
        if self.pooling == "1d":
            n = [side * side]
            for _ in range(self.num_stages - 1):
                n.append(pooled(n[-1]))
            return tuple(n)
        sides = [side]
        for _ in range(self.num_stages - 1):
            sides.append(pooled(sides[-1]))
        return tuple(s * s for s in sides)

    def tokens(self, stage: int) -> int:
        """Tokens a layer of ``stage`` sees (the class token included in 1D)."""
        return self.patch_tokens()[stage] + self.has_class_token

    def width_choices(self) -> list[tuple[int, ...]]:
        """Every combination of stage widths that never narrows."""
        return [ws for ws in itertools.product(*self.widths) if list(ws) == sorted(ws)]

    @property
    def has_identity(self) -> bool:
        return True

    # -- decisions ----------------------------------------------------------------------------
    def build_decision_plan(self) -> DecisionPlan:
        widths = tuple(Decision(f"width[{s}]", choices) for s, choices in enumerate(self.widths))
        ratios = tuple(Decision(f"mlp_ratio[{s}]", self.mlp_ratio) for s in range(self.num_stages))
        return DecisionPlan(network=widths + ratios, layer=(Decision("op", OPS),),
                            num_layers=self.num_stages * self.cells_per_stage)

    def layer_options(self, layer: int, network: tuple) -> Iterable[tuple]:
        return [(op,) for op in OPS if op != "identity" or layer >= self.min_depth]

    def network_valid(self, network: tuple) -> bool:
        widths = network[: self.num_stages]
        return list(widths) == sorted(widths)

    def layer_signature(self, layer: int) -> int:
        return layer // self.cells_per_stage

    def arch_values(self, arch: PSViTArch) -> tuple[tuple, tuple[tuple, ...]]:
        network = tuple(s.width for s in arch.stages) + tuple(s.mlp_ratio for s in arch.stages)
        return network, tuple((c,) for s in arch.stages for c in s.cells)

    def arch_from_values(self, network: tuple, layers: tuple[tuple, ...]) -> PSViTArch:
        k, n = self.num_stages, self.cells_per_stage
        return PSViTArch(tuple(
            PSViTStage(network[s], network[k + s], tuple(op for (op,) in layers[s * n: (s + 1) * n]))
            for s in range(k)
        ))

    # -- costs --------------------------------------------------------------------------------
    def base_cost(self, kind: CostKind, network: tuple) -> int:
        """Patch embedding, position embedding and class token, the pooling layers, final norm, head."""
        widths = network[: self.num_stages]
        w0, last = widths[0], widths[-1]
        patches = self.patch_tokens()
        if kind == "macs":
            total = patch_embed_macs(patches[0], w0, self.in_chans, self.patch_size)
            total += classifier_macs(last, self.num_classes)
        else:
            total = w0 * self.in_chans * self.patch_size**2 + w0  # patch embedding
            total += self.tokens(0) * w0 + self.has_class_token * w0  # position embedding, class token
            total += 2 * last + last * self.num_classes + self.num_classes  # final norm, head
        for s, (w_in, w_out) in enumerate(zip(widths, widths[1:])):
            total += self._pool_cost(kind, s, w_in, w_out)
        return total

    def _pool_cost(self, kind: CostKind, stage: int, w_in: int, w_out: int) -> int:
        """The pooling layer after ``stage``: its convolution, and in 1D the class token's linear layer."""
        kernel = KERNEL if self.pooling == "1d" else KERNEL * KERNEL
        cls = (w_in + 1) * w_out if self.has_class_token else 0  # MACs and parameters alike
        if kind == "params":
            return kernel * w_in * w_out + w_out + cls
        # 1D: the conv (stride 1) runs on every patch token before the max-pool; 2D: on the output grid.
        positions = self.patch_tokens()[stage] if self.pooling == "1d" else self.patch_tokens()[stage + 1]
        return positions * (kernel * w_in + 1) * w_out + cls

    def layer_cost(self, kind: CostKind, layer: int, network: tuple, values: tuple) -> int:
        (op,) = values
        if op == "identity":
            return 0
        stage = layer // self.cells_per_stage
        width, ratio = network[stage], network[self.num_stages + stage]
        hidden = int(width * ratio)
        if kind == "macs":
            tokens = self.tokens(stage)
            plain = attention_macs(tokens, width, width) + mlp_macs(tokens, width, hidden)
            sharing = shared_attention_macs(tokens, width, width) + mlp_macs(tokens, width, hidden)
        else:
            plain = attention_params(width, width) + mlp_params(width, hidden)
            sharing = shared_attention_params(width, width) + mlp_params(width, hidden)
        return plain + (sharing if op == "shared" else 0)

    def timing_base(self, network: tuple) -> Probe:
        widths = tuple(network[: self.num_stages])
        arch = self.arch_from_values(network, (("identity",),) * (self.num_stages * self.cells_per_stage))
        image = (self.in_chans, self.image_size, self.image_size)
        # The model without its cells, which min_depth would not admit as an arch of this space.
        bare = dataclasses.replace(self, min_depth=0)
        return Probe(("psvit-base", *widths), image, lambda: PSViTSubnet(bare, arch))

    def timing_layer(self, layer: int, network: tuple, values: tuple) -> tuple[Probe, ...]:
        (op,) = values
        if op == "identity":
            return ()
        stage = layer // self.cells_per_stage
        width, ratio = network[stage], network[self.num_stages + stage]
        hidden, tokens = int(width * ratio), self.tokens(stage)
        return (Probe((f"psvit-{op}", tokens, width, hidden), (tokens, width),
                      lambda: PSViTCell(op, width, hidden, self.head_dim)),)

    # -- archs --------------------------------------------------------------------------------
    def _arch(self, widths: tuple[int, ...], ratio: float, op: str) -> PSViTArch:
        return PSViTArch(tuple(PSViTStage(w, ratio, (op,) * self.cells_per_stage) for w in widths))

    def largest(self) -> PSViTArch:
        candidates = (self._arch(ws, self.mlp_ratio[-1], "shared") for ws in self.width_choices())
        return max(candidates, key=lambda a: self.count(a, "macs"))

    def smallest(self) -> PSViTArch:
        candidates = (self._with_min_depth(self._arch(ws, self.mlp_ratio[0], "identity"))
                      for ws in self.width_choices())
        return min(candidates, key=lambda a: self.count(a, "macs"))

    def _with_min_depth(self, arch: PSViTArch) -> PSViTArch:
        """``arch`` with its first ``min_depth`` cells made plain layers where they are identities."""
        n = self.cells_per_stage
        stages = tuple(
            PSViTStage(stage.width, stage.mlp_ratio, tuple(
                "layer" if op == "identity" and s * n + c < self.min_depth else op for c, op in enumerate(stage.cells)))
            for s, stage in enumerate(arch.stages))
        return PSViTArch(stages)

    def sample(self, rng: np.random.Generator | int | None = None, identity_prob: float | None = None) -> PSViTArch:
        """Single-path uniform sampling as PSViT trains: stage widths uniform over the combinations
        that never narrow, each stage's MLP ratio uniform, each cell an identity with probability
        ``identity_prob`` (else ``layer`` or ``shared``, evenly), or (None) any op uniformly."""
        rng = np.random.default_rng(rng)
        choices = self.width_choices()
        widths = choices[rng.integers(len(choices))]
        stages = []
        for s, w in enumerate(widths):
            ratio = float(rng.choice(self.mlp_ratio))
            cells = []
            for c in range(self.cells_per_stage):
                if s * self.cells_per_stage + c < self.min_depth:
                    cells.append(OPS[1 + rng.integers(2)])
                elif identity_prob is None:
                    cells.append(OPS[rng.integers(len(OPS))])
                else:
                    cells.append("identity" if rng.random() < identity_prob else OPS[1 + rng.integers(2)])
            stages.append(PSViTStage(int(w), ratio, tuple(cells)))
        return PSViTArch(tuple(stages))

    def validate(self, arch: PSViTArch) -> PSViTArch:
        if not isinstance(arch, PSViTArch):
            raise ConfigError(f"arch: expected a PSViTArch, got {type(arch).__name__}")
        if len(arch.stages) != self.num_stages:
            raise ConfigError(f"arch.stages: expected {self.num_stages} stages, got {len(arch.stages)}")
        for s, stage in enumerate(arch.stages):
            check_choice(f"stages[{s}].width", stage.width, self.widths[s])
            check_choice(f"stages[{s}].mlp_ratio", stage.mlp_ratio, self.mlp_ratio)
            if len(stage.cells) != self.cells_per_stage:
                raise ConfigError(f"arch.stages[{s}].cells: expected {self.cells_per_stage} cells, got {len(stage.cells)}")
            for c, op in enumerate(stage.cells):
                check_choice(f"stages[{s}].cells[{c}]", op, OPS)
                if op == "identity" and s * self.cells_per_stage + c < self.min_depth:
                    raise ConfigError(f"arch.stages[{s}].cells[{c}]: the first {self.min_depth} cell(s) are never "
                                      f"identities in this space (space.min_depth {self.min_depth})")
            if s and stage.width < arch.stages[s - 1].width:
                raise ConfigError(f"arch.stages[{s}].width: {stage.width} is narrower than stage {s - 1}'s "
                                  f"{arch.stages[s - 1].width}; deeper stages are never narrower")
        return arch

    # -- models -------------------------------------------------------------------------------
    def build_subnet(self, arch: PSViTArch, drop_path_rate: float = 0.0) -> PSViTSubnet:
        return PSViTSubnet(self, self.validate(arch), drop_path_rate)
