"""Supernet training: the DeiT recipe through timm, one strategy-chosen subnet (or more) per step.

A run directory holds ``config.yaml`` (the resolved config), ``summary.csv`` (one
row per epoch), ``last.pt`` (everything needed to resume) and, once training
ends, ``final.json`` (test top-1 of the largest and smallest subnets).
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3, random_seed
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from ..config import Config
from ..data import load_data
from ..devices import autocast
from ..distributed import Ranks
from ..errors import CheckpointError, ConfigError, DataError, FocusformerError
from ..export import save_subnet
from ..fileio import atomic_write_text
from ..hub import Provenance
from ..run_dir import CHECKPOINT_FILE, CONFIG_FILE, FINAL_FILE, SUBNET_DIR, SUMMARY_FILE
from ..sampling.base import PerImageRewardFn
from ..sampling.strategies import build_strategy
from ..sampling.training_budgets import BandTally, budget_bands
from ..search.scoring import CandidateScorer
from ..spaces import create_supernet
from ..spaces.base import ArchBase
from ..spaces.supernet import ForwardSide
from .checkpoint import capture_rng_state, config_from_checkpoint, load_checkpoint, restore_rng_state, save_checkpoint
from .distill import distillation_loss
from .events import EventLog
from .reports import EpochRecord, final_report, write_summary
from .signals import StopRequest
from .subnet import DenseSubnet

#: A run stops after this many optimizer steps in a row with a non-finite loss or gradient.
MAX_NONFINITE_STEPS = 5


@dataclass
class EpochProgress:
    """The current epoch so far: what a mid-epoch checkpoint needs to finish its summary row."""

    loss_sum: float = 0.0
    finite_steps: int = 0
    seconds: float = 0.0


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a resumable checkpoint."""

    def __init__(self, signum: int, epoch: int, step: int, run_dir: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step} (epoch {epoch + 1}); "
                         f"checkpoint saved, continue with: focusformer-train --resume {run_dir}")
        self.signum = signum


class TrainingDiverged(FocusformerError):
    """The loss stayed NaN or infinite; the last good checkpoint is kept."""


class EpochBatches(Sampler[list[int]]):
    """The batches of one epoch: a seeded permutation cut into full batches, from batch ``start`` on.

    ``batch_size`` is the global batch; under ``ranks`` each rank takes its contiguous share of
    every batch, so the ranks together see exactly the batches a single process would.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int = 0,
                 ranks: Ranks | None = None) -> None:
        self.num_items, self.batch_size, self.seed, self.start = num_items, batch_size, seed, start
        self.ranks = ranks or Ranks()
        self.share = self.ranks.split_batch(batch_size)

    def __len__(self) -> int:
        return self.num_items // self.batch_size - self.start

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.seed)).tolist()
        for batch in range(self.start, self.num_items // self.batch_size):
            first = batch * self.batch_size + self.ranks.rank * self.share
            yield order[first:first + self.share]


class Trainer:
    """Trains a :class:`Supernet` on ``config`` and writes its run directory.

    Under ``ranks`` (several torchrun processes) every rank builds the same trainer, trains its
    share of each global batch through DistributedDataParallel, and rank 0 alone writes.
    """

    def __init__(self, config: Config, output_dir: str | Path, device: torch.device | None = None,
                 progress: bool = True, ranks: Ranks | None = None, load_inherited: bool = True) -> None:
        self.config = config
        self.output_dir = Path(output_dir)
        self.ranks = ranks or Ranks()
        self.device = device or self.ranks.device
        self.progress = progress and self.ranks.is_main
        train = config.train
        self.ranks.split_batch(train.batch_size, even=train.mixup > 0 or train.cutmix > 0)  # fails early if not
        random_seed(train.seed)  # the same on every rank: identical supernet and sampler initialisation
        self.data = load_data(config.data, config.space, train)
        self.steps_per_epoch = len(self.data.train) // train.batch_size
        if self.steps_per_epoch == 0:
            raise DataError(
                f"the train split has {len(self.data.train)} images, fewer than train.batch_size {train.batch_size}"
            )
        self.network = self._build_network(load_inherited)
        self.model = self.ranks.wrap(self.network)  # what training steps run; the network itself elsewhere
        # The weights that are evaluated, reported and exported: the moving average when kept.
        self.ema = ModelEmaV3(self.network, decay=train.model_ema_decay, use_warmup=True) if train.model_ema else None
        self.evaluated = self.network if self.ema is None else self.ema.module
        self.val_scorer = self._scorer(self.data.search_val)
        self.optimizer = create_optimizer_v2(
            self.network, opt=train.optimizer, lr=train.peak_lr, weight_decay=train.weight_decay
        )
        self.scheduler = CosineLRScheduler(
            self.optimizer,
            t_initial=train.epochs * self.steps_per_epoch,
            lr_min=train.min_lr,
            warmup_t=train.warmup_epochs * self.steps_per_epoch,
            warmup_lr_init=train.warmup_lr,
            t_in_epochs=False,
        )
        self.strategy = build_strategy(config, train.epochs * self.steps_per_epoch, self._training_scorer(),
                                       self.ranks)
        macs = config.space.cost_model("macs")
        self.band_tally = BandTally(budget_bands(macs.min_cost, macs.max_cost, train.budgets, config.target_band))
        self.mixup = self._build_mixup()
        self.criterion: nn.Module = (
            SoftTargetCrossEntropy() if self.mixup else nn.CrossEntropyLoss(label_smoothing=train.label_smoothing)
        )
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken (skipped non-finite ones included)
        self.epoch_progress = EpochProgress()
        self.nonfinite_in_a_row = 0
        self.history: list[EpochRecord] = []
        self.events = EventLog(self.output_dir, enabled=False)  # fit() opens the real one
        self.resized_from: int | None = None  # the run's epochs before a resume gave it another number
        self._epoch_started = time.perf_counter()

    # -- set-up -------------------------------------------------------------------------------
    def _build_network(self, load_inherited: bool) -> nn.Module:
        """The supernet, or for a subnet run the dense subnet (from its exported weights when
        ``subnet.init`` is ``inherited`` and ``load_inherited``: not when resuming)."""
        config, drop_path = self.config, self.config.train.drop_path
        arch = config.subnet_arch
        if arch is None:
            return create_supernet(config.space, drop_path_rate=drop_path).to(self.device)
        network = DenseSubnet(config.space, arch, drop_path)
        if config.subnet.init == "inherited" and load_inherited:
            network.load_export(config.subnet.source)
        return network.to(self.device)

    @property
    def tracked(self) -> dict[str, ArchBase]:
        """The subnets each epoch's summary row and final.json report: a supernet's largest and
        smallest, or a subnet run's one arch."""
        arch, space = self.config.subnet_arch, self.config.space
        return {"subnet": arch} if arch is not None else {"largest": space.largest(), "smallest": space.smallest()}

    def _training_scorer(self) -> PerImageRewardFn | None:
        """Scores candidates for the focus sampler by its reward, on the reward split: images that
        never select or score the result."""
        if self.config.train.sampler != "focus":
            return None
        if not len(self.data.reward):
            raise ConfigError("data.reward_size is 0: the focus sampler scores its reward on these held-out "
                              "images (500 by default); give at least 1, or train with another sampler")
        scorer = self._scorer(self.data.reward, self.config.focus.eval_images, network=self.network)  # live weights
        reward = self.config.focus.reward
        return lambda archs: scorer.per_image(archs, reward)

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
    def resume(cls, run_dir: str | Path, device: torch.device | None = None, progress: bool = True,
               ranks: Ranks | None = None, epochs: int | None = None) -> Trainer:
        """Rebuild a trainer from ``run_dir/last.pt`` exactly where it stopped (with any number of ranks).

        ``epochs`` (other than the run's own) extends or shortens the run, as timm's ``--resume``
        with another ``--epochs`` does: the learning-rate schedule becomes that of a run of
        ``epochs`` from the start, evaluated at the step reached (so an extended, finished run's
        rate rises again from its floor). It must leave the epochs already trained in place.
        """
        payload = load_checkpoint(run_dir)
        config = config_from_checkpoint(payload, run_dir)
        before = config.train.epochs
        extended = epochs is not None and epochs != before
        if extended:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))
        trainer = cls(config, run_dir, device=device, progress=progress, ranks=ranks, load_inherited=False)
        trainer._load_state(payload, schedule=not extended)
        trainer.resized_from = before if extended else None
        started = trainer.epoch + (trainer.step_in_epoch > 0)  # epochs trained or begun
        if extended and epochs < started:
            raise ConfigError(f"--epochs {epochs}: {run_dir} has already trained {trainer.epoch} epoch(s)"
                              f"{' and part of the next' if trainer.step_in_epoch else ''}; give at least {started}")
        return trainer

    def _load_state(self, payload: dict[str, Any], schedule: bool = True) -> None:
        """Everything ``_state`` saved; without ``schedule`` the scheduler keeps this trainer's own
        (another length) and sets the rate for the step reached."""
        try:
            self.network.load_state_dict(payload["model"])
            if self.ema is not None:
                self.ema.module.load_state_dict(payload["model_ema"])
            self.optimizer.load_state_dict(payload["optimizer"])
            if schedule:
                self.scheduler.load_state_dict(payload["scheduler"])
            self.strategy.load_state_dict(payload["strategy"])
            restore_rng_state(payload["rng"])
            self.epoch, self.step = payload["epoch"], payload["step"]
            self.epoch_progress = EpochProgress(**payload["epoch_progress"])
            self.nonfinite_in_a_row = payload["nonfinite_in_a_row"]
            self.history = [EpochRecord.from_dict(row) for row in payload["history"]]
            self.band_tally.counts = dict(payload.get("band_counts", {}))  # absent before 0.2
            if not schedule:
                self.scheduler.step_update(self.step)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"{self.output_dir / CHECKPOINT_FILE}: does not match its own config ({exc})"
            ) from None

    def _state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "model": self.network.state_dict(),
            **({} if self.ema is None else {"model_ema": self.ema.module.state_dict()}),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "strategy": self.strategy.state_dict(),
            "rng": capture_rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "epoch_progress": asdict(self.epoch_progress),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "history": [asdict(record) for record in self.history],
            "band_counts": dict(self.band_tally.counts),
        }

    # -- training -----------------------------------------------------------------------------
    def fit(self, until_epoch: int | None = None) -> list[EpochRecord]:
        """Train until ``config.train.epochs`` (or stop early after ``until_epoch``, resumable).

        A checkpoint is written after every epoch and every ``train.checkpoint_every`` steps.
        SIGINT or SIGTERM saves a checkpoint at the end of the current step and raises
        :class:`TrainingInterrupted`; ``--resume`` then continues exactly where it stopped.
        """
        epochs = self.config.train.epochs
        stop = epochs if until_epoch is None else min(until_epoch, epochs)
        if self.ranks.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.output_dir / CONFIG_FILE, self.config.to_yaml())
        self.events = EventLog(self.output_dir, self.ranks.is_main and self.config.train.tensorboard,
                               purge_step=self.step + 1 if self.step else None)
        try:
            with StopRequest() as stop_request:
                for _ in range(self.epoch, stop):
                    self._epoch_started = time.perf_counter() - self.epoch_progress.seconds
                    self._train_epoch(stop_request)
                    self._finish_epoch()
        finally:
            self.events.close()
        if self.epoch == epochs:
            self._write_final_report()
        return self.history

    def _finish_epoch(self) -> None:
        progress = self.epoch_progress
        self.epoch += 1
        record = EpochRecord(
            epoch=self.epoch,
            train_loss=progress.loss_sum / max(progress.finite_steps, 1),
            val_top1={name: self.search_val_top1(arch) for name, arch in self.tracked.items()},
            lr=self.optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - self._epoch_started,
            strategy={**self.strategy.epoch_metrics(),
                      **(self.band_tally.shares() if self.config.subnet.arch is None else {})},
        )
        self.band_tally.reset()
        self.history.append(record)
        self.events.epoch(self.step, record)
        self.epoch_progress = EpochProgress()
        self._epoch_started = time.perf_counter()
        self._write_summary()
        self._save()
        top1 = ", ".join(f"{name} {value:.2f}%" for name, value in record.val_top1.items())
        self._log(f"epoch {record.epoch}/{self.config.train.epochs}: loss {record.train_loss:.4f}, "
                  f"search-val top-1 {top1}, {record.seconds:.1f}s")

    def _save(self) -> None:
        self.epoch_progress.seconds = time.perf_counter() - self._epoch_started
        state = self._state()
        # The strategy's state is rank 0's (it alone plans and learns); the weights must agree.
        self.ranks.check_same(state["model"], f"the weights at step {self.step}")
        if self.ranks.is_main:
            save_checkpoint(self.output_dir / CHECKPOINT_FILE, state)

    @property
    def step_in_epoch(self) -> int:
        return self.step - self.epoch * self.steps_per_epoch

    def _train_epoch(self, stop_request: StopRequest) -> None:
        train = self.config.train
        self.network.train()
        # The order is a function of (seed, epoch) alone; a resumed epoch skips the batches it
        # already trained on without loading them, so no augmentation randomness is consumed.
        epoch_seed = train.seed * 100_003 + self.epoch
        batches = EpochBatches(len(self.data.train), train.batch_size, seed=epoch_seed, start=self.step_in_epoch,
                               ranks=self.ranks)
        # The loader's own generator seeds its workers; without one it would draw from the global
        # RNG, and a resumed epoch would then draw once more than the original run did.
        loader = DataLoader(self.data.train, batch_sampler=batches, num_workers=self.config.data.num_workers,
                            pin_memory=self.device.type == "cuda",
                            generator=torch.Generator().manual_seed(self.ranks.rank_seed(epoch_seed + 1)))
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{train.epochs}", unit="step", initial=self.step_in_epoch,
                   total=self.steps_per_epoch, disable=not self.progress, leave=False, dynamic_ncols=True)
        every, stop = train.checkpoint_every, False
        for images, labels in bar:
            loss = self._train_step(images, labels)
            self.events.step(self.step, loss, self.optimizer.param_groups[0]["lr"])
            status = self.strategy.status()
            bar.set_postfix_str(f"loss={loss:.3f}, lr={self.optimizer.param_groups[0]['lr']:.2e}"
                                f"{', ' if status else ''}{status}")
            end_of_epoch = self.step_in_epoch == self.steps_per_epoch
            stop = self.ranks.any(stop_request.requested)  # every rank stops after the same step
            if stop and not end_of_epoch:
                self._save()
                raise TrainingInterrupted(stop_request.signum, self.epoch, self.step, self.output_dir)
            if every and self.step % every == 0 and not end_of_epoch:
                self._save()
        bar.close()
        if stop:  # at an epoch's end: finish it (summary row, checkpoint) first
            self._finish_epoch()
            raise TrainingInterrupted(stop_request.signum, self.epoch, self.step, self.output_dir)

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One optimizer step; returns its loss. A non-finite loss or gradient skips the update."""
        train = self.config.train
        self.ranks.seed_step(train.seed, self.step)
        images = images.to(self.device, non_blocking=True)
        targets = labels.to(self.device, non_blocking=True)
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        self.optimizer.zero_grad(set_to_none=True)
        # Rank 0's choice is the step's on every rank, whatever the others' floating point made of it.
        picks = self.ranks.from_main(self.strategy.archs_for_step(self.step, self._minibatch_loss(images, targets)))
        for arch in picks:
            self.band_tally.add(self.config.space.count(arch, "macs"))
        space = self.config.space
        archs = [space.largest(), space.smallest(), *picks] if train.sandwich else picks
        step_loss, finite, teacher = 0.0, True, None
        for index, arch in enumerate(archs):
            with self.ranks.gradient_sync(self.model, sync=index == len(archs) - 1):
                with autocast(self.device, train.amp):
                    logits = self.model(images, arch, self.training_side)
                    if teacher is not None:
                        loss = distillation_loss(train.distill, logits, teacher)
                    else:
                        loss = self.criterion(logits, targets)
                    loss = loss / len(archs)
                if index == 0 and train.distill != "none":
                    teacher = logits.detach()  # the largest subnet: every step with distillation starts with it
                value = self.ranks.mean(loss.detach()).item()  # the global batch's loss, on every rank
                if not math.isfinite(value):
                    finite = False
                    break
                loss.backward()
            step_loss += value
        if finite and train.clip_grad is not None:
            finite = math.isfinite(nn.utils.clip_grad_norm_(self.network.parameters(), train.clip_grad).item())
        if finite:
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.network, step=self.step + 1)
            self.nonfinite_in_a_row = 0
            self.epoch_progress.loss_sum += step_loss
            self.epoch_progress.finite_steps += 1
        else:
            self._skip_nonfinite_step(archs)
        self.step += 1
        self.scheduler.step_update(self.step)
        self.strategy.after_step(self.step)
        return step_loss if finite else float("nan")

    @property
    def training_side(self) -> ForwardSide:
        return self.config.space.training_side

    def _minibatch_loss(self, images: torch.Tensor, targets: torch.Tensor):
        """Scores candidates by their loss on this step's batch, without gradients (attentive sampling)."""

        @torch.no_grad()
        def losses(archs) -> list[float]:
            values = []
            for arch in archs:
                with autocast(self.device, self.config.train.amp):
                    values.append(self.criterion(self.network(images, arch, self.training_side), targets).float())
            # Each rank holds its own share of the batch: every rank must choose by the whole batch's loss.
            return self.ranks.mean(torch.stack(values)).tolist()

        return losses

    def _skip_nonfinite_step(self, archs: list[ArchBase]) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite_in_a_row += 1
        self._log(f"warning: non-finite loss or gradient at step {self.step + 1} "
                  f"({', '.join(map(str, archs))}); the update was skipped")
        if self.nonfinite_in_a_row >= MAX_NONFINITE_STEPS:
            raise TrainingDiverged(
                f"the loss was NaN or infinite for {MAX_NONFINITE_STEPS} steps in a row (up to step "
                f"{self.step + 1}, epoch {self.epoch + 1}); training stopped and the last good checkpoint "
                f"{self.output_dir / CHECKPOINT_FILE} was kept. Lower train.lr, keep train.clip_grad on, "
                "or resume with --resume after fixing the cause"
            )

    # -- evaluation and reports ---------------------------------------------------------------
    def _scorer(self, dataset, max_images: int | None = None, network: nn.Module | None = None) -> CandidateScorer:
        """Scores archs run through ``network`` (default: the evaluated weights) on ``dataset``."""
        return CandidateScorer(network or self.evaluated, dataset, self.device, self.config.train.eval_batch_size,
                               max_images, self.config.train.amp, self.config.data.num_workers, self.ranks)

    def search_val_top1(self, arch: ArchBase) -> float:
        return self.val_scorer.score([arch])[0]

    def _write_summary(self) -> None:
        if self.ranks.is_main:
            write_summary(self.output_dir / SUMMARY_FILE, self.history)

    def _write_final_report(self) -> None:
        """Test top-1 of the tracked subnets (the only place the test set is used); a subnet run
        also exports its trained model to ``RUN/subnet/``."""
        report = final_report(self.config.space, self.tracked, self.val_scorer, self._scorer(self.data.test))
        if not self.ranks.is_main:
            return
        if isinstance(self.evaluated, DenseSubnet):
            scores = report["subnet"]
            provenance = Provenance.of_run(self.config, search_val_top1=scores["search_val_top1"],
                                           test_top1=scores["test_top1"])
            save_subnet(self.evaluated.dense, self.output_dir / SUBNET_DIR, provenance=provenance)
        atomic_write_text(self.output_dir / FINAL_FILE, json.dumps(report, indent=2) + "\n")
        top1 = ", ".join(f"{name} {entry['test_top1']:.2f}%" for name, entry in report.items())
        self._log(f"test top-1: {top1} -> {self.output_dir}")

    def _log(self, message: str) -> None:
        if self.ranks.is_main:
            tqdm.write(message)
