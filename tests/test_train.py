"""focusformer-train and focusformer-export end to end on the bundled digits data."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from focusformer import load_subnet
from focusformer.cli import export as export_cli
from focusformer.cli import train as train_cli
from focusformer.config import load_config
from focusformer.spaces import create_supernet
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet
from focusformer.training.trainer import Trainer

QUICK = ["--epochs", "10", "--lr", "5e-3", "--sampler", "uniform", "--no-progress", "--set", "train.warmup_epochs=1"]


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "summary.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "digits"
    assert train_cli.main(["--output", str(run), *QUICK]) == 0
    return run


def test_train_writes_run_directory(trained_run):
    assert {"last.pt", "summary.csv", "config.yaml", "final.json"} <= {p.name for p in trained_run.iterdir()}
    rows = _rows(trained_run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 11))
    columns = list(rows[0])
    assert columns[:6] == ["epoch", "train_loss", "val_top1_largest", "val_top1_smallest", "lr", "seconds"]
    assert all(c.startswith("share_") for c in columns[6:]) and columns[-1] == "share_other"
    for row in rows:
        assert 0.0 <= float(row["val_top1_largest"]) <= 100.0
        assert float(row["seconds"]) > 0
    # The schedule anneals: the last epoch ends at a lower learning rate than the first.
    assert float(rows[-1]["lr"]) < float(rows[0]["lr"])
    resolved = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 10 and resolved["train"]["lr"] == 5e-3
    assert resolved["space"] == load_config("digits").space.to_dict()


def test_training_learns(trained_run):
    """Ten short epochs already beat chance (10%) by a wide margin on digits."""
    first, last = _rows(trained_run)[0], _rows(trained_run)[-1]
    assert float(last["train_loss"]) < float(first["train_loss"])
    assert float(last["val_top1_largest"]) > 25.0


def test_checkpoint_holds_what_resume_needs(trained_run):
    payload = load_checkpoint(trained_run)
    assert {"model", "optimizer", "scheduler", "strategy", "rng", "epoch", "step", "history", "config"} <= set(payload)
    assert payload["epoch"] == 10 and payload["step"] == 10 * ((1437 - 180 - 180) // 64)  # search-val, reward
    supernet = create_supernet(load_config("digits").space)
    supernet.load_state_dict(payload["model"])  # strict: every key present, shapes equal


def test_resume_matches_uninterrupted_run(tmp_path):
    """Stopping after epoch 1 and resuming gives bit-identical weights and summary rows."""
    config = load_config("digits", ["train.epochs=2", "train.batch_size=128", "train.mixup=0.8",
                                    "train.drop_path=0.1"])
    whole = Trainer(config, tmp_path / "whole", progress=False)
    whole.fit()
    Trainer(config, tmp_path / "split", progress=False).fit(until_epoch=1)
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    assert resumed.epoch == 1
    resumed.fit()
    for name, tensor in whole.network.state_dict().items():
        assert torch.equal(tensor, resumed.network.state_dict()[name]), name
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(_rows(tmp_path / "whole")) == strip(_rows(tmp_path / "split"))


def test_export_cli_round_trip(trained_run, tmp_path, capsys):
    out = tmp_path / "largest"
    assert export_cli.main(["--checkpoint", str(trained_run), "--largest", "--output", str(out)]) == 0
    assert "MACs" in capsys.readouterr().out
    model = load_subnet(out)
    supernet = load_supernet(trained_run)
    images = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(images), supernet(images, supernet.space.largest()), atol=1e-5, rtol=0)

    arch_file = tmp_path / "arch.json"
    arch = supernet.space.sample(3)
    arch_file.write_text(arch.to_json())
    assert export_cli.main(["--checkpoint", str(trained_run), "--arch", str(arch_file),
                            "--output", str(tmp_path / "sampled")]) == 0
    assert load_subnet(tmp_path / "sampled").arch == arch


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config", "no-such-config"], "shipped:"),
        (["--set", "train.epochz=1"], "unknown key 'epochz'"),
        (["--set", "data.dataset=mnist"], "choose one of"),
        (["--set", "train.lr"], "SECTION.KEY=VALUE"),
        (["--resume", "{tmp}/missing"], "no checkpoint here"),
    ],
)
def test_train_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = train_cli.main(["--output", str(tmp_path / "run"), "--no-progress", "--epochs", "1", *argv]
                          if "--resume" not in argv else argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_train_overrides_of_the_space_that_fit_together_are_taken(tmp_path):
    """Overrides of the space's choices train a supernet of the space they describe."""
    run = tmp_path / "run"
    argv = ["--output", str(run), "--no-progress", "--epochs", "1", "--set", "space.embed_dim=[24, 25]",
            "--set", "space.num_heads=[3]"]
    assert train_cli.main(argv) == 0
    space = config_from_checkpoint(load_checkpoint(run), run).space
    assert space.embed_dim == (24, 25) and space.num_heads == (3,)


def test_refuses_to_overwrite_a_run(trained_run, capsys):
    before = (trained_run / "last.pt").read_bytes()
    assert train_cli.main(["--output", str(trained_run), *QUICK]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (trained_run / "last.pt").read_bytes() == before


def test_overwrite_starts_over_without_the_earlier_runs_files(trained_run, tmp_path, capsys):
    """--overwrite removes what the earlier run wrote and searches recorded (they describe other
    weights), keeps files of the user's own, and leaves one run's summary and event file."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "results").mkdir(exist_ok=True)
    (run / "results" / "search-evolution-500K-seed0.state.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    (run / "tensorboard" / "my-notes.txt").parent.mkdir(exist_ok=True)
    (run / "tensorboard" / "my-notes.txt").write_text("mine too")
    assert train_cli.main(["--output", str(run), *QUICK, "--epochs", "1", "--overwrite"]) == 0
    assert "removed the earlier run's" in capsys.readouterr().out
    assert not (run / "results").exists() and (run / "notes.txt").read_text() == "mine"
    assert (run / "tensorboard" / "my-notes.txt").read_text() == "mine too"

    # A folder that holds no run keeps everything, a results/ of the user's own too.
    mine = tmp_path / "mine"
    (mine / "results").mkdir(parents=True)
    (mine / "results" / "table.jsonl").write_text("{}")
    assert train_cli.main(["--output", str(mine), *QUICK, "--epochs", "1", "--overwrite"]) == 0
    assert (mine / "results" / "table.jsonl").read_text() == "{}"
    assert len(_rows(run)) == 1 and len(_rows(trained_run)) > 1
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == (1 if (trained_run / "tensorboard").is_dir() else 0)


def test_resume_rejects_config_changes(trained_run, capsys):
    before = (trained_run / "last.pt").read_bytes()
    for flag, value in (("--lr", "0.1"), ("--seed", "3"), ("--sampler", "focus")):
        assert train_cli.main(["--resume", str(trained_run), flag, value]) == 2
        assert flag in capsys.readouterr().err
    assert (trained_run / "last.pt").read_bytes() == before


def _timm_lr(config, steps_per_epoch: int, epochs: int, step: int) -> float:
    """timm's cosine schedule of an ``epochs``-long run at ``step``: the reference for extensions."""
    from timm.scheduler import CosineLRScheduler

    train = config.train
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=train.peak_lr)
    scheduler = CosineLRScheduler(optimizer, t_initial=epochs * steps_per_epoch, lr_min=train.min_lr,
                                  warmup_t=train.warmup_epochs * steps_per_epoch, warmup_lr_init=train.warmup_lr,
                                  t_in_epochs=False)
    scheduler.step_update(step)
    return optimizer.param_groups[0]["lr"]


def test_resume_with_more_epochs_extends_a_finished_run(tmp_path, capsys):
    """timm's --resume with a larger --epochs: the run trains on to N epochs under the schedule of
    an N-epoch run (its rate rises again from the floor it had reached), and its files say N."""
    run = tmp_path / "run"
    config = load_config("digits", ["train.epochs=1", "train.batch_size=256", "train.sampler=uniform",
                                    "train.warmup_epochs=0"])
    first = Trainer(config, run, progress=False)
    first.fit()
    spe, floor = first.steps_per_epoch, first.optimizer.param_groups[0]["lr"]
    final_before = (run / "final.json").read_text()

    extended = Trainer.resume(run, progress=False, epochs=3)
    assert extended.resized_from == 1 and extended.epoch == 1
    lr = extended.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(_timm_lr(config, spe, 3, spe)) and lr > 2 * floor
    assert train_cli.main(["--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "extending the run from 1 to 3 epochs" in out and "schedule is now that of a 3-epoch run" in out
    rows = _rows(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["lr"]) == pytest.approx(_timm_lr(config, spe, 3, 2 * spe))
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 3
    assert load_checkpoint(run)["config"]["train"]["epochs"] == 3
    assert (run / "final.json").read_text() != final_before  # the report of the longer run

    # Resumed again, finished, with nothing to extend: it says so and trains or evaluates nothing.
    finished = {name: (run / name).read_bytes() for name in ("last.pt", "final.json", "summary.csv")}
    assert train_cli.main(["--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "has finished its 3 epochs" in out and "--epochs N with N > 3" in out
    assert {name: (run / name).read_bytes() for name in finished} == finished


def test_resume_cannot_cut_a_run_below_what_it_trained(tmp_path, capsys):
    run = tmp_path / "run"
    config = load_config("digits", ["train.epochs=3", "train.batch_size=256", "train.sampler=uniform"])
    trainer = Trainer(config, run, progress=False)
    trainer.fit(until_epoch=2)
    before = (run / "last.pt").read_bytes()
    assert train_cli.main(["--resume", str(run), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already trained 2 epoch(s); give at least 2" in err
    assert (run / "last.pt").read_bytes() == before
    assert train_cli.main(["--resume", str(run), "--epochs", "2", "--no-progress"]) == 0  # shorten to what it has
    assert "shortening the run from 3 to 2 epochs" in capsys.readouterr().out
    assert (run / "final.json").exists() and len(_rows(run)) == 2


def test_corrupt_checkpoint_is_reported(tmp_path, trained_run, capsys):
    run = tmp_path / "broken"
    run.mkdir()
    (run / "last.pt").write_bytes((trained_run / "last.pt").read_bytes()[:1000])
    assert train_cli.main(["--resume", str(run)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert export_cli.main(["--checkpoint", str(run), "--largest", "--output", str(tmp_path / "x")]) == 2


def test_export_rejects_arch_outside_space(trained_run, tmp_path, capsys):
    arch_file = tmp_path / "arch.json"
    arch_file.write_text('{"embed_dim": 25, "depth": 2, "num_heads": [3, 3], "mlp_ratio": [2.0, 2.0]}')
    assert export_cli.main(["--checkpoint", str(trained_run), "--arch", str(arch_file),
                            "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "embed_dim" in err and "24, 32, 48" in err
    assert not (tmp_path / "out").exists()


def test_console_script_reports_errors_without_traceback(tmp_path):
    """The installed entry point itself: a real process, exit code 2, one line on stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "focusformer.cli.train", "--config", str(tmp_path / "missing.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"focusformer-train: error: {tmp_path / 'missing.yaml'}: no such config file"]


@pytest.mark.parametrize("overrides", [
    ["train.sampler=attentive", "train.target_budgets='500K,1M'"],
    ["train.sampler=uniform", "train.sandwich=true", "train.distill=alpha"],
])
def test_attentive_and_distillation_runs_resume_exactly(overrides, tmp_path):
    """Stopped after epoch 1 and resumed: the same weights and summary rows (band shares included)."""
    config = load_config("digits", ["train.epochs=2", "train.batch_size=128", *overrides])
    whole = Trainer(config, tmp_path / "whole", progress=False)
    whole.fit()
    Trainer(config, tmp_path / "split", progress=False).fit(until_epoch=1)
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    resumed.fit()
    for name, tensor in whole.network.state_dict().items():
        assert torch.equal(tensor, resumed.network.state_dict()[name]), name
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    rows = _rows(tmp_path / "whole")
    assert strip(rows) == strip(_rows(tmp_path / "split"))
    assert any(key.startswith("share_") for key in rows[0])
    if config.train.budgets:
        assert float(rows[0]["share_500K"]) + float(rows[0]["share_1M"]) > 0.9  # aimed at the targets' bands
