"""Benchmark: PSViT's attention sharing and its supernet's training throughput, on CPU, in one process.

1. **A shared pair against two plain layers.** Two archs of a PSViT space that differ only in
   one cell of stage 0: ``shared`` (two layers, the second reusing the first's attention map)
   or two ``layer`` cells (two plain layers); every other cell is an identity. Reported:
   MACs per image of each (the difference is the second layer's q/k projection and
   ``q @ k^T``), and the median training-step time (forward, cross-entropy, backward, AdamW)
   of each, both as exported dense models and run through the supernet, the four timed one
   step at a time in rotating order.
2. **Supernet vs dense** training throughput of the largest subnet of each PSViT variant,
   with ``benchmarks.performance.throughput.bench_arch`` (supernet optimizer over all supernet
   weights, interleaved rounds). Target: supernet / dense >= 0.95.

The ``target:`` line prints attention sharing's saving (a shared pair against two plain layers:
in MACs and in dense and supernet step time) and the lowest supernet / dense ratio against its
target. Nothing is asserted; this only prints (and, with ``--json PATH``, saves the figures).

Why: sharing an attention map is PSViT's lever for cheaper layers; the saving shows what a search
gains by choosing it, and the supernet must train the family's subnets about as fast as their
exports.

Run, from the repository root (about a minute on 2 shared CPU cores)::

    OMP_NUM_THREADS=1 python -m benchmarks.performance.psvit

``--quick`` takes fewer rounds (8 timed steps in part 1, 3 rounds in part 2; ``--repeats`` and
``--rounds`` set them); ``--spaces`` picks other PSViT configs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import aligned
from benchmarks.performance.throughput import bench_arch
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance.psvit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", nargs="+", default=SPACES)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="fewer rounds: --repeats 8, --rounds 3 unless given")
    parser.add_argument("--repeats", type=int, help="part 1: timed training steps of each model (default 21)")
    parser.add_argument("--rounds", type=int, help="part 2: interleaved timed rounds (default 5)")
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    repeats = args.repeats or (8 if args.quick else 21)
    rounds = args.rounds or (3 if args.quick else 5)
    if min(repeats, rounds, args.batch_size) < 1:
        parser.error("--repeats, --rounds and --batch-size must be at least 1")
    device = torch.device("cpu")
    header = print_header("benchmarks.performance.psvit", argv, device=device, extra=(
        "PSViT dense models always compute attention with explicit matmuls (the fused-attention flag does not apply)",),
        what="psvit: attention sharing and supernet-vs-dense training throughput")
    print()
    torch.manual_seed(0)

    rows, pairs = [], []
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
            steps[(label, "supernet")] = make_step(lambda i, a=arch, s=supernet: s(i, a), supernet.parameters(), x, y)
        medians = interleaved_medians(steps, warmup=2, repeats=repeats)
        pair = {"space": name}
        for label, arch in archs.items():
            macs = count_macs(arch, space)
            pair[label] = {"arch": str(arch), "macs_per_image": macs,
                           "dense_ms_per_step": 1e3 * medians[(label, "dense")],
                           "supernet_ms_per_step": 1e3 * medians[(label, "supernet")]}
            rows.append([name, label, str(arch), f"{macs / 1e6:.2f}",
                         f"{1e3 * medians[(label, 'dense')]:.1f}", f"{1e3 * medians[(label, 'supernet')]:.1f}"])
        shared, plain = pair["shared pair"], pair["two layers"]
        pair["saving"] = {key: 1 - shared[key] / plain[key]
                          for key in ("macs_per_image", "dense_ms_per_step", "supernet_ms_per_step")}
        pairs.append(pair)
    print(f"1. Shared pair vs two plain layers (batch {args.batch_size}, median of {repeats} training steps, "
          "interleaved)")
    print(aligned(["space", "cell", "arch", "MMACs/img", "dense ms/step", "supernet ms/step"], rows, left=3))

    throughput_args = argparse.Namespace(batch_size=args.batch_size, quick=False, seed=0, lr=5e-4, weight_decay=0.05,
                                         amp=False, warmup=1, steps=2, repeats=rounds, against="supernet",
                                         drop_path=0.0)
    results = []
    for name in args.spaces:
        space = load_config(name).space
        supernet = create_supernet(space).train()
        opt = create_optimizer_v2(supernet, opt="adamw", lr=5e-4, weight_decay=0.05)
        results.append(bench_arch(supernet, opt, space, "largest", space.largest(), throughput_args, device))
    print("\n2. Supernet vs dense training throughput, largest subnet (median images/s, interleaved rounds)")
    print(aligned(
        ["space", "subnet", "arch", "MMACs/img", "batch", "supernet img/s", "dense img/s", "supernet/dense",
         "median paired ratio"],
        [[r["space"], r["subnet"], r["arch_short"], f"{r['macs_per_image'] / 1e6:.1f}", r["batch_size"],
          f"{r['first_images_per_s']:.1f}", f"{r['second_images_per_s']:.1f}", f"{r['ratio_of_medians']:.3f}",
          f"{r['median_paired_ratio']:.3f}"] for r in results],
        left=3,
    ))
    worst = min(r["ratio_of_medians"] for r in results)
    target = {"saving": {p["space"]: p["saving"] for p in pairs}, "goal_supernet_over_dense": 0.95,
              "lowest_supernet_over_dense": worst}
    savings = "; ".join(f"{p['space']} " + ", ".join(f"{100 * p['saving'][key]:.1f}%" for key in
                                                     ("macs_per_image", "dense_ms_per_step", "supernet_ms_per_step"))
                        for p in pairs)
    print(f"\ntarget: attention sharing's saving, a shared pair against two plain layers (MACs, dense step time, "
          f"supernet step time): {savings}; supernet/dense >= 0.95 (largest subnet): lowest {worst:.3f}")
    return save_report(report_of(header, argv, args, target, repeats=repeats, rounds=rounds, pairs=pairs,
                                 results=results), args.json)


if __name__ == "__main__":
    main()
