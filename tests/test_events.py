"""TensorBoard event files (issue #26): every summary.csv column, each step's loss and rate, rank 0
only, and nothing breaks without the tensorboard package."""

from __future__ import annotations

import csv
import math

import pytest

from focusformer.config import load_config
from focusformer.run_dir import EVENTS_DIR
from focusformer.training import events
from focusformer.training.trainer import Trainer

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

OVERRIDES = ["train.epochs=2", "train.batch_size=256", "focus.update_every=2", "focus.eval_images=32"]


def _scalars(run) -> dict[str, dict[int, float]]:
    accumulator = EventAccumulator(str(run / EVENTS_DIR))
    accumulator.Reload()
    return {tag: {e.step: e.value for e in accumulator.Scalars(tag)} for tag in accumulator.Tags()["scalars"]}


def test_events_hold_every_summary_column_and_each_step(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(load_config("digits", OVERRIDES), run, progress=False)
    trainer.fit(until_epoch=1)
    resumed = Trainer.resume(run, progress=False)
    resumed.fit()
    scalars = _scalars(run)
    steps = resumed.step
    assert sorted(scalars["train/step_loss"]) == list(range(1, steps + 1))  # each step once, across the resume
    assert sorted(scalars["train/lr"]) == list(range(1, steps + 1))
    with open(run / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for i, row in enumerate(rows):
        at = (i + 1) * resumed.steps_per_epoch
        for column, value in row.items():
            if column == "epoch" or value in ("", "nan") or not math.isfinite(float(value)):
                continue
            group = "val" if column.startswith("val_") else "train" if column in ("train_loss", "lr", "seconds") \
                else "sampler"
            assert scalars[f"{group}/{column}"][at] == pytest.approx(float(value), rel=1e-6), column
    assert "sampler/steered_share" in scalars and "val/val_top1_largest" in scalars


def test_training_works_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "tensorboard_available", lambda: False)
    run = tmp_path / "run"
    Trainer(load_config("digits", ["train.epochs=1", "train.batch_size=256", "train.sampler=uniform"]), run,
            progress=False).fit()
    assert (run / "final.json").exists() and not (run / EVENTS_DIR).exists()


def test_tensorboard_false_writes_no_events(tmp_path):
    run = tmp_path / "run"
    Trainer(load_config("digits", ["train.epochs=1", "train.batch_size=256", "train.sampler=uniform",
                                   "train.tensorboard=false"]), run, progress=False).fit()
    assert (run / "final.json").exists() and not (run / EVENTS_DIR).exists()
