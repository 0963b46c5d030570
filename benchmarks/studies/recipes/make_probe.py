"""Write a probe set for bench_recipes.py: per budget, archs drawn within its band.

Each budget B gets ``--per-budget`` distinct archs with MACs in ``[(1 - band) B, B]``, drawn the
way the focus and attentive samplers explore a band (uniform choices under exact in-band
masking), from a fixed seed: the typical subnet a deployment at B would use, where
``probe-fashion-mnist-winners.json`` holds the subnets searches chose.

    python benchmarks/make_probe.py --config fashion-mnist --budgets 8M,15M,25M --per-budget 10 \\
        --output benchmarks/probe-fashion-mnist-inband.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from focusformer.budget import parse_budgets
from focusformer.config import load_config
from focusformer.sampling.sampler import ArchSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a shipped config or a YAML file (its space is used)")
    parser.add_argument("--budgets", required=True, help="MAC budgets, e.g. 8M,15M,25M")
    parser.add_argument("--per-budget", type=int, default=10)
    parser.add_argument("--band", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    space = load_config(args.config).space
    sampler = ArchSampler(space, band=args.band)
    generator = torch.Generator().manual_seed(args.seed)
    probe = {}
    for budget in parse_budgets(args.budgets):
        found: dict[str, dict] = {}
        for _ in range(100):  # draws repeat in small bands; stop once enough are distinct
            codes = sampler.sample(torch.full((args.per_budget,), budget.value, dtype=torch.float64),
                                   generator=generator, uniform=True).codes
            for code in codes:
                arch = space.decode(code.numpy()).to_dict()
                found.setdefault(json.dumps(arch, sort_keys=True), arch)
            if len(found) >= args.per_budget:
                break
        probe[budget.label] = list(found.values())[:args.per_budget]
    args.output.write_text(json.dumps(probe, indent=1) + "\n")
    sizes = ", ".join(f"{len(archs)} at {label}" for label, archs in probe.items())
    print(f"probe ({sizes}) -> {args.output}")


if __name__ == "__main__":
    main()
