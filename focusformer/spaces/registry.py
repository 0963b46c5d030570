"""The registry of search-space families and the supernet factory.

A family joins by registering its space class and its supernet class (``register_family``, in
the family package's ``__init__``), as timm's models join its model registry; the rest of the
package finds a family by the name a config gives (``space.family``) and builds its supernet with
:func:`create_supernet`, so no code outside a family names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .base import SearchSpace
    from .supernet import Supernet


@dataclass(frozen=True)
class Family:
    """A registered family: its name (``space.family``), space class and supernet class."""

    name: str
    space: type[SearchSpace]
    supernet: type[Supernet]


_FAMILIES: dict[str, Family] = {}


def register_family(space: type[SearchSpace], supernet: type[Supernet]) -> Family:
    """Register ``space`` (a frozen dataclass with a ``family`` class attribute) and its supernet."""
    name = space.family
    if name in _FAMILIES and _FAMILIES[name] != Family(name, space, supernet):
        raise ValueError(f"family {name!r} is already registered")  # a programming error, not user input
    _FAMILIES[name] = Family(name, space, supernet)
    return _FAMILIES[name]


def family_names() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def get_family(name: str, where: str = "space.family") -> Family:
    """The registered family ``name``, or a ConfigError naming the registered ones."""
    if name not in _FAMILIES:
        raise ConfigError(f"{where}: {name!r} is not allowed; choose one of {', '.join(map(repr, _FAMILIES))}")
    return _FAMILIES[name]


def create_supernet(space: SearchSpace, drop_path_rate: float = 0.0) -> Supernet:
    """The weight-sharing supernet of ``space``'s family, initialised as timm initialises ViTs."""
    return get_family(space.family).supernet(space, drop_path_rate)
