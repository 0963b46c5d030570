"""The PSViT family (Chen et al., 2021): token pooling between stages, attention sharing between
layers. See ``spaces/README.md`` for what a family provides."""

from ..registry import register_family
from .space import OPS, PSViTArch, PSViTSpace, PSViTStage
from .subnet import PSViTCell, PSViTSubnet
from .supernet import PSViTSupernet

register_family(PSViTSpace, PSViTSupernet)

__all__ = ["OPS", "PSViTArch", "PSViTCell", "PSViTSpace", "PSViTStage", "PSViTSubnet", "PSViTSupernet"]
