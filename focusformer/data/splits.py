"""The three splits every data set is served as, and the dataset wrappers that build them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..config import DataConfig
from ..errors import DataError


@dataclass(frozen=True)
class DataSplits:
    """The splits of a data set; items are ``(float tensor CxHxW, int label)``.

    ``reward`` (the focus sampler's reward images) and ``search_val`` (search and selection) are
    disjoint parts held out from the train set; ``test`` is the data set's own test split.
    """

    train: Dataset
    search_val: Dataset
    test: Dataset
    num_classes: int
    reward: Dataset


@dataclass(frozen=True)
class HeldOut:
    """Indices into a train set: what trains (sorted), what selects and what the reward scores (in
    a random order)."""

    train: np.ndarray
    search_val: np.ndarray
    reward: np.ndarray


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


def split_indices(num_images: int, config: DataConfig, name: str = "data set") -> HeldOut:
    """Split ``range(num_images)`` by a permutation seeded with ``config.split_seed``: its first
    ``search_val_size`` indices select, the next ``reward_size`` are the reward's, the rest train.

    The split depends on the data config alone, never on the training seed, so runs of several
    seeds (and of several samplers) are scored and selected on the same images. Search-val and
    reward indices keep the permutation's order, so the first N of either (``--val-images N``,
    ``focus.eval_images``) are a random sample even of a class-ordered data set.
    """
    held_out = config.search_val_size + config.reward_size
    if held_out >= num_images:
        raise DataError(
            f"data.search_val_size={config.search_val_size} and data.reward_size={config.reward_size} leave no "
            f"training images: the {name} train split has only {num_images} images"
        )
    order = np.random.default_rng(config.split_seed).permutation(num_images)
    search_val, reward = order[:config.search_val_size], order[config.search_val_size:held_out]
    return HeldOut(np.sort(order[held_out:]), search_val, reward)


def held_out_splits(train_base: Dataset, test_base: Dataset, train_transform: Callable, eval_transform: Callable,
                    config: DataConfig, name: str, num_classes: int) -> DataSplits:
    """Train, search-val and reward from one base set by :func:`split_indices` (train with its own
    transforms); the test split whole."""
    indices = split_indices(len(train_base), config, name)
    return DataSplits(
        train=TransformedSubset(train_base, indices.train, train_transform),
        search_val=TransformedSubset(train_base, indices.search_val, eval_transform),
        test=TransformedSubset(test_base, np.arange(len(test_base)), eval_transform),
        num_classes=num_classes,
        reward=TransformedSubset(train_base, indices.reward, eval_transform),
    )
