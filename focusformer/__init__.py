"""focusformer: one-shot neural architecture search for vision transformers."""

from .errors import CheckpointError, ConfigError, DataError, FocusformerError
from .export import load_subnet
from .spaces import Arch, SearchSpace, create_supernet
from .spaces.counts import count_macs, count_params
from .spaces.supernet import Supernet
from .version import __version__  # noqa: F401 -- focusformer.__version__

__all__ = [
    "Arch",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "FocusformerError",
    "SearchSpace",
    "Supernet",
    "count_macs",
    "count_params",
    "create_supernet",
    "load_subnet",
]

