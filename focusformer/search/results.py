"""What specialize and search return: one :class:`SearchResult` per budget.

Printed as a table or as JSON, and appended to ``RUN/results/<method>.jsonl`` so
``focusformer-plot`` can draw them later. The latest line per budget wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..budget import Budget, format_count, format_latency
from ..errors import ConfigError
from ..run_dir import RESULTS_DIR
from ..spaces import SearchSpace
from ..spaces.base import ArchBase

#: How a recorded subnet was found: specialize from the trained policy ("sampler") or from
#: uniform draws within the budget's band ("uniform-draws"), evolution or random search.
METHODS = ("sampler", "uniform-draws", "data-free", "evolution", "random")


@dataclass(frozen=True)
class SearchResult:
    method: str  # one of METHODS
    budget: Budget
    arch: ArchBase
    macs: int
    params: int
    val_top1: float | None  # search-val top-1 (percent): what the method selected on; None: nothing scored
    test_top1: float | None  # test top-1 (percent) of the returned subnet: a final report only
    seconds: float  # wall time of the search for this budget, scoring included
    candidates: int  # subnets scored
    latency_ms: float | None = None  # latency budgets: predicted by the latency table
    measured_ms: float | None = None  # latency budgets: measured end to end on the table's device
    #: The side whose weights the returned subnet carries (and exports); with bilateral weight
    #: sharing val_top1 is the mean of both sides (what ranked it) and test_top1 this side's.
    side: str = "left"
    #: Search-val images val_top1 was measured on (None: nothing scored, or recorded before this
    #: field): top-1 on other image counts is not comparable.
    val_images: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "budget": self.budget.value,
            "budget_kind": self.budget.kind,
            "arch": self.arch.to_dict(),
            "macs": self.macs,
            "params": self.params,
            "val_top1": self.val_top1,
            "test_top1": self.test_top1,
            "seconds": self.seconds,
            "candidates": self.candidates,
            "latency_ms": self.latency_ms,
            "measured_latency_ms": self.measured_ms,
            "side": self.side,
            "val_images": self.val_images,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: SearchSpace) -> SearchResult:
        return cls(
            method=data["method"],
            budget=Budget(float(data["budget"]), data.get("budget_kind", "macs")),
            arch=space.arch_from_dict(data["arch"]),
            macs=int(data["macs"]),
            params=int(data["params"]),
            val_top1=_optional_float(data.get("val_top1")),
            test_top1=None if data.get("test_top1") is None else float(data["test_top1"]),
            seconds=float(data["seconds"]),
            candidates=int(data.get("candidates", 0)),
            latency_ms=_optional_float(data.get("latency_ms")),
            measured_ms=_optional_float(data.get("measured_latency_ms")),
            side=data.get("side", "left"),
            val_images=None if data.get("val_images") is None else int(data["val_images"]),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def format_table(results: Iterable[SearchResult], show_side: bool = False) -> str:
    """One row per result; a ``side`` column where ``show_side`` (bilateral spaces) or any result
    carries right-side weights."""
    results = list(results)
    timed = any(r.latency_ms is not None for r in results)
    sided = show_side or any(r.side != "left" for r in results)
    header = ("method", "budget", "MACs", "params", *(("latency", "measured") if timed else ()),
              "val top-1", *(("side",) if sided else ()), "test top-1", "seconds", "scored", "arch")
    rows = [header]
    for r in results:
        test = "-" if r.test_top1 is None else f"{r.test_top1:.2f}"
        latency = tuple("-" if ms is None else format_latency(ms) for ms in (r.latency_ms, r.measured_ms))
        rows.append((r.method, str(r.budget), format_count(r.macs), format_count(r.params),
                     *(latency if timed else ()), "-" if r.val_top1 is None else f"{r.val_top1:.2f}",
                     *((r.side,) if sided else ()), test,
                     f"{r.seconds:.1f}", str(r.candidates), str(r.arch)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    return "\n".join(lines)


def results_path(run_dir: str | Path, method: str) -> Path:
    return Path(run_dir) / RESULTS_DIR / f"{method}.jsonl"


def append_results(run_dir: str | Path, results: Iterable[SearchResult]) -> Path:
    """Append to ``RUN/results/<method>.jsonl`` (one JSON object a line; appends never rewrite)."""
    results = list(results)
    path = results_path(run_dir, results[0].method)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        for result in results:
            handle.write(json.dumps(result.to_dict()) + "\n")
    return path


def read_results(run_dir: str | Path, method: str, space: SearchSpace) -> list[SearchResult]:
    """The latest result per budget recorded for ``method`` in a run (empty if none)."""
    path = results_path(run_dir, method)
    if not path.is_file():
        return []
    latest: dict[tuple[float, str], SearchResult] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                result = SearchResult.from_dict(json.loads(line), space)
            except (ValueError, KeyError, TypeError, ConfigError):
                continue  # a line cut short by a crash, or from an older format: skip it
            latest[(result.budget.value, result.budget.kind)] = result
    return sorted(latest.values(), key=lambda r: (r.budget.kind, r.budget.value))
