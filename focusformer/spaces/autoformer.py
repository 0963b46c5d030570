"""Search spaces and architectures.

A :class:`SearchSpace` fixes what every subnet shares (input, patch size, classes,
head dim) and the choices for what varies: one embed dim per network (as in
AutoFormer), depth, and per layer the number of heads and the MLP ratio.
An :class:`Arch` is one subnet of a space.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from ..errors import ConfigError
from ..typed import from_mapping, to_mapping

#: Value of an encoding slot whose layer is beyond the arch's depth.
INACTIVE = -1


@dataclass(frozen=True)
class Arch:
    """One subnet: an embed dim, a depth, and per-layer heads and MLP ratios.

    Frozen and hashable. Structural checks happen here; whether the values are
    choices of a given space is checked by :meth:`SearchSpace.validate`.
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

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "arch") -> Arch:
        return from_mapping(cls, data, where)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"arch: not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def __str__(self) -> str:
        heads = ",".join(map(str, self.num_heads))
        ratios = ",".join(f"{r:g}" for r in self.mlp_ratio)
        return f"Arch(embed={self.embed_dim}, depth={self.depth}, heads=[{heads}], mlp=[{ratios}])"


@dataclass(frozen=True)
class SearchSpace:
    """The choices a supernet covers, plus what all its subnets share."""

    image_size: int
    in_chans: int
    patch_size: int
    num_classes: int
    head_dim: int
    embed_dim: tuple[int, ...]
    depth: tuple[int, ...]
    num_heads: tuple[int, ...]
    mlp_ratio: tuple[float, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        for field in ("image_size", "in_chans", "patch_size", "num_classes", "head_dim"):
            if getattr(self, field) < 1:
                raise ConfigError(f"space.{field}: must be a positive integer, got {getattr(self, field)}")
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"space.patch_size: {self.patch_size} does not divide image_size {self.image_size}"
            )
        for field in ("embed_dim", "depth", "num_heads", "mlp_ratio"):
            choices = getattr(self, field)
            if not choices:
                raise ConfigError(f"space.{field}: needs at least one choice")
            if any(c <= 0 for c in choices):
                raise ConfigError(f"space.{field}: choices must be positive, got {list(choices)}")
            if len(set(choices)) != len(choices):
                raise ConfigError(f"space.{field}: choices must be distinct, got {list(choices)}")
            object.__setattr__(self, field, tuple(sorted(choices)))
        if int(min(self.embed_dim) * min(self.mlp_ratio)) < 1:
            raise ConfigError("space.mlp_ratio: smallest embed_dim x smallest mlp_ratio is below 1")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "space") -> SearchSpace:
        return from_mapping(cls, data, where)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Load a space from a YAML file: either a config with a ``space:`` section or a bare space."""
        data = _read_yaml(path)
        if isinstance(data, Mapping) and "space" in data:
            data = data["space"]
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

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

    # -- archs --------------------------------------------------------------------------------
    def largest(self) -> Arch:
        d = self.max_depth
        return Arch(self.embed_dim[-1], d, (self.num_heads[-1],) * d, (self.mlp_ratio[-1],) * d)

    def smallest(self) -> Arch:
        d = self.depth[0]
        return Arch(self.embed_dim[0], d, (self.num_heads[0],) * d, (self.mlp_ratio[0],) * d)

    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        """A uniformly random arch (each choice drawn independently, as in AutoFormer)."""
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
        _check_choice("embed_dim", arch.embed_dim, self.embed_dim)
        _check_choice("depth", arch.depth, self.depth)
        for i, (h, r) in enumerate(zip(arch.num_heads, arch.mlp_ratio)):
            _check_choice(f"num_heads[{i}]", h, self.num_heads)
            _check_choice(f"mlp_ratio[{i}]", r, self.mlp_ratio)
        return arch

    def arch_from_dict(self, data: Mapping[str, Any], where: str = "arch") -> Arch:
        return self.validate(Arch.from_dict(data, where))

    # -- encoding -----------------------------------------------------------------------------
    @property
    def encoding_length(self) -> int:
        return 2 + 2 * self.max_depth

    @property
    def encoding_cardinalities(self) -> tuple[int, ...]:
        """Number of choices of each encoding slot (an inactive layer is ``INACTIVE``)."""
        per_layer = (len(self.num_heads), len(self.mlp_ratio)) * self.max_depth
        return (len(self.depth), len(self.embed_dim), *per_layer)

    def encode(self, arch: Arch) -> np.ndarray:
        """Canonical integer vector: ``[depth, embed, heads_0, mlp_0, heads_1, mlp_1, ...]``.

        Each slot holds the index of the choice; layers beyond the depth hold ``INACTIVE``.
        """
        self.validate(arch)
        code = np.full(self.encoding_length, INACTIVE, dtype=np.int64)
        code[0] = self.depth.index(arch.depth)
        code[1] = self.embed_dim.index(arch.embed_dim)
        code[2 : 2 + 2 * arch.depth : 2] = [self.num_heads.index(h) for h in arch.num_heads]
        code[3 : 3 + 2 * arch.depth : 2] = [self.mlp_ratio.index(r) for r in arch.mlp_ratio]
        return code

    def decode(self, code: Sequence[int] | np.ndarray) -> Arch:
        code = np.asarray(code)
        if code.shape != (self.encoding_length,):
            raise ConfigError(f"encoding: expected length {self.encoding_length}, got shape {code.shape}")
        if code.dtype.kind not in "iu":
            raise ConfigError(f"encoding: expected integers, got dtype {code.dtype}")
        try:
            depth = self.depth[int(code[0])]
            layers = code[2 : 2 + 2 * depth].reshape(depth, 2)
            arch = Arch(
                embed_dim=self.embed_dim[int(code[1])],
                depth=depth,
                num_heads=tuple(self.num_heads[int(h)] for h in layers[:, 0]),
                mlp_ratio=tuple(self.mlp_ratio[int(r)] for r in layers[:, 1]),
            )
        except IndexError:
            raise ConfigError(f"encoding: index out of range in {code.tolist()}") from None
        if (code[2 + 2 * depth :] != INACTIVE).any() or (code[: 2 + 2 * depth] < 0).any():
            raise ConfigError(f"encoding: not canonical: {code.tolist()}")
        return arch


def _check_choice(field: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        allowed = ", ".join(f"{c:g}" if isinstance(c, float) else str(c) for c in choices)
        raise ConfigError(f"arch.{field}: {value!r} is not a choice of the space; allowed: {allowed}")


def _read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML ({where}{getattr(exc, 'problem', None) or exc})") from None
