"""``focusformer-specialize``: the best subnet for a budget from the trained sampler, in seconds."""

from __future__ import annotations

import argparse
import time

from ..sampling.specialize import run_rungs, sampler_from_checkpoint, specialize, untrained_sampler
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
                        help="candidates drawn from the sampler per budget (default: %(default)s)")
    parser.add_argument("--draws", choices=["policy", "uniform"], default="policy",
                        help="where candidates come from: the trained sampler's policy (the default), or uniform "
                             "draws within each budget's band, which needs no trained sampler (any run)")
    parser.add_argument("--rungs", choices=["auto", "none"], default="auto",
                        help="auto (the default): share the candidates between the budget's band and the bands "
                             "of cheaper budgets, the run's target budgets below it (or half and a quarter of "
                             "it), since a cheaper subnet can beat every one near the budget; none: only the "
                             "budget's band")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _specialize(args))


def _specialize(args: argparse.Namespace) -> None:
    budgets = budgets_from_args(args)
    check_export_target(args)
    payload, config = open_checkpoint(args, budgets)
    uniform = args.draws == "uniform"
    sampler = untrained_sampler(config) if uniform else sampler_from_checkpoint(payload, config, str(args.checkpoint))
    run = load_run(args, payload, config)
    method = "uniform-draws" if uniform else "sampler"
    results = []
    for budget in budgets:
        rungs = run_rungs(sampler, budget, config) if args.rungs == "auto" else ()
        start = time.perf_counter()
        found = specialize(sampler, budget, run.val_scorer.score, args.candidates, args.seed, uniform, rungs)
        seconds = time.perf_counter() - start
        results.append(run.result(method, budget, found.best, found.best_score, seconds, len(found.candidates)))
    report(args, run, results)


if __name__ == "__main__":
    raise SystemExit(main())
