"""Benchmark: training throughput of a subnet run through the supernet vs its exported dense model.

What is measured: training images per second (forward, cross-entropy on random labels,
backward, AdamW step) of

* the supernet running a subnet, ``supernet(x, arch)``, with an optimizer over ALL the
  supernet's parameters (the real one-shot training situation), and
* the same subnet exported as a dense model, ``supernet.extract(arch)``, in train mode,
  with an optimizer over its own parameters,

for the largest, the middle (the middle choice in every dimension, via ``space.decode``)
and the smallest subnet of each space in ``--spaces`` (default: fashion-mnist and
cifar100). Both optimizers are timm's ``create_optimizer_v2(model, opt='adamw',
lr=5e-4, weight_decay=0.05)``. Inputs are random tensors of the space's shape, built once.

The two are interleaved in one process: after ``--warmup`` untimed steps of each, every
one of ``--repeats`` rounds times ``--steps`` steps of the supernet and ``--steps`` steps
of the dense model (the order alternates between rounds, so neither always runs first).
Reported: the median images/s of each, the ratio of the medians (supernet / dense), and
the median of the per-round ratios. Target: supernet / dense >= 0.9, printed on the ``target:``
line against the lowest ratio of medians. On CUDA the device is synchronized before each clock
read. Nothing is asserted; this only prints (and, with ``--json PATH``, saves the figures).

Why: one-shot training runs every subnet through the supernet; if slicing its weights cost much
more than training the exported model, the supernet would be the bottleneck of the search.

Full run, from the repository root (defaults: 2 warm-up steps, 7 rounds of 2 steps per model and
subnet; batch 256 for fashion-mnist, 64 for cifar100; about 4 to 5 minutes on 2 CPU cores shared
with a training run, less on an idle machine)::

    python -m benchmarks.performance.throughput --json throughput.json

Dense subnet training (``focusformer-train --subnet``) against timm's ``VisionTransformer`` of the same
network, for the uniform archs timm can express (target: subnet run / timm >= 0.95)::

    python -m benchmarks.performance.throughput --against timm --spaces fashion-mnist

Smoke run (about a minute: 1 warm-up step, 2 rounds of 1 step, half the batch size)::

    python -m benchmarks.performance.throughput --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from timm.layers import use_fused_attn
from timm.optim import create_optimizer_v2

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import aligned
from focusformer.config import load_config, shipped_configs
from focusformer.spaces import Arch, SearchSpace, create_supernet
from focusformer.spaces.costs import decide
from focusformer.spaces.counts import count_macs

#: Default batch size per space (others: 64).
DEFAULT_BATCH = {"fashion-mnist": 256, "vitas-fashion-mnist": 256, "cifar100": 64}
DEFAULT_SPACES = ["fashion-mnist", "cifar100"]
FULL = {"warmup": 2, "steps": 2, "repeats": 7}
QUICK = {"warmup": 1, "steps": 1, "repeats": 2}


def middle_arch(space: SearchSpace):
    """The middle valid choice of every decision, made in order (works for any family)."""
    return space.decode(decide(space.cost_model("macs"), lambda slot, valid, feasible: valid[len(valid) // 2]))


def short(arch) -> str:
    if isinstance(arch, Arch):
        fmt = lambda v: ",".join(f"{x:g}" for x in sorted(set(v)))
        return f"e{arch.embed_dim} d{arch.depth} h{fmt(arch.num_heads)} r{fmt(arch.mlp_ratio)}"
    return str(arch)


def make_step(forward, optimizer, x: torch.Tensor, y: torch.Tensor, amp: bool):
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()

    return step


def time_steps(step, n: int, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return time.perf_counter() - start


def timm_vit(space, arch, drop_path: float) -> torch.nn.Module:
    """timm's ``VisionTransformer`` of a uniform AutoFormer arch (every layer alike, attention width
    equal to the embed dim), or None where timm cannot express it."""
    from timm.models.vision_transformer import VisionTransformer

    heads, ratios = set(arch.num_heads), set(arch.mlp_ratio)
    if len(heads) != 1 or len(ratios) != 1 or next(iter(heads)) * space.head_dim != arch.embed_dim:
        return None
    return VisionTransformer(img_size=space.image_size, patch_size=space.patch_size, in_chans=space.in_chans,
                             num_classes=space.num_classes, embed_dim=arch.embed_dim, depth=arch.depth,
                             num_heads=next(iter(heads)), mlp_ratio=next(iter(ratios)), drop_path_rate=drop_path)


def contenders(supernet, super_opt, space, arch, args) -> dict:
    """The two things timed for ``arch``, by ``--against``: ``supernet`` (the supernet running it,
    against its export) or ``timm`` (the dense model a subnet run trains, focusformer-train
    --subnet, against timm's VisionTransformer of the same network)."""
    def dense_with_optimizer(model):
        return model, create_optimizer_v2(model, opt="adamw", lr=args.lr, weight_decay=args.weight_decay)

    if args.against == "timm":
        reference = timm_vit(space, arch, args.drop_path)
        if reference is None:
            return {}
        from focusformer.training.subnet import DenseSubnet

        device = supernet_device(supernet)
        subnet, subnet_opt = dense_with_optimizer(DenseSubnet(space, arch, args.drop_path).to(device))
        timm_model, timm_opt = dense_with_optimizer(reference.to(device))
        return {"subnet run": (subnet, subnet_opt), "timm": (timm_model, timm_opt)}
    dense, dense_opt = dense_with_optimizer(supernet.extract(arch))  # train mode, like the supernet
    return {"supernet": (lambda images: supernet(images, arch), super_opt), "dense": (dense, dense_opt)}


def supernet_device(supernet) -> torch.device:
    return next(supernet.parameters()).device


def bench_arch(supernet, super_opt, space, label, arch, args, device) -> dict | None:
    batch = args.batch_size or DEFAULT_BATCH.get(space.name, 64)
    if args.quick and not args.batch_size:
        batch = max(1, batch // 2)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(batch, space.in_chans, space.image_size, space.image_size, generator=gen).to(device)
    y = torch.randint(0, space.num_classes, (batch,), generator=gen).to(device)

    models = contenders(supernet, super_opt, space, arch, args)
    if not models:
        return None
    first, second = models
    steps = {name: make_step(forward, optimizer, x, y, args.amp) for name, (forward, optimizer) in models.items()}
    for step in steps.values():
        time_steps(step, args.warmup, device)

    times = {name: [] for name in steps}
    for r in range(args.repeats):
        order = (first, second) if r % 2 == 0 else (second, first)
        for name in order:
            times[name].append(time_steps(steps[name], args.steps, device))

    ips = {k: [args.steps * batch / t for t in v] for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in ips.items()}
    paired = [a / b for a, b in zip(ips[first], ips[second])]
    del models, steps
    return {
        "space": space.name,
        "subnet": label,
        "arch": arch.to_dict(),
        "arch_short": short(arch),
        "macs_per_image": count_macs(arch, space),
        "batch_size": batch,
        "compared": [first, second],
        "first_images_per_s": med[first],
        "second_images_per_s": med[second],
        "ratio_of_medians": med[first] / med[second],
        "median_paired_ratio": statistics.median(paired),
        "first_images_per_s_all": ips[first],
        "second_images_per_s_all": ips[second],
    }


def main(argv: list[str] | None = None) -> dict:
    shipped = shipped_configs()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance.throughput",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", nargs="+", default=DEFAULT_SPACES, choices=shipped, metavar="NAME",
                        help=f"shipped spaces (default: {' '.join(DEFAULT_SPACES)}; choices: {', '.join(shipped)})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size for every space (default: 256 for fashion-mnist, 64 for others)")
    parser.add_argument("--warmup", type=int, default=None,
                        help=f"untimed steps of each model per subnet first (default {FULL['warmup']})")
    parser.add_argument("--steps", type=int, default=None, help=f"steps per timed block (default {FULL['steps']})")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"interleaved timed rounds (default {FULL['repeats']})")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke version (~1 min on 2 CPU cores): warmup/steps/repeats "
                             f"{QUICK['warmup']}/{QUICK['steps']}/{QUICK['repeats']} unless given, half batch size "
                             f"unless --batch-size is given")
    parser.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (as training does on CUDA)")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--drop-path", type=float, default=0.0, help="supernet drop-path rate (the export inherits it)")
    parser.add_argument("--torch-threads", type=int, default=None, metavar="N",
                        help="call torch.set_num_threads(N) first (default: leave torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", choices=["supernet", "timm"], default="supernet",
                        help="supernet: the supernet running a subnet against its export (default); timm: the dense "
                             "model focusformer-train --subnet trains against timm's VisionTransformer of the same "
                             "network (uniform AutoFormer archs only)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.warmup < 0 or args.steps < 1 or args.repeats < 1 or (args.batch_size is not None and args.batch_size < 1):
        parser.error("--warmup must be >= 0; --steps, --repeats and --batch-size >= 1")
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    device = (torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto"
              else torch.device(args.device))

    compared = ("a subnet run's dense model vs timm's VisionTransformer" if args.against == "timm"
                else "supernet(x, arch) vs supernet.extract(arch)")
    header = print_header("benchmarks.performance.throughput", argv, device=device, extra=(
        f"timm fused attention (dense model): {use_fused_attn()}; supernet: F.scaled_dot_product_attention",),
        what=f"throughput: training images/s, {compared}\n"
        f"optimizer: timm create_optimizer_v2(opt='adamw', lr={args.lr:g}, weight_decay={args.weight_decay:g}); "
        f"supernet optimizer holds all supernet params; amp: {args.amp}; drop_path: {args.drop_path:g}\n"
        f"warmup {args.warmup}, {args.repeats} rounds x {args.steps} steps each{' (--quick)' if args.quick else ''}")
    print()

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    results = []
    for name in args.spaces:
        space = load_config(name).space
        supernet = create_supernet(space, drop_path_rate=args.drop_path).to(device).train()
        super_opt = create_optimizer_v2(supernet, opt="adamw", lr=args.lr, weight_decay=args.weight_decay)
        for label, arch in (("largest", space.largest()), ("middle", middle_arch(space)),
                            ("smallest", space.smallest())):
            t0 = time.perf_counter()
            r = bench_arch(supernet, super_opt, space, label, arch, args, device)
            if r is None:
                print(f"  {name} {label}: timm's VisionTransformer cannot express {short(arch)}; skipped")
                continue
            results.append(r)
            a, b = r["compared"]
            print(f"  {name} {label}: {a} {r['first_images_per_s']:.1f} img/s, {b} "
                  f"{r['second_images_per_s']:.1f} img/s ({time.perf_counter() - t0:.1f} s)", flush=True)
        del supernet, super_opt
    elapsed = time.perf_counter() - start

    a, b = ("subnet run", "timm") if args.against == "timm" else ("supernet", "dense")
    print(f"\nTraining throughput (median images/s over the rounds; {a} and {b} interleaved)")
    print(aligned(
        ["space", "subnet", "arch", "MMACs/img", "batch", f"{a} img/s", f"{b} img/s",
         f"{a}/{b}", "median paired ratio"],
        [[r["space"], r["subnet"], r["arch_short"], f"{r['macs_per_image'] / 1e6:.1f}", r["batch_size"],
          f"{r['first_images_per_s']:.1f}", f"{r['second_images_per_s']:.1f}",
          f"{r['ratio_of_medians']:.3f}", f"{r['median_paired_ratio']:.3f}"] for r in results],
        left=3,
    ))
    worst = min(r["ratio_of_medians"] for r in results) if results else None
    goal = 0.95 if args.against == "timm" else 0.9
    target = {"compared": f"{a}/{b}", "goal": goal, "lowest_ratio_of_medians": worst}
    print(f"\ntarget: {a}/{b} >= {goal} (training images/s); lowest ratio of medians: "
          + ("none measured" if worst is None else f"{worst:.3f}"))
    print("'median paired ratio' is the median over rounds of (supernet img/s / dense img/s) within one round.")
    print(f"Total time: {elapsed:.1f} s")
    return save_report(report_of(header, argv, args, target, elapsed_s=elapsed, results=results), args.json)


if __name__ == "__main__":
    main()
