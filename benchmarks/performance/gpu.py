"""Benchmark: the GPU path of training, supernet against timm's dense ViT.

What is measured, on one device: training images/s (forward, cross-entropy on random labels,
backward, AdamW step; bf16 autocast on CUDA, as ``focusformer-train`` trains) of

* AutoFormer-Tiny's supernet running its largest subnet (embed 240, 14 layers of 4 heads of
  64, MLP ratio 4), with an optimizer over all supernet weights, as one-shot training runs, and
* timm's ``VisionTransformer`` of the same arch (its attention built with head dim 64, as
  AutoFormer's q/k/v width is heads x 64, not the embed dim); the supernet's inherited
  weights load into it with every key matching, which the script checks,

on synthetic 224x224 images, interleaved in rounds (the protocol of
``benchmarks.performance.throughput``). Reported: the median images/s of each and their ratio
(goal: supernet / dense >= 0.95), the peak memory allocated during each model's steps (CUDA),
and the model FLOPs utilisation: images/s x 6 x MACs per image (forward 2 x MACs FLOPs,
backward twice that) over the device's peak bf16 dense FLOP/s (known for H100, H200 and A100;
``--peak-tflops`` otherwise). Both models use fused attention (``F.scaled_dot_product_attention``).

Why: one-shot training on a GPU must not pay much for running subnets through the supernet;
timm's ViT of the same arch is the speed a dense training of it would get. The ``target:`` line
prints supernet / dense against the goal.

On a CUDA machine, from the repository root (a few minutes; the figures for benchmarks/RESULTS.md)::

    python -m benchmarks.performance.gpu --json gpu.json

CPU smoke run (checks the script, not the figures)::

    python -m benchmarks.performance.gpu --device cpu --image-size 32 --steps 3
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import torch
from timm.layers import Attention, use_fused_attn
from timm.models.vision_transformer import VisionTransformer
from timm.optim import create_optimizer_v2

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import aligned
from benchmarks.performance.throughput import make_step, time_steps
from focusformer.config import load_config
from focusformer.spaces import Arch, AutoFormerSpace, create_supernet
from focusformer.spaces.counts import count_macs

#: Peak dense bf16 tensor-core FLOP/s (no sparsity), from NVIDIA's data sheets; first match wins.
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0}


def dense_vit(space: AutoFormerSpace, arch: Arch) -> VisionTransformer:
    """timm's VisionTransformer of ``arch`` (one head count and MLP ratio), attention head dim ``space.head_dim``."""
    if len(set(arch.num_heads)) != 1 or len(set(arch.mlp_ratio)) != 1:
        raise ValueError("timm's VisionTransformer has one head count and one MLP ratio for all layers")

    class HeadDimAttention(Attention):
        def __init__(self, dim: int, *args, **kwargs) -> None:
            super().__init__(dim, *args, attn_head_dim=space.head_dim, **kwargs)

    return VisionTransformer(img_size=space.image_size, patch_size=space.patch_size, in_chans=space.in_chans,
                             num_classes=space.num_classes, embed_dim=arch.embed_dim, depth=arch.depth,
                             num_heads=arch.num_heads[0], mlp_ratio=arch.mlp_ratio[0], attn_layer=HeadDimAttention)


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((tflops for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)


def peak_memory(step, steps: int, device: torch.device) -> float | None:
    """GiB allocated at the peak of ``steps`` steps (CUDA; None elsewhere)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    time_steps(step, steps, device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance.gpu",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="autoformer-tiny", help="an AutoFormer config (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, help="images per step (default: 256 on CUDA, 32 on CPU)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each model first (default 3)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds (default 5)")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="fp32 instead of bf16 autocast on CUDA")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak FLOP/s in TFLOP/s, for the MFU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else torch.device(args.device)
    args.batch_size = args.batch_size or (256 if device.type == "cuda" else 32)
    if min(args.batch_size, args.steps, args.repeats, args.image_size) < 1 or args.warmup < 0:
        parser.error("--batch-size, --steps, --repeats and --image-size must be >= 1, --warmup >= 0")
    header = print_header("benchmarks.performance.gpu", argv, device=device, extra=(
        f"timm fused attention (dense model): {use_fused_attn()}; supernet: F.scaled_dot_product_attention",),
        what="gpu: training images/s, AutoFormer supernet (largest subnet) vs timm VisionTransformer")
    amp = args.amp and device.type == "cuda"
    space = dataclasses.replace(load_config(args.config).space, image_size=args.image_size)
    arch = space.largest()
    macs = count_macs(arch, space)

    torch.manual_seed(args.seed)
    supernet = create_supernet(space).to(device).train()
    dense = dense_vit(space, arch)
    dense.load_state_dict(supernet.subnet_state_dict(arch))  # strict: the very same arch
    dense = dense.to(device).train()
    x = torch.randn(args.batch_size, space.in_chans, space.image_size, space.image_size, device=device)
    y = torch.randint(0, space.num_classes, (args.batch_size,), device=device)
    steps = {
        "supernet": make_step(lambda images: supernet(images, arch), create_optimizer_v2(supernet, "adamw", 5e-4), x, y,
                              amp),
        "dense": make_step(dense, create_optimizer_v2(dense, "adamw", 5e-4), x, y, amp),
    }
    memory = {name: peak_memory(step, max(args.warmup, 1), device) for name, step in steps.items()}
    for step in steps.values():
        time_steps(step, args.warmup, device)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(args.repeats):
        for name in (("supernet", "dense") if r % 2 == 0 else ("dense", "supernet")):
            seconds[name].append(time_steps(steps[name], args.steps, device))

    tflops = peak_tflops(device, args.peak_tflops)
    results = {}
    for name, times in seconds.items():
        ips = statistics.median(args.steps * args.batch_size / t for t in times)
        results[name] = {
            "images_per_s": ips,
            "peak_memory_gib": memory[name],
            "model_tflops_per_s": ips * 6 * macs / 1e12,
            "mfu": ips * 6 * macs / (tflops * 1e12) if tflops else None,
        }
    ratio = results["supernet"]["images_per_s"] / results["dense"]["images_per_s"]

    print(f"space {space.name} at {space.image_size}x{space.image_size}, arch {arch}, {macs / 1e9:.3f} GMACs/image; "
          f"batch {args.batch_size}, bf16 autocast: {amp}; warmup {args.warmup}, {args.repeats} rounds x "
          f"{args.steps} steps; peak {tflops or '?'} TFLOP/s")
    print(aligned(
        ["model", "images/s", "peak GiB", "model TFLOP/s", "MFU"],
        [[name, f"{r['images_per_s']:.1f}",
          "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}",
          f"{r['model_tflops_per_s']:.2f}", "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"]
         for name, r in results.items()],
    ))
    print(f"target: supernet / dense >= 0.95 (training images/s); supernet / dense: {ratio:.3f}")
    report = report_of(header, argv, args, {"goal": 0.95, "supernet_over_dense": ratio}, macs=macs,
                       arch=arch.to_dict(), peak_tflops=tflops, results=results, supernet_over_dense=ratio,
                       seconds=seconds, when=time.strftime("%Y-%m-%d %H:%M:%S"))
    return save_report(report, args.json)


if __name__ == "__main__":
    main()
