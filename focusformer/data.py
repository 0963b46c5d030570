"""Data sets: loading, validation against the search space, and the three splits.

:func:`load_data` returns a :class:`DataSplits` with

* ``train``: the training images, with training transforms;
* ``search_val``: ``data.search_val_size`` images held out *from the train set*
  (a permutation seeded by ``seed``), with evaluation transforms; search and
  subnet selection use it, never the test set;
* ``test``: the data set's official test split (digits has none, so a fixed,
  stratified part of it is carved out), with evaluation transforms.

Every item is ``(image, label)``: a float tensor of shape
``(in_chans, image_size, image_size)``, normalised, and a Python ``int``.

Everything that can be checked before training is checked here and reported as
a one-line :class:`~focusformer.errors.DataError`: missing or empty data,
corrupt files, images or classes that do not fit the space.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, TensorDataset

from .config import DataConfig, TrainConfig
from .errors import DataError
from .spaces import SearchSpace

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_CIFAR_DIR = "~/.cache/focusformer/cifar"

# Pixel statistics after scaling to [0, 1]. Digits: computed once over all 1,797
# images of sklearn's load_digits (values / 16). The others are the usual
# published per-channel statistics of each data set's train split.
DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# For grayscale image folders: the mean of ImageNet's three channel statistics.
IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD = (0.449,), (0.226,)

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


# -- entry point ------------------------------------------------------------------------------
def load_data(config: DataConfig, space: SearchSpace, train: TrainConfig, seed: int) -> DataSplits:
    """Load ``config.dataset``, check it against ``space`` and split it (see the module docstring).

    ``train`` supplies the RGB augmentations (RandAugment, random erasing);
    ``seed`` picks which train images form the search-val split.
    """
    loaders = {
        "digits": _load_digits,
        "fashion-mnist": _load_fashion_mnist,
        "cifar10": partial(_load_cifar, name="cifar10"),
        "cifar100": partial(_load_cifar, name="cifar100"),
        "imagefolder": _load_imagefolder,
    }
    if config.dataset not in loaders:
        raise DataError(f"data.dataset: unknown data set {config.dataset!r}; allowed: {', '.join(loaders)}")
    return loaders[config.dataset](config, space, train, seed)


def split_indices(num_images: int, search_val_size: int, seed: int, name: str = "data set") -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(num_images)`` into sorted ``(train, search_val)`` index arrays."""
    if search_val_size >= num_images:
        raise DataError(
            f"data.search_val_size={search_val_size} leaves no training images: "
            f"the {name} train split has only {num_images} images"
        )
    order = np.random.default_rng(seed).permutation(num_images)
    return np.sort(order[search_val_size:]), np.sort(order[:search_val_size])


# -- checks -----------------------------------------------------------------------------------
def _check_geometry(name: str, height: int, width: int, chans: int, space: SearchSpace, hint: str) -> None:
    if (height, width, chans) != (space.image_size, space.image_size, space.in_chans):
        raise DataError(
            f"{name} images are {height}x{width}x{chans} but the space expects "
            f"{space.image_size}x{space.image_size}x{space.in_chans}; {hint}"
        )


def _check_num_classes(name: str, num_classes: int, space: SearchSpace) -> None:
    if num_classes != space.num_classes:
        raise DataError(
            f"{name} has {num_classes} classes but the space expects {space.num_classes}; "
            f"set space.num_classes={num_classes}"
        )


def _check_labels(where: str, labels: np.ndarray, num_classes: int) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise DataError(f"{where}: label {int(bad)} is out of range; expected 0 to {num_classes - 1}")


def _check_not_empty(where: str, count: int) -> None:
    if count == 0:
        raise DataError(f"{where}: no images")


def _normalised(images: np.ndarray, scale: float, mean: float, std: float) -> torch.Tensor:
    """``(N, H, W)`` raw pixels to a normalised float tensor ``(N, 1, H, W)``."""
    tensor = torch.from_numpy(images.astype(np.float32))
    return tensor.div_(scale).sub_(mean).div_(std).unsqueeze(1)


def _in_memory_splits(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                      test_labels: np.ndarray, normalise: Callable[[np.ndarray], torch.Tensor],
                      config: DataConfig, seed: int, name: str, num_classes: int) -> DataSplits:
    """Split raw train arrays by ``seed`` and normalise each part (split first: less peak memory)."""
    train_idx, val_idx = split_indices(len(train_labels), config.search_val_size, seed, name)

    def part(images: np.ndarray, labels: np.ndarray) -> TensorImageDataset:
        return TensorImageDataset(normalise(images), torch.as_tensor(labels, dtype=torch.int64))

    return DataSplits(
        train=part(train_images[train_idx], train_labels[train_idx]),
        search_val=part(train_images[val_idx], train_labels[val_idx]),
        test=part(test_images, test_labels),
        num_classes=num_classes,
    )


# -- digits -----------------------------------------------------------------------------------
def _load_digits(config: DataConfig, space: SearchSpace, train: TrainConfig, seed: int) -> DataSplits:
    """sklearn's 8x8 digits; a stratified test split drawn with :data:`DIGITS_TEST_SEED`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _check_geometry("digits", 8, 8, 1, space, "use configs/digits.yaml or set space.image_size=8, space.in_chans=1")
    _check_num_classes("digits", 10, space)
    digits = load_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=config.digits_test_fraction, stratify=labels,
        random_state=DIGITS_TEST_SEED,
    )
    return _in_memory_splits(
        images[train_idx], labels[train_idx], images[test_idx], labels[test_idx],
        partial(_normalised, scale=16.0, mean=DIGITS_MEAN, std=DIGITS_STD),
        config, seed, "digits", 10,
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
    _check_not_empty(str(images_path), len(images))
    _check_geometry(
        "fashion-mnist", images.shape[1], images.shape[2], 1, space,
        "use configs/fashion-mnist.yaml or set space.image_size/in_chans",
    )
    labels = labels.astype(np.int64)
    _check_labels(str(labels_path), labels, 10)
    return images, labels


def _load_fashion_mnist(config: DataConfig, space: SearchSpace, train: TrainConfig, seed: int) -> DataSplits:
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
    _check_num_classes("fashion-mnist", 10, space)
    train_images, train_labels = _read_fashion_split(root, "train", space)
    test_images, test_labels = _read_fashion_split(root, "test", space)
    return _in_memory_splits(
        train_images, train_labels, test_images, test_labels,
        partial(_normalised, scale=255.0, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD),
        config, seed, "fashion-mnist", 10,
    )


# -- cifar ------------------------------------------------------------------------------------
def cifar_train_transform(mean: Sequence[float], std: Sequence[float], train: TrainConfig,
                          size: int = 32) -> Callable:
    """Pad-and-crop, flip, RandAugment, normalise, random erasing: keeps the 32x32 size.

    timm's ``create_transform`` would use a random-resized crop with ImageNet's
    (0.08, 1) scale range, far too aggressive for 32x32 images, so the pipeline
    is built from the same timm pieces around a padded random crop.
    """
    from timm.data.auto_augment import rand_augment_transform
    from timm.data.random_erasing import RandomErasing
    from torchvision import transforms

    steps: list[Callable] = [transforms.RandomCrop(size, padding=size // 8), transforms.RandomHorizontalFlip()]
    if train.randaugment:
        hparams = {"translate_const": int(size * 0.45), "img_mean": tuple(round(255 * m) for m in mean)}
        steps.append(rand_augment_transform(train.randaugment, hparams))
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    if train.random_erasing > 0:
        # 'pixel' (random-noise) erasing as in DeiT.
        steps.append(RandomErasing(train.random_erasing, mode="pixel", device="cpu"))
    return transforms.Compose(steps)


def _eval_tensor_transform(mean: Sequence[float], std: Sequence[float]) -> Callable:
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])


def _cifar_spec(name: str) -> tuple[type, int, tuple[float, ...], tuple[float, ...], str]:
    from torchvision.datasets import CIFAR10, CIFAR100

    if name == "cifar10":
        return CIFAR10, 10, CIFAR10_MEAN, CIFAR10_STD, "set space.image_size=32 and space.in_chans=3"
    return CIFAR100, 100, CIFAR100_MEAN, CIFAR100_STD, "use configs/cifar100.yaml or set space.image_size/in_chans"


def _open_cifar(cls: type, root: Path, name: str, train: bool, download: bool) -> Any:
    folder = root / cls.base_folder
    split = "train" if train else "test"
    try:
        return cls(root=str(root), train=train, transform=None, download=download)
    except RuntimeError as exc:
        if download:
            raise DataError(f"{name}: could not download to {root} or the download is corrupt ({exc})") from None
        raise DataError(
            f"{name}: files in {folder} fail their checksum (corrupt or incomplete); "
            f"delete them and set data.download=true to fetch them again"
        ) from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{name}: corrupt {split} files in {folder} ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read or fetch {folder} ({exc})") from None


def _check_cifar_files(cls: type, root: Path, name: str) -> None:
    folder = root / cls.base_folder
    hint = "set data.download=true to fetch it (or data.data_dir to where it is)"
    if not folder.is_dir():
        raise DataError(f"{name}: not found; looked for {folder}; {hint}")
    needed = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{name}: missing in {folder}: {', '.join(missing)}; {hint}")


def _load_cifar(config: DataConfig, space: SearchSpace, train: TrainConfig, seed: int, *, name: str) -> DataSplits:
    """torchvision's CIFAR-10/100, loaded once per split; train and search-val share the base set."""
    cls, num_classes, mean, std, hint = _cifar_spec(name)
    # CIFAR's geometry is fixed, so check it before reading anything.
    _check_geometry(name, 32, 32, 3, space, hint)
    _check_num_classes(name, num_classes, space)
    root = Path(config.data_dir or DEFAULT_CIFAR_DIR).expanduser()
    if not config.download:
        _check_cifar_files(cls, root, name)
    bases = {}
    for split, is_train in (("train", True), ("test", False)):
        base = _open_cifar(cls, root, name, is_train, config.download and is_train)
        where = f"{name} {split} split in {root / cls.base_folder}"
        _check_not_empty(where, len(base))
        _check_geometry(name, *base.data.shape[1:], space, hint)
        _check_labels(where, np.asarray(base.targets, dtype=np.int64), num_classes)
        bases[split] = base
    train_idx, val_idx = split_indices(len(bases["train"]), config.search_val_size, seed, name)
    eval_tf = _eval_tensor_transform(mean, std)
    return DataSplits(
        train=TransformedSubset(bases["train"], train_idx, cifar_train_transform(mean, std, train)),
        search_val=TransformedSubset(bases["train"], val_idx, eval_tf),
        test=TransformedSubset(bases["test"], np.arange(len(bases["test"])), eval_tf),
        num_classes=num_classes,
    )


# -- image folders ----------------------------------------------------------------------------
def load_image(path: str, mode: str) -> Image.Image:
    """Open an image and convert it to ``mode`` ("L" or "RGB"); DataError naming the file if unreadable."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None


def imagefolder_transforms(space: SearchSpace, train: TrainConfig) -> tuple[Callable, Callable]:
    """timm's ImageNet ``(train, eval)`` transforms; RandAugment and random erasing for RGB only."""
    from timm.data import create_transform

    rgb = space.in_chans == 3
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if rgb else (IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD)
    input_size = (space.in_chans, space.image_size, space.image_size)
    train_tf = create_transform(
        input_size=input_size, is_training=True, interpolation="bicubic", mean=mean, std=std,
        auto_augment=train.randaugment if rgb else None,
        re_prob=train.random_erasing if rgb else 0.0, re_mode="pixel",
        # Colour jitter (used when RandAugment is off) needs RGB images.
        color_jitter=0.4 if rgb else None,
    )
    eval_tf = create_transform(input_size=input_size, is_training=False, interpolation="bicubic", mean=mean, std=std)
    return train_tf, eval_tf


def _open_image_folder(folder: Path, mode: str) -> Any:
    from torchvision.datasets import ImageFolder

    if not folder.is_dir():
        raise DataError(f"imagefolder: no directory {folder}; expected {folder}/<class>/<images>")
    try:
        dataset = ImageFolder(str(folder), loader=partial(load_image, mode=mode))
    except FileNotFoundError as exc:
        # ImageFolder raises this for no class folders, or class folders without images.
        raise DataError(f"imagefolder: no images in {folder} ({exc})") from None
    _check_not_empty(str(folder), len(dataset))
    load_image(dataset.samples[0][0], mode)  # fail early if images are unreadable
    return dataset


def _load_imagefolder(config: DataConfig, space: SearchSpace, train: TrainConfig, seed: int) -> DataSplits:
    """ImageNet layout: ``data_dir/train/<class>/*`` and ``data_dir/val/<class>/*``."""
    if config.data_dir is None:
        raise DataError("imagefolder: data.data_dir is required (a folder with train/<class>/ and val/<class>/)")
    if space.in_chans not in (1, 3):
        raise DataError(f"imagefolder: space.in_chans must be 1 (grayscale) or 3 (RGB), got {space.in_chans}")
    root = Path(config.data_dir).expanduser()
    mode = "L" if space.in_chans == 1 else "RGB"
    train_base = _open_image_folder(root / "train", mode)
    test_base = _open_image_folder(root / "val", mode)
    found = len(train_base.classes)
    if found != space.num_classes:
        raise DataError(
            f"imagefolder: found {found} classes in {root / 'train'} but the space expects "
            f"{space.num_classes}; set space.num_classes={found}"
        )
    if test_base.classes != train_base.classes:
        only = sorted(set(test_base.classes) ^ set(train_base.classes))
        raise DataError(
            f"imagefolder: {root / 'val'} and {root / 'train'} have different class folders "
            f"(in one only: {', '.join(only[:5])})"
        )
    train_idx, val_idx = split_indices(len(train_base), config.search_val_size, seed, f"imagefolder {root}")
    train_tf, eval_tf = imagefolder_transforms(space, train)
    return DataSplits(
        train=TransformedSubset(train_base, train_idx, train_tf),
        search_val=TransformedSubset(train_base, val_idx, eval_tf),
        test=TransformedSubset(test_base, np.arange(len(test_base)), eval_tf),
        num_classes=found,
    )
