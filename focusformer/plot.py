"""Accuracy-vs-MACs figures of trained supernets, for ``focusformer-plot``.

Per run: its *cloud* of scored subnets (:mod:`focusformer.search.cloud`) and its Pareto front,
and the subnets that ``focusformer-specialize`` and ``focusformer-search`` recorded in
``RUN/results/*.jsonl``. Figures are drawn on their own Agg canvas, off-screen, so importing
this module leaves matplotlib's global backend alone.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .budget import format_count
from .errors import FocusformerError
from .fileio import atomic_writer
from .search.cloud import Cloud
from .search.results import METHODS, SearchResult
from .spaces import SearchSpace

#: Figure formats, chosen by the output file's extension.
FIGURE_FORMATS = ("png", "pdf", "svg")
DPI = 150


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

    fig = Figure(figsize=(7.5, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
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
    titles = {"sampler": "specialized", "uniform-draws": "uniform draws", "data-free": "data-free",
              "evolution": "evolution", "random": "random"}
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
