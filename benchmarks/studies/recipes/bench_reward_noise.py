"""Benchmark: can a reward tell apart subnets of equal cost? Noise against spread, per reward.

For a trained run, draws ``--candidates`` archs in each budget's band ``[(1 - band) b, b]``
(the focus sampler's exploration draws), scores them on the first ``--images`` search-val
images with each reward (top-1, cross-entropy, KL to the largest subnet), and prints per
budget and reward:

* spread: the standard deviation of the candidates' mean scores (what the reward should resolve);
* paired SE: the median over candidate pairs of the standard error of their score difference
  on the same images (how noisy a comparison is);
* ratio spread / SE (above 1: comparisons mostly reflect real differences),
* and the same at fewer images (the first N of them), to choose ``focus.eval_images``.

    python benchmarks/bench_reward_noise.py --run runs/focus9/uniform-s0 --budgets 8M,15M,25M \\
        --candidates 8 --images 2000 --subsets 500,1000
"""

from __future__ import annotations

import argparse

import torch

from focusformer.budget import parse_budgets
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.sampling.sampler import ArchSampler
from focusformer.sampling.focus import reward_spread_and_noise
from focusformer.search.scoring import CandidateScorer
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--budgets", default="8M,15M,25M")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--subsets", default="500,1000")
    parser.add_argument("--band", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    payload = load_checkpoint(args.run)
    config = config_from_checkpoint(payload, args.run)
    device = default_device()
    supernet = load_supernet(args.run).to(device)
    splits = load_data(config.data, config.space, config.train)
    scorer = CandidateScorer(supernet, splits.search_val, device, 500, args.images)
    sampler = ArchSampler(config.space, band=args.band)
    generator = torch.Generator().manual_seed(args.seed)
    sizes = [int(s) for s in args.subsets.split(",") if s] + [scorer.num_images]
    print(f"run {args.run}, {args.candidates} candidates per budget in band {args.band}, images {sizes}")
    print("| budget | reward | images | spread | paired SE | spread / SE |")
    print("|---|---|---|---|---|---|")
    for budget in parse_budgets(args.budgets):
        codes = sampler.sample(torch.full((args.candidates,), budget.value, dtype=torch.float64),
                               generator=generator, uniform=True).codes
        archs = [config.space.decode(code.numpy()) for code in codes]
        for reward in ("top1", "loss", "distill"):
            matrix = scorer.per_image(archs, reward)
            for size in sizes:
                spread, se = reward_spread_and_noise(matrix[:, :size])
                print(f"| {budget.label} | {reward} | {size} | {spread:.4f} | {se:.4f} | {spread / se:.2f} |")


if __name__ == "__main__":
    main()
