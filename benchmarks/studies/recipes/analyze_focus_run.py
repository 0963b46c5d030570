"""Analysis behind "why focus does not win" in RESULTS.md: what a trained focus sampler did.

Prints, for a focus run: how many candidates were measured and how many policy updates were
made; the MAC distribution of the trained sampler's proposals for budgets drawn uniformly over
the space's range (as in training) against uniform arch sampling; and, for a reference run
(any supernet of the same space), how far the search-val top-1 of a 100-subnet cloud deviates
from a smooth function of MACs (residual std of a quadratic fit in log-MACs), i.e. how much
subnets of equal cost really differ. Nothing is asserted; this only prints.

    python benchmarks/analyze_focus_run.py --focus runs/focus-s0 --reference runs/uniform-s0 --val-images 5000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.sampling.specialize import sampler_from_checkpoint
from focusformer.search.cloud import cloud_archs
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs, count_macs_batch
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet


def describe(label: str, macs: np.ndarray) -> None:
    print(f"  {label}: mean {macs.mean() / 1e6:.1f}M MACs, {np.mean(macs > 25e6):.0%} above 25M, "
          f"{np.mean(macs < 8e6):.0%} below 8M")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--focus", type=Path, required=True, help="a focus run directory")
    parser.add_argument("--reference", type=Path, required=True, help="a run to measure the cloud's spread on")
    parser.add_argument("--val-images", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=5000, help="archs drawn from each distribution")
    args = parser.parse_args()

    payload = load_checkpoint(args.focus)
    config = config_from_checkpoint(payload, args.focus)
    space, state = config.space, payload["strategy"]
    print(f"{args.focus}: {state['measurements']['count']} candidates measured, "
          f"{state['policy_updates']} policy updates")
    sampler = sampler_from_checkpoint(payload, config, str(args.focus))
    bounds = sampler.bounds["macs"]
    budgets = torch.as_tensor(np.random.default_rng(1).uniform(bounds.min_cost, bounds.max_cost, args.samples))
    with torch.no_grad():
        proposals = sampler.sample(budgets, generator=torch.Generator().manual_seed(0))
    describe("trained sampler, budgets uniform over the range", proposals.macs.numpy())
    print(f"  mean proposal entropy {proposals.entropy.mean():.2f} nats per arch")
    rng = np.random.default_rng(0)
    uniform = np.stack([space.encode(space.sample(rng)) for _ in range(args.samples)])
    describe("uniform arch sampling", count_macs_batch(uniform, space).astype(float))

    ref_payload = load_checkpoint(args.reference)
    ref_config = config_from_checkpoint(ref_payload, args.reference)
    splits = load_data(ref_config.data, ref_config.space, ref_config.train)
    scorer = CandidateScorer(load_supernet(args.reference), splits.search_val, default_device(),
                             ref_config.train.eval_batch_size, args.val_images)
    archs = cloud_archs(ref_config.space, 100, seed=0)
    top1 = np.array(scorer.score(archs))
    log_macs = np.log([count_macs(arch, ref_config.space) for arch in archs])
    residual = top1 - np.polyval(np.polyfit(log_macs, top1, 2), log_macs)
    print(f"{args.reference}: 100-subnet cloud on {scorer.num_images} search-val images, top-1 "
          f"{top1.min():.1f}-{top1.max():.1f}; residual std around a quadratic in log-MACs "
          f"{residual.std():.2f} points")


if __name__ == "__main__":
    main()
