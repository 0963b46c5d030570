"""``focusformer-search``: AutoFormer's evolution search (or random search) under a budget.

The baseline the learned sampler is measured against: same budgets, same scoring code,
same output formats as ``focusformer-specialize``. Each search writes its state after every
generation to ``RUN/results/``; running the same command again continues an interrupted one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..budget import Budget
from ..search.evolution import EvolutionConfig, evolution_search, random_search
from .budgeted import (
    add_budget_arguments,
    budgets_from_args,
    check_export_target,
    load_run,
    open_checkpoint,
    report,
)
from .common import ArgumentParser, positive_int, run_command

PROG = "focusformer-search"


def build_parser() -> argparse.ArgumentParser:
    defaults = EvolutionConfig()
    parser = ArgumentParser(
        prog=PROG,
        description="Search a trained supernet for the best subnet within a budget by evolution or at random, "
                    "scoring candidates with inherited weights on the search-val split.",
        epilog="Example: focusformer-search --checkpoint runs/fmnist --budget 10M --method evolution",
    )
    add_budget_arguments(parser)
    parser.add_argument("--method", choices=["evolution", "random"], default="evolution")
    parser.add_argument("--population", type=positive_int, default=defaults.population)
    parser.add_argument("--generations", type=positive_int, default=defaults.generations)
    parser.add_argument("--parents", type=positive_int, default=defaults.parents, help="top-k kept as parents")
    parser.add_argument("--mutations", type=int, default=defaults.mutations, help="children by mutation per generation")
    parser.add_argument("--crossovers", type=int, default=defaults.crossovers,
                        help="children by crossover per generation")
    parser.add_argument("--depth-mutation", type=float, default=defaults.depth_mutation,
                        help="probability to resample the depth")
    parser.add_argument("--layer-mutation", type=float, default=defaults.layer_mutation,
                        help="probability to resample the embed dim and each layer's heads and MLP ratio")
    parser.add_argument("--candidates", type=positive_int, default=1050,
                        help="random search: subnets to score (default: as many as evolution's defaults)")
    parser.add_argument("--restart", action="store_true",
                        help="start afresh instead of continuing a recorded search with the same settings")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _search(args))


def _state_path(run_dir: Path, args: argparse.Namespace, budget: Budget) -> Path:
    return run_dir / "results" / f"search-{args.method}-{budget.label}-seed{args.seed}.state.json"


def _search(args: argparse.Namespace) -> None:
    evolution = EvolutionConfig(
        population=args.population, generations=args.generations, parents=args.parents,
        mutations=args.mutations, crossovers=args.crossovers,
        depth_mutation=args.depth_mutation, layer_mutation=args.layer_mutation,
    )  # validates: a bad value is a one-line error before any work
    budgets = budgets_from_args(args)
    check_export_target(args)
    payload, config = open_checkpoint(args, budgets)
    run = load_run(args, payload, config)
    results = []
    for budget in budgets:
        state = _state_path(run.path, args, budget)
        if args.restart:
            state.unlink(missing_ok=True)
        state.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        if args.method == "evolution":
            outcome = evolution_search(config.space, budget, run.val_scorer.score, evolution, args.seed,
                                       state_path=state, progress=not args.no_progress)
        else:
            outcome = random_search(config.space, budget, run.val_scorer.score, args.candidates, args.seed,
                                    state_path=state, progress=not args.no_progress)
        seconds = time.perf_counter() - start
        results.append(run.result(args.method, budget, outcome.best, outcome.best_score, seconds, outcome.scored))
    report(args, run, results)


if __name__ == "__main__":
    raise SystemExit(main())
