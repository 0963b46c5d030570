"""Benchmark: specialization with the trained sampler against AutoFormer's evolution search.

What is measured, on one trained focus supernet, at each budget: wall time, search-val top-1
and test top-1 of the subnet each method returns. Both run in this one process, on the same
loaded supernet, with the same ``CandidateScorer`` on the same search-val images (the code
``focusformer-specialize`` and ``focusformer-search`` use). Specialization scores the sampler's
``--candidates`` proposals; evolution runs AutoFormer's settings (population 50, 20
generations, top 10 parents, 25 mutations and 25 crossovers). One candidate is scored before
timing, so neither method pays the first-call warm-up.

Targets: specialization 20x faster or more; its top-1 within 0.3 points of evolution's, or
better. Nothing is asserted; this only prints.

    .venv/bin/python benchmarks/bench_specialize.py --checkpoint RUN --budgets 5M,10M,20M --val-images 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from focusformer.budget import parse_budgets
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.sampling.specialize import sampler_from_checkpoint, specialize
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a focus run directory")
    parser.add_argument("--budgets", required=True, help="MAC budgets, e.g. 5M,10M,20M")
    parser.add_argument("--val-images", type=int, default=1000, help="search-val images per candidate")
    parser.add_argument("--candidates", type=int, default=32, help="sampler candidates per budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    payload = load_checkpoint(args.checkpoint)
    config = config_from_checkpoint(payload, args.checkpoint)
    space, device = config.space, default_device()
    supernet = load_supernet(args.checkpoint).to(device)
    sampler = sampler_from_checkpoint(payload, config, str(args.checkpoint))
    splits = load_data(config.data, space, config.train)
    val = CandidateScorer(supernet, splits.search_val, device, config.train.eval_batch_size, args.val_images)
    test = CandidateScorer(supernet, splits.test, device, config.train.eval_batch_size)
    val.score([space.smallest()])  # warm-up: the first call pays one-time kernel set-up
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}, device {device}, "
          f"run {args.checkpoint} ({space.name}), {val.num_images} search-val images per candidate, "
          f"test set {test.num_images} images")

    rows = []
    for budget in parse_budgets(args.budgets):
        start = time.perf_counter()
        found = specialize(sampler, budget, val.score, args.candidates, args.seed)
        sampler_seconds = time.perf_counter() - start
        start = time.perf_counter()
        evolved = evolution_search(space, budget, val.score, EvolutionConfig(), args.seed)
        evolution_seconds = time.perf_counter() - start
        sampler_test, evolution_test = test.score([found.best, evolved.best])
        rows.append({
            "budget": budget.value,
            "sampler": {"arch": found.best.to_dict(), "macs": count_macs(found.best, space),
                        "val_top1": found.best_score, "test_top1": sampler_test,
                        "seconds": sampler_seconds, "scored": len(found.candidates)},
            "evolution": {"arch": evolved.best.to_dict(), "macs": count_macs(evolved.best, space),
                          "val_top1": evolved.best_score, "test_top1": evolution_test,
                          "seconds": evolution_seconds, "scored": evolved.scored},
        })

    print(f"{'budget':>8} {'method':>9} {'MACs':>8} {'scored':>6} {'seconds':>8} {'val':>6} {'test':>6}")
    for row in rows:
        for method in ("sampler", "evolution"):
            r = row[method]
            print(f"{row['budget'] / 1e6:>7.3g}M {method:>9} {r['macs'] / 1e6:>7.3g}M {r['scored']:>6} "
                  f"{r['seconds']:>8.1f} {r['val_top1']:>6.2f} {r['test_top1']:>6.2f}")
    print()
    for row in rows:
        s, e = row["sampler"], row["evolution"]
        print(f"budget {row['budget'] / 1e6:.3g}M: evolution/sampler time {e['seconds'] / s['seconds']:.1f}x, "
              f"sampler - evolution: val {s['val_top1'] - e['val_top1']:+.2f}, test {s['test_top1'] - e['test_top1']:+.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
