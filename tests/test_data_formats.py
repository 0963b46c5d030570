"""The data formats timm's dataset factory reads: tar files, torch/<name>, hfds/<name>, wds/<name>.

Each test builds a tiny data set of its kind in tmp_path (nothing is downloaded) and checks the
splits, the labels against the files written, the checks and their one-line errors.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from focusformer.cli import train as train_cli
from focusformer.config import DataConfig, TrainConfig, load_config
from focusformer.data import load_data
from focusformer.distributed import Ranks
from focusformer.errors import DataError
from focusformer.spaces import SearchSpace
from focusformer.training.trainer import EpochBatches

TRAIN = TrainConfig()
DIGITS_SPACE = load_config("digits").space


def make_space(image_size: int = 8, in_chans: int = 1, num_classes: int = 3) -> SearchSpace:
    return replace(DIGITS_SPACE, image_size=image_size, in_chans=in_chans, num_classes=num_classes, name="test")


def image_bytes(value: int, size: int = 8, mode: str = "L") -> bytes:
    """A flat image whose pixel value identifies it (value 0-255)."""
    buffer = io.BytesIO()
    Image.new(mode, (size, size), value if mode == "L" else (value,) * 3).save(buffer, format="PNG")
    return buffer.getvalue()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def pixel_values(dataset) -> list[int]:
    """The identifying pixel value of every image of an eval-transformed split."""
    return [int(round(float(dataset.base[int(i)][0].getpixel((0, 0))))) for i in dataset.indices]


# -- tar files --------------------------------------------------------------------------------
def write_image_tar(path: Path, classes: int, per_class: int, first_value: int) -> None:
    with tarfile.open(path, "w") as tar:
        for c in range(classes):
            for i in range(per_class):
                add_member(tar, f"{path.stem}/class{c}/{i}.png", image_bytes(first_value + c * per_class + i))


def test_tar_files_load_as_timm_reads_them(tmp_path):
    write_image_tar(tmp_path / "train.tar", classes=3, per_class=4, first_value=0)
    write_image_tar(tmp_path / "val.tar", classes=3, per_class=2, first_value=100)
    config = DataConfig(dataset="folder", data_dir=str(tmp_path), reward_size=0, search_val_size=3)
    splits = load_data(config, make_space(image_size=12), TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test), splits.num_classes) == (9, 3, 6, 3)
    assert sorted(pixel_values(splits.train) + pixel_values(splits.search_val)) == list(range(12))
    image, label = splits.test[5]
    assert image.shape == (1, 12, 12) and label == 2  # resized to the space; class2's last image
    (tmp_path / "val.tar").write_bytes(b"not a tar file")
    with pytest.raises(DataError, match="folder: cannot read .*val.tar"):
        load_data(config, make_space(image_size=12), TRAIN)


# -- torch/<name> -----------------------------------------------------------------------------
def write_mnist_raw(root: Path, train: int, test: int) -> None:
    """torchvision's MNIST layout (root/MNIST/raw, uncompressed IDX); image i of a split is all i."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", train), ("t10k", test)):
        images = np.repeat(np.arange(count, dtype=np.uint8), 28 * 28).reshape(count, 28, 28)
        labels = (np.arange(count) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3]) + np.array([count, 28, 28], ">u4").tobytes() + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            bytes([0, 0, 8, 1]) + np.array([count], ">u4").tobytes() + labels.tobytes())


def test_torchvision_set_through_timm(tmp_path):
    write_mnist_raw(tmp_path, train=30, test=10)
    config = DataConfig(dataset="torch/mnist", data_dir=str(tmp_path), reward_size=0, search_val_size=5)
    splits = load_data(config, make_space(image_size=28, num_classes=10), TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test), splits.num_classes) == (25, 5, 10, 10)
    assert splits.search_val[2][1] == splits.search_val.indices[2] % 10
    assert splits.test[7][1] == 7 and splits.test[7][0].shape == (1, 28, 28)
    rgb = load_data(config, make_space(image_size=16, in_chans=3, num_classes=10), TRAIN)
    assert rgb.train[0][0].shape == (3, 16, 16)  # converted to the space's mode, resized to its size
    with pytest.raises(DataError, match="torch/mnist: found 10 classes in its train split but the space expects 3"):
        load_data(config, make_space(image_size=28, num_classes=3), TRAIN)
    with pytest.raises(DataError, match="torch/mnist: not found or corrupt in .*set data.download=true"):
        load_data(replace(config, data_dir=str(tmp_path / "empty")), make_space(28, 1, 10), TRAIN)
    with pytest.raises(DataError, match="torch/nosuchset: Unknown torchvision dataset nosuchset"):
        load_data(replace(config, dataset="torch/nosuchset"), make_space(28, 1, 10), TRAIN)


# -- hfds/<name> ------------------------------------------------------------------------------
def hf_splits(sizes: dict[str, int], num_classes: int = 3):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=[f"c{i}" for i in range(num_classes)])})
    return datasets.DatasetDict({
        split: datasets.Dataset.from_dict(
            {"image": [Image.open(io.BytesIO(image_bytes(10 * i))) for i in range(count)],
             "label": [i % num_classes for i in range(count)]}, features=features)
        for split, count in sizes.items()
    })


def test_hfds_saved_to_disk(tmp_path):
    saved = tmp_path / "saved"
    hf_splits({"train": 12, "test": 6}).save_to_disk(str(saved))
    config = DataConfig(dataset=f"hfds/{saved}", test_split="test", reward_size=0, search_val_size=4)
    splits = load_data(replace(config, split_seed=1), make_space(), TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test), splits.num_classes) == (8, 4, 6, 3)
    assert [splits.test.base[i][1] for i in range(6)] == [0, 1, 2, 0, 1, 2]
    assert sorted(pixel_values(splits.train) + pixel_values(splits.search_val)) == list(range(0, 120, 10))
    with pytest.raises(DataError, match="has no split 'validation'; it has train, test"):
        load_data(replace(config, test_split="validation", split_seed=1), make_space(), TRAIN)
    with pytest.raises(DataError, match="found 3 classes in its train split but the space expects 5"):
        load_data(replace(config, split_seed=1), make_space(num_classes=5), TRAIN)


def test_hfds_data_files_through_timms_reader(tmp_path):
    files = tmp_path / "parquet"
    files.mkdir()
    for split, table in hf_splits({"train": 9, "test": 3}).items():
        table.to_parquet(str(files / f"{split}-00000-of-00001.parquet"))
    config = DataConfig(dataset=f"hfds/{files}", data_dir=str(tmp_path / "cache"), test_split="test",
                        search_val_size=2, reward_size=0)
    splits = load_data(config, make_space(), TRAIN)
    assert type(splits.train.base).__module__ == "timm.data.dataset"  # timm's own ImageDataset
    assert (len(splits.train), len(splits.search_val), len(splits.test)) == (7, 2, 3)
    assert [splits.test[i][1] for i in range(3)] == [0, 1, 2]
    with pytest.raises(DataError, match="hfds/.*: cannot load its nosplit split"):
        load_data(replace(config, test_split="nosplit"), make_space(), TRAIN)


# -- wds/<name> -------------------------------------------------------------------------------
def write_shard(path: Path, first: int, count: int, num_classes: int = 3, extra: bool = True) -> None:
    """Samples first..first+count-1: image value = sample number, label = number % num_classes."""
    with tarfile.open(path, "w") as tar:
        for n in range(first, first + count):
            key = f"sample{n:05d}"
            add_member(tar, f"{key}.png", image_bytes(n))
            add_member(tar, f"{key}.cls", str(n % num_classes).encode())
            if extra:
                add_member(tar, f"{key}.json", b'{"note": "ignored"}')


@pytest.fixture
def shards(tmp_path) -> Path:
    write_shard(tmp_path / "train-0000.tar", 0, 7)
    write_shard(tmp_path / "train-0001.tar", 7, 7)
    write_shard(tmp_path / "test-0000.tar", 100, 5)
    return tmp_path


def wds_config(root: Path, **changes) -> DataConfig:
    return replace(DataConfig(dataset="wds/tiny", data_dir=str(root), train_split="train-{0000..0001}.tar",
                              test_split="test-0000.tar", reward_size=0, search_val_size=4), **changes)


def test_webdataset_shards_serve_every_sample_once(shards):
    splits = load_data(wds_config(shards), make_space(), TRAIN)
    assert (len(splits.train), len(splits.search_val), len(splits.test)) == (10, 4, 5)
    assert sorted(pixel_values(splits.train) + pixel_values(splits.search_val)) == list(range(14))
    assert pixel_values(splits.test) == list(range(100, 105))
    for i in range(5):
        assert splits.test[i][1] == (100 + i) % 3
    again = load_data(replace(wds_config(shards), split_seed=1), make_space(), TRAIN)
    assert pixel_values(again.search_val) != pixel_values(splits.search_val)  # the seed picks search-val


def test_webdataset_ranks_read_disjoint_parts_of_each_batch(shards):
    """Under torchrun each rank takes its share of every global batch: together exactly the images
    a single process trains on in the epoch, none twice."""
    train = load_data(wds_config(shards, search_val_size=2), make_space(), TRAIN).train
    single = [index for batch in EpochBatches(len(train), 4, seed=3) for index in batch]
    per_rank = [[index for batch in EpochBatches(len(train), 4, seed=3, ranks=Ranks(rank=r, world_size=2,
                                                                                    device=torch.device("cpu")))
                 for index in batch] for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(single) and len(single) == 12
    images = [train[i][0] for i in per_rank[0] + per_rank[1]]
    assert len({tuple(image.flatten().tolist()) for image in images}) == 12  # twelve different images


def test_webdataset_loader_workers_open_their_own_files(shards):
    train = load_data(wds_config(shards), make_space(), TRAIN).test
    loader = torch.utils.data.DataLoader(train, batch_size=5, num_workers=2)
    labels = torch.cat([y for _, y in loader]).tolist()
    assert labels == [(100 + i) % 3 for i in range(5)]


def test_webdataset_errors(shards):
    space = make_space()
    with pytest.raises(DataError, match="wds: shard .*train-0002.tar not found and 1 more"):
        load_data(wds_config(shards, train_split="train-{0000..0003}.tar"), space, TRAIN)
    with pytest.raises(DataError, match="split 'train' names no shards; .*'train-{0000..0099}.tar'"):
        load_data(wds_config(shards, train_split="train"), space, TRAIN)
    with pytest.raises(DataError, match="data.data_dir is required"):
        load_data(wds_config(shards, data_dir=None), space, TRAIN)
    with pytest.raises(DataError, match="wds/tiny train-{0000..0001}.tar split: label 2 is out of range; "
                                        "expected 0 to 1"):
        load_data(wds_config(shards), make_space(num_classes=2), TRAIN)
    with tarfile.open(shards / "test-0000.tar", "a") as tar:
        add_member(tar, "orphan.png", image_bytes(1))
    with pytest.raises(DataError, match="test-0000.tar: sample 'orphan' has an image but no .cls label"):
        load_data(wds_config(shards), space, TRAIN)
    (shards / "test-0000.tar").write_bytes(b"\x00" * 100 + b"garbage")
    with pytest.raises(DataError, match="test-0000.tar: cannot read the tar file"):
        load_data(wds_config(shards), space, TRAIN)


def test_train_command_on_webdataset_shards(tmp_path, capsys):
    """The whole path: focusformer-train with --set on WebDataset shards of 8x8 digit-sized images."""
    for shard in range(2):
        write_shard(tmp_path / f"train-{shard}.tar", 40 * shard, 40, num_classes=10, extra=False)
    write_shard(tmp_path / "test-0.tar", 500, 20, num_classes=10, extra=False)
    run = tmp_path / "run"
    assert train_cli.main([
        "--config", "digits", "--output", str(run), "--epochs", "1", "--no-progress", "--sampler", "uniform",
        "--set", "data.dataset=wds/tiny", "--set", f"data.data_dir={tmp_path}",
        "--set", "data.train_split=train-{0..1}.tar", "--set", "data.test_split=test-0.tar",
        "--set", "data.search_val_size=16", "--set", "data.reward_size=8", "--set", "train.batch_size=16",
    ]) == 0
    assert (run / "final.json").is_file()
    capsys.readouterr()
    assert train_cli.main(["--config", "digits", "--output", str(tmp_path / "run2"), "--no-progress",
                           "--set", "data.test_split=test"]) == 2
    assert "data.test_split" in capsys.readouterr().err and not (tmp_path / "run2").exists()


@pytest.mark.parametrize("module, dataset, extra", [("braceexpand", "wds/tiny", "wds"), ("datasets", "hfds/x", "hf")])
def test_missing_optional_extra_is_named(shards, monkeypatch, module, dataset, extra):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # import fails as if not installed
    with pytest.raises(DataError, match=f"needs the {module} package; pip install 'focusformer\\[{extra}\\]'"):
        load_data(wds_config(shards, dataset=dataset), make_space(), TRAIN)
