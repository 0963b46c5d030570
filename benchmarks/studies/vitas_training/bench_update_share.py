"""Benchmark: how often a supernet's training steps reach the weights of its largest subnet.

A weight-sharing step trains one sampled subnet, so each weight of the largest subnet gets a
gradient only in the steps whose subnet uses it. This script draws subnets exactly as
``focusformer-train`` does (the config's sampler, seed and budgets; ``--set`` overrides as in
training), runs each through the supernet on a few random images and records, entry by
entry, which parameters received a non-zero gradient. It prints, for the largest subnet's
weights, the share of steps that reached them, overall (weighted by entries) and by parameter
kind, and what that share makes of a run's epochs: 15 epochs at a share of one third give the
largest subnet's weights about as many updates as 5 epochs of training it alone.

Only which entries a step reaches is counted, not how far AdamW moves them (its momentum keeps
moving an entry for a few steps after its last gradient).

    python benchmarks/bench_update_share.py --steps 2000 \\
        --space autoformer fashion-mnist train.sampler=uniform \\
        --space vitas vitas-fashion-mnist train.sampler=uniform \\
        --space vitas-before vitas-fashion-mnist train.sampler=uniform space.private_qk=true space.min_depth=0
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass

import torch

from focusformer.config import load_config
from focusformer.sampling.strategies import build_strategy
from focusformer.spaces import create_supernet


@dataclass(frozen=True)
class KindShare:
    """The largest subnet's entries of one parameter kind and the mean share of steps reaching them."""

    kind: str
    entries: int
    share: float


@dataclass(frozen=True)
class UpdateShare:
    """One space's result: the mean and least share over the largest subnet's entries, and by kind."""

    label: str
    entries: int
    share: float
    least: float
    kinds: tuple[KindShare, ...]


def parameter_kind(name: str) -> str:
    """``blocks.3.attn.qkv.weight`` -> ``attn.qkv``; ``patch_embed.4.proj.bias`` -> ``patch_embed.proj``."""
    tokens = [t for t in name.split(".") if not t.isdigit() and t not in ("blocks", "weight", "bias")]
    return ".".join(tokens[:2]) or name


def reached(model: torch.nn.Module, images: torch.Tensor, arch) -> dict[str, torch.Tensor]:
    """Which entries of each parameter one training step on ``arch`` gives a non-zero gradient
    (both sides of the weights under bilateral sharing, as its training step runs)."""
    model.zero_grad(set_to_none=True)
    model(images, arch, model.space.training_side).logsumexp(-1).sum().backward()
    return {name: p.grad != 0 for name, p in model.named_parameters() if p.grad is not None}


def measure(label: str, config_name: str, overrides: list[str], steps: int, images: int) -> UpdateShare:
    config = load_config(config_name, overrides)
    space = config.space
    torch.manual_seed(config.train.seed)
    model = create_supernet(space)
    model.init_weights()
    inputs = torch.randn(images, space.in_chans, space.image_size, space.image_size)
    strategy = build_strategy(config, total_steps=steps, score=None)

    largest = reached(model, inputs, space.largest())
    counts = {name: torch.zeros_like(mask, dtype=torch.int32) for name, mask in largest.items()}
    for step in range(steps):
        in_step = {name: torch.zeros_like(mask) for name, mask in largest.items()}
        for arch in strategy.archs_for_step(step):  # a sandwich step trains several subnets
            for name, mask in reached(model, inputs, arch).items():
                if name in in_step:
                    in_step[name] |= mask
        for name, mask in in_step.items():
            counts[name] += mask

    by_kind: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, mask in largest.items():
        by_kind[parameter_kind(name)].append(counts[name][mask].double() / steps)
    shares = {kind: torch.cat(parts) for kind, parts in by_kind.items()}
    kinds = tuple(KindShare(kind, v.numel(), float(v.mean())) for kind, v in shares.items())
    every = torch.cat(list(shares.values()))
    return UpdateShare(label, every.numel(), float(every.mean()), float(every.min()), kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", nargs="+", action="append", required=True, metavar="LABEL CONFIG [KEY=VALUE ...]",
                        help="a label, a config name or path, and training overrides; repeat to compare")
    parser.add_argument("--steps", type=int, default=2000, help="training steps drawn per space")
    parser.add_argument("--images", type=int, default=4, help="random images per step")
    parser.add_argument("--epochs", type=float, default=15.0,
                        help="a run length to translate the share into the largest subnet's own epochs")
    args = parser.parse_args()
    if any(len(spec) < 2 for spec in args.space):
        parser.error("--space takes a label and a config, then optional KEY=VALUE overrides")

    results = [measure(spec[0], spec[1], spec[2:], args.steps, args.images) for spec in args.space]
    print(f"the largest subnet's weights: share of {args.steps} training steps that reach them "
          f"(mean over entries; 'least': the least-reached entry)\n")
    print(f"| space | entries | share | least | {args.epochs:g} epochs give its weights |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r.label} | {r.entries:,} | {r.share:.3f} | {r.least:.3f} | {args.epochs * r.share:.1f} epochs |")
    kinds = list(dict.fromkeys(k.kind for r in results for k in r.kinds))
    print("\nby parameter kind (share of steps):\n")
    print("| kind | " + " | ".join(r.label for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for kind in kinds:
        cells = []
        for r in results:
            match = [k for k in r.kinds if k.kind == kind]
            cells.append(f"{match[0].share:.3f}" if match else "-")
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
