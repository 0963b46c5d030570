"""Search-space families, each a package here behind the family registry (``registry.py``).

See ``README.md`` in this folder for what a family provides and how a new one registers.
"""

from . import autoformer, psvit, vitas  # noqa: F401 -- importing a family registers it
from .autoformer import Arch, AutoFormerSpace
from .base import ArchBase, SearchSpace
from .decisions import INACTIVE, Decision, DecisionPlan
from .psvit import PSViTArch, PSViTSpace, PSViTStage
from .registry import create_supernet, family_names, get_family, register_family
from .vitas import ViTASArch, ViTASBlock, ViTASSpace

__all__ = [
    "INACTIVE", "Arch", "ArchBase", "AutoFormerSpace", "Decision", "DecisionPlan", "PSViTArch", "PSViTSpace",
    "PSViTStage", "SearchSpace", "ViTASArch", "ViTASBlock", "ViTASSpace", "create_supernet", "family_names",
    "get_family", "register_family",
]
