"""The AutoFormer family (Chen et al., 2021): weight entanglement over embed dim, depth, and per
layer heads and MLP ratio. See ``spaces/README.md`` for what a family provides."""

from ..registry import register_family
from .space import Arch, AutoFormerSpace
from .supernet import AutoFormerSupernet

register_family(AutoFormerSpace, AutoFormerSupernet)

__all__ = ["Arch", "AutoFormerSpace", "AutoFormerSupernet"]
