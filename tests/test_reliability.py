"""Runs survive kills, signals and numerical faults; checkpoints are safe to load."""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from focusformer.config import load_config
from focusformer.errors import CheckpointError
from focusformer.spaces import create_supernet
from focusformer.training.checkpoint import load_checkpoint, save_checkpoint
from focusformer.training.trainer import Trainer, TrainingDiverged

# Two short epochs of digits (9 steps each) with the focus sampler, checkpointing every 3 steps.
# Drop path and mixup are on so that resuming must also restore the torch and numpy RNGs exactly.
TRAIN_ARGS = ["--config", "digits", "--epochs", "2", "--batch-size", "128", "--set", "focus.update_every=4",
              "--set", "focus.eval_images=64", "--set", "train.drop_path=0.1", "--set", "train.mixup=0.5",
              "--checkpoint-every", "3", "--no-progress"]
# The same on the other families: ViTAS (private stems, private q/k, identity layers, bilateral
# weight sharing) with uniform sampling calibrated to two target budgets, and PSViT with each
# pooling variant.
_SHORT = ["--epochs", "2", "--batch-size", "128", "--set", "train.drop_path=0.1", "--set", "train.mixup=0.5",
          "--checkpoint-every", "3", "--no-progress"]
FAMILY_ARGS = {
    "vitas": ["--config", "vitas-digits", "--sampler", "uniform", "--target-budgets", "250K,400K",
              "--set", "space.weight_sharing=bilateral", *_SHORT],
    "psvit-1d": ["--config", "psvit-digits", "--sampler", "uniform", *_SHORT],
    "psvit-2d": ["--config", "psvit-digits", "--set", "space.pooling=2d", "--sampler", "uniform", "--sandwich", *_SHORT],
}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "focusformer.cli.train", *args]


def _step_of(run: Path) -> int:
    try:
        return torch.load(run / "last.pt", map_location="cpu", weights_only=True)["step"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def _summary(run: Path) -> list[dict[str, str]]:
    with open(run / "summary.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def _assert_same_run(a: Path, b: Path) -> None:
    first, second = load_checkpoint(a), load_checkpoint(b)
    assert first["step"] == second["step"]
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, second["model"][name]), name
    for name, tensor in first["strategy"]["sampler"].items():
        assert torch.equal(tensor, second["strategy"]["sampler"][name]), name
    assert _summary(a) == _summary(b)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    subprocess.run(_command(*TRAIN_ARGS, "--output", str(run)), check=True, capture_output=True, timeout=300)
    return run


def _start_and_signal(run: Path, after_step: int, signum: int, args: list[str] = TRAIN_ARGS
                      ) -> subprocess.CompletedProcess:
    """Start training, wait until a checkpoint at ``after_step`` or later exists, then signal it."""
    process = subprocess.Popen(_command(*args, "--output", str(run)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _step_of(run) < after_step and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be interrupted"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=240)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("after_step", [3, 9])  # mid first epoch; at the epoch boundary
def test_sigkill_then_resume_matches_uninterrupted(reference_run, tmp_path, after_step):
    run = tmp_path / "run"
    killed = _start_and_signal(run, after_step, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert 0 < _step_of(run) < 18
    resumed = subprocess.run(_command("--resume", str(run), "--no-progress"), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(reference_run, run)


@pytest.mark.parametrize("family", sorted(FAMILY_ARGS))
def test_other_families_sigkill_mid_epoch_then_resume_matches_uninterrupted(family, tmp_path):
    args = FAMILY_ARGS[family]
    reference = tmp_path / "reference"
    subprocess.run(_command(*args, "--output", str(reference)), check=True, capture_output=True, timeout=300)
    run = tmp_path / "run"
    killed = _start_and_signal(run, 4, signal.SIGKILL, args)
    assert killed.returncode == -signal.SIGKILL and 0 < _step_of(run) < 18
    resumed = subprocess.run(_command("--resume", str(run), "--no-progress"), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    first, second = load_checkpoint(reference), load_checkpoint(run)
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, second["model"][name]), name
    assert _summary(reference) == _summary(run)


def test_sigterm_saves_and_exits_cleanly(reference_run, tmp_path):
    run = tmp_path / "run"
    stopped = _start_and_signal(run, 4, signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in stopped.stderr and f"--resume {run}" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    saved = _step_of(run)
    assert saved >= 6  # at least the periodic checkpoint it waited for; resuming from it is exact
    resumed = subprocess.run(_command("--resume", str(run), "--no-progress"), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0 and f"at step {saved}" in resumed.stdout
    _assert_same_run(reference_run, run)


def test_evolution_search_killed_and_rerun_returns_the_same_result(reference_run, tmp_path):
    search = [sys.executable, "-m", "focusformer.cli.search", "--budget", "600K", "--population", "12",
              "--generations", "5", "--parents", "4", "--mutations", "6", "--crossovers", "6",
              "--val-images", "64", "--no-progress", "--no-test", "--json"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for run in (whole, killed):
        run.mkdir()
        for name in ("last.pt", "config.yaml"):
            (run / name).write_bytes((reference_run / name).read_bytes())
    expected = subprocess.run(search + ["--checkpoint", str(whole)], capture_output=True, text=True, timeout=300)
    assert expected.returncode == 0, expected.stderr
    state = killed / "results" / "search-evolution-600K-seed0.state.json"
    process = subprocess.Popen(search + ["--checkpoint", str(killed)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if json.loads(state.read_text()).get("generation", 0) >= 2:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    assert process.poll() is None, "the search ended before it could be killed"
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert 2 <= json.loads(state.read_text())["generation"] < 5  # killed part-way: the rerun resumes
    again = subprocess.run(search + ["--checkpoint", str(killed)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    drop_time = lambda out: [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(out)]  # noqa: E731
    assert drop_time(again.stdout) == drop_time(expected.stdout)


def test_nonfinite_loss_skips_the_step(tmp_path):
    config = load_config("digits", ["train.epochs=1", "train.sampler=uniform"])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    real = trainer.criterion
    calls = {"n": 0}

    def faulty(logits, targets):
        calls["n"] += 1
        loss = real(logits, targets)
        return loss * float("nan") if calls["n"] == 3 else loss

    trainer.criterion = faulty
    snapshots = []
    original_step = trainer._train_step

    def recording_step(images, labels):
        before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
        loss = original_step(images, labels)
        snapshots.append((loss, before))
        return loss

    trainer._train_step = recording_step
    trainer.fit()
    loss, before_third = snapshots[2]
    assert loss != loss  # the third step's loss was NaN ...
    after_third = snapshots[3][1]
    assert all(torch.equal(before_third[k], after_third[k]) for k in before_third)  # ... and changed nothing
    assert all(torch.isfinite(p).all() for p in trainer.network.parameters())
    assert trainer.step == trainer.steps_per_epoch and trainer.history[0].train_loss == trainer.history[0].train_loss


def test_diverged_run_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    config = load_config("digits", ["train.epochs=2", "train.sampler=uniform"])
    Trainer(config, run, progress=False).fit(until_epoch=1)
    good = (run / "last.pt").read_bytes()
    trainer = Trainer.resume(run, progress=False)
    trainer.criterion = lambda logits, targets: logits.sum() * float("inf")
    with pytest.raises(TrainingDiverged, match="NaN or infinite for 5 steps in a row"):
        trainer.fit()
    assert (run / "last.pt").read_bytes() == good
    assert trainer.step == trainer.steps_per_epoch + 4  # the fifth bad step never completed


def test_diverged_run_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from focusformer.cli import train as train_cli
    from focusformer.training import trainer as training

    monkeypatch.setattr(training.nn, "CrossEntropyLoss",
                        lambda **kw: (lambda logits, targets: logits.sum() * float("nan")))
    code = train_cli.main(["--epochs", "1", "--sampler", "uniform", "--output", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("focusformer-train: error: the loss was NaN")


def test_checkpoint_loading_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "last.pt"
    with open(path, "wb") as handle:  # a pickle-based checkpoint carrying a payload
        torch.save({"format_version": 1, "evil": Exploit()}, handle, pickle_module=pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def test_checkpoint_from_another_version_is_refused(tmp_path):
    save_checkpoint(tmp_path / "last.pt", {"config": {}})
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        load_checkpoint(tmp_path)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"x": torch.ones(3)})
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, {"x": torch.zeros(3)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_checkpoint_from_another_search_space_is_refused(tmp_path, capsys):
    """Weights of one space under another space's config: a clear error, never a silent restart."""
    from focusformer.cli import export as export_cli
    from focusformer.cli import train as train_cli

    run = tmp_path / "run"
    Trainer(load_config("digits", ["train.epochs=1", "train.sampler=uniform"]), run, progress=False).fit()
    payload = torch.load(run / "last.pt", weights_only=True)
    payload["model"] = create_supernet(load_config("fashion-mnist").space).state_dict()
    torch.save(payload, run / "last.pt")
    before = (run / "last.pt").read_bytes()
    assert train_cli.main(["--resume", str(run), "--no-progress"]) == 2
    assert "does not match" in capsys.readouterr().err
    assert export_cli.main(["--checkpoint", str(run), "--largest", "--output", str(tmp_path / "out")]) == 2
    assert "do not match" in capsys.readouterr().err
    assert (run / "last.pt").read_bytes() == before and not (tmp_path / "out").exists()
