"""``focusformer-specialize``: the best subnet for a budget from the trained sampler, in seconds."""

from __future__ import annotations

import argparse
import sys
import time

from ..config import Config
from ..errors import ConfigError
from ..sampling.specialize import (
    data_free_answer,
    predictor_from_checkpoint,
    run_rungs,
    sampler_from_checkpoint,
    specialize_all,
    untrained_sampler,
)
from .budgeted import add_budget_arguments, budgets_from_args, check_export_target, load_run, open_checkpoint, report
from .common import ArgumentParser, positive_int, run_command

PROG = "focusformer-specialize"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Ask the trained sampler for candidates within a budget, score them with inherited "
                    "weights on the search-val split, and return (and optionally export) the best.",
        epilog="Example: focusformer-specialize --checkpoint runs/fmnist --budgets 5M,10M,20M --export out/",
    )
    add_budget_arguments(parser)
    parser.add_argument("--candidates", type=positive_int, default=32,
                        help="archs drawn and scored per budget (default: %(default)s), shared between the "
                             "budget's band and its rungs' bands; a band several budgets share is drawn and "
                             "scored once, and each budget answers with the best scored arch under its cap")
    parser.add_argument("--draws", choices=["policy", "uniform"], default="policy",
                        help="where candidates come from: the trained sampler's policy (the default), or uniform "
                             "draws within each budget's band, which needs no trained sampler (any run)")
    parser.add_argument("--rungs", choices=["auto", "none"], default="auto",
                        help="auto (the default): share the candidates between the budget's band and the bands "
                             "of cheaper budgets: for a MAC budget the run's target budgets below it, otherwise "
                             "(or without any below it) half and a quarter of it, since a cheaper subnet can "
                             "beat every one near the budget; none: only the budget's band")
    parser.add_argument("--data-free", action="store_true",
                        help="answer without data: the trained policy's most probable arch in each budget's band "
                             "and its rungs' (--rungs), the one the run's accuracy predictor rates best; no images "
                             "are read and the supernet never runs (for deployment without labelled data). Its "
                             "expected gap: on three 15-epoch ViTAS-space Fashion-MNIST focus runs it was -0.26 to "
                             "-0.09 points of test top-1 from the 32-candidate answer at 8M-25M MACs (means; "
                             "95%% intervals about +-0.6 to +-1.1 points; benchmarks/report/search-cost.md); "
                             "--export still writes it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _specialize(args))


def _specialize(args: argparse.Namespace) -> None:
    budgets = budgets_from_args(args)
    check_export_target(args, budgets)
    if args.data_free:
        ignored = [flag for flag, given in (("--draws", args.draws != "policy"), ("--val-images", args.val_images),
                                            ("--no-test", args.no_test)) if given]
        if ignored:
            raise ConfigError(f"--data-free scores nothing; drop {ignored[0]}")
    payload, config = open_checkpoint(args, budgets)
    uniform = args.draws == "uniform"
    sampler = untrained_sampler(config) if uniform else sampler_from_checkpoint(payload, config, str(args.checkpoint))
    if args.data_free:
        return _data_free(args, payload, config, sampler, budgets)
    run = load_run(args, payload, config)
    method = "uniform-draws" if uniform else "sampler"
    rungs_of = (lambda budget: run_rungs(sampler, budget, config)) if args.rungs == "auto" else (lambda budget: ())
    start = time.perf_counter()
    answers = specialize_all(sampler, budgets, run.val_scorer.score, args.candidates, args.seed, uniform, rungs_of)
    seconds = time.perf_counter() - start  # all budgets together: their candidates are scored once
    results = [run.result(method, budget, found.best, found.best_score, seconds, len(found.candidates))
               for budget, found in zip(budgets, answers)]
    report(args, run, results)


def _data_free(args: argparse.Namespace, payload: dict, config: Config, sampler, budgets: list) -> None:
    """The policy's answers alone, chosen among the budget's band and its rungs' by the run's
    accuracy predictor: counted and exported, never scored (there are no images)."""
    run = load_run(args, payload, config, data=False)
    predictor = predictor_from_checkpoint(payload, config)
    if len(config.space.sides) > 1 and args.export is not None:
        print("note: without images no side can be chosen; a bilateral run's data-free answers are exported with "
              "their left side's weights", file=sys.stderr)
    results = []
    for budget in budgets:
        start = time.perf_counter()
        rungs = run_rungs(sampler, budget, config) if args.rungs == "auto" else ()
        arch = data_free_answer(sampler, budget, rungs, predictor)
        results.append(run.result("data-free", budget, arch, None, time.perf_counter() - start, 0))
    report(args, run, results)


if __name__ == "__main__":
    raise SystemExit(main())
