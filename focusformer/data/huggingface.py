"""``hfds/<name>``: Hugging Face datasets, through timm's reader or from a ``save_to_disk`` folder.

A hub name or a folder of data files (parquet, arrow, an image folder) goes to timm's
``ImageDataset`` with its ``hfds`` reader, which calls ``datasets.load_dataset`` with
``data.data_dir`` as the cache. A folder written by ``DatasetDict.save_to_disk`` cannot be read
by ``load_dataset`` (the library asks for ``load_from_disk``), so it is opened here and served
by :class:`SavedImages`. Either needs the ``datasets`` package (``pip install 'focusformer[hf]'``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DataError

_SAVED_MARKERS = ("dataset_dict.json", "state.json")


class SavedImages(Dataset):
    """Items ``(PIL image in mode, int label)`` of a split loaded with ``datasets.load_from_disk``.

    The image column is the first ``Image`` feature, the label column the first ``ClassLabel``
    (or one named ``label``); images are decoded per item, never the whole column.
    """

    def __init__(self, table: Any, mode: str, where: str) -> None:
        import datasets

        features = table.features
        image_keys = [k for k, f in features.items() if isinstance(f, datasets.Image)]
        label_keys = [k for k, f in features.items() if isinstance(f, datasets.ClassLabel)] or \
            [k for k in features if k == "label"]
        if not image_keys or not label_keys:
            raise DataError(f"{where}: needs an Image column and a ClassLabel (or 'label') column; "
                            f"it has {', '.join(f'{k} ({type(f).__name__})' for k, f in features.items())}")
        self.image_key, self.label_key, self.mode = image_keys[0], label_keys[0], mode
        label_feature = features[self.label_key]
        self.classes = list(label_feature.names) if isinstance(label_feature, datasets.ClassLabel) else None
        self.labels = np.asarray(table[self.label_key], dtype=np.int64)
        self.table = table.cast_column(self.image_key, datasets.Image(decode=False))

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        item = self.table[int(index)]
        stored = item[self.image_key]
        source = io.BytesIO(stored["bytes"]) if stored.get("bytes") else stored["path"]
        with Image.open(source) as image:
            return image.convert(self.mode), int(item[self.label_key])


def is_saved_to_disk(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in _SAVED_MARKERS)


def open_hfds_split(name: str, data_dir: str | None, split: str, mode: str) -> Dataset:
    try:
        import datasets
    except ImportError:
        raise DataError(f"hfds/{name}: needs the datasets package; pip install 'focusformer[hf]'") from None
    local = Path(name).expanduser()
    if is_saved_to_disk(local):
        return _open_saved(local, split, mode, datasets)
    from timm.data import create_dataset

    try:
        return create_dataset(f"hfds/{name}", root=data_dir, split=split, input_img_mode=mode)
    except (FileNotFoundError, ValueError, KeyError, ConnectionError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"hfds/{name}: cannot load its {split} split ({first})") from None


def _open_saved(path: Path, split: str, mode: str, datasets: Any) -> SavedImages:
    try:
        saved = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"hfds/{path}: cannot load the saved data set ({exc})") from None
    if not isinstance(saved, datasets.DatasetDict):
        raise DataError(f"hfds/{path}: holds a single Dataset; save a DatasetDict with its splits "
                        f"(for example train and test)")
    if split not in saved:
        raise DataError(f"hfds/{path}: has no split {split!r}; it has {', '.join(saved)}")
    return SavedImages(saved[split], mode, f"hfds/{path} {split} split")
