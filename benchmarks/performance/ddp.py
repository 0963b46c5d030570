"""Benchmark: training throughput of focusformer's trainer under torchrun, per process and in total.

Builds the trainer of a shipped config as ``focusformer-train`` does (under torchrun: the process
group, DistributedDataParallel, each rank's share of every global batch), then times ``--steps``
training steps (after ``--warmup`` untimed ones) on the config's real training data; nothing is
written (but ``--json PATH``, the figures). Every process trains the same subnets in the same
order (``--sampler uniform`` by default: training steps only, no candidate scoring), so runs with
different numbers of processes time the same work. Rank 0 prints the world size, the global and
per-process batch, and images/s in total and per process; its ``target:`` line is the throughput
per process (the total over the number of processes), the figure to compare between runs with
different numbers of processes. Without torchrun it runs as one process.

Why: data-parallel training should scale: N processes should each keep most of one process's
images/s, the gradient all-reduce costing little next to a step.

On a 2-core machine, from the repository root, 2 processes of one thread each against 1 process
with both threads (and with one)::

    OMP_NUM_THREADS=1 python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        -m benchmarks.performance.ddp --config fashion-mnist
    OMP_NUM_THREADS=2 python -m benchmarks.performance.ddp --config fashion-mnist
    OMP_NUM_THREADS=1 python -m benchmarks.performance.ddp --config fashion-mnist
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from focusformer.config import load_config
from focusformer.distributed import distributed_session
from focusformer.training.trainer import EpochBatches, Trainer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance.ddp",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="fashion-mnist")
    parser.add_argument("--sampler", default="uniform", choices=["uniform", "focus"])
    parser.add_argument("--sandwich", action="store_true", help="also train the largest and smallest subnet each step")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--json", metavar="PATH", help="rank 0 also saves the results as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    with distributed_session() as ranks, tempfile.TemporaryDirectory() as unused:
        header = print_header("benchmarks.performance.ddp", argv, device=ranks.device, show=ranks.is_main,
                              what="ddp: training images/s of focusformer's trainer, in total and per process")
        config = load_config(args.config, [f"train.sampler={args.sampler}", f"train.sandwich={str(args.sandwich).lower()}",
                                           *args.overrides])
        trainer = Trainer(config, unused, progress=False, ranks=ranks)
        batch = config.train.batch_size
        if args.warmup + args.steps > trainer.steps_per_epoch:
            parser.error(f"--warmup + --steps must fit in one epoch ({trainer.steps_per_epoch} steps)")
        batches = EpochBatches(len(trainer.data.train), batch, seed=config.train.seed, ranks=ranks)
        loader = iter(DataLoader(trainer.data.train, batch_sampler=batches))
        trainer.model.train()
        for _ in range(args.warmup):
            trainer._train_step(*next(loader))
        ranks.any(False)  # start the clock together
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer._train_step(*next(loader))
        ranks.any(False)
        seconds = time.perf_counter() - start
        total = args.steps * batch / seconds
        result = {"config": args.config, "sampler": args.sampler, "world_size": ranks.world_size,
                  "torch_threads": torch.get_num_threads(), "global_batch": batch,
                  "batch_per_process": batch // ranks.world_size, "steps": args.steps, "seconds": seconds,
                  "images_per_s": total, "images_per_s_per_process": total / ranks.world_size}
        target = {"compared": "images/s per process = total images/s / processes",
                  "images_per_s_per_process": total / ranks.world_size, "images_per_s": total,
                  "world_size": ranks.world_size}
        report = report_of(header, argv, args, target, **result)
        if ranks.is_main:
            print(f"{args.config}, {args.sampler}: {ranks.world_size} process(es) x {torch.get_num_threads()} "
                  f"thread(s), global batch {batch} ({batch // ranks.world_size} per process), {args.steps} steps "
                  f"in {seconds:.1f} s: {total:.1f} images/s, {total / ranks.world_size:.1f} per process")
            print(f"target: throughput per process (compare runs with different numbers of processes): "
                  f"{total / ranks.world_size:.1f} images/s per process = {total:.1f} images/s in total / "
                  f"{ranks.world_size} process(es)")
            save_report(report, args.json)
    return report


if __name__ == "__main__":
    main()
