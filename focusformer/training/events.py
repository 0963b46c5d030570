"""TensorBoard event files in the run directory, when the ``tensorboard`` extra is installed.

Every ``summary.csv`` column is written at the end of each epoch (x axis: optimizer steps), and
each step's loss and learning rate as it happens, so a run can be watched live with
``tensorboard --logdir runs/``. Without tensorboard nothing is written and nothing else changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..run_dir import EVENTS_DIR
from .reports import EpochRecord


def tensorboard_available() -> bool:
    try:
        import torch.utils.tensorboard  # noqa: F401  (needs the tensorboard package)
    except ImportError:
        return False
    return True


class EventLog:
    """Writes ``RUN/tensorboard/``; ``enabled=False`` (another rank, or no tensorboard) writes nothing.

    ``purge_step``: on resume, the first step still to train, so events a killed run wrote after
    its last checkpoint are dropped instead of drawn twice.
    """

    def __init__(self, run_dir: Path, enabled: bool, purge_step: int | None = None) -> None:
        self.writer: Any = None
        if enabled and tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / EVENTS_DIR), purge_step=purge_step)

    @property
    def active(self) -> bool:
        return self.writer is not None

    def step(self, step: int, loss: float, lr: float) -> None:
        if self.writer is not None:
            if math.isfinite(loss):
                self.writer.add_scalar("train/step_loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, step: int, record: EpochRecord) -> None:
        """Every column of the record's ``summary.csv`` row, grouped: ``val/``, ``train/``, ``sampler/``."""
        if self.writer is None:
            return
        for column, value in record.row().items():
            if column == "epoch" or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            group = "val" if column.startswith("val_") else "train" if column in ("train_loss", "lr", "seconds") \
                else "sampler"
            self.writer.add_scalar(f"{group}/{column}", value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
