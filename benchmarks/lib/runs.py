"""Finding and loading trained runs through the package's own API, for benchmarks.

A *group* names the runs of one arm, one per seed (``name=RUN,RUN,...`` on a command line); a
run's seed is read from its own config, so groups are paired by seed, never by position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from focusformer.config import Config
from focusformer.data import DataSplits, load_data
from focusformer.devices import default_device
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.supernet import Supernet
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, supernet_from_payload


@dataclass
class Run:
    """One trained run: its config, checkpoint, supernet (on the default device) and data, loaded lazily."""

    path: Path
    payload: dict[str, Any] = field(repr=False)
    config: Config

    @classmethod
    def open(cls, path: str | Path) -> Run:
        path = Path(path)
        payload = load_checkpoint(path)
        return cls(path, payload, config_from_checkpoint(payload, path))

    @property
    def seed(self) -> int:
        return self.config.train.seed

    @property
    def sampler(self) -> str:
        return self.config.train.sampler

    @cached_property
    def supernet(self) -> Supernet:
        return supernet_from_payload(self.payload, self.config, self.path).to(default_device())

    @cached_property
    def data(self) -> DataSplits:
        return load_data(self.config.data, self.config.space, self.config.train)

    def scorer(self, split: str, images: int | None = None) -> CandidateScorer:
        """Top-1 of archs through this run's supernet on ``split`` (``search_val`` or ``test``)."""
        train = self.config.train
        return CandidateScorer(self.supernet, getattr(self.data, split), default_device(), train.eval_batch_size,
                               images, train.amp)

    @property
    def final(self) -> dict[str, Any]:
        """``final.json``: search-val and test top-1 of the tracked subnets."""
        return json.loads((self.path / "final.json").read_text())

    @property
    def seconds_per_epoch(self) -> list[float]:
        import csv

        with open(self.path / "summary.csv") as handle:
            return [float(row["seconds"]) for row in csv.DictReader(handle)]


def parse_groups(specs: list[str]) -> dict[str, list[Path]]:
    """``["name=RUN,RUN", ...]`` to ``{name: [RUN, RUN]}`` (order kept: the first is the reference)."""
    groups: dict[str, list[Path]] = {}
    for spec in specs:
        name, sep, runs = spec.partition("=")
        if not sep or not name or not runs:
            raise SystemExit(f"--runs {spec!r}: expected NAME=RUN,RUN,...")
        groups[name] = [Path(r) for r in runs.split(",") if r]
    return groups
