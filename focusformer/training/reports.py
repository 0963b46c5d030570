"""What a run directory reports: ``summary.csv`` (one row per epoch) and ``final.json``."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..fileio import atomic_write_text
from ..search.scoring import CandidateScorer
from ..spaces import SearchSpace
from ..spaces.counts import count_macs


@dataclass(frozen=True)
class EpochRecord:
    """One row of ``summary.csv``; accuracies are search-val top-1 in percent."""

    epoch: int
    train_loss: float
    #: Per tracked subnet (``largest`` and ``smallest``, or a subnet run's ``subnet``): the
    #: columns ``val_top1_<name>``.
    val_top1: dict[str, float]
    lr: float
    seconds: float
    strategy: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "train_loss": self.train_loss,
                **{f"val_top1_{name}": value for name, value in self.val_top1.items()},
                "lr": self.lr, "seconds": self.seconds, **self.strategy}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        """From ``asdict``; checkpoints before 0.3 kept ``val_top1_largest``/``_smallest`` as fields."""
        data = dict(data)
        if "val_top1" not in data:
            data["val_top1"] = {key.removeprefix("val_top1_"): data.pop(key)
                                for key in [k for k in data if k.startswith("val_top1_")]}
        return cls(**data)


def write_summary(path: Path, history: Sequence[EpochRecord]) -> None:
    """``summary.csv``: one row per epoch; strategy columns as the strategy reports them."""
    rows = [record.row() for record in history]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def final_report(space: SearchSpace, tracked: Mapping[str, Any], search_val: CandidateScorer,
                 test: CandidateScorer) -> dict[str, Any]:
    """Search-val and test top-1 of each tracked subnet (``final.json``)."""
    report = {}
    for label, arch in tracked.items():
        report[label] = {
            "arch": arch.to_dict(),
            "macs": count_macs(arch, space),
            "search_val_top1": search_val.score([arch])[0],
            "test_top1": test.score([arch])[0],
        }
    return report
