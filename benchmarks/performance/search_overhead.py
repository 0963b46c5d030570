"""Benchmark: the evolution search's own work per subnet against scoring one subnet.

Evolution (and random search) sample, mutate and cross archs within a budget on exact cost
bounds: work per candidate on top of scoring it. Per space, in one process and one thread: an
evolution search with a free score (each arch's MACs), AutoFormer's 50 x 20 by default (1,050
subnets) under the budget in the middle of the MAC range, and the scoring of ``--score-subnets``
of its in-budget archs on ``--images`` random images with a freshly initialised supernet (the
forward passes a real search pays per candidate; no data loading). Both are CPU seconds of this
process.

The ``target:`` line prints the largest ratio of the search's own seconds per subnet to the
seconds of scoring one subnet; the goal is at most 5%, so that a search's time, and the
comparisons of specialize against evolution in CPU seconds, are the scoring's. Nothing is
asserted; this only prints (and, with ``--json PATH``, saves the figures).

Run, from the repository root::

    python -m benchmarks.performance.search_overhead --spaces digits,fashion-mnist,vitas-fashion-mnist
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import markdown
from focusformer.budget import Budget
from focusformer.config import load_config
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.spaces import create_supernet
from focusformer.spaces.counts import count_macs

GOAL = 0.05


def cpu_seconds(work) -> tuple[float, object]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def measure(name: str, args: argparse.Namespace) -> dict:
    space = load_config(name).space
    costs = space.cost_model("macs")
    budget = Budget((costs.min_cost + costs.max_cost) / 2)
    config = EvolutionConfig.at_population(args.population, args.generations)
    search_s, outcome = cpu_seconds(lambda: evolution_search(
        space, budget, lambda archs: [float(count_macs(a, space)) for a in archs], config, seed=0))

    supernet = create_supernet(space).eval()
    images = torch.randn(args.images, space.in_chans, space.image_size, space.image_size,
                         generator=torch.Generator().manual_seed(0))
    archs = [space.sample(np.random.default_rng(seed)) for seed in range(10 * args.score_subnets)]
    archs = [a for a in archs if count_macs(a, space) <= budget.value][:args.score_subnets]

    def score_all() -> None:
        with torch.no_grad():
            for arch in archs:
                for batch in images.split(args.batch_size):
                    supernet(batch, arch)

    score_s, _ = cpu_seconds(score_all)
    per_subnet_search, per_subnet_score = search_s / outcome.scored, score_s / len(archs)
    return {"space": name, "budget_macs": budget.value, "scored": outcome.scored, "search_cpu_s": search_s,
            "search_ms_per_subnet": 1000 * per_subnet_search, "score_subnets": len(archs),
            "score_ms_per_subnet": 1000 * per_subnet_score, "ratio": per_subnet_search / per_subnet_score}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", default="digits,fashion-mnist,vitas-fashion-mnist,psvit-2d-fashion-mnist",
                        help="comma-separated shipped configs (default: %(default)s)")
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--images", type=int, default=1000, help="images each scored subnet sees (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--score-subnets", type=int, default=10, help="subnets scored to time scoring (default: 10)")
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    header = print_header("benchmarks.performance.search_overhead", argv)
    print()
    results = [measure(name, args) for name in args.spaces.split(",")]
    print(markdown(["space", "subnets searched", "search ms / subnet", "scoring ms / subnet", "search / scoring"],
                   [[r["space"], r["scored"], f"{r['search_ms_per_subnet']:.2f}", f"{r['score_ms_per_subnet']:.1f}",
                     f"{r['ratio']:.3f}"] for r in results]))
    worst = max(r["ratio"] for r in results)
    target = {"goal": GOAL, "largest_ratio": worst}
    print(f"target: the search's own work per subnet <= {GOAL:.0%} of scoring one on {args.images} images: "
          f"largest {worst:.1%}")
    return save_report(report_of(header, argv, args, target, results=results), args.json)


if __name__ == "__main__":
    main()
