"""Search-space families: each module defines one (decisions, arch, costs, supernet, export).

See ``README.md`` in this folder for what a family provides.
"""

from .autoformer import Arch, AutoFormerSpace
from .base import SearchSpace
from .decisions import INACTIVE, Decision, DecisionPlan
from .psvit import PSViTArch, PSViTSpace, PSViTStage
from .vitas import ViTASArch, ViTASBlock, ViTASSpace

#: Family name (the ``space.family`` config key) to its space class.
FAMILIES: dict[str, type[SearchSpace]] = {"autoformer": AutoFormerSpace, "vitas": ViTASSpace, "psvit": PSViTSpace}

__all__ = [
    "FAMILIES", "INACTIVE", "Arch", "AutoFormerSpace", "Decision", "DecisionPlan", "PSViTArch", "PSViTSpace",
    "PSViTStage", "SearchSpace",
    "ViTASArch", "ViTASBlock", "ViTASSpace",
]
