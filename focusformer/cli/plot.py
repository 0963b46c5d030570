"""``focusformer-plot``: top-1 against MACs of trained supernets, with their searched subnets."""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

from ..errors import FocusformerError
from .common import ArgumentParser, check_not_in_run, run_command

PROG = "focusformer-plot"
SPLIT_CHOICES = ("search-val", "test")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Plot top-1 against MACs for one or more runs: a cloud of random subnets scored with inherited "
            "weights (cached in RUN/results/), its Pareto front, and the subnets recorded by "
            "focusformer-specialize and focusformer-search. Prints each cloud's hypervolume."
        ),
        epilog="Example: focusformer-plot runs/digits-focus runs/digits-uniform --labels focus,uniform --output digits.png",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories (each holds last.pt)")
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="FIG",
                        help="figure file; the format follows the extension: .png, .pdf or .svg")
    parser.add_argument("--cloud", type=int, default=50, metavar="N",
                        help="subnets in each run's cloud, the smallest and largest included (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cloud's random subnets (default: %(default)s)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="search-val",
                        help="images to score on (default: %(default)s; test is for final reports only)")
    parser.add_argument("--val-images", type=int, metavar="N",
                        help="score on the first N images of the split (default: all of it)")
    parser.add_argument("--labels", metavar="A,B,...",
                        help="legend names, one per RUN, comma-separated (default: the run directory names); "
                             "runs with the same name are seeds of one method, drawn as the band of their "
                             "fronts and their mean front")
    parser.add_argument("--budgets", metavar="LIST", help="MAC budgets to mark on the figure, e.g. 8M,15M,25M")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _plot(args))


def _labels(args: argparse.Namespace) -> list[str]:
    if args.labels is None:
        return [run.resolve().name or str(run) for run in args.runs]
    labels = [label.strip() for label in args.labels.split(",")]
    if len(labels) != len(args.runs):
        raise FocusformerError(f"--labels gives {len(labels)} names for {len(args.runs)} runs; give one per RUN")
    if not all(labels):
        raise FocusformerError(f"--labels {args.labels!r}: names must not be empty")
    return labels


def _check_output(output: Path) -> None:
    """Fail before any scoring if the figure could not be written."""
    if output.is_dir():
        raise FocusformerError(f"--output {output} is a directory; give a file name such as {output / 'pareto.png'}")
    existing = output.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FocusformerError(f"cannot write {output}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FocusformerError(f"cannot write {output}: {existing} is not writable")


def _plot(args: argparse.Namespace) -> None:
    from .. import plot  # imported late so --help stays fast
    from ..budget import parse_budgets
    from ..search import cloud as clouds
    from ..search.pareto import hypervolume
    from ..search.results import METHODS, read_results
    from ..training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet

    if args.cloud < 1:
        raise FocusformerError(f"--cloud must be at least 1, got {args.cloud}")
    if args.val_images is not None and args.val_images < 1:
        raise FocusformerError(f"--val-images must be at least 1, got {args.val_images}")
    plot.figure_format(args.output)
    labels = _labels(args)
    budgets = [b.value for b in parse_budgets(args.budgets)] if args.budgets else []
    _check_output(args.output)
    check_not_in_run(args.output, "--output", can_overwrite=False)

    runs = []  # check every run before scoring any
    for run in args.runs:
        if not run.is_dir():
            raise FocusformerError(f"{run}: not a run directory (expected a directory holding last.pt)")
        payload = load_checkpoint(run)
        config = config_from_checkpoint(payload, run)
        runs.append((run, config, clouds.checkpoint_id(payload)))
        del payload

    series = []
    reports = []
    for (run, config, checkpoint), label in zip(runs, labels):
        space = config.space
        cloud, cache, cached = clouds.load_or_score_cloud(run, config, checkpoint, args.split, args.cloud,
                                                          args.seed, args.val_images, partial(load_supernet, run),
                                                          progress=not args.no_progress)
        results = {method: read_results(run, method, space) for method in METHODS}
        series.append(plot.RunSeries(label, space, cloud, results))
        volume = hypervolume(cloud.points(), clouds.macs_range(space))
        lines = [
            f"{label} ({space.name}, {run}): {len(cloud.archs)} subnets on {args.split} ({cloud.images} images, "
            f"{'cached' if cached else 'scored'} in {cache}), Pareto front of {len(cloud.front())}, "
            f"hypervolume {volume:.4f}"
        ]
        table = plot.summary_table(results, args.split)
        lines += ["  " + line for line in table.splitlines()] if table else ["  no specialize or search results yet"]
        if args.split == "search-val":
            lines += [f"  note: {r.method} at {r.budget} was scored on {r.val_images} search-val images, the cloud on "
                      f"{cloud.images}: their top-1 do not compare" for found in results.values() for r in found
                      if r.val_images is not None and r.val_images != cloud.images]
        reports.append("\n".join(lines))

    plot.draw_figure(series, args.output, args.split, budgets)
    print("\n".join(reports))
    print(f"figure -> {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
