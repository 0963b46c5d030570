"""What a run directory reports: ``summary.csv`` (one row per epoch) and ``final.json``."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..fileio import atomic_write_text
from ..search.scoring import CandidateScorer
from ..spaces import SearchSpace
from ..spaces.counts import count_macs

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


def write_summary(path: Path, history: Sequence[EpochRecord]) -> None:
    """``summary.csv``: one row per epoch; strategy columns as the strategy reports them."""
    rows = [record.row() for record in history]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def final_report(space: SearchSpace, search_val: CandidateScorer, test: CandidateScorer) -> dict[str, Any]:
    """Search-val and test top-1 of the largest and smallest subnets (``final.json``)."""
    report = {}
    for label, arch in (("largest", space.largest()), ("smallest", space.smallest())):
        report[label] = {
            "arch": arch.to_dict(),
            "macs": count_macs(arch, space),
            "search_val_top1": search_val.score([arch])[0],
            "test_top1": test.score([arch])[0],
        }
    return report
