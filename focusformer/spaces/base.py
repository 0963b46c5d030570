"""The interface every search-space family implements; see ``spaces/README.md``.

A family is one module holding a frozen space dataclass (a subclass of
:class:`SearchSpace`), its frozen arch dataclass, its supernet and its dense
subnet. The space declares its decisions (:meth:`SearchSpace.decision_plan`),
maps archs to decision values and back, and gives its costs as a base term plus
one term per layer. Everything else here (encoding, validation of encodings,
cost tables and bounds, counting) is shared, so the sampler, the predictor,
the searches, the CLIs and the checkpoints work on any family.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Literal, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..fileio import read_yaml
from ..typed import from_mapping, to_mapping
from .costs import LayeredCost, LayerValues, NetworkValues, slot_values
from .decisions import INACTIVE, DecisionPlan
from .elastic import SIDES, Side
from .registry import get_family

if TYPE_CHECKING:
    from torch import nn

    from .supernet import ForwardSide
    from .timing import Probe

CostKind = Literal["macs", "params"]
#: ``left``: every elastic width takes the leading channels (AutoFormer's weight entanglement).
#: ``bilateral``: it takes them from either end, ``left`` or ``right``; training runs both sides
#: and sums their logits, and search scores a subnet by the mean of its two sides (ViTAS, BCNet).
WeightSharing = Literal["left", "bilateral"]
DEFAULT_FAMILY = "autoformer"


class ArchBase:
    """What every family's arch is: a frozen, hashable dataclass (``Arch``, ``ViTASArch``,
    ``PSViTArch``) with a JSON round trip. The package handles archs only through this type and the
    space that knows them (``space.encode``, ``space.count``, ``space.validate``, ...)."""

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "arch"):
        return from_mapping(cls, data, where)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"arch: not valid JSON ({exc})") from None
        return cls.from_dict(data)


#: One score per arch, higher is better (search-val top-1, say): what the searches and specialize
#: rank archs by.
ArchScoreFn = Callable[[Sequence[ArchBase]], list[float]]


class SearchSpace(ABC):
    """A search-space family's space: the choices a supernet covers and what its subnets share.

    Subclasses are frozen dataclasses with a ``family`` field; ``SearchSpace.from_dict`` and
    ``from_yaml`` pick the subclass by that field (``autoformer`` when it is missing).
    """

    family: ClassVar[str]
    arch_type: ClassVar[type[ArchBase]]
    image_size: int
    in_chans: int
    num_classes: int
    name: str
    weight_sharing: WeightSharing

    @property
    def sides(self) -> tuple[Side, ...]:
        """The sides a subnet of this space is trained and scored on."""
        return SIDES if self.weight_sharing == "bilateral" else ("left",)

    @property
    def training_side(self) -> ForwardSide:
        """What a training step runs: ``bilateral`` (both sides' logits summed, one loss: ViTAS) or ``left``."""
        return "bilateral" if self.weight_sharing == "bilateral" else "left"

    # -- what a family provides ---------------------------------------------------------------
    @abstractmethod
    def build_decision_plan(self) -> DecisionPlan:
        """The network-wide decisions, then one layer's decisions, and the number of layers."""

    @abstractmethod
    def layer_options(self, layer: int, network: NetworkValues) -> Iterable[LayerValues]:
        """Every valid value tuple of layer ``layer``'s decisions (None where one does not apply)."""

    def network_valid(self, network: NetworkValues) -> bool:
        """Whether a combination of network-wide values is an arch of the space (all, by default)."""
        return True

    @abstractmethod
    def arch_values(self, arch: ArchBase) -> tuple[NetworkValues, tuple[LayerValues, ...]]:
        """The decision values of ``arch``: network values and one tuple per layer."""

    @abstractmethod
    def arch_from_values(self, network: NetworkValues, layers: tuple[LayerValues, ...]) -> ArchBase:
        """Inverse of :meth:`arch_values`."""

    @abstractmethod
    def base_cost(self, kind: CostKind, network: NetworkValues) -> int:
        """MACs (per image) or parameters outside the layers: stem, tokens, final norm, head."""

    @abstractmethod
    def layer_cost(self, kind: CostKind, layer: int, network: NetworkValues, values: LayerValues) -> int:
        """MACs or parameters of layer ``layer`` with decision values ``values`` (0 if it is absent)."""

    def layer_signature(self, layer: int) -> Any:
        """Layers with equal signatures cost alike for equal values (lets cost tables be built faster)."""
        return None

    @abstractmethod
    def validate(self, arch: ArchBase) -> ArchBase:
        """Return ``arch`` if it is an arch of this space, else raise ConfigError naming the field."""

    @abstractmethod
    def sample(self, rng: np.random.Generator | int | None = None, identity_prob: float | None = None) -> ArchBase:
        """A random arch, each decision drawn independently as the family's paper does.

        ``identity_prob`` (families with identity layers only) is the probability that each
        layer is an identity; None draws identity like any other choice.
        """

    @abstractmethod
    def largest(self) -> ArchBase:
        """The arch with the most MACs."""

    @abstractmethod
    def smallest(self) -> ArchBase:
        """The arch with the fewest MACs."""

    @abstractmethod
    def build_subnet(self, arch: ArchBase, drop_path_rate: float = 0.0) -> nn.Module:
        """A dense model of ``arch`` (its ``arch`` and ``space`` attributes set), for export."""

    @property
    def has_identity(self) -> bool:
        """Whether layers may be identities (then uniform sampling can be calibrated to a budget)."""
        return False

    def timing_base(self, network: NetworkValues) -> Probe:
        """The dense model of ``network`` with no layers (what ``base_cost`` counts), to time on a device."""
        raise ConfigError(f"the {self.family} family cannot be timed for a latency table")

    def timing_layer(self, layer: int, network: NetworkValues, values: LayerValues) -> tuple[Probe, ...]:
        """The dense modules whose run times add up to layer ``layer``'s with ``values`` (none if absent)."""
        raise ConfigError(f"the {self.family} family cannot be timed for a latency table")

    def decision_plan(self) -> DecisionPlan:
        return _decision_plan(self)

    # -- shared: construction and serialisation ------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, where: str = "space") -> SearchSpace:
        """The space of the registered family that ``data["family"]`` names (``autoformer`` when missing)."""
        family = data.get("family", DEFAULT_FAMILY) if isinstance(data, Mapping) else DEFAULT_FAMILY
        space_class = get_family(family, f"{where}.family").space
        return from_mapping(space_class, data, where)  # "expected a mapping" if it is none

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Load a space from a YAML file: either a config with a ``space:`` section or a bare space."""
        data = read_yaml(path)
        if isinstance(data, Mapping) and "space" in data:
            data = data["space"]
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    def arch_from_dict(self, data: Mapping[str, Any], where: str = "arch") -> ArchBase:
        return self.validate(self.arch_type.from_dict(data, where))

    # -- shared: encoding ---------------------------------------------------------------------
    @property
    def encoding_length(self) -> int:
        return self.decision_plan().encoding_length

    @property
    def encoding_cardinalities(self) -> tuple[int, ...]:
        """Number of choices of each encoding slot (an inactive slot is ``INACTIVE``)."""
        return self.decision_plan().cardinalities

    def encode(self, arch: ArchBase) -> np.ndarray:
        """Canonical integer vector: one choice index per decision slot, ``INACTIVE`` where it does not apply."""
        self.validate(arch)
        network, layers = self.arch_values(arch)
        values = [*network, *(v for layer in layers for v in layer)]
        slots = self.decision_plan().slots
        return np.array([INACTIVE if v is None else slots[s].choices.index(v) for s, v in enumerate(values)],
                        dtype=np.int64)

    def decode(self, code: Sequence[int] | np.ndarray) -> ArchBase:
        code = np.asarray(code)
        if code.shape != (self.encoding_length,):
            raise ConfigError(f"encoding: expected length {self.encoding_length}, got shape {code.shape}")
        if code.dtype.kind not in "iu":
            raise ConfigError(f"encoding: expected integers, got dtype {code.dtype}")
        try:
            self.cost_model("macs").split(code)
        except ValueError as exc:
            raise ConfigError(f"encoding: not canonical ({exc}): {code.tolist()}") from None
        return self.arch_from_values(*slot_values(code, self.decision_plan()))

    # -- shared: costs ------------------------------------------------------------------------
    def cost_model(self, kind: CostKind) -> LayeredCost:
        """The exact cost table for ``kind``, built once per space."""
        return _cost_model(self, kind)

    def count(self, arch: ArchBase, kind: CostKind) -> int:
        """MACs (per image) or parameters of ``arch``, summed from the family's terms."""
        self.validate(arch)
        network, layers = self.arch_values(arch)
        return self.base_cost(kind, network) + sum(
            self.layer_cost(kind, i, network, values) for i, values in enumerate(layers)
        )


@lru_cache(maxsize=64)
def _decision_plan(space: SearchSpace) -> DecisionPlan:
    return space.build_decision_plan()


@lru_cache(maxsize=64)
def _cost_model(space: SearchSpace, kind: CostKind) -> LayeredCost:
    return LayeredCost.build(
        space.decision_plan(),
        layer_options=space.layer_options,
        base_cost=lambda network: space.base_cost(kind, network),
        layer_cost=lambda layer, network, values: space.layer_cost(kind, layer, network, values),
        network_valid=space.network_valid,
        layer_signature=space.layer_signature,
    )


def spanning_archs(space: SearchSpace, count: int, seed: int) -> list[ArchBase]:
    """``count`` distinct archs: the smallest, the largest, then seeded uniform samples (fewer only if
    the space has fewer distinct archs reachable in a generous number of draws)."""
    archs = list(dict.fromkeys([space.smallest(), space.largest()]))[:count]
    seen = set(archs)
    rng = np.random.default_rng(seed)
    for _ in range(50 * count):
        if len(archs) >= count:
            break
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            archs.append(arch)
    return archs


def check_choice(field: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        allowed = ", ".join(f"{c:g}" if isinstance(c, float) else str(c) for c in choices)
        raise ConfigError(f"arch.{field}: {value!r} is not a choice of the space; allowed: {allowed}")


def check_and_sort_choices(space: Any, fields: Sequence[str]) -> None:
    """Shared checks of a space's choice tuples: non-empty, positive, distinct; sorts them in place."""
    for field in fields:
        choices = getattr(space, field)
        if not choices:
            raise ConfigError(f"space.{field}: needs at least one choice")
        if any(c <= 0 for c in choices):
            raise ConfigError(f"space.{field}: choices must be positive, got {list(choices)}")
        if len(set(choices)) != len(choices):
            raise ConfigError(f"space.{field}: choices must be distinct, got {list(choices)}")
        object.__setattr__(space, field, tuple(sorted(choices)))


def check_positive(space: Any, fields: Sequence[str]) -> None:
    for field in fields:
        if getattr(space, field) < 1:
            raise ConfigError(f"space.{field}: must be a positive integer, got {getattr(space, field)}")
