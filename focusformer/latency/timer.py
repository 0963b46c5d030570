"""Timing modules on a device: warm-up, then repeated single forward passes, the median kept."""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Optional, Sequence

import torch
from torch import nn

from ..errors import ConfigError

DeviceType = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class TimingSettings:
    """How every module of a latency table, and every subnet checked against it, is timed."""

    device: DeviceType = "cpu"
    batch_size: int = 1
    #: CPU threads while timing (``torch.set_num_threads``); None leaves torch's own (always on CUDA).
    #: One thread gives the steadiest timings on a machine shared with other work.
    threads: Optional[int] = 1
    warmup: int = 10
    repeats: int = 50

    def __post_init__(self) -> None:
        for name in ("batch_size", "warmup", "repeats"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}: must be at least 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads: must be at least 1, got {self.threads}")
        if self.device == "cuda" and self.threads is not None:
            raise ConfigError("threads: CPU threads do not apply to timing on cuda")


def check_device(device: DeviceType) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda: this machine has no CUDA device torch can use")


def device_name(device: DeviceType) -> str:
    """The GPU's name on CUDA; on CPU the processor's model name."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` CPU threads, restoring torch's setting afterwards."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def time_modules(modules: Sequence[tuple[nn.Module, tuple[int, ...]]], settings: TimingSettings) -> list[float]:
    """Median milliseconds of one forward pass of each module over a batch of random inputs of its shape.

    The modules are timed round-robin, one pass each per round, so a change in the machine's load
    during the measurement (other jobs, clock changes) touches all of them alike.
    """
    check_device(settings.device)
    device = torch.device(settings.device)
    runs = [(module.to(device).eval(), torch.randn(settings.batch_size, *shape, device=device))
            for module, shape in modules]
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: list[list[float]] = [[] for _ in runs]
    with cpu_threads(settings.threads), torch.inference_mode():
        for module, x in runs:
            for _ in range(settings.warmup):
                module(x)
        synchronize()
        for _ in range(settings.repeats):
            for (module, x), samples in zip(runs, times):
                start = time.perf_counter()
                module(x)
                synchronize()
                samples.append(time.perf_counter() - start)
    return [1e3 * statistics.median(samples) for samples in times]
