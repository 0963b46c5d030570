"""Accuracy-vs-MACs figures of trained supernets, for ``focusformer-plot``.

Per run: a *cloud* of subnets (the space's smallest and largest plus random ones)
scored with inherited weights by the one scoring path
(:class:`~focusformer.scoring.CandidateScorer`), cached in
``RUN/results/cloud-<split>-<N>-<seed>-<images>.json``; its Pareto front; and the
subnets that ``focusformer-specialize`` and ``focusformer-search`` recorded in
``RUN/results/*.jsonl``. Matplotlib draws off-screen (the Agg backend).
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from .budget import format_count  # noqa: E402
from .config import Config  # noqa: E402
from .errors import FocusformerError  # noqa: E402
from .fileio import atomic_write_text, atomic_writer  # noqa: E402
from .search.pareto import pareto_front  # noqa: E402
from .search.results import METHODS, RESULTS_DIR, SearchResult  # noqa: E402
from .spaces import SearchSpace
from .spaces.base import AnyArch, spanning_archs  # noqa: E402
from .spaces.counts import count_macs  # noqa: E402

#: Figure formats, chosen by the output file's extension.
FIGURE_FORMATS = ("png", "pdf", "svg")
#: Split names on the command line -> attribute of :class:`~focusformer.data.DataSplits`.
SPLITS = {"search-val": "search_val", "test": "test"}
CLOUD_FORMAT = 1
DPI = 150
#: Archs scored per call, so the progress bar moves while images stay cached between calls.
_SCORE_CHUNK = 4


# -- the cloud ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cloud:
    """Scored subnets of one run: ``archs[i]`` has ``macs[i]`` MACs and ``top1[i]`` percent."""

    split: str
    seed: int
    images: int
    archs: tuple[AnyArch, ...]
    macs: tuple[int, ...]
    top1: tuple[float, ...]

    def points(self) -> np.ndarray:
        """``(N, 2)`` array of ``(macs, top1)``."""
        return np.column_stack([np.asarray(self.macs, dtype=np.float64), np.asarray(self.top1, dtype=np.float64)])

    def front(self) -> np.ndarray:
        """Indices of the cloud's Pareto front, in increasing MACs."""
        return pareto_front(self.points())


def cloud_archs(space: SearchSpace, size: int, seed: int) -> list[AnyArch]:
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


def read_cloud(path: Path, space: SearchSpace, archs: Sequence[AnyArch], split: str, seed: int, images: int,
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


def score_archs(scorer: Any, archs: Sequence[AnyArch], progress: bool = True, desc: str = "cloud") -> list[float]:
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
                        seed: int, max_images: int | None, progress: bool = True) -> tuple[Cloud, Path, bool]:
    """The run's cloud: from its cache when valid, else scored (and cached).

    Returns ``(cloud, cache path, whether it came from the cache)``. A cache that
    cannot be written (a read-only run) only costs a warning.
    """
    from .data import load_data

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

    from .evaluation import default_device
    from .search.scoring import CandidateScorer
    from .training.checkpoint import load_supernet

    device = default_device()
    supernet = load_supernet(run_dir).to(device)
    scorer = CandidateScorer(supernet, dataset, device, batch_size=config.train.eval_batch_size,
                             max_images=images, amp=config.train.amp)
    top1 = score_archs(scorer, archs, progress, desc=f"scoring {Path(run_dir).name}")
    cloud = Cloud(split, seed, images, tuple(archs), tuple(count_macs(a, space) for a in archs), tuple(top1))
    try:
        write_cloud(path, cloud, space, payload_id)
    except OSError as exc:
        print(f"warning: could not cache the cloud in {path}: {exc.strerror or exc}", file=sys.stderr)
    return cloud, path, False


# -- drawing ------------------------------------------------------------------------------------
@dataclass
class RunSeries:
    """Everything drawn for one run."""

    label: str
    space: SearchSpace
    cloud: Cloud
    results: dict[str, list[SearchResult]] = field(default_factory=dict)  # method -> results


def result_top1(result: SearchResult, split: str) -> float | None:
    """The result's accuracy on ``split``: search-val top-1, or test top-1 when it was measured."""
    return result.val_top1 if split == "search-val" else result.test_top1


def figure_format(output: str | Path) -> str:
    """``png``, ``pdf`` or ``svg`` from the file name; anything else is an error."""
    fmt = Path(output).suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        shown = Path(output).suffix or "no extension"
        raise FocusformerError(
            f"{output}: unsupported figure format ({shown}); end the name with "
            + ", ".join(f".{f}" for f in FIGURE_FORMATS)
        )
    return fmt


_METHOD_STYLE = {  # method -> (legend name, marker, size)
    "sampler": ("specialized", "*", 180),
    "uniform-draws": ("specialized, uniform draws", "P", 110),
    "evolution": ("evolution", "D", 60),
    "random": ("random search", "X", 70),
}


def front_curve(cloud: Cloud, grid: np.ndarray) -> np.ndarray:
    """The cloud's Pareto front as a step function on ``grid`` (MACs): the best top-1 of any subnet
    with at most that many MACs (NaN below the cheapest)."""
    points = cloud.points()
    order = np.argsort(points[:, 0])
    best = np.maximum.accumulate(points[order, 1])
    index = np.searchsorted(points[order, 0], grid, side="right") - 1
    return np.where(index >= 0, best[np.clip(index, 0, None)], np.nan)


def _draw_run(ax: Any, run: RunSeries, colour: str, scale: float, split: str, label: str) -> None:
    points = run.cloud.points()
    x, y = points[:, 0] / scale, points[:, 1]
    ax.scatter(x, y, s=14, color=colour, alpha=0.3, linewidths=0, label=f"{label}: {len(x)} subnets (cloud)")
    front = run.cloud.front()
    fx, fy = list(x[front]), list(y[front])
    fx.append(x.max())  # the best accuracy stays reachable up to the largest cloud MACs
    fy.append(fy[-1])
    ax.plot(fx, fy, drawstyle="steps-post", color=colour, linewidth=1.6, label=f"{label}: Pareto front")


def _draw_seeds(ax: Any, runs: Sequence[RunSeries], colour: str, scale: float, label: str) -> None:
    """Runs of one method over seeds: the range of their fronts as a band, their mean as a line."""
    macs = np.concatenate([run.cloud.points()[:, 0] for run in runs])
    grid = np.unique(np.concatenate([macs, np.geomspace(macs.min(), macs.max(), 400)]))
    curves = np.stack([front_curve(run.cloud, grid) for run in runs])
    defined = ~np.isnan(curves).any(0)
    grid, curves = grid[defined], curves[:, defined]
    ax.fill_between(grid / scale, curves.min(0), curves.max(0), step="post", color=colour, alpha=0.25, linewidth=0,
                    label=f"{label}: range of {len(runs)} seeds' fronts")
    ax.plot(grid / scale, curves.mean(0), drawstyle="steps-post", color=colour, linewidth=1.6,
            label=f"{label}: mean front")


def draw_figure(series: Sequence[RunSeries], output: str | Path, split: str, budgets: Sequence[float] = ()) -> Path:
    """Draw top-1 against MACs for every run and save it atomically to ``output``.

    Runs that share a label are seeds of one method: drawn as the band their fronts span
    and their mean front. ``budgets`` (MACs) are marked by vertical lines.
    """
    output = Path(output)
    fmt = figure_format(output)
    all_macs = [m for s in series for m in s.cloud.macs]
    all_macs += [r.macs for s in series for rs in s.results.values() for r in rs]
    scale, unit = (1e9, "GMACs") if max(all_macs, default=0) >= 1e9 else (1e6, "MMACs")
    groups: dict[str, list[RunSeries]] = {}
    for run in series:
        groups.setdefault(run.label, []).append(run)

    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    try:
        for k, (label, runs) in enumerate(groups.items()):
            colour = f"C{k % 10}"
            if len(runs) == 1:
                _draw_run(ax, runs[0], colour, scale, split, label)
            else:
                _draw_seeds(ax, runs, colour, scale, label)
            for method, (name, marker, size) in _METHOD_STYLE.items():
                found = [(r.macs / scale, result_top1(r, split)) for run in runs for r in run.results.get(method, [])]
                found = [(m, t) for m, t in found if t is not None]
                if found:
                    mx, my = zip(*found)
                    ax.scatter(mx, my, s=size, marker=marker, color=colour, edgecolors="black",
                               linewidths=0.7, zorder=3, label=f"{label}: {name}")
        for budget in budgets:
            ax.axvline(budget / scale, color="grey", linestyle="--", linewidth=0.9, zorder=0)
        if budgets:
            ax.plot([], [], color="grey", linestyle="--", linewidth=0.9,
                    label="budgets: " + ", ".join(format_count(b) for b in budgets))
        ax.set_xlabel(f"{unit} (multiply-accumulates per image, {'billions' if unit == 'GMACs' else 'millions'})")
        ax.set_ylabel(f"top-1 (%) on {split}")
        names = list(dict.fromkeys(run.space.name for run in series))
        # Wrapped, so a plot of several spaces keeps its whole title inside the figure.
        ax.set_title(textwrap.fill(f"top-1 vs MACs: {', '.join(names)}", width=80), fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="best")
        fig.tight_layout()
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(output) as tmp:
                fig.savefig(tmp, format=fmt, dpi=DPI)
        except OSError as exc:
            raise FocusformerError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return output


# -- text summary -------------------------------------------------------------------------------
def summary_table(results: dict[str, list[SearchResult]], split: str) -> str | None:
    """Per budget: MACs and top-1 on ``split`` of each method's subnet (``None`` if no results)."""
    methods = [m for m in METHODS if results.get(m)]
    if not methods:
        return None
    by_budget: dict[tuple[str, float], dict[str, SearchResult]] = {}
    for method in methods:
        for r in results[method]:
            by_budget.setdefault((r.budget.kind, r.budget.value), {})[method] = r
    titles = {"sampler": "specialized", "uniform-draws": "uniform draws", "evolution": "evolution",
              "random": "random"}
    header = ["budget"] + [c for m in methods for c in (f"{titles[m]} MACs", "top-1")]
    rows = [header]
    for key in sorted(by_budget):
        entries = by_budget[key]
        budget = next(iter(entries.values())).budget
        row = [budget.label]
        for method in methods:
            r = entries.get(method)
            top1 = None if r is None else result_top1(r, split)
            row += ["-" if r is None else format_count(r.macs), "-" if top1 is None else f"{top1:.2f}"]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
