"""``focusformer-train --subnet DIR``: one exported subnet trained as a dense model, from its
inherited weights (fine-tune) or from scratch (retrain), with the supernet trainer's machinery."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from focusformer import load_subnet
from focusformer.cli import search as search_cli
from focusformer.cli import specialize as specialize_cli
from focusformer.cli import train as train_cli
from focusformer.config import load_config
from focusformer.data import load_data
from focusformer.export import save_subnet
from focusformer.spaces import create_supernet
from focusformer.training.trainer import Trainer

SHORT = ["--epochs", "2", "--batch-size", "128", "--no-progress"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, randomize) -> Path:
    """A digits subnet exported from a supernet with random, well-scaled weights."""
    space = load_config("digits").space
    supernet = randomize(create_supernet(space), seed=4)
    arch = space.arch_from_dict({"embed_dim": 32, "depth": 3, "num_heads": [3, 6, 4], "mlp_ratio": [2.0, 4.0, 3.0]})
    directory = tmp_path_factory.mktemp("export") / "mid"
    save_subnet(supernet.extract(arch), directory)
    return directory


def _trainer(exported: Path, tmp_path: Path, init: str) -> Trainer:
    config = train_cli.subnet_run_config(exported, init, None, ["train.epochs=1", "train.batch_size=128"], {})
    return Trainer(config, tmp_path / init, progress=False)


def test_fine_tuning_starts_from_the_exported_weights(exported, tmp_path):
    trainer = _trainer(exported, tmp_path, "inherited")
    reference = load_subnet(exported).state_dict()
    state = trainer.network.dense.state_dict()
    assert state.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(state[name], tensor), name


def test_retraining_starts_from_a_fresh_initialisation(exported, tmp_path):
    trainer = _trainer(exported, tmp_path, "scratch")
    reference = load_subnet(exported).state_dict()
    weights = [n for n in reference if n.endswith("weight") and reference[n].dim() == 2]
    assert not any(torch.equal(trainer.network.dense.state_dict()[n], reference[n]) for n in weights)
    assert trainer.config.subnet.init == "scratch" and trainer.strategy.name == "fixed"


@pytest.mark.parametrize("init", ["inherited", "scratch"])
def test_cli_writes_a_subnet_whose_test_top1_is_the_reported_one(exported, tmp_path, capsys, init):
    run = tmp_path / "run"
    assert train_cli.main(["--subnet", str(exported), "--init", init, "--output", str(run), *SHORT]) == 0
    final = json.loads((run / "final.json").read_text())
    assert list(final) == ["subnet"]
    model = load_subnet(run / "subnet")
    assert model.arch == load_subnet(exported).arch
    config = load_config("digits")
    test = load_data(config.data, config.space, config.train).test
    images, labels = map(torch.stack, zip(*((x, torch.tensor(y)) for x, y in test)))
    with torch.no_grad():
        top1 = 100.0 * (model(images).argmax(-1) == labels).float().mean().item()
    assert top1 == pytest.approx(final["subnet"]["test_top1"], abs=1e-4)
    header = (run / "summary.csv").read_text().splitlines()[0].split(",")
    assert header == ["epoch", "train_loss", "val_top1_subnet", "lr", "seconds"]
    # the trained subnet can be trained again: specialize, retrain and deploy chain
    again = tmp_path / "again"
    assert train_cli.main(["--subnet", str(run / "subnet"), "--output", str(again), "--epochs", "1",
                           "--batch-size", "128", "--no-progress"]) == 0


def test_killed_subnet_run_resumes_bit_for_bit(exported, tmp_path):
    args = ["--subnet", str(exported), *SHORT, "--checkpoint-every", "3", "--set", "train.drop_path=0.1",
            "--set", "train.mixup=0.5"]
    command = [sys.executable, "-m", "focusformer.cli.train", *args]
    subprocess.run([*command, "--output", str(tmp_path / "whole")], check=True, capture_output=True, timeout=300)
    run = tmp_path / "split"
    process = subprocess.Popen([*command, "--output", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (run / "last.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    whole_steps = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)["step"]
    assert 0 < torch.load(run / "last.pt", weights_only=False)["step"] < whole_steps  # killed part-way
    resumed = subprocess.run([sys.executable, "-m", "focusformer.cli.train", "--resume", str(run), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    first = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)["model"]
    second = torch.load(run / "last.pt", weights_only=False)["model"]
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


@pytest.mark.parametrize("argv, message", [
    (["--subnet", "{tmp}/nowhere"], "not an exported subnet (arch.json is missing)"),
    (["--init", "scratch"], "--init applies only with --subnet"),
    (["--subnet", "{export}", "--output", "{export}/inside"], "lies inside --subnet"),
    (["--subnet", "{export}", "--config", "fashion-mnist", "--set", "data.data_dir={tmp}"], "fashion-mnist"),
    (["--subnet", "{fashion}", "--config", "digits"], "digits"),  # a 28x28 subnet on 8x8 data
    (["--subnet", "{export}", "--sampler", "focus"], "a subnet run trains one arch"),
    (["--subnet", "{export}", "--sampler", "uniform"], "a subnet run trains one arch"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(exported, tmp_path, capsys, monkeypatch, argv, message):
    fashion = load_config("fashion-mnist").space
    save_subnet(create_supernet(fashion).extract(fashion.smallest()), tmp_path / "fashion")
    argv = [a.format(tmp=tmp_path, export=exported, fashion=tmp_path / "fashion") for a in argv]
    before = sorted(p.name for p in exported.iterdir())
    monkeypatch.chdir(tmp_path)  # where the default output, runs/<space>-<time>, would go
    assert train_cli.main([*argv, *SHORT]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in exported.iterdir()) == before
    assert not (tmp_path / "runs").exists()  # refused while loading data: no empty run directory left


def test_search_refuses_a_subnet_run(exported, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli.main(["--subnet", str(exported), "--output", str(run), "--epochs", "1", "--batch-size", "128",
                           "--no-progress"]) == 0
    capsys.readouterr()
    assert search_cli.main(["--checkpoint", str(run), "--budget", "1M"]) == 2
    assert "a subnet run" in capsys.readouterr().err
    for draws in ("policy", "uniform"):  # specialize says the same, not that it lacks a trained sampler
        assert specialize_cli.main(["--checkpoint", str(run), "--budget", "1M", "--draws", draws]) == 2
        err = capsys.readouterr().err
        assert "a subnet run" in err and str(run / "subnet") in err and "--sampler" not in err
