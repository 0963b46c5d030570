"""The two small grayscale sets held in memory: sklearn's digits and Fashion-MNIST's IDX files.

Both are read whole, split by the seed, normalised once and served as tensors: no
per-item decoding, which is what keeps CPU training on them fast.
"""

from __future__ import annotations

import gzip
import zlib
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import DataConfig, TrainConfig
from ..errors import DataError
from ..spaces import SearchSpace
from .checks import check_geometry, check_labels, check_not_empty, check_num_classes
from .splits import DataSplits, TensorImageDataset, split_indices

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Pixel statistics after scaling to [0, 1]. Digits: computed once over all 1,797
# images of sklearn's load_digits (values / 16). Fashion-MNIST: the usual published
# statistics of its train split.
DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530

#: The digits test split does not depend on the run seed, so that test accuracies
#: of runs with different seeds are measured on the same images.
DIGITS_TEST_SEED = 0

FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_IDX_UBYTE = 0x08


def _normalised(images: np.ndarray, scale: float, mean: float, std: float) -> torch.Tensor:
    """``(N, H, W)`` raw pixels to a normalised float tensor ``(N, 1, H, W)``."""
    tensor = torch.from_numpy(images.astype(np.float32))
    return tensor.div_(scale).sub_(mean).div_(std).unsqueeze(1)


def _in_memory_splits(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                      test_labels: np.ndarray, normalise: Callable[[np.ndarray], torch.Tensor],
                      config: DataConfig, name: str, num_classes: int) -> DataSplits:
    """Split raw train arrays (:func:`split_indices`) and normalise each part (split first: less peak memory)."""
    indices = split_indices(len(train_labels), config, name)

    def part(images: np.ndarray, labels: np.ndarray) -> TensorImageDataset:
        return TensorImageDataset(normalise(images), torch.as_tensor(labels, dtype=torch.int64))

    return DataSplits(
        train=part(train_images[indices.train], train_labels[indices.train]),
        search_val=part(train_images[indices.search_val], train_labels[indices.search_val]),
        test=part(test_images, test_labels),
        num_classes=num_classes,
        reward=part(train_images[indices.reward], train_labels[indices.reward]),
    )


# -- digits -----------------------------------------------------------------------------------
def load_digits(config: DataConfig, space: SearchSpace, train: TrainConfig) -> DataSplits:
    """sklearn's 8x8 digits; a stratified test split drawn with :data:`DIGITS_TEST_SEED`."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    check_geometry("digits", 8, 8, 1, space, "use configs/digits.yaml or set space.image_size=8, space.in_chans=1")
    check_num_classes("digits", 10, space)
    digits = sklearn_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=config.digits_test_fraction, stratify=labels,
        random_state=DIGITS_TEST_SEED,
    )
    return _in_memory_splits(
        images[train_idx], labels[train_idx], images[test_idx], labels[test_idx],
        partial(_normalised, scale=16.0, mean=DIGITS_MEAN, std=DIGITS_STD),
        config, "digits", 10,
    )


# -- fashion-mnist ----------------------------------------------------------------------------
def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes with ``ndim`` dimensions; DataError if malformed."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: bad magic number 0x{raw[:4].hex()}, not an IDX file")
    if raw[2] != _IDX_UBYTE:
        raise DataError(f"{path}: IDX element type 0x{raw[2]:02x}, expected 0x08 (unsigned byte)")
    if raw[3] != ndim:
        raise DataError(f"{path}: IDX file has {raw[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, expected {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: header says {'x'.join(map(str, dims))} = {expected} bytes of data "
            f"but the file has {len(raw) - header} (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_fashion_split(root: Path, split: str, space: SearchSpace) -> tuple[np.ndarray, np.ndarray]:
    images_path = root / FASHION_MNIST_FILES[f"{split}_images"]
    labels_path = root / FASHION_MNIST_FILES[f"{split}_labels"]
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path}: {len(images)} images but {labels_path.name} has {len(labels)} labels"
        )
    check_not_empty(str(images_path), len(images))
    check_geometry(
        "fashion-mnist", images.shape[1], images.shape[2], 1, space,
        "use configs/fashion-mnist.yaml or set space.image_size/in_chans",
    )
    labels = labels.astype(np.int64)
    check_labels(str(labels_path), labels, 10)
    return images, labels


def load_fashion_mnist(config: DataConfig, space: SearchSpace, train: TrainConfig) -> DataSplits:
    """The four IDX .gz files of Fashion-MNIST, in memory; no augmentation (grayscale)."""
    root = Path(config.data_dir or DEFAULT_FASHION_MNIST_DIR).expanduser()
    if not root.is_dir():
        raise DataError(
            f"fashion-mnist: no directory {root}; install Debian's dataset-fashion-mnist package "
            f"or set data.data_dir to a folder with {', '.join(FASHION_MNIST_FILES.values())}"
        )
    missing = [name for name in FASHION_MNIST_FILES.values() if not (root / name).is_file()]
    if missing:
        raise DataError(f"fashion-mnist: missing in {root}: {', '.join(missing)}")
    check_num_classes("fashion-mnist", 10, space)
    train_images, train_labels = _read_fashion_split(root, "train", space)
    test_images, test_labels = _read_fashion_split(root, "test", space)
    return _in_memory_splits(
        train_images, train_labels, test_images, test_labels,
        partial(_normalised, scale=255.0, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD),
        config, "fashion-mnist", 10,
    )
