"""Benchmark: supernets trained with the focus sampler against uniform sampling (AutoFormer).

Given finished runs of both kinds (same config, epochs and recipe; several seeds each),
it scores, for every run, the same cloud of ``--cloud`` subnets (the smallest, the largest
and seeded uniform samples) on ``--val-images`` search-val images, and reports:

* the hypervolume of the cloud's accuracy-vs-MACs Pareto front (search-val), and
* at each budget, the test top-1 of the best subnet within the budget, selected on search-val
  from the shared cloud (a random search of ``--cloud`` candidates, the same for every run),
  and, for focus runs, from ``--candidates`` sampler proposals (``focusformer-specialize``).

Then it prints each method's mean over seeds. Nothing is asserted; this only prints.

    .venv/bin/python benchmarks/bench_focus_vs_uniform.py --focus RUN_F0 RUN_F1 --uniform RUN_U0 RUN_U1 \\
        --budgets 8M,15M,25M --cloud 100 --val-images 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from focusformer.budget import parse_budgets
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.spaces.counts import count_macs
from focusformer.search.pareto import hypervolume
from focusformer.plot import cloud_archs, macs_range
from focusformer.search.scoring import CandidateScorer
from focusformer.sampling.specialize import sampler_from_checkpoint, specialize


def evaluate_run(run: Path, method: str, budgets, args) -> dict:
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    space, device = config.space, default_device()
    supernet = load_supernet(run).to(device)
    splits = load_data(config.data, space, config.train, seed=config.train.seed)
    val = CandidateScorer(supernet, splits.search_val, device, config.train.eval_batch_size, args.val_images)
    test = CandidateScorer(supernet, splits.test, device, config.train.eval_batch_size)
    cloud = cloud_archs(space, args.cloud, args.cloud_seed)
    cloud_val = val.score(cloud)
    macs = [count_macs(arch, space) for arch in cloud]
    row = {"run": str(run), "method": method, "seed": config.train.seed,
           "hypervolume": hypervolume(list(zip(macs, cloud_val)), macs_range(space)), "budgets": {}}
    sampler = sampler_from_checkpoint(payload, config, str(run)) if method == "focus" else None
    for budget in budgets:
        fits = [i for i, m in enumerate(macs) if m <= budget.value]
        best = max(fits, key=lambda i: cloud_val[i])
        entry = {"cloud_best_macs": macs[best], "cloud_best_val": cloud_val[best],
                 "cloud_best_test": test.score([cloud[best]])[0]}
        if sampler is not None:
            found = specialize(sampler, budget, val.score, args.candidates, seed=0)
            entry.update(specialized_macs=count_macs(found.best, space), specialized_val=found.best_score,
                         specialized_test=test.score([found.best])[0])
        row["budgets"][budget.label] = entry
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--focus", type=Path, nargs="+", required=True, help="focus run directories")
    parser.add_argument("--uniform", type=Path, nargs="+", required=True, help="uniform run directories")
    parser.add_argument("--budgets", required=True, help="MAC budgets, e.g. 8M,15M,25M")
    parser.add_argument("--cloud", type=int, default=100)
    parser.add_argument("--cloud-seed", type=int, default=0)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    budgets = parse_budgets(args.budgets)
    print(f"# torch {torch.__version__}, device {default_device()}, cloud {args.cloud} subnets, "
          f"{args.val_images} search-val images per subnet")

    rows = [evaluate_run(run, "focus", budgets, args) for run in args.focus]
    rows += [evaluate_run(run, "uniform", budgets, args) for run in args.uniform]

    print(f"\n{'method':>8} {'seed':>4} {'hypervol':>8}  " + "  ".join(
        f"{b.label + ' cloud':>12} {b.label + ' spec':>11}" for b in budgets))
    for row in rows:
        cells = []
        for b in budgets:
            entry = row["budgets"][b.label]
            spec = f"{entry['specialized_test']:>11.2f}" if "specialized_test" in entry else f"{'-':>11}"
            cells.append(f"{entry['cloud_best_test']:>12.2f} {spec}")
        print(f"{row['method']:>8} {row['seed']:>4} {row['hypervolume']:>8.4f}  " + "  ".join(cells))
    print("\nmeans over seeds (test top-1 of the best subnet per budget; hypervolume on search-val):")
    for method in ("focus", "uniform"):
        mine = [r for r in rows if r["method"] == method]
        cells = [f"hypervolume {statistics.mean(r['hypervolume'] for r in mine):.4f}"]
        for b in budgets:
            cloud = statistics.mean(r["budgets"][b.label]["cloud_best_test"] for r in mine)
            text = f"{b.label}: cloud-best {cloud:.2f}"
            if method == "focus":
                spec = statistics.mean(r["budgets"][b.label]["specialized_test"] for r in mine)
                text += f", specialized {spec:.2f}"
            cells.append(text)
        print(f"  {method}: " + "; ".join(cells))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
