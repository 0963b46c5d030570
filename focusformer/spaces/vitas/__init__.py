"""The ViTAS family (Su et al., 2021): patch-size search, private tokens and attention maps,
identity layers. See ``spaces/README.md`` for what a family provides."""

from ..registry import register_family
from .space import IDENTITY, ViTASArch, ViTASBlock, ViTASSpace, vitas_published_macs
from .supernet import ViTASSupernet

register_family(ViTASSpace, ViTASSupernet)

__all__ = ["IDENTITY", "ViTASArch", "ViTASBlock", "ViTASSpace", "ViTASSupernet", "vitas_published_macs"]
