"""Benchmark: what a trained focus policy proposes, decision by decision, against uniform draws.

Where do a focus run's steered steps go? For each run, ``--budgets`` training budgets are drawn
from the run's own budget distribution (its target budgets, or its prior over the MAC range),
and at each budget the trained policy proposes one arch and the untrained sampler draws one
uniformly within the same band (what the exploration floor and a uniform in-band draw train).
The share of each choice of every network-wide decision (ViTAS's patch size and embed dim, say)
is printed per MAC range of the budget, for the policy and for uniform draws side by side.

It reads the policy as saved at the end of training: the steps themselves also pick the best
of ``focus.best_of`` policy samples by the predictor, so this shows where the policy points,
not an exact count of trained steps (summary.csv's share_* columns count those by MAC range).
Nothing is asserted.

    python benchmarks/bench_policy_choices.py --runs runs/p24/focus15-s0 runs/p24/focusloss15-s0
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from focusformer.sampling.budgets import budget_bands, budget_distribution
from focusformer.sampling.specialize import sampler_from_checkpoint, untrained_sampler
from focusformer.search.cloud import macs_range
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint


def network_choices(space, codes: torch.Tensor) -> list[tuple]:
    """Each arch's network-wide values (the decisions made once per network)."""
    return [space.arch_values(space.decode(code.numpy()))[0] for code in codes]


def shares(values: list[tuple], position: int) -> Counter:
    counts = Counter(v[position] for v in values)
    total = sum(counts.values())
    return Counter({k: c / total for k, c in counts.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="focus runs (directories)")
    parser.add_argument("--budgets", type=int, default=2000, help="training budgets drawn per run")
    parser.add_argument("--bins", type=int, default=4, help="MAC ranges (equal slices of the log range)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    for run in args.runs:
        payload = load_checkpoint(run)
        config = config_from_checkpoint(payload, run)
        space = config.space
        policy = sampler_from_checkpoint(payload, config, str(run))
        uniform = untrained_sampler(config)
        rng = np.random.default_rng(args.seed)
        budgets = budget_distribution(space, config.train.budgets, config.train.budget_prior).draw(rng, args.budgets)
        generator = torch.Generator().manual_seed(args.seed)
        with torch.no_grad():
            proposed = network_choices(space, policy.sample(torch.as_tensor(budgets), generator=generator).codes)
            drawn = network_choices(space, uniform.sample(torch.as_tensor(budgets), generator=generator,
                                                          uniform=True).codes)
        low, high = macs_range(space)
        bands = budget_bands(low, high, config.train.budgets, config.focus.band, args.bins)
        names = [d.name for d in space.decision_plan().network]
        print(f"\n{run} ({config.train.sampler}, reward {config.focus.reward}): {args.budgets} budgets drawn "
              f"from its {'targets' if config.train.budgets else config.train.budget_prior + ' prior'}\n")
        for position, name in enumerate(names):
            options = sorted({v[position] for v in proposed + drawn})
            print(f"| {name}: MAC range of the budget | budgets | "
                  + " | ".join(f"policy {o} | uniform {o}" for o in options) + " |")
            print("|" + "---|" * (2 + 2 * len(options)))
            for band in bands:
                inside = [i for i, b in enumerate(budgets) if band.low <= b <= band.high]
                if not inside:
                    continue
                mine = shares([proposed[i] for i in inside], position)
                theirs = shares([drawn[i] for i in inside], position)
                print(f"| {band.label} | {len(inside)} | "
                      + " | ".join(f"{mine[o]:.2f} | {theirs[o]:.2f}" for o in options) + " |")
            print()


if __name__ == "__main__":
    main()
