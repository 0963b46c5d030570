"""Benchmark: focusformer's analytic MAC counter against ptflops.

What is measured, per shipped search space (``--spaces``):

* Agreement. For ``--archs`` random archs of the space (capped at
  ``--max-ptflops-archs-large`` for the ImageNet-sized AutoFormer spaces), a dense
  ``space.build_subnet(arch)`` is built with attention as explicit matmuls and counted
  with ``ptflops.get_model_complexity_info(..., backend='aten')``. Reported: the max
  and mean relative difference of ``count_macs(arch, space)`` to ptflops, and whether
  ``count_params(arch, space)`` equals the model's parameter count for every arch.
* Speed, in archs counted per second:
  (a) ``count_macs`` called once per arch in a Python loop (over ``--loop-archs`` archs),
  (b) ``count_macs_batch`` on the encodings of ``--batch-archs`` archs (pre-encoded),
  against ptflops on an already-built model, and ptflops plus building the model (what
  a search loop that used ptflops would pay per arch). The ratios analytic/ptflops are
  printed. Target: analytic counting >= 1000x faster than ptflops.

Timings are interleaved in one process: for each arch, the model build, the ptflops
call, one analytic loop and one batch call are timed back to back, and the median of
each over all archs is reported (the machine is shared and noisy). A warm-up round of
every timed operation runs first. Nothing is asserted; this only prints (and, with
``--json PATH``, saves the figures). The ``target:`` line states both targets: the
analytic MACs equal ptflops's on every arch checked, and the lowest speed ratio.

Why: search scores thousands of archs against MAC budgets, so the counter must be exact
(what a budget means) and far cheaper than building a model and tracing it.

Full run, from the repository root (default: all shipped spaces, 20 archs each, 3 for the
AutoFormer spaces; a few minutes on 2 CPU cores)::

    python -m benchmarks.performance.macs --json macs.json

Quick smoke run::

    python -m benchmarks.performance.macs --spaces digits fashion-mnist autoformer-tiny \
        --archs 5 --max-ptflops-archs-large 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from ptflops import get_model_complexity_info
from timm.layers import Attention, set_fused_attn, use_fused_attn

from benchmarks.lib.machine import print_header, version
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import aligned
from focusformer.config import load_config, shipped_configs
from focusformer.spaces import Arch, SearchSpace
from focusformer.spaces.counts import count_macs, count_macs_batch, count_params
from focusformer.spaces.dense import SubnetViT

#: Spaces with inputs larger than this are ImageNet-sized: ptflops is slow there, so
#: they get at most ``--max-ptflops-archs-large`` archs.
LARGE_IMAGE_SIZE = 64


def ptflops_count(model: torch.nn.Module, space: SearchSpace) -> tuple[int, int]:
    macs, params = get_model_complexity_info(
        model.eval(),
        (space.in_chans, space.image_size, space.image_size),
        as_strings=False,
        backend="aten",
        print_per_layer_stat=False,
        verbose=False,
    )
    return int(macs), int(params)


def build(arch: Arch, space: SearchSpace) -> SubnetViT:
    model = space.build_subnet(arch)
    attns = [m for m in model.modules() if isinstance(m, Attention)]
    if any(m.fused_attn for m in attns):  # a guard on the setup, not on a timing
        raise RuntimeError("model was built with fused attention; ptflops would undercount it")
    return model


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def loop_count(archs: list[Arch], space: SearchSpace) -> list[int]:
    return [count_macs(arch, space) for arch in archs]


def bench_space(name: str, args: argparse.Namespace) -> dict:
    space = load_config(name).space
    large = space.image_size > LARGE_IMAGE_SIZE
    n_archs = min(args.archs, args.max_ptflops_archs_large) if large else args.archs
    rng = np.random.default_rng([args.seed, sum(map(ord, name))])
    archs = [space.sample(rng) for _ in range(n_archs)]
    loop_pool = [space.sample(rng) for _ in range(args.loop_archs)]
    codes = np.stack([space.encode(space.sample(rng)) for _ in range(args.batch_archs)])
    torch.manual_seed(args.seed)

    # Warm-up: one round of every timed operation (first calls pay for imports and dispatch setup).
    warm_model = build(archs[0], space)
    ptflops_count(warm_model, space)
    loop_count(loop_pool, space)
    count_macs_batch(codes, space)
    del warm_model

    t_build, t_ptflops, t_loop, t_batch = [], [], [], []
    rel_diffs, macs_equal, params_equal, ptflops_params_equal = [], 0, 0, 0
    for arch in archs:
        # Interleaved: build, ptflops on the built model, the analytic loop, the batch call.
        dt, model = timed(build, arch, space)
        t_build.append(dt)
        dt, (macs, ptf_params) = timed(ptflops_count, model, space)
        t_ptflops.append(dt)
        dt, _ = timed(loop_count, loop_pool, space)
        t_loop.append(dt / len(loop_pool))
        dt, _ = timed(count_macs_batch, codes, space)
        t_batch.append(dt / len(codes))

        analytic = count_macs(arch, space)
        rel_diffs.append(abs(analytic - macs) / macs)
        macs_equal += analytic == macs
        n_params = sum(p.numel() for p in model.parameters())
        params_equal += count_params(arch, space) == n_params
        ptflops_params_equal += ptf_params == n_params
        del model

    batch_matches_loop = bool(
        (count_macs_batch(codes[:1000], space) == [count_macs(space.decode(c), space) for c in codes[:1000]]).all()
    )
    med = statistics.median
    best = {  # fastest timing of each: less sensitive to other processes on a shared machine
        "ptflops_built": min(t_ptflops),
        "count_macs_loop_per_arch": min(t_loop),
        "count_macs_batch_per_arch": min(t_batch),
    }
    per_s = {
        "count_macs_loop": 1.0 / med(t_loop),
        "count_macs_batch": 1.0 / med(t_batch),
        "ptflops_built": 1.0 / med(t_ptflops),
        "ptflops_plus_build": 1.0 / med([b + p for b, p in zip(t_build, t_ptflops)]),
    }
    return {
        "space": name,
        "archs_checked": n_archs,
        "max_rel_diff": max(rel_diffs),
        "mean_rel_diff": statistics.fmean(rel_diffs),
        "macs_equal_all": macs_equal == n_archs,
        "params_equal": f"{params_equal}/{n_archs}",
        "params_equal_all": params_equal == n_archs,
        "ptflops_params_equal_all": ptflops_params_equal == n_archs,
        "batch_matches_loop": batch_matches_loop,
        "median_seconds": {
            "build": med(t_build),
            "ptflops_built": med(t_ptflops),
            "count_macs_loop_per_arch": med(t_loop),
            "count_macs_batch_per_arch": med(t_batch),
        },
        "min_seconds": best,
        "archs_per_second": per_s,
        "ratios": {
            "loop_vs_ptflops": per_s["count_macs_loop"] / per_s["ptflops_built"],
            "batch_vs_ptflops": per_s["count_macs_batch"] / per_s["ptflops_built"],
            "loop_vs_ptflops_plus_build": per_s["count_macs_loop"] / per_s["ptflops_plus_build"],
            "batch_vs_ptflops_plus_build": per_s["count_macs_batch"] / per_s["ptflops_plus_build"],
            "loop_vs_ptflops_fastest": best["ptflops_built"] / best["count_macs_loop_per_arch"],
        },
    }


def main(argv: list[str] | None = None) -> dict:
    shipped = shipped_configs()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance.macs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", nargs="+", default=shipped, choices=shipped, metavar="NAME",
                        help=f"shipped spaces to measure (default: all of {', '.join(shipped)})")
    parser.add_argument("--archs", type=int, default=20, help="random archs per space checked against ptflops")
    parser.add_argument("--max-ptflops-archs-large", type=int, default=3,
                        help=f"cap on --archs for ImageNet-sized spaces (image_size > {LARGE_IMAGE_SIZE})")
    parser.add_argument("--loop-archs", type=int, default=2000,
                        help="archs per timed count_macs Python loop")
    parser.add_argument("--batch-archs", type=int, default=20000,
                        help="encodings per timed count_macs_batch call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=None, metavar="N",
                        help="call torch.set_num_threads(N) first (default: leave torch's default). On a "
                             "shared machine, N=1 avoids OpenMP oversubscription slowing ptflops's small models")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if min(args.archs, args.max_ptflops_archs_large, args.loop_archs, args.batch_archs) < 1:
        parser.error("--archs, --max-ptflops-archs-large, --loop-archs and --batch-archs must be at least 1")

    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)

    # ptflops's aten backend counts MACs per aten op (mm, addmm, bmm, convolution, ...) and has
    # no rule for the fused scaled_dot_product_attention kernel: with timm's fused attention it
    # would count the q @ k^T and attn @ v matmuls as zero and undercount every ViT. timm reads
    # this flag when an Attention module is constructed, so it is set before any model is built.
    fused_before = use_fused_attn()
    set_fused_attn(False)

    header = print_header("benchmarks.performance.macs", argv, extra=(
        f"ptflops {version('ptflops')}; ptflops and the analytic counters run on the CPU",
        f"timm fused attention: {fused_before} by default, turned off here for ptflops",
    ), what="macs: analytic MAC counts (focusformer.spaces.counts) vs ptflops (aten backend)")
    print()

    start = time.perf_counter()
    results = []
    try:
        for name in args.spaces:
            t0 = time.perf_counter()
            results.append(bench_space(name, args))
            print(f"  {name}: done in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        set_fused_attn(fused_before)
    elapsed = time.perf_counter() - start

    print("\nAgreement with ptflops (relative difference of count_macs to ptflops's MACs)")
    print(aligned(
        ["space", "archs", "max rel diff", "mean rel diff", "count_params == model", "ptflops params == model",
         "batch == loop"],
        [[r["space"], r["archs_checked"], f"{100 * r['max_rel_diff']:.4f}%", f"{100 * r['mean_rel_diff']:.4f}%",
          r["params_equal"], "yes" if r["ptflops_params_equal_all"] else "NO",
          "yes" if r["batch_matches_loop"] else "NO"] for r in results],
    ))

    print("\nSpeed, archs counted per second (median over the archs above; interleaved)")
    print(aligned(
        ["space", "loop/s", "batch/s", "ptflops/s", "ptflops+build/s", "loop:ptflops", "batch:ptflops",
         "loop:(ptf+build)", "batch:(ptf+build)", "loop:ptflops (fastest)"],
        [[r["space"], f"{r['archs_per_second']['count_macs_loop']:,.0f}",
          f"{r['archs_per_second']['count_macs_batch']:,.0f}", f"{r['archs_per_second']['ptflops_built']:,.2f}",
          f"{r['archs_per_second']['ptflops_plus_build']:,.2f}",
          f"{r['ratios']['loop_vs_ptflops']:,.0f}x", f"{r['ratios']['batch_vs_ptflops']:,.0f}x",
          f"{r['ratios']['loop_vs_ptflops_plus_build']:,.0f}x", f"{r['ratios']['batch_vs_ptflops_plus_build']:,.0f}x",
          f"{r['ratios']['loop_vs_ptflops_fastest']:,.0f}x"]
         for r in results],
    ))
    worst = min(r["ratios"]["loop_vs_ptflops"] for r in results)
    checked = sum(r["archs_checked"] for r in results)
    max_diff = max(r["max_rel_diff"] for r in results)
    equal = all(r["macs_equal_all"] for r in results)
    target = {"macs_equal_all": equal, "archs_checked": checked, "max_rel_diff": max_diff,
              "speed_goal": 1000.0, "lowest_loop_vs_ptflops": worst}
    print(f"\ntarget: count_macs equal to ptflops's MACs on every arch checked: "
          f"{'yes' if equal else 'NO'} ({checked} archs, max rel diff {100 * max_diff:.4f}%); "
          f"analytic >= 1000x ptflops: lowest ratio (Python loop vs ptflops on a built model) {worst:,.0f}x")
    print(f"loop = count_macs per arch in a Python loop ({args.loop_archs} archs per timing); "
          f"batch = count_macs_batch on {args.batch_archs} pre-encoded archs per timing.")
    print("Ratios use median timings; '(fastest)' divides the fastest ptflops call by the fastest loop timing.")
    print(f"Total time: {elapsed:.1f} s")

    return save_report(report_of(header, argv, args, target, elapsed_s=elapsed, results=results), args.json)


if __name__ == "__main__":
    main()
