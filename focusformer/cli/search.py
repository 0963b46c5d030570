"""``focusformer-search``: AutoFormer's evolution search (or random search) under a budget.

The baseline the learned sampler is measured against: same budgets, same scoring code,
same output formats as ``focusformer-specialize``. Each search writes its state after every
generation to ``RUN/results/``; running the same command again continues an interrupted one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..budget import Budget
from ..config import Config
from ..errors import ConfigError
from ..run_dir import CHECKPOINT_FILE, RESULTS_DIR
from ..search.cloud import checkpoint_id
from ..search.evolution import EvolutionConfig, evolution_search
from ..search.random_search import random_search
from ..search.state import SearchOutcome, SearchStateMismatch
from .budgeted import (
    LoadedRun,
    add_budget_arguments,
    budgets_from_args,
    check_export_target,
    load_run,
    open_checkpoint,
    report,
)
from .common import ArgumentParser, positive_int, run_command

PROG = "focusformer-search"
EVOLUTION_FLAGS = ("population", "generations", "parents", "mutations", "crossovers", "depth_mutation",
                   "layer_mutation")
#: Random search's default: as many subnets as evolution scores with its defaults.
RANDOM_CANDIDATES = 1050


def build_parser() -> argparse.ArgumentParser:
    defaults = EvolutionConfig()
    parser = ArgumentParser(
        prog=PROG,
        description="Search a trained supernet for the best subnet within a budget by evolution or at random, "
                    "scoring candidates with inherited weights on the search-val split.",
        epilog="Example: focusformer-search --checkpoint runs/fmnist --budget 10M --method evolution",
    )
    add_budget_arguments(parser)
    parser.add_argument("--method", choices=["evolution", "random"], default="evolution",
                        help="evolution search (AutoFormer's) or random search in the budget (default: %(default)s)")
    evolution = parser.add_argument_group("evolution (--method evolution)")
    evolution.add_argument("--population", type=positive_int, help=f"default: {defaults.population}")
    evolution.add_argument("--generations", type=positive_int, help=f"default: {defaults.generations}")
    evolution.add_argument("--parents", type=positive_int, help=f"top-k kept as parents (default: {defaults.parents})")
    evolution.add_argument("--mutations", type=int,
                           help=f"children by mutation per generation (default: {defaults.mutations})")
    evolution.add_argument("--crossovers", type=int,
                           help=f"children by crossover per generation (default: {defaults.crossovers})")
    evolution.add_argument("--depth-mutation", type=float,
                           help=f"probability to resample the depth (default: {defaults.depth_mutation})")
    evolution.add_argument("--layer-mutation", type=float,
                           help="probability to resample the embed dim and each layer's heads and MLP ratio "
                                f"(default: {defaults.layer_mutation})")
    random = parser.add_argument_group("random search (--method random)")
    random.add_argument("--candidates", type=positive_int,
                        help=f"subnets to score (default: {RANDOM_CANDIDATES}, as many as evolution's defaults)")
    parser.add_argument("--restart", action="store_true",
                        help="start afresh instead of continuing a recorded search with the same settings "
                             "(a larger --generations or --candidates continues it further)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _search(args))


def _state_path(run_dir: Path, args: argparse.Namespace, budget: Budget) -> Path:
    table = "" if budget.lut is None else f"-lut{budget.lut.fingerprint[:8]}"  # one state per latency table
    return run_dir / RESULTS_DIR / f"search-{args.method}-{budget.label}{table}-seed{args.seed}.state.json"


def _evolution_config(args: argparse.Namespace) -> EvolutionConfig:
    """Evolution's settings from the flags (validated: a bad value is a one-line error before any work);
    a flag of the other method would do nothing, and is refused."""
    given = {name: getattr(args, name) for name in EVOLUTION_FLAGS if getattr(args, name) is not None}
    if args.method == "random" and given:
        raise ConfigError(f"--{next(iter(given)).replace('_', '-')} applies only with --method evolution")
    if args.method == "evolution" and args.candidates is not None:
        raise ConfigError("--candidates applies only with --method random (evolution scores "
                          "population + generations x (mutations + crossovers) subnets)")
    return EvolutionConfig(**given)


def _scored_by(args: argparse.Namespace, payload: dict, run: LoadedRun) -> dict:
    """What a search's scores depend on besides its settings: the weights (checkpoint file and its
    step) and the search-val images. A state scored by other weights or images is not continued."""
    checkpoint = args.checkpoint.name if args.checkpoint.is_file() else CHECKPOINT_FILE
    return {"checkpoint": checkpoint, **checkpoint_id(payload), "val_images": run.val_scorer.num_images}


def _run_search(args: argparse.Namespace, config: Config, run: LoadedRun, evolution: EvolutionConfig,
                budget: Budget, state: Path, scored_by: dict) -> SearchOutcome:
    if args.method == "evolution":
        return evolution_search(config.space, budget, run.val_scorer.score, evolution, args.seed, state_path=state,
                                progress=not args.no_progress, scored_by=scored_by)
    return random_search(config.space, budget, run.val_scorer.score, args.candidates or RANDOM_CANDIDATES, args.seed,
                         state_path=state, progress=not args.no_progress, scored_by=scored_by)


def _search(args: argparse.Namespace) -> None:
    evolution = _evolution_config(args)
    budgets = budgets_from_args(args)
    check_export_target(args, budgets)
    payload, config = open_checkpoint(args, budgets)
    run = load_run(args, payload, config)
    scored_by = _scored_by(args, payload, run)
    results = []
    for budget in budgets:
        state = _state_path(run.path, args, budget)
        if args.restart:
            state.unlink(missing_ok=True)
        state.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        try:
            outcome = _run_search(args, config, run, evolution, budget, state, scored_by)
        except SearchStateMismatch as mismatch:
            if mismatch.keys != ["scored_by"]:
                raise ConfigError(f"{state}: a {args.method} search at {budget.label} was recorded here with other "
                                  f"settings (differs in: {', '.join(mismatch.keys)}); pass --restart to start "
                                  "afresh (its result stays in results/)") from None
            print(f"note: {state.name} was scored with other weights or search-val images; searching afresh",
                  file=sys.stderr)
            state.unlink()
            outcome = _run_search(args, config, run, evolution, budget, state, scored_by)
        seconds = time.perf_counter() - start
        results.append(run.result(args.method, budget, outcome.best, outcome.best_score, seconds, outcome.scored))
    report(args, run, results)


if __name__ == "__main__":
    raise SystemExit(main())
