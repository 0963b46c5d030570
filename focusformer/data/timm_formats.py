"""What ``timm.data.create_dataset`` reads, served as this package's three splits.

* ``folder`` (alias ``imagefolder``): ``data_dir/<split>/<class>/<image>`` folders or
  ``data_dir/<split>.tar`` files of the same layout (timm's ``ImageDataset``);
* ``torch/<name>``: torchvision's sets (``torch/mnist``, ``torch/cifar10``, ...) in ``data_dir``;
* ``hfds/<name>``: a Hugging Face dataset (hub name or local data files, cache in ``data_dir``), or
  a directory written by ``Dataset.save_to_disk`` (see :mod:`.huggingface`);
* ``wds/<name>``: WebDataset tar shards, indexed for random access (see :mod:`.webdataset`).

Splits are named as timm names them (``data.train_split``, ``data.test_split``: timm's
``--train-split`` and ``--val-split``). All are map-style data sets, so the search-val split is
cut from the train split by ``data.split_seed`` and torchrun's ranks read disjoint indices, as everywhere.
Images are decoded by timm, converted to the space's mode and resized by timm's ImageNet
transforms; a corrupt image met during training is skipped with a warning, as in timm (the first
image of each split is read up front, so a folder of unreadable files fails at once).
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..config import DataConfig, TrainConfig
from ..errors import DataError
from ..spaces import SearchSpace
from .checks import check_labels, check_not_empty, image_mode
from .splits import DataSplits, held_out_splits
from .transforms import timm_transforms

DEFAULT_TORCH_DIR = "~/.cache/focusformer/torch"
#: timm's split synonyms (``timm.data.dataset_factory``): a split named by one is looked up by all.
_SPLIT_SYNONYMS = (("train", "training"), ("validation", "val", "valid", "eval", "evaluation"))


def load_timm_dataset(config: DataConfig, space: SearchSpace, train: TrainConfig) -> DataSplits:
    name = config.dataset
    mode = image_mode(name, space)
    prefix = name.split("/", 1)[0] if "/" in name else "folder"
    opener = {"folder": _open_folder_split, "torch": _open_torch_split, "hfds": _open_hfds_split,
              "wds": _open_wds_split}[prefix]
    splits = {"train": config.train_split, "test": config.test_split}
    bases = {role: opener(config, split, mode) for role, split in splits.items()}
    classes = {role: _class_names(base) for role, base in bases.items()}
    num_classes = len(classes["train"]) if classes["train"] is not None else space.num_classes
    if classes["train"] is not None and num_classes != space.num_classes:
        raise DataError(f"{name}: found {num_classes} classes in its {config.train_split} split but the space "
                        f"expects {space.num_classes}; set space.num_classes={num_classes}")
    if None not in classes.values() and classes["test"] != classes["train"]:
        only = sorted(set(classes["test"]) ^ set(classes["train"]))
        raise DataError(f"{name}: its {config.test_split} and {config.train_split} splits have different "
                        f"classes (in one only: {', '.join(map(str, only[:5]))})")
    for role, base in bases.items():
        where = f"{name} {splits[role]} split"
        check_not_empty(where, len(base))
        labels = _labels(base)
        if labels is not None:
            check_labels(where, labels, space.num_classes)
        _first_image(base, where, mode)
    train_tf, eval_tf = timm_transforms(space, train, mode)
    return held_out_splits(bases["train"], bases["test"], train_tf, eval_tf, config, name,
                           space.num_classes)


# -- folders and tar files --------------------------------------------------------------------
def _split_path(root: Path, split: str) -> Path:
    """``root/<split>`` or ``root/<split>.tar``, trying timm's synonyms of the split's name."""
    names = next((group for group in _SPLIT_SYNONYMS if split in group), (split,))
    names = (split,) + tuple(n for n in names if n != split)
    for candidate in names:
        for path in (root / candidate, root / f"{candidate}.tar"):
            if path.exists():
                return path
    looked = ", ".join(f"{n}/ or {n}.tar" for n in names)
    raise DataError(f"folder: no {split} split in {root}; looked for {looked}")


def _open_folder_split(config: DataConfig, split: str, mode: str) -> Dataset:
    from timm.data import create_dataset

    if config.data_dir is None:
        raise DataError(f"{config.dataset}: data.data_dir is required (a folder with train/<class>/ and "
                        f"val/<class>/ folders, or train.tar and val.tar)")
    root = Path(config.data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"{config.dataset}: no directory {root}; expected {root}/<split>/<class>/<images>")
    path = _split_path(root, split)
    try:
        return create_dataset("", root=str(path), search_split=False, input_img_mode=mode)
    except RuntimeError as exc:  # timm: "Found 0 images in subfolders of ..."
        raise DataError(f"{config.dataset}: no images in {path} ({exc})") from None
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:  # unreadable tar file
        raise DataError(f"{config.dataset}: cannot read {path} ({type(exc).__name__}: {exc})") from None


# -- torchvision ------------------------------------------------------------------------------
def _open_torch_split(config: DataConfig, split: str, mode: str) -> Dataset:
    from timm.data import create_dataset

    root = Path(config.data_dir or DEFAULT_TORCH_DIR).expanduser()
    try:
        return create_dataset(config.dataset, root=str(root), split=split, download=config.download)
    except AssertionError as exc:  # timm: "Unknown torchvision dataset foo"
        raise DataError(f"{config.dataset}: {exc or 'not a torchvision data set timm knows'}") from None
    except RuntimeError as exc:  # torchvision: "Dataset not found. You can use download=True ..."
        hint = "" if config.download else "; set data.download=true to fetch it"
        raise DataError(f"{config.dataset}: not found or corrupt in {root} ({exc}){hint}") from None
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{config.dataset}: cannot read {root} ({type(exc).__name__}: {exc})") from None


# -- Hugging Face -----------------------------------------------------------------------------
def _open_hfds_split(config: DataConfig, split: str, mode: str) -> Dataset:
    from .huggingface import open_hfds_split

    return open_hfds_split(config.dataset.split("/", 1)[1], config.data_dir, split, mode)


# -- WebDataset -------------------------------------------------------------------------------
def _open_wds_split(config: DataConfig, split: str, mode: str) -> Dataset:
    from .webdataset import WebDatasetShards

    if config.data_dir is None:
        raise DataError(f"{config.dataset}: data.data_dir is required (the folder that holds the shards)")
    return WebDatasetShards.open(Path(config.data_dir).expanduser(), split, mode)


# -- what every format answers ----------------------------------------------------------------
def _class_names(base: Any) -> list[str] | None:
    """The class names in label order, where the format has them (WebDataset has none)."""
    reader = getattr(base, "reader", None)
    mapping = getattr(reader, "class_to_idx", None) or getattr(reader, "class_name_to_idx", None)
    if mapping:
        return [name for name, _ in sorted(mapping.items(), key=lambda item: item[1])]
    classes = getattr(base, "classes", None)
    return list(classes) if classes is not None else None


def _labels(base: Any) -> np.ndarray | None:
    """Every label of ``base`` without decoding an image, where the format allows."""
    reader = getattr(base, "reader", None)
    if reader is not None and getattr(reader, "targets", None) is not None:
        return np.asarray(reader.targets, dtype=np.int64)
    if reader is not None and getattr(reader, "samples", None) is not None:
        return np.asarray([target for _, target in reader.samples], dtype=np.int64)
    if reader is not None and getattr(reader, "dataset", None) is not None:  # timm's hfds reader
        return np.asarray(reader.dataset[reader.label_key], dtype=np.int64)
    for attribute in ("targets", "labels"):  # torchvision's sets; SavedImages; WebDatasetShards
        if getattr(base, attribute, None) is not None:
            return np.asarray(getattr(base, attribute), dtype=np.int64).reshape(-1)
    return None


def _first_image(base: Dataset, where: str, mode: str) -> None:
    """Decode the first image, so a split of unreadable files fails before training, naming one."""
    unreadable = (OSError, UnidentifiedImageError, ValueError, SyntaxError)
    reader = getattr(base, "reader", None)
    if reader is None or not hasattr(reader, "_filename"):
        try:
            base[0]
        except unreadable as exc:
            raise DataError(f"{where}: cannot read its first image ({type(exc).__name__}: {exc})") from None
        return
    name = reader._filename(0, absolute=True)
    try:
        source = reader[0][0]
    except unreadable as exc:
        raise DataError(f"{where}: cannot read image {name} ({type(exc).__name__})") from None
    try:
        with Image.open(source) as image:
            image.convert(mode)
    except unreadable as exc:
        raise DataError(f"{where}: cannot read image {name} ({type(exc).__name__})") from None
    finally:
        if hasattr(source, "close"):
            source.close()


__all__ = ["load_timm_dataset", "DEFAULT_TORCH_DIR"]
