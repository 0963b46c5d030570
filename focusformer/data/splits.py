"""The three splits every data set is served as, and the dataset wrappers that build them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..errors import DataError


@dataclass(frozen=True)
class DataSplits:
    """The three splits of a data set; items are ``(float tensor CxHxW, int label)``."""

    train: Dataset
    search_val: Dataset
    test: Dataset
    num_classes: int


class TensorImageDataset(TensorDataset):
    """In-memory images ``(N, C, H, W)`` and labels ``(N,)``; labels come out as ``int``.

    ``tensors`` (``images``, ``labels``) can be used directly for whole-batch indexing.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(images, labels)

    @property
    def images(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def labels(self) -> torch.Tensor:
        return self.tensors[1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.tensors[0][index], int(self.tensors[1][index])


class TransformedSubset(Dataset):
    """The items ``indices`` of ``base`` (which yields PIL images), passed through ``transform``.

    Lets the train and search-val splits share one underlying data set while
    using different transforms.
    """

    def __init__(self, base: Dataset, indices: Sequence[int], transform: Callable[[Any], torch.Tensor]) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[int(self.indices[index])]
        return self.transform(image), int(label)


def split_indices(num_images: int, search_val_size: int, seed: int, name: str = "data set") -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(num_images)`` into sorted ``(train, search_val)`` index arrays."""
    if search_val_size >= num_images:
        raise DataError(
            f"data.search_val_size={search_val_size} leaves no training images: "
            f"the {name} train split has only {num_images} images"
        )
    order = np.random.default_rng(seed).permutation(num_images)
    return np.sort(order[search_val_size:]), np.sort(order[:search_val_size])


def held_out_splits(train_base: Dataset, test_base: Dataset, train_transform: Callable, eval_transform: Callable,
                    search_val_size: int, seed: int, name: str, num_classes: int) -> DataSplits:
    """Train and search-val from one base set by a seeded split (different transforms); the test split whole."""
    train_idx, val_idx = split_indices(len(train_base), search_val_size, seed, name)
    return DataSplits(
        train=TransformedSubset(train_base, train_idx, train_transform),
        search_val=TransformedSubset(train_base, val_idx, eval_transform),
        test=TransformedSubset(test_base, np.arange(len(test_base)), eval_transform),
        num_classes=num_classes,
    )
