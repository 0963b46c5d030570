"""Benchmark: the fronts of trained supernets of different search-space families at matched MACs.

For every run and every budget it draws ``--candidates`` distinct archs within the budget
(:func:`~focusformer.search.evolution.sample_within_budget`, the same random search for
every family), scores them with inherited weights on the run's search-val split, and reports
the test top-1 of the best one. For spaces with several patch sizes (ViTAS) it also reports
the best arch of each patch size, to see whether searching the patch size pays. Runs are
grouped by label (one group per family, one run per seed): per budget it prints each run,
then each group's mean and standard deviation over seeds, and each later group's paired
difference (by seed order) from the first group. The largest and smallest subnets'
test top-1 come from each run's ``final.json``.

Run (the runs of benchmarks/RESULTS.md, "Search-space families on Fashion-MNIST")::

    .venv/bin/python benchmarks/bench_families.py \\
        --runs autoformer=runs/families/fashion-mnist-s0,runs/families/fashion-mnist-s1 \\
               vitas=runs/families/vitas-fashion-mnist-s0,runs/families/vitas-fashion-mnist-s1 \\
        --budgets 8M,15M,25M --json benchmarks/bench_families.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from focusformer.budget import Budget, parse_budgets
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.search.evolution import sample_within_budget
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet


def distinct_within(space, budget: Budget, count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    archs: dict = {}
    for _ in range(count * 20):
        archs.setdefault(sample_within_budget(space, budget, rng), None)
        if len(archs) == count:
            break
    return list(archs)


def evaluate_run(run: Path, budgets: list[Budget], candidates: int, seed: int, val_images: int | None) -> dict:
    config = config_from_checkpoint(load_checkpoint(run), run)
    space, device = config.space, default_device()
    supernet = load_supernet(run).to(device)
    data = load_data(config.data, space, config.train, seed=config.train.seed)
    val = CandidateScorer(supernet, data.search_val, device, config.train.eval_batch_size, val_images)
    test = CandidateScorer(supernet, data.test, device, config.train.eval_batch_size)
    final = json.loads((run / "final.json").read_text())
    result = {"run": str(run), "family": space.family, "largest_test_top1": final["largest"]["test_top1"],
              "smallest_test_top1": final["smallest"]["test_top1"], "budgets": {}}
    for budget in budgets:
        started = time.perf_counter()
        archs = distinct_within(space, budget, candidates, seed)
        scores = val.score(archs)
        groups = {"best": list(range(len(archs)))}
        patch_sizes = sorted({getattr(a, "patch_size", None) for a in archs} - {None})
        if len(patch_sizes) > 1:
            for p in patch_sizes:
                groups[f"patch {p}"] = [i for i, a in enumerate(archs) if a.patch_size == p]
        entry = {"scored": len(archs)}
        for name, members in groups.items():
            if not members:
                continue
            best = max(members, key=lambda i: scores[i])
            entry[name] = {"arch": str(archs[best]), "macs": count_macs(archs[best], space),
                           "val_top1": scores[best], "test_top1": test.score([archs[best]])[0],
                           "candidates": len(members)}
        entry["seconds"] = time.perf_counter() - started
        result["budgets"][budget.label] = entry
        print(f"  {run.name} {budget.label}: best test {entry['best']['test_top1']:.2f} "
              f"({entry['best']['arch']}, {entry['seconds']:.0f}s)", flush=True)
    return result


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="LABEL=RUN[,RUN...]")
    parser.add_argument("--budgets", default="8M,15M,25M")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-images", type=int, default=None, help="score on the first N search-val images")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    budgets = parse_budgets(args.budgets)
    groups: dict[str, list[dict]] = defaultdict(list)
    for spec in args.runs:
        label, _, runs = spec.partition("=")
        for run in runs.split(","):
            print(f"{label}: {run}", flush=True)
            groups[label].append(evaluate_run(Path(run), budgets, args.candidates, args.seed, args.val_images))

    print(f"\nTest top-1 (%) of the best of {args.candidates} random in-budget archs by search-val top-1; "
          "mean ± std over runs")
    print(f"{'group':<12} {'largest':>14} {'smallest':>14} " + " ".join(f"{b.label:>14}" for b in budgets))
    for label, results in groups.items():
        cells = [mean_std([r["largest_test_top1"] for r in results]),
                 mean_std([r["smallest_test_top1"] for r in results])]
        cells += [mean_std([r["budgets"][b.label]["best"]["test_top1"] for r in results]) for b in budgets]
        print(f"{label:<12} " + " ".join(f"{c:>14}" for c in cells))
        patch_rows = sorted({k for r in results for b in r["budgets"].values() for k in b if k.startswith("patch")})
        for row in patch_rows:
            cells = [mean_std([r["budgets"][b.label][row]["test_top1"] for r in results
                               if row in r["budgets"][b.label]]) for b in budgets]
            print(f"{'  ' + row:<12} {'':>14} {'':>14} " + " ".join(f"{c:>14}" for c in cells))
    labels = list(groups)
    first = labels[0]
    for other in labels[1:]:
        if len(groups[other]) != len(groups[first]) or len(groups[first]) < 2:
            continue
        print(f"\npaired by seed ({other} - {first}): mean ± standard error of the difference")
        for budget in budgets:
            diffs = [rb["budgets"][budget.label]["best"]["test_top1"] - ra["budgets"][budget.label]["best"]["test_top1"]
                     for ra, rb in zip(groups[first], groups[other])]
            se = statistics.stdev(diffs) / len(diffs) ** 0.5
            print(f"  {budget.label}: {statistics.mean(diffs):+.2f} ± {se:.2f} ({', '.join(f'{d:+.2f}' for d in diffs)})")
    if args.json:
        args.json.write_text(json.dumps(groups, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
