"""Checks a data set must pass before training starts, each a one-line :class:`DataError`."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..spaces import SearchSpace


def check_geometry(name: str, height: int, width: int, chans: int, space: SearchSpace, hint: str) -> None:
    if (height, width, chans) != (space.image_size, space.image_size, space.in_chans):
        raise DataError(
            f"{name} images are {height}x{width}x{chans} but the space expects "
            f"{space.image_size}x{space.image_size}x{space.in_chans}; {hint}"
        )


def check_num_classes(name: str, num_classes: int, space: SearchSpace) -> None:
    if num_classes != space.num_classes:
        raise DataError(
            f"{name} has {num_classes} classes but the space expects {space.num_classes}; "
            f"set space.num_classes={num_classes}"
        )


def check_labels(where: str, labels: np.ndarray, num_classes: int) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise DataError(f"{where}: label {int(bad)} is out of range; expected 0 to {num_classes - 1}")


def check_not_empty(where: str, count: int) -> None:
    if count == 0:
        raise DataError(f"{where}: no images")


def image_mode(name: str, space: SearchSpace) -> str:
    """The PIL mode images are converted to for ``space``: "L" (1 channel) or "RGB" (3)."""
    if space.in_chans not in (1, 3):
        raise DataError(f"{name}: space.in_chans must be 1 (grayscale) or 3 (RGB), got {space.in_chans}")
    return "L" if space.in_chans == 1 else "RGB"
