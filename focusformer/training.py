"""Supernet training: the DeiT recipe through timm, one strategy-chosen subnet (or more) per step.

A run directory holds ``config.yaml`` (the resolved config), ``summary.csv`` (one
row per epoch), ``last.pt`` (everything needed to resume) and, once training
ends, ``final.json`` (test top-1 of the largest and smallest subnets).
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import random_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import (
    CHECKPOINT_FILE,
    capture_rng_state,
    config_from_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .config import Config
from .data import load_data
from .errors import CheckpointError, DataError
from .evaluation import autocast, default_device, eval_loader, top1_accuracy
from .fileio import atomic_write_text
from .macs import count_macs
from .scoring import CandidateScorer
from .space import Arch
from .strategies import build_strategy
from .supernet import Supernet

SUMMARY_FILE = "summary.csv"
CONFIG_FILE = "config.yaml"
FINAL_FILE = "final.json"


@dataclass(frozen=True)
class EpochRecord:
    """One row of ``summary.csv``; accuracies are search-val top-1 in percent."""

    epoch: int
    train_loss: float
    val_top1_largest: float
    val_top1_smallest: float
    lr: float
    seconds: float
    strategy: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        return {**{k: v for k, v in row.items() if k != "strategy"}, **row["strategy"]}


class Trainer:
    """Trains a :class:`Supernet` on ``config`` and writes its run directory."""

    def __init__(self, config: Config, output_dir: str | Path, device: torch.device | None = None,
                 progress: bool = True) -> None:
        self.config = config
        self.output_dir = Path(output_dir)
        self.device = device or default_device()
        self.progress = progress
        train = config.train
        random_seed(train.seed)
        self.data = load_data(config.data, config.space, train, seed=train.seed)
        self.steps_per_epoch = len(self.data.train) // train.batch_size
        if self.steps_per_epoch == 0:
            raise DataError(
                f"the train split has {len(self.data.train)} images, fewer than train.batch_size {train.batch_size}"
            )
        self.supernet = Supernet(config.space, drop_path_rate=train.drop_path).to(self.device)
        self.optimizer = create_optimizer_v2(
            self.supernet, opt=train.optimizer, lr=train.lr, weight_decay=train.weight_decay
        )
        self.scheduler = CosineLRScheduler(
            self.optimizer,
            t_initial=train.epochs * self.steps_per_epoch,
            lr_min=train.min_lr,
            warmup_t=train.warmup_epochs * self.steps_per_epoch,
            warmup_lr_init=train.warmup_lr,
            t_in_epochs=False,
        )
        self.strategy = build_strategy(config, train.epochs * self.steps_per_epoch, self._training_scorer())
        self.mixup = self._build_mixup()
        self.criterion: nn.Module = (
            SoftTargetCrossEntropy() if self.mixup else nn.CrossEntropyLoss(label_smoothing=train.label_smoothing)
        )
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.history: list[EpochRecord] = []

    # -- set-up -------------------------------------------------------------------------------
    def _training_scorer(self):
        """Scores candidates for the focus sampler on a fixed search-val subset."""
        if self.config.train.sampler != "focus":
            return None
        scorer = CandidateScorer(self.supernet, self.data.search_val, self.device,
                                 batch_size=self.config.train.eval_batch_size,
                                 max_images=self.config.focus.eval_images, amp=self.config.train.amp)
        return scorer.score

    def _build_mixup(self) -> Mixup | None:
        train = self.config.train
        if train.mixup <= 0 and train.cutmix <= 0:
            return None
        return Mixup(
            mixup_alpha=train.mixup,
            cutmix_alpha=train.cutmix,
            label_smoothing=train.label_smoothing,
            num_classes=self.config.space.num_classes,
        )

    @classmethod
    def resume(cls, run_dir: str | Path, device: torch.device | None = None, progress: bool = True) -> Trainer:
        """Rebuild a trainer from ``run_dir/last.pt`` exactly where it stopped."""
        payload = load_checkpoint(run_dir)
        config = config_from_checkpoint(payload, run_dir)
        trainer = cls(config, run_dir, device=device, progress=progress)
        trainer._load_state(payload)
        return trainer

    def _load_state(self, payload: dict[str, Any]) -> None:
        try:
            self.supernet.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.strategy.load_state_dict(payload["strategy"])
            restore_rng_state(payload["rng"])
            self.epoch, self.step = payload["epoch"], payload["step"]
            self.history = [EpochRecord(**row) for row in payload["history"]]
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"{self.output_dir / CHECKPOINT_FILE}: does not match its own config ({exc})"
            ) from None

    def _state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "model": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "strategy": self.strategy.state_dict(),
            "rng": capture_rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "history": [asdict(record) for record in self.history],
        }

    # -- training -----------------------------------------------------------------------------
    def fit(self, until_epoch: int | None = None) -> list[EpochRecord]:
        """Train until ``config.train.epochs`` (or stop early after ``until_epoch``, resumable).

        After every epoch the run directory is consistent: summary, checkpoint and config agree.
        """
        epochs = self.config.train.epochs
        stop = epochs if until_epoch is None else min(until_epoch, epochs)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.output_dir / CONFIG_FILE, self.config.to_yaml())
        for _ in range(self.epoch, stop):
            start = time.perf_counter()
            train_loss = self._train_epoch()
            self.epoch += 1
            record = EpochRecord(
                epoch=self.epoch,
                train_loss=train_loss,
                val_top1_largest=self.search_val_top1(self.config.space.largest()),
                val_top1_smallest=self.search_val_top1(self.config.space.smallest()),
                lr=self.optimizer.param_groups[0]["lr"],
                seconds=time.perf_counter() - start,
                strategy=self.strategy.epoch_metrics(),
            )
            self.history.append(record)
            self._write_summary()
            save_checkpoint(self.output_dir / CHECKPOINT_FILE, self._state())
            self._log(
                f"epoch {record.epoch}/{self.config.train.epochs}: loss {record.train_loss:.4f}, "
                f"search-val top-1 largest {record.val_top1_largest:.2f}%, "
                f"smallest {record.val_top1_smallest:.2f}%, {record.seconds:.1f}s"
            )
        if self.epoch == epochs:
            self._write_final_report()
        return self.history

    def _train_epoch(self) -> float:
        train = self.config.train
        self.supernet.train()
        loader = DataLoader(
            self.data.train,
            batch_size=train.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.config.data.num_workers,
            # The shuffle order is a function of (seed, epoch), independent of earlier RNG use.
            generator=torch.Generator().manual_seed(train.seed * 100_003 + self.epoch),
            pin_memory=self.device.type == "cuda",
        )
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{train.epochs}", unit="step",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        total_loss = 0.0
        for images, labels in bar:
            loss = self._train_step(images, labels)
            total_loss += loss
            bar.set_postfix_str(f"loss={loss:.3f}, lr={self.optimizer.param_groups[0]['lr']:.2e}"
                                f"{', ' if self.strategy.status() else ''}{self.strategy.status()}")
        return total_loss / self.steps_per_epoch

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        train = self.config.train
        images = images.to(self.device, non_blocking=True)
        targets = labels.to(self.device, non_blocking=True)
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        self.optimizer.zero_grad(set_to_none=True)
        archs = self.strategy.archs_for_step(self.step)
        step_loss = 0.0
        for arch in archs:
            with autocast(self.device, train.amp):
                loss = self.criterion(self.supernet(images, arch), targets) / len(archs)
            loss.backward()
            step_loss += loss.item()
        if train.clip_grad is not None:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), train.clip_grad)
        self.optimizer.step()
        self.step += 1
        self.scheduler.step_update(self.step)
        self.strategy.after_step(self.step)
        return step_loss

    # -- evaluation and reports ---------------------------------------------------------------
    def search_val_top1(self, arch: Arch) -> float:
        return self._top1(arch, self.data.search_val)

    def _top1(self, arch: Arch, dataset) -> float:
        self.supernet.eval()
        loader = eval_loader(dataset, self.config.train.eval_batch_size, self.config.data.num_workers)
        return top1_accuracy(lambda x: self.supernet(x, arch), loader, self.device, self.config.train.amp)

    def _write_summary(self) -> None:
        rows = [record.row() for record in self.history]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.output_dir / SUMMARY_FILE, buffer.getvalue())

    def _write_final_report(self) -> None:
        """Test top-1 of the largest and smallest subnets: the only place the test set is used."""
        space = self.config.space
        report = {}
        for label, arch in (("largest", space.largest()), ("smallest", space.smallest())):
            report[label] = {
                "arch": arch.to_dict(),
                "macs": count_macs(arch, space),
                "search_val_top1": self.search_val_top1(arch),
                "test_top1": self._top1(arch, self.data.test),
            }
        atomic_write_text(self.output_dir / FINAL_FILE, json.dumps(report, indent=2) + "\n")
        self._log(
            f"test top-1: largest {report['largest']['test_top1']:.2f}%, "
            f"smallest {report['smallest']['test_top1']:.2f}% -> {self.output_dir}"
        )

    def _log(self, message: str) -> None:
        tqdm.write(message)
