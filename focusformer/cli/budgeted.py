"""What ``focusformer-specialize`` and ``focusformer-search`` share: budget flags, loading a run,
scoring on search-val (test only for the final report), and the output formats."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..budget import Budget, check_reachable, parse_budget, parse_budgets, parse_latencies
from ..config import Config
from ..data import load_data
from ..devices import default_device
from ..errors import ConfigError
from ..export import EXPORT_FORMATS, ExportFormat, export_files, save_export
from ..hub import Provenance
from ..latency import LatencyTable, time_modules
from ..latency.build import image_shape
from ..onnx_export import require_onnx
from ..search.results import SearchResult, append_results, format_table
from ..search.scoring import CandidateScorer
from ..spaces.base import ArchBase
from ..spaces.counts import count_macs, count_params
from ..spaces.elastic import Side
from ..spaces.supernet import Supernet
from ..training.checkpoint import check_supernet_run, config_from_checkpoint, load_checkpoint, supernet_from_payload
from .common import check_not_in_run, check_output_dir, command_line, ensure_writable_output, positive_int


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, metavar="RUN",
                        help="a run directory written by focusformer-train (or its last.pt)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--budget", help="a MAC budget: 1.2G, 350M or 1.2e9")
    which.add_argument("--budgets", help="several MAC budgets: 300M,600M,1.2G")
    which.add_argument("--params", help="a parameter budget: 6M")
    which.add_argument("--latency", metavar="TIME[,TIME...]",
                       help="latency budgets on a latency table (--lut): 2.5ms, or several: 1ms,2.5ms")
    parser.add_argument("--lut", type=Path, metavar="LUT.json",
                        help="the latency table of the device you deploy on (focusformer-latency build)")
    parser.add_argument("--val-images", type=positive_int, metavar="N",
                        help="score candidates on the first N search-val images (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--export", type=Path, metavar="DIR",
                        help="write the winner as model.safetensors (or model.onnx) + arch.json "
                             "(one subfolder per budget)")
    parser.add_argument("--format", choices=EXPORT_FORMATS,
                        help="--export's format: safetensors (the default) or a standalone ONNX model with a "
                             "dynamic batch size (needs the onnx extra)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in DIR, or export inside a training run's directory")
    parser.add_argument("--no-test", action="store_true", help="skip the test-set top-1 of the winners")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def budgets_from_args(args: argparse.Namespace) -> list[Budget]:
    """The budgets asked for; first, one-line errors for flags that would do nothing."""
    for flag, needs in (("lut", "latency"), ("format", "export"), ("overwrite", "export")):
        if getattr(args, flag) not in (None, False) and getattr(args, needs) is None:
            raise ConfigError(f"--{flag} applies only with --{needs}; drop it or add --{needs}")
    if args.latency is not None:
        if args.lut is None:
            raise ConfigError("--latency needs --lut LUT.json, the latency table of your device "
                              "(build one with focusformer-latency build)")
        return parse_latencies(args.latency, LatencyTable.load(args.lut))
    if args.params is not None:
        return [parse_budget(args.params, "params")]
    if args.budgets is not None:
        return parse_budgets(args.budgets)
    return [parse_budget(args.budget)]


@dataclass
class LoadedRun:
    """A trained run ready to be searched: its supernet, config and scorers."""

    path: Path
    payload: dict[str, Any]
    config: Config
    supernet: Supernet
    val_scorer: CandidateScorer | None  # None: no data loaded (a data-free answer)
    test_scorer: CandidateScorer | None

    def result(self, method: str, budget: Budget, arch: ArchBase, val_top1: float | None, seconds: float,
               candidates: int) -> SearchResult:
        space = self.config.space
        side = "left" if self.val_scorer is None else best_side(self.val_scorer, arch)[0]
        test = None if self.test_scorer is None else self.test_scorer.score([arch], side)[0]
        predicted = measured = None
        if budget.lut is not None:
            predicted = budget.lut.predict(arch)
            if budget.lut.unavailable_here() is None:
                model = self.supernet.extract(arch, side)
                (measured,) = time_modules([(model, image_shape(space))], budget.lut.settings)
        images = None if val_top1 is None or self.val_scorer is None else self.val_scorer.num_images
        return SearchResult(method, budget, arch, count_macs(arch, space), count_params(arch, space),
                            val_top1, test, seconds, candidates, predicted, measured, side, images)


def best_side(val_scorer: CandidateScorer, arch: ArchBase) -> tuple[Side, dict[Side, float]]:
    """The side an arch is exported at, and each side's search-val top-1 (none scored for ``left``
    weight sharing): under bilateral weight sharing the side with the better top-1 (ties: left).
    Search ranks by the mean of both sides, as ViTAS does; the exported model carries one side's
    weights, so its own top-1 is what a user is told."""
    if len(val_scorer.supernet.space.sides) == 1:
        return "left", {}
    scores = val_scorer.score_sides([arch])[0]
    return max(scores, key=lambda side: (scores[side], side == "left")), scores


def open_checkpoint(args: argparse.Namespace, budgets: list[Budget]) -> tuple[dict[str, Any], Config]:
    """The run's checkpoint and config, once every budget is known to admit a subnet. A budget
    above the space's largest subnet is answered as the whole space, with a note saying so."""
    payload = load_checkpoint(args.checkpoint)
    config = config_from_checkpoint(payload, args.checkpoint)
    check_supernet_run(config, args.checkpoint)
    lut = budgets[0].lut
    if lut is not None:
        lut.check_space(config.space, source=str(args.lut))
    above = []  # every budget is checked before any note is printed: an error stays one line
    for budget in budgets:
        costs = budget.cost_model(config.space)
        if check_reachable(budget, costs.min_cost, costs.max_cost):
            above.append((budget, Budget(costs.max_cost, budget.kind)))
    for budget, largest in above:
        print(f"note: budget {budget} admits every subnet of this space (its largest costs {largest}): "
              "the whole space is searched", file=sys.stderr)
    if lut is not None and lut.unavailable_here() is not None:
        print(f"note: the winners' latency is predicted only, not measured: {lut.unavailable_here()}",
              file=sys.stderr)
    return payload, config


def load_run(args: argparse.Namespace, payload: dict[str, Any], config: Config, data: bool = True) -> LoadedRun:
    """The supernet, data and scorers of an opened run (the slower part); without ``data``, the
    supernet alone (nothing can be scored)."""
    device = default_device()
    supernet = supernet_from_payload(payload, config, args.checkpoint).to(device)
    run_dir = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
    if not data:
        return LoadedRun(run_dir, payload, config, supernet, None, None)
    splits = load_data(config.data, config.space, config.train)
    batch, amp = config.train.eval_batch_size, config.train.amp
    val = CandidateScorer(supernet, splits.search_val, device, batch, args.val_images, amp)
    test = None if args.no_test else CandidateScorer(supernet, splits.test, device, batch, None, amp)
    return LoadedRun(run_dir, payload, config, supernet, val, test)


def export_format(args: argparse.Namespace) -> ExportFormat:
    return args.format or "safetensors"


def export_target(args: argparse.Namespace, budget: Budget, several: bool) -> Path:
    """Where a budget's winner is exported: ``--export`` itself, or with several budgets its
    subfolder named by the budget."""
    return args.export / budget.label if several else args.export


def check_export_target(args: argparse.Namespace, budgets: list[Budget]) -> None:
    """Fail before any work if ``--export`` (or, with several budgets, any budget's subfolder of it)
    would overwrite an earlier export, write into a training run's directory, or needs the onnx
    extra that is missing."""
    if args.export is None:
        return
    if export_format(args) == "onnx":
        require_onnx()
    check_not_in_run(args.export, "--export", args.overwrite)
    for budget in budgets:
        check_output_dir(export_target(args, budget, len(budgets) > 1), export_files(export_format(args)),
                         args.overwrite, hint="pass --overwrite to replace it or choose another --export")


def report(args: argparse.Namespace, run: LoadedRun, results: list[SearchResult]) -> None:
    """Print, record in ``RUN/results/``, and export the winners."""
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_table(results, show_side=len(run.config.space.sides) > 1))
    try:
        append_results(run.path, results)
    except OSError as exc:
        print(f"warning: could not record results in {run.path}: {exc.strerror}", file=sys.stderr)
    if args.export is not None:
        for r in results:
            target = export_target(args, r.budget, len(results) > 1)
            ensure_writable_output(target, export_files(export_format(args)), args.overwrite,
                                   hint="pass --overwrite to replace it")
            provenance = Provenance.of_run(run.config, command_line(), str(r.budget), r.val_top1, r.test_top1)
            save_export(run.supernet.extract(r.arch, r.side).cpu(), target, export_format(args), r.side, provenance)
        if not args.json:
            print(f"exported {len(results)} subnet(s) to {args.export}")
