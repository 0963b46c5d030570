"""Typed decisions: what an arch of a space chooses, in the order it chooses it.

Every family describes its archs as the same two-part plan: a few network-wide
decisions made first (depth, embed dim, patch size, ...), then the same list of
decisions for each of ``num_layers`` layers (heads, MLP ratio or width, ...).
An arch is then a flat vector of choice indices, one *slot* per decision, with
:data:`INACTIVE` where a decision does not apply (a layer beyond the depth, the
widths of an identity layer). The sampler, the predictor's features, evolution and
the cost bounds all work on that vector, so none of them knows any family.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Sequence

from ..errors import ConfigError

#: Value of an encoding slot whose decision does not apply to the arch.
INACTIVE = -1


@dataclass(frozen=True)
class Decision:
    """One choice of an arch.

    ``kind`` names what is decided; the decisions of one kind (every layer's heads, say)
    share one output head of the sampler's policy. A ``structural`` decision sets how many
    layers exist (a depth): evolution resamples it with its own probability and crossover
    takes it from one parent, so the child's layers line up with that parent's.
    """

    kind: str
    choices: tuple[Any, ...]
    layer: int | None = None
    structural: bool = False

    @property
    def name(self) -> str:
        return self.kind if self.layer is None else f"{self.kind}[{self.layer}]"


@dataclass(frozen=True)
class DecisionPlan:
    """The network-wide decisions, then ``layer`` (one layer's decisions) for each of ``num_layers``."""

    network: tuple[Decision, ...]
    layer: tuple[Decision, ...]
    num_layers: int

    @cached_property
    def slots(self) -> tuple[Decision, ...]:
        """Every decision in the order it is made; slot ``i`` is position ``i`` of an encoding."""
        per_layer = (replace(d, layer=i) for i in range(self.num_layers) for d in self.layer)
        return (*self.network, *per_layer)

    @property
    def encoding_length(self) -> int:
        return len(self.network) + len(self.layer) * self.num_layers

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return tuple(len(d.choices) for d in self.slots)

    def network_slots(self, names: Sequence[str], key: str) -> frozenset[int]:
        """The slots of the network-wide decisions ``names``; a ConfigError naming ``key`` and the
        choices for a name that is none."""
        network = [d.name for d in self.network]
        unknown = [name for name in names if name not in network]
        if unknown:
            raise ConfigError(f"{key}: {', '.join(map(repr, unknown))} is not a network-wide decision of this "
                              f"space; choose from {', '.join(network)}")
        return frozenset(network.index(name) for name in names)
