"""CIFAR-10/100 through timm's dataset factory (``torch/cifar10``), with a size-keeping augmentation.

The factory only builds torchvision's class; what is added here is checking: the files
before anything is read, their checksums and pickles, the labels, the geometry.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig, TrainConfig
from ..errors import DataError
from ..spaces import SearchSpace
from .checks import check_geometry, check_labels, check_not_empty, check_num_classes
from .splits import DataSplits, held_out_splits
from .transforms import cifar_train_transform, eval_tensor_transform

DEFAULT_CIFAR_DIR = "~/.cache/focusformer/cifar"
# The usual published per-channel statistics of each train split, after scaling to [0, 1].
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


def _cifar_spec(name: str) -> tuple[type, int, tuple[float, ...], tuple[float, ...], str]:
    from torchvision.datasets import CIFAR10, CIFAR100

    if name == "cifar10":
        return CIFAR10, 10, CIFAR10_MEAN, CIFAR10_STD, "set space.image_size=32 and space.in_chans=3"
    return CIFAR100, 100, CIFAR100_MEAN, CIFAR100_STD, "use configs/cifar100.yaml or set space.image_size/in_chans"


def _open_cifar(cls: type, root: Path, name: str, split: str, download: bool) -> Any:
    from timm.data import create_dataset

    folder = root / cls.base_folder
    try:
        return create_dataset(f"torch/{name}", root=str(root), split=split, download=download)
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


def load_cifar(config: DataConfig, space: SearchSpace, train: TrainConfig, *, name: str) -> DataSplits:
    """CIFAR loaded once per split; train and search-val share the base set."""
    cls, num_classes, mean, std, hint = _cifar_spec(name)
    # CIFAR's geometry is fixed, so check it before reading anything.
    check_geometry(name, 32, 32, 3, space, hint)
    check_num_classes(name, num_classes, space)
    root = Path(config.data_dir or DEFAULT_CIFAR_DIR).expanduser()
    if not config.download:
        _check_cifar_files(cls, root, name)
    bases = {}
    for split in ("train", "test"):
        base = _open_cifar(cls, root, name, split, config.download and split == "train")
        where = f"{name} {split} split in {root / cls.base_folder}"
        check_not_empty(where, len(base))
        check_geometry(name, *base.data.shape[1:], space, hint)
        check_labels(where, np.asarray(base.targets, dtype=np.int64), num_classes)
        bases[split] = base
    return held_out_splits(bases["train"], bases["test"], cifar_train_transform(mean, std, train),
                           eval_tensor_transform(mean, std), config, name, num_classes)
