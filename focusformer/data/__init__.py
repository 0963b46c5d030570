"""Data sets: loading, validation against the search space, and the splits.

:func:`load_data` returns a :class:`DataSplits` with

* ``train``: the training images, with training transforms;
* ``search_val``: ``data.search_val_size`` images held out *from the train set*
  (a permutation seeded by ``data.split_seed``), with evaluation transforms; search and
  subnet selection use it, never the test set;
* ``reward``: ``data.reward_size`` further images held out from the train set, disjoint from
  search-val: the focus sampler's reward scores them, so the images that steer training never
  select or score its result;
* ``test``: the data set's official test split (digits has none, so a fixed,
  stratified part of it is carved out), with evaluation transforms.

Every item is ``(image, label)``: a float tensor of shape
``(in_chans, image_size, image_size)``, normalised, and a Python ``int``.

The sets by name: ``digits`` and ``fashion-mnist`` in memory (:mod:`.in_memory`), ``cifar10``
and ``cifar100`` (:mod:`.cifar`), and everything ``timm.data.create_dataset`` reads
(:mod:`.timm_formats`): ``folder`` (or ``imagefolder``) folders and tar files, ``torch/<name>``,
``hfds/<name>``, ``wds/<name>``. Everything that can be checked before training is checked and
reported as a one-line :class:`~focusformer.errors.DataError`: missing or empty data, corrupt
files, images or classes that do not fit the space.
"""

from __future__ import annotations

from functools import partial

from ..config import TIMM_DATASET_PREFIXES, DataConfig, TrainConfig
from ..errors import DataError
from ..spaces import SearchSpace
from .checks import image_mode
from .cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, DEFAULT_CIFAR_DIR, load_cifar
from .in_memory import (
    DEFAULT_FASHION_MNIST_DIR,
    DIGITS_MEAN,
    DIGITS_STD,
    FASHION_MNIST_FILES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    load_digits,
    load_fashion_mnist,
    read_idx,
)
from .splits import DataSplits, TensorImageDataset, TransformedSubset, split_indices
from .timm_formats import load_timm_dataset
from .transforms import IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD, IMAGENET_MEAN, IMAGENET_STD

_BUILT_IN = {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": partial(load_cifar, name="cifar10"),
    "cifar100": partial(load_cifar, name="cifar100"),
}


def load_data(config: DataConfig, space: SearchSpace, train: TrainConfig) -> DataSplits:
    """Load ``config.dataset``, check it against ``space`` and split it (see the module docstring).

    ``train`` supplies the RGB augmentations (RandAugment, random erasing); ``config.split_seed``
    picks which train images are held out, whatever the training seed.
    """
    loader = _BUILT_IN.get(config.dataset)
    if loader is not None:
        return loader(config, space, train)
    if config.dataset in ("folder", "imagefolder") or config.dataset.startswith(TIMM_DATASET_PREFIXES):
        return load_timm_dataset(config, space, train)
    raise DataError(f"data.dataset: unknown data set {config.dataset!r}")


def normalization(config: DataConfig, space: SearchSpace) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel ``(mean, std)`` that images in ``[0, 1]`` are normalised by for ``config``'s
    data set: what a model trained on it expects (an export's preprocessing)."""
    if config.dataset == "digits":
        return (DIGITS_MEAN,), (DIGITS_STD,)
    if config.dataset == "fashion-mnist":
        return (FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,)
    if config.dataset in ("cifar10", "cifar100"):
        return (CIFAR10_MEAN, CIFAR10_STD) if config.dataset == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
    rgb = image_mode(config.dataset, space) == "RGB"
    return (IMAGENET_MEAN, IMAGENET_STD) if rgb else (IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD)


__all__ = [
    "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "DEFAULT_CIFAR_DIR",
    "DEFAULT_FASHION_MNIST_DIR", "DIGITS_MEAN", "DIGITS_STD", "FASHION_MNIST_FILES", "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD", "DataSplits", "TensorImageDataset", "TransformedSubset", "load_data", "read_idx",
    "normalization", "split_indices",
]
