"""Tests for focusformer.data: every data set is generated in tmp_path (nothing is downloaded)."""

from __future__ import annotations

import gzip
import os
import pickle
import random
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from focusformer import data as fdata
from focusformer.config import DataConfig, TrainConfig, load_config
from focusformer.data import (
    FASHION_MNIST_FILES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    DataSplits,
    load_data,
    read_idx,
    split_indices,
)
from focusformer.errors import ConfigError, DataError
from focusformer.spaces import SearchSpace

TRAIN = TrainConfig()


def make_space(image_size: int, in_chans: int, num_classes: int, patch_size: int = 2) -> SearchSpace:
    return replace(load_config("digits").space, image_size=image_size, in_chans=in_chans,
                   num_classes=num_classes, patch_size=patch_size, name="test")


DIGITS_SPACE = load_config("digits").space
FASHION_SPACE = load_config("fashion-mnist").space
CIFAR100_SPACE = load_config("cifar100").space
CIFAR10_SPACE = replace(CIFAR100_SPACE, num_classes=10)


def stack(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


# -- split ------------------------------------------------------------------------------------
def test_split_indices_disjoint_complete_and_seeded():
    config = DataConfig(dataset="digits", search_val_size=30, reward_size=20, split_seed=5)
    split = split_indices(100, config)
    assert (len(split.train), len(split.search_val), len(split.reward)) == (50, 30, 20)
    assert sorted([*split.train, *split.search_val, *split.reward]) == list(range(100))  # disjoint, complete
    again = split_indices(100, config)
    assert all(np.array_equal(a, b) for a, b in zip(vars(split).values(), vars(again).values()))
    assert not np.array_equal(split.search_val, split_indices(100, replace(config, split_seed=6)).search_val)
    # Without reward images the search-val split is what it was before there were any.
    assert np.array_equal(split_indices(100, replace(config, reward_size=0)).search_val, split.search_val)


@pytest.mark.parametrize("size", [100, 101])
def test_split_indices_rejects_held_out_images_covering_train(size):
    with pytest.raises(DataError, match="only 100 images"):
        split_indices(100, DataConfig(dataset="digits", search_val_size=size - 10, reward_size=10), name="x")


# -- digits -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_data(DataConfig(dataset="digits", search_val_size=180, reward_size=90), DIGITS_SPACE, TRAIN)


def test_digits_shapes_sizes_and_labels(digits):
    image, label = digits.train[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32
    assert isinstance(label, int)
    assert digits.num_classes == 10
    assert (len(digits.train), len(digits.search_val), len(digits.reward), len(digits.test)) == \
        (1797 - 360 - 180 - 90, 180, 90, 360)
    for split in (digits.train, digits.search_val, digits.reward, digits.test):
        _, labels = stack(split)
        assert labels.min() == 0 and labels.max() == 9


def test_digits_test_split_is_stratified(digits):
    _, labels = stack(digits.test)
    counts = torch.bincount(labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # about 36 of each digit


def test_digits_normalisation(digits):
    images = torch.cat([stack(s)[0] for s in (digits.train, digits.search_val, digits.test)])
    assert abs(images.mean().item()) < 0.01
    assert abs(images.std().item() - 1.0) < 0.01


def test_digits_splits_follow_the_split_seed_not_the_training_seed(digits):
    config = DataConfig(dataset="digits", search_val_size=180, reward_size=90)
    same = load_data(config, DIGITS_SPACE, replace(TRAIN, seed=7))  # another training seed: the same split
    other = load_data(replace(config, split_seed=1), DIGITS_SPACE, TRAIN)
    for split in ("search_val", "reward", "train"):
        assert torch.equal(stack(getattr(same, split))[0], stack(getattr(digits, split))[0])
    assert not torch.equal(stack(other.search_val)[0], stack(digits.search_val)[0])
    # The test split does not move with the split seed; train + search_val + reward is the same pool.
    assert torch.equal(stack(other.test)[0], stack(digits.test)[0])
    pool = lambda s: sorted(map(tuple, torch.cat([stack(p)[0] for p in (s.train, s.search_val, s.reward)])
                                .flatten(1).tolist()))
    assert pool(other) == pool(digits)


def test_digits_search_val_too_large():
    with pytest.raises(DataError, match="search_val_size=1437 .* only 1437 images"):
        load_data(DataConfig(dataset="digits", search_val_size=1437), DIGITS_SPACE, TRAIN)


def test_digits_rejects_wrong_space():
    with pytest.raises(DataError, match="digits images are 8x8x1 but the space expects 28x28x1"):
        load_data(DataConfig(dataset="digits"), FASHION_SPACE, TRAIN)
    with pytest.raises(DataError, match="10 classes but the space expects 7"):
        load_data(DataConfig(dataset="digits"), replace(DIGITS_SPACE, num_classes=7), TRAIN)


# -- fashion-mnist ----------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000 08 <ndim>, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gz(path: Path, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(payload)


def fashion_images(n: int, offset: int, size: int = 28) -> np.ndarray:
    """Random images whose first two pixels encode a unique id (``offset + i``)."""
    images = np.random.default_rng(offset).integers(0, 256, size=(n, size, size), dtype=np.uint8)
    ids = np.arange(offset, offset + n)
    images[:, 0, 0], images[:, 0, 1] = ids % 256, ids // 256
    return images


def image_ids(images: torch.Tensor) -> set[int]:
    """Recover the ids written by :func:`fashion_images` from normalised tensors."""
    raw = torch.round((images[:, 0, 0, :2] * FASHION_MNIST_STD + FASHION_MNIST_MEAN) * 255).long()
    return set((raw[:, 0] + 256 * raw[:, 1]).tolist())


def write_fashion(root: Path, n_train: int = 40, n_test: int = 10, size: int = 28) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", n_train, 0), ("test", n_test, 1000)):
        write_gz(root / FASHION_MNIST_FILES[f"{split}_images"], idx_bytes(fashion_images(n, offset, size)))
        write_gz(root / FASHION_MNIST_FILES[f"{split}_labels"], idx_bytes(np.arange(n, dtype=np.uint8) % 10))
    return root


def fashion_config(root: Path, search_val_size: int = 8) -> DataConfig:
    return DataConfig(dataset="fashion-mnist", data_dir=str(root), reward_size=0, search_val_size=search_val_size)


def test_fashion_mnist_loads_and_splits(tmp_path):
    root = write_fashion(tmp_path / "fm")
    splits = load_data(fashion_config(root), FASHION_SPACE, TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test), splits.num_classes) == (32, 8, 10, 10)
    image, label = splits.train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and isinstance(label, int)
    train_ids, val_ids = image_ids(stack(splits.train)[0]), image_ids(stack(splits.search_val)[0])
    assert not train_ids & val_ids and train_ids | val_ids == set(range(40))
    assert image_ids(stack(splits.test)[0]) == set(range(1000, 1010))
    # Labels follow their images (label = id % 10), and pixels are normalised with the fixed stats.
    test_images, test_labels = stack(splits.test)
    assert [i % 10 for i in sorted(image_ids(test_images))] == test_labels.tolist()
    raw = fashion_images(10, 1000)
    expected = (torch.from_numpy(raw).float() / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    assert torch.allclose(test_images[:, 0], expected, atol=1e-5)


def test_fashion_mnist_split_follows_seed(tmp_path):
    root = write_fashion(tmp_path / "fm")
    ids = lambda seed: image_ids(stack(load_data(replace(fashion_config(root), split_seed=seed), FASHION_SPACE,
                                                 TRAIN).search_val)[0])
    assert ids(3) == ids(3)
    assert ids(3) != ids(4)


def test_read_idx_roundtrip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_gz(tmp_path / "a.gz", idx_bytes(array))
    assert np.array_equal(read_idx(tmp_path / "a.gz", 3), array)


@pytest.mark.parametrize("corrupt, message", [
    (lambda good: good[: len(good) // 2], "corrupt or truncated gzip"),
    (lambda good: b"not gzip at all", "corrupt or truncated gzip"),
    (lambda good: gzip.compress(b"\x12\x34" + gzip.decompress(good)[2:]), "bad magic number"),
    (lambda good: gzip.compress(gzip.decompress(good)[:-100]), "truncated or corrupt"),
    (lambda good: gzip.compress(gzip.decompress(good)[:10]), "truncated IDX header"),
    (lambda good: gzip.compress(b"\x00\x00\x0d\x03" + gzip.decompress(good)[4:]), "element type 0x0d"),
    (lambda good: gzip.compress(b"\x00\x00\x08\x02" + gzip.decompress(good)[4:]), "2 dimensions, expected 3"),
])
def test_fashion_mnist_corrupt_file(tmp_path, corrupt, message):
    root = write_fashion(tmp_path / "fm")
    path = root / FASHION_MNIST_FILES["train_images"]
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match=message) as info:
        load_data(fashion_config(root), FASHION_SPACE, TRAIN)
    assert str(path) in str(info.value)


def test_fashion_mnist_missing_dir_and_files(tmp_path):
    with pytest.raises(DataError, match="no directory .*dataset-fashion-mnist"):
        load_data(fashion_config(tmp_path / "nowhere"), FASHION_SPACE, TRAIN)
    root = write_fashion(tmp_path / "fm")
    (root / FASHION_MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(DataError, match="missing in .*t10k-labels-idx1-ubyte.gz"):
        load_data(fashion_config(root), FASHION_SPACE, TRAIN)


def test_fashion_mnist_empty(tmp_path):
    root = write_fashion(tmp_path / "fm", n_test=0)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: no images"):
        load_data(fashion_config(root), FASHION_SPACE, TRAIN)


def test_fashion_mnist_count_and_label_checks(tmp_path):
    root = write_fashion(tmp_path / "fm")
    labels_path = root / FASHION_MNIST_FILES["train_labels"]
    write_gz(labels_path, idx_bytes(np.zeros(39, dtype=np.uint8)))
    with pytest.raises(DataError, match="40 images but train-labels-idx1-ubyte.gz has 39 labels"):
        load_data(fashion_config(root), FASHION_SPACE, TRAIN)
    write_gz(labels_path, idx_bytes(np.full(40, 10, dtype=np.uint8)))
    with pytest.raises(DataError, match="label 10 is out of range; expected 0 to 9"):
        load_data(fashion_config(root), FASHION_SPACE, TRAIN)


@pytest.mark.parametrize("space, expects", [
    (replace(FASHION_SPACE, image_size=32), "32x32x1"),
    (replace(FASHION_SPACE, in_chans=3), "28x28x3"),
])
def test_fashion_mnist_rejects_space_mismatch(tmp_path, space, expects):
    root = write_fashion(tmp_path / "fm")
    with pytest.raises(DataError, match=f"fashion-mnist images are 28x28x1 but the space expects {expects}; "
                                         "use configs/fashion-mnist.yaml"):
        load_data(fashion_config(root), space, TRAIN)


def test_fashion_mnist_search_val_too_large(tmp_path):
    root = write_fashion(tmp_path / "fm")
    with pytest.raises(DataError, match="only 40 images"):
        load_data(fashion_config(root, search_val_size=40), FASHION_SPACE, TRAIN)


# -- cifar ------------------------------------------------------------------------------------
@pytest.fixture
def accept_generated_cifar(monkeypatch):
    """torchvision checks each CIFAR file's MD5 against the real release, which generated
    files cannot match; accept any file that exists instead. The module-level
    ``check_integrity`` is patched (not only ``CIFAR10._check_integrity``) because the
    meta file is checked through it too."""
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity",
                        lambda fpath, md5=None: os.path.isfile(fpath))


def dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def cifar_batch(n: int, num_classes: int, seed: int, label_key: str) -> dict:
    rng = np.random.default_rng(seed)
    batch = {"data": rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8),
             label_key: [int(v) for v in rng.integers(0, num_classes, size=n)]}
    if label_key == "fine_labels":
        batch["coarse_labels"] = [0] * n
    return batch


def write_cifar(root: Path, name: str, per_file: int = 4) -> Path:
    """CIFAR's python-pickle layout, with ``per_file`` random images in each batch file."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    num_classes, label_key = (10, "labels") if name == "cifar10" else (100, "fine_labels")
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    for i, (filename, _) in enumerate(cls.train_list + cls.test_list):
        dump(folder / filename, cifar_batch(per_file, num_classes, i, label_key))
    dump(folder / cls.meta["filename"], {cls.meta["key"]: [f"c{i}" for i in range(num_classes)]})
    return folder


def cifar_config(root: Path, name: str = "cifar10", search_val_size: int = 5) -> DataConfig:
    return DataConfig(dataset=name, data_dir=str(root), reward_size=0, search_val_size=search_val_size)


def test_cifar10_loads_with_train_and_eval_transforms(tmp_path, accept_generated_cifar):
    write_cifar(tmp_path, "cifar10")
    splits = load_data(cifar_config(tmp_path), CIFAR10_SPACE, TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test), splits.num_classes) == (15, 5, 4, 10)
    assert not set(splits.train.indices) & set(splits.search_val.indices)
    for split in (splits.train, splits.search_val, splits.test):
        image, label = split[0]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert isinstance(label, int) and 0 <= label < 10
    # search_val comes from the train set but uses the eval transform: exactly normalised pixels.
    base, index = splits.search_val.base, splits.search_val.indices[0]
    mean, std = torch.tensor(fdata.CIFAR10_MEAN), torch.tensor(fdata.CIFAR10_STD)
    expected = (torch.from_numpy(base.data[index]).permute(2, 0, 1).float() / 255 - mean[:, None, None]) / std[:, None, None]
    assert torch.allclose(splits.search_val[0][0], expected, atol=1e-5)
    # The train transform is random (crop, flip, RandAugment, erasing).
    random.seed(0)
    torch.manual_seed(0)
    draws = [splits.train[0][0] for _ in range(5)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


def test_cifar100_loads(tmp_path, accept_generated_cifar):
    write_cifar(tmp_path, "cifar100", per_file=12)
    splits = load_data(replace(cifar_config(tmp_path, "cifar100", search_val_size=4), split_seed=1), CIFAR100_SPACE,
                       TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test), splits.num_classes) == (8, 4, 12, 100)
    assert splits.test[3][0].shape == (3, 32, 32)


def test_cifar_missing_without_download(tmp_path):
    with pytest.raises(DataError, match=f"looked for {tmp_path / 'cifar-10-batches-py'}.*data.download=true"):
        load_data(cifar_config(tmp_path), CIFAR10_SPACE, TRAIN)


def test_cifar_missing_file(tmp_path, accept_generated_cifar):
    folder = write_cifar(tmp_path, "cifar100")
    (folder / "test").unlink()
    with pytest.raises(DataError, match="missing in .*: test; set data.download=true"):
        load_data(cifar_config(tmp_path, "cifar100"), CIFAR100_SPACE, TRAIN)


def test_cifar_checksum_mismatch_without_patch(tmp_path):
    write_cifar(tmp_path, "cifar10")
    with pytest.raises(DataError, match="fail their checksum"):
        load_data(cifar_config(tmp_path), CIFAR10_SPACE, TRAIN)


def test_cifar_corrupt_pickle(tmp_path, accept_generated_cifar):
    folder = write_cifar(tmp_path, "cifar10")
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match="corrupt train files"):
        load_data(cifar_config(tmp_path), CIFAR10_SPACE, TRAIN)


def test_cifar_label_out_of_range(tmp_path, accept_generated_cifar):
    folder = write_cifar(tmp_path, "cifar10")
    dump(folder / "test_batch", {"data": np.zeros((2, 3072), np.uint8), "labels": [3, 12]})
    with pytest.raises(DataError, match="test split .*label 12 is out of range; expected 0 to 9"):
        load_data(cifar_config(tmp_path), CIFAR10_SPACE, TRAIN)


def test_cifar_rejects_space_mismatch(tmp_path):
    # Checked before any file is read: the folder is empty.
    with pytest.raises(DataError, match="cifar100 images are 32x32x3 but the space expects 28x28x3"):
        load_data(cifar_config(tmp_path, "cifar100"), replace(CIFAR100_SPACE, image_size=28), TRAIN)
    with pytest.raises(DataError, match="cifar10 has 10 classes but the space expects 100"):
        load_data(cifar_config(tmp_path, "cifar10"), CIFAR100_SPACE, TRAIN)


def test_cifar_search_val_too_large(tmp_path, accept_generated_cifar):
    write_cifar(tmp_path, "cifar10")
    with pytest.raises(DataError, match="only 20 images"):
        load_data(cifar_config(tmp_path, search_val_size=20), CIFAR10_SPACE, TRAIN)


# -- imagefolder ------------------------------------------------------------------------------
def write_imagefolder(root: Path, classes: int = 3, per_class: int = 4, size: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(size, size + i, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def folder_config(root: Path | None, search_val_size: int = 3) -> DataConfig:
    return DataConfig(dataset="imagefolder", data_dir=None if root is None else str(root), reward_size=0,
                      search_val_size=search_val_size)


@pytest.mark.parametrize("in_chans", [3, 1])
def test_imagefolder_loads(tmp_path, in_chans):
    root = write_imagefolder(tmp_path)
    space = make_space(image_size=16, in_chans=in_chans, num_classes=3)
    splits = load_data(folder_config(root), space, TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test), splits.num_classes) == (9, 3, 12, 3)
    assert not set(splits.train.indices) & set(splits.search_val.indices)
    for split in (splits.train, splits.search_val, splits.test):
        image, label = split[len(split) - 1]
        assert image.shape == (in_chans, 16, 16) and image.dtype == torch.float32
        assert isinstance(label, int) and 0 <= label < 3
    assert torch.equal(splits.search_val[0][0], splits.search_val[0][0])  # eval transform: deterministic


def test_imagefolder_eval_transform_is_imagenet_normalisation(tmp_path):
    """One flat colour per image: whatever the resize and crop, the eval transform gives every
    pixel (colour / 255 - mean) / std, with timm's ImageNet mean and std, channel by channel."""
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    colours = {"class0": (200, 30, 90), "class1": (0, 255, 128)}
    for split in ("train", "val"):
        for name, colour in colours.items():
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (12 + i, 12), colour).save(tmp_path / split / name / f"{i}.png")
    space = make_space(image_size=16, in_chans=3, num_classes=2)
    splits = load_data(folder_config(tmp_path, search_val_size=2), space, TRAIN)
    mean, std = torch.tensor(IMAGENET_DEFAULT_MEAN), torch.tensor(IMAGENET_DEFAULT_STD)
    for split in (splits.test, splits.search_val):
        for index in range(len(split)):
            image, label = split[index]
            colour = torch.tensor(colours[f"class{label}"], dtype=torch.float32)
            expected = ((colour / 255 - mean) / std)[:, None, None].expand(3, 16, 16)
            torch.testing.assert_close(image, expected, atol=1e-5, rtol=0)


def test_imagefolder_wrong_class_count(tmp_path):
    root = write_imagefolder(tmp_path)
    with pytest.raises(DataError, match="found 3 classes in .* but the space expects 10"):
        load_data(folder_config(root), make_space(16, 3, 10), TRAIN)


def test_imagefolder_val_classes_differ(tmp_path):
    root = write_imagefolder(tmp_path)
    (root / "val" / "class2").rename(root / "val" / "other")
    with pytest.raises(DataError, match="validation and train splits have different classes .*class2, other"):
        load_data(folder_config(root), make_space(16, 3, 3), TRAIN)


def test_imagefolder_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="data.data_dir is required"):
        load_data(folder_config(None), make_space(16, 3, 3), TRAIN)
    with pytest.raises(DataError, match="no directory .*nowhere"):
        load_data(folder_config(tmp_path / "nowhere"), make_space(16, 3, 3), TRAIN)
    write_imagefolder(tmp_path / "only-train", classes=1)
    shutil.rmtree(tmp_path / "only-train" / "val")
    with pytest.raises(DataError, match="no validation split in .*only-train; looked for validation/ or "
                                        "validation.tar, val/ or val.tar"):
        load_data(folder_config(tmp_path / "only-train"), make_space(16, 3, 1), TRAIN)
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "val" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images in .*train"):
        load_data(folder_config(tmp_path / "empty"), make_space(16, 3, 1), TRAIN)


def test_imagefolder_corrupt_image(tmp_path, caplog):
    root = write_imagefolder(tmp_path)
    first = root / "train" / "class0" / "0.png"
    first.write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"train split: cannot read image {first}"):
        load_data(folder_config(root), make_space(16, 3, 3), TRAIN)
    first.unlink()
    # One found by the scan that fails when read during training is skipped with a warning, as
    # timm's ImageDataset does (the next image takes its place), so a long run does not die on it.
    later = root / "val" / "class1" / "2.png"
    later.write_bytes(later.read_bytes()[:60])
    splits = load_data(folder_config(root), make_space(16, 3, 3), TRAIN)
    position = list(splits.test.base.reader.samples).index((str(later), 1))
    assert torch.equal(splits.test[position][0], splits.test[position + 1][0])
    assert "Skipped sample" in caplog.text


def test_imagefolder_rejects_unsupported_channels(tmp_path):
    root = write_imagefolder(tmp_path)
    with pytest.raises(DataError, match="in_chans must be 1 .* or 3 .*got 2"):
        load_data(folder_config(root), make_space(16, 2, 3), TRAIN)


@pytest.mark.parametrize("name", ["mnist", "torch/", "tfds/mnist", "hfids/x"])
def test_unknown_dataset_is_a_config_error(name):
    with pytest.raises(ConfigError, match=f"data.dataset: '{re.escape(name)}' is not allowed; choose one of "
                                          "'digits', .*'imagefolder', or a timm name torch/<name>, hfds/<name>"):
        DataConfig(dataset=name)
