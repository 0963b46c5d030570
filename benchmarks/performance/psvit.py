"""Benchmark: PSViT's attention sharing and its supernet's training throughput, on CPU, in one process.

1. **A shared pair against two plain layers.** Two archs of a PSViT space that differ only in
   one cell of stage 0: ``shared`` (two layers, the second reusing the first's attention map)
   or two ``layer`` cells (two plain layers); every other cell is an identity. Reported:
   MACs per image of each (the difference is the second layer's q/k projection and
   ``q @ k^T``), and the median training-step time (forward, cross-entropy, backward, AdamW)
   of each, both as exported dense models and run through the supernet, the four timed one
   step at a time in rotating order.
2. **Supernet vs dense** training throughput of the largest subnet of each PSViT variant,
   with ``bench_throughput.bench_arch`` (supernet optimizer over all supernet weights,
   interleaved rounds). Target: supernet / dense >= 0.95.

Nothing is asserted; this only prints. Run (about a minute on 2 shared CPU cores)::

    OMP_NUM_THREADS=1 python benchmarks/bench_psvit.py

``--quick`` halves the rounds; ``--spaces`` picks other PSViT configs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2

from benchmarks.performance.throughput import bench_arch, format_table, machine_header
from focusformer.config import load_config
from focusformer.spaces import PSViTArch, PSViTSpace, PSViTStage, create_supernet
from focusformer.spaces.counts import count_macs

SPACES = ["psvit-1d-fashion-mnist", "psvit-2d-fashion-mnist"]


def pair_archs(space: PSViTSpace) -> dict[str, PSViTArch]:
    """Stage 0 at its widest: one shared pair, or two plain layers; every other cell an identity."""
    largest = space.largest()
    rest = ("identity",) * (space.cells_per_stage - 2)

    def arch(cells: tuple[str, ...]) -> PSViTArch:
        first = PSViTStage(largest.stages[0].width, largest.stages[0].mlp_ratio, cells + rest)
        idle = tuple(PSViTStage(s.width, s.mlp_ratio, ("identity",) * space.cells_per_stage)
                     for s in largest.stages[1:])
        return PSViTArch((first, *idle))

    return {"shared pair": arch(("shared", "identity")), "two layers": arch(("layer", "layer"))}


def make_step(forward, params, x: torch.Tensor, y: torch.Tensor):
    """One training step (forward, cross-entropy, backward, AdamW) of ``forward``."""
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y).backward()
        opt.step()

    return step


def interleaved_medians(steps: dict[str, object], warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per step of each, timed one step at a time in rotating order, so load
    changes on a shared machine hit them alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", nargs="+", default=SPACES)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeats = 8 if args.quick else 21
    device = torch.device("cpu")
    print("bench_psvit: attention sharing and supernet-vs-dense training throughput")
    print("\n".join(machine_header(device)))
    print("PSViT dense models always compute attention with explicit matmuls (the fused-attention flag does not apply)")
    print(f"command: {' '.join(['python', *sys.argv])}\n")
    torch.manual_seed(0)

    rows = []
    for name in args.spaces:
        space = load_config(name).space
        x = torch.randn(args.batch_size, space.in_chans, space.image_size, space.image_size)
        y = torch.randint(0, space.num_classes, (args.batch_size,))
        supernet = create_supernet(space).train()
        archs = pair_archs(space)
        steps = {}
        for label, arch in archs.items():
            dense = supernet.extract(arch)
            steps[(label, "dense")] = make_step(dense, dense.parameters(), x, y)
            steps[(label, "supernet")] = make_step(lambda i, a=arch: supernet(i, a), supernet.parameters(), x, y)
        medians = interleaved_medians(steps, warmup=2, repeats=repeats)
        for label, arch in archs.items():
            rows.append([name, label, str(arch), f"{count_macs(arch, space) / 1e6:.2f}",
                         f"{1e3 * medians[(label, 'dense')]:.1f}", f"{1e3 * medians[(label, 'supernet')]:.1f}"])
    print(f"1. Shared pair vs two plain layers (batch {args.batch_size}, median of {repeats} training steps, "
          "interleaved)")
    print(format_table(rows, ["space", "cell", "arch", "MMACs/img", "dense ms/step", "supernet ms/step"]))

    throughput_args = argparse.Namespace(batch_size=args.batch_size, quick=False, seed=0, lr=5e-4, weight_decay=0.05,
                                         amp=False, warmup=1, steps=2, repeats=3 if args.quick else 5)
    results = []
    for name in args.spaces:
        space = load_config(name).space
        supernet = create_supernet(space).train()
        opt = create_optimizer_v2(supernet, opt="adamw", lr=5e-4, weight_decay=0.05)
        results.append(bench_arch(supernet, opt, space, "largest", space.largest(), throughput_args, device))
    print("\n2. Supernet vs dense training throughput, largest subnet (median images/s, interleaved rounds)")
    print(format_table(
        [[r["space"], r["subnet"], r["arch_short"], f"{r['macs_per_image'] / 1e6:.1f}", r["batch_size"],
          f"{r['supernet_images_per_s']:.1f}", f"{r['dense_images_per_s']:.1f}", f"{r['ratio_of_medians']:.3f}",
          f"{r['median_paired_ratio']:.3f}"] for r in results],
        ["space", "subnet", "arch", "MMACs/img", "batch", "supernet img/s", "dense img/s", "supernet/dense",
         "median paired ratio"],
    ))
    print("Target: supernet/dense >= 0.95.")


if __name__ == "__main__":
    main()
