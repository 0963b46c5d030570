"""Clouds of subnets scored with inherited weights, cached in a run's ``results/`` folder.

A *cloud* is the space's smallest and largest subnets plus seeded uniform samples, scored by the
one scoring path (:class:`~focusformer.search.scoring.CandidateScorer`) on a split, and cached in
``RUN/results/cloud-<split>-<N>-<seed>-<images>.json`` with the checkpoint it was scored on (a
cache from other weights is stale). ``focusformer-plot`` draws clouds and their Pareto fronts;
benchmarks score them for hypervolumes.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import Config
from ..data import load_data
from ..devices import default_device
from ..errors import FocusformerError
from ..fileio import atomic_write_text
from ..run_dir import RESULTS_DIR
from ..spaces import SearchSpace
from ..spaces.base import ArchBase, spanning_archs
from ..spaces.counts import count_macs
from ..spaces.supernet import Supernet
from .pareto import pareto_front
from .scoring import CandidateScorer

#: Split names on the command line -> attribute of :class:`~focusformer.data.DataSplits`.
SPLITS = {"search-val": "search_val", "test": "test"}
CLOUD_FORMAT = 1
#: Archs scored per call, so the progress bar moves while images stay cached between calls.
_SCORE_CHUNK = 4


@dataclass(frozen=True)
class Cloud:
    """Scored subnets of one run: ``archs[i]`` has ``macs[i]`` MACs and ``top1[i]`` percent."""

    split: str
    seed: int
    images: int
    archs: tuple[ArchBase, ...]
    macs: tuple[int, ...]
    top1: tuple[float, ...]

    def points(self) -> np.ndarray:
        """``(N, 2)`` array of ``(macs, top1)``."""
        return np.column_stack([np.asarray(self.macs, dtype=np.float64), np.asarray(self.top1, dtype=np.float64)])

    def front(self) -> np.ndarray:
        """Indices of the cloud's Pareto front, in increasing MACs."""
        return pareto_front(self.points())


def cloud_archs(space: SearchSpace, size: int, seed: int) -> list[ArchBase]:
    """``size`` distinct archs: the smallest, the largest, then seeded uniform samples.

    Fewer come back only if the space has fewer than ``size`` distinct archs reachable
    in a generous number of draws.
    """
    if size < 1:
        raise FocusformerError(f"the cloud needs at least 1 subnet, got {size}")
    return spanning_archs(space, size, seed)


def cloud_path(run_dir: str | Path, split: str, size: int, seed: int, images: int) -> Path:
    return Path(run_dir) / RESULTS_DIR / f"cloud-{split}-{size}-{seed}-{images}.json"


def macs_range(space: SearchSpace) -> tuple[int, int]:
    """MACs of the space's smallest and largest subnet: the hypervolume's normalisation."""
    return count_macs(space.smallest(), space), count_macs(space.largest(), space)


def checkpoint_id(payload: dict[str, Any]) -> dict[str, Any]:
    """What tells checkpoints of one run apart: a cache from earlier weights is stale."""
    return {"epoch": payload.get("epoch"), "step": payload.get("step")}


def read_cloud(path: Path, space: SearchSpace, archs: Sequence[ArchBase], split: str, seed: int, images: int,
               checkpoint: dict[str, Any]) -> Cloud | None:
    """A cached cloud if ``path`` holds a valid one for exactly these archs and weights, else ``None``."""
    try:
        data = json.loads(path.read_text())
        if (data["format"] != CLOUD_FORMAT or data["split"] != split or data["seed"] != seed
                or data["images"] != images or data["checkpoint"] != checkpoint
                or data["space"] != json.loads(json.dumps(space.to_dict()))):
            return None
        subnets = data["subnets"]
        cached = [space.arch_from_dict(s["arch"]) for s in subnets]
        top1 = [float(s["top1"]) for s in subnets]
    except (OSError, ValueError, KeyError, TypeError, FocusformerError):
        return None  # missing, corrupt, or written for something else: score again
    if cached != list(archs) or not all(math.isfinite(t) and 0.0 <= t <= 100.0 for t in top1):
        return None
    return Cloud(split, seed, images, tuple(archs), tuple(count_macs(a, space) for a in archs), tuple(top1))


def write_cloud(path: Path, cloud: Cloud, space: SearchSpace, checkpoint: dict[str, Any]) -> None:
    data = {
        "format": CLOUD_FORMAT,
        "split": cloud.split,
        "seed": cloud.seed,
        "images": cloud.images,
        "checkpoint": checkpoint,
        "space": space.to_dict(),
        "subnets": [{"arch": a.to_dict(), "macs": m, "top1": t} for a, m, t in zip(cloud.archs, cloud.macs, cloud.top1)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def score_archs(scorer: Any, archs: Sequence[ArchBase], progress: bool = True, desc: str = "cloud") -> list[float]:
    """``scorer.score`` over ``archs`` a few at a time, with a progress bar."""
    from tqdm.auto import tqdm

    top1: list[float] = []
    with tqdm(total=len(archs), desc=desc, unit="subnet", disable=not progress, leave=False) as bar:
        for start in range(0, len(archs), _SCORE_CHUNK):
            chunk = archs[start:start + _SCORE_CHUNK]
            top1.extend(scorer.score(chunk))
            bar.update(len(chunk))
    return top1


def load_or_score_cloud(run_dir: str | Path, config: Config, payload_id: dict[str, Any], split: str, size: int,
                        seed: int, max_images: int | None, supernet: Callable[[], Supernet],
                        progress: bool = True) -> tuple[Cloud, Path, bool]:
    """The run's cloud: from its cache when valid, else scored through ``supernet()`` (called only
    then: loading one costs time) and cached.

    Returns ``(cloud, cache path, whether it came from the cache)``. A cache that
    cannot be written (a read-only run) only costs a warning.
    """
    space = config.space
    archs = cloud_archs(space, size, seed)
    if split == "search-val":  # its size is known without loading the data: try the cache first
        images = config.data.search_val_size if max_images is None else min(max_images, config.data.search_val_size)
        path = cloud_path(run_dir, split, size, seed, images)
        cached = read_cloud(path, space, archs, split, seed, images, payload_id)
        if cached is not None:
            return cached, path, True
    splits = load_data(config.data, space, config.train)
    dataset = getattr(splits, SPLITS[split])
    images = len(dataset) if max_images is None else min(max_images, len(dataset))
    path = cloud_path(run_dir, split, size, seed, images)
    cached = read_cloud(path, space, archs, split, seed, images, payload_id)
    if cached is not None:
        return cached, path, True

    device = default_device()
    scorer = CandidateScorer(supernet().to(device), dataset, device, batch_size=config.train.eval_batch_size,
                             max_images=images, amp=config.train.amp)
    top1 = score_archs(scorer, archs, progress, desc=f"scoring {Path(run_dir).name}")
    cloud = Cloud(split, seed, images, tuple(archs), tuple(count_macs(a, space) for a in archs), tuple(top1))
    try:
        write_cloud(path, cloud, space, payload_id)
    except OSError as exc:
        warnings.warn(f"could not cache the cloud in {path}: {exc.strerror or exc}", stacklevel=2)
    return cloud, path, False
