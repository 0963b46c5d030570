"""Benchmark: wall-clock cost of the focus sampler over uniform sampling, same recipe, one process.

Builds one trainer per sampler on the same config and alternates chunks of training steps
between them (so machine noise hits both alike). The focus trainer is forced to steer from
its first update (``min_tau=-1``, no warm-up), so every cost of the method is paid: best-of-k
proposals, candidate scoring, predictor fits and policy updates. Prints per sampler the
seconds per step, the share of it spent inside the sampler (choosing archs and learning), the
mean MACs of the trained subnets (log-uniform budgets and uniform arch sampling train subnets
of different sizes, which changes the step time for reasons other than overhead) and the ratio.
With ``--samplers uniform,focus,attentive`` the attentive sampler is timed too; its own share
is mostly the no-gradient forward passes that score its candidates on each minibatch.
``inband`` is uniform sampling under focus's budget distribution: each step a budget drawn as
focus draws it (log-uniform over the MAC range by default) and a uniform draw within its band,
with none of focus's learning (its strategy gets no scorer). Against it, focus's ratio is the
cost of choosing and learning alone, at the same budgets; against plain uniform, the cost of the
budget distribution is included.

The ``target:`` line prints each sampler's wall-clock time per step over the first one's
(uniform by default); for focus over uniform the goal is at most 10% more, 1.10, and focus's own
share of its step is printed beside it. Nothing is asserted; this only prints (and, with
``--json PATH``, saves the figures).

Why: the focus sampler earns its better subnets only if choosing and learning them costs little
next to the training steps it steers.

Run, from the repository root::

    python -m benchmarks.performance.focus_overhead --config fashion-mnist --steps 400 --chunk 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import markdown
from focusformer.config import load_config
from focusformer.training.trainer import Trainer


class Timed:
    """Wraps a trainer's strategy to time its own work."""

    def __init__(self, strategy) -> None:
        self.strategy, self.seconds, self.macs = strategy, 0.0, []

    def wrap(self, space) -> None:
        strategy, archs_for_step, after_step = self.strategy, self.strategy.archs_for_step, self.strategy.after_step

        def timed_archs(step, minibatch_loss=None):
            start = time.perf_counter()
            archs = archs_for_step(step, minibatch_loss)
            self.seconds += time.perf_counter() - start
            self.macs += [space.count(a, "macs") for a in archs]
            return archs

        def timed_after(step):
            start = time.perf_counter()
            after_step(step)
            self.seconds += time.perf_counter() - start

        strategy.archs_for_step, strategy.after_step = timed_archs, timed_after


def batches_forever(dataset, batch_size: int):
    generator = torch.Generator().manual_seed(0)
    while True:
        yield from torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                               generator=generator)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance.focus_overhead",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=400, help="training steps per sampler")
    parser.add_argument("--chunk", type=int, default=100, help="steps per turn before switching sampler")
    parser.add_argument("--samplers", default="uniform,focus")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a config override for every sampler's trainer (as focusformer-train's), e.g. "
                             "focus.reward=distill; repeatable")
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.chunk < 1:
        parser.error("--steps and --chunk must be at least 1")
    names = args.samplers.split(",")
    header = print_header("benchmarks.performance.focus_overhead", argv, what="focus_overhead: wall-clock per "
                          "training step of each sampler, alternating chunks in one process")
    with tempfile.TemporaryDirectory() as tmp:
        trainers, timers, totals = {}, {}, {name: 0.0 for name in names}
        for name in names:
            extra = ["focus.min_tau=-1", "focus.warmup_fraction=0"] if name == "focus" else []
            sampler = "focus" if name == "inband" else name
            config = load_config(args.config, [*args.overrides, f"train.sampler={sampler}", *extra])
            trainer = Trainer(config, f"{tmp}/{name}", progress=False)
            if name == "inband":
                trainer.strategy.score = None  # never measures, so never learns or steers
            timers[name] = Timed(trainer.strategy)
            timers[name].wrap(config.space)
            trainers[name] = (trainer, batches_forever(trainer.data.train, config.train.batch_size))
        done = 0
        while done < args.steps:
            n = min(args.chunk, args.steps - done)
            for name in names:
                trainer, batches = trainers[name]
                start = time.perf_counter()
                for _ in range(n):
                    images, labels = next(batches)
                    trainer._train_step(images, labels)
                totals[name] += time.perf_counter() - start
            done += n
    print(f"config {args.config}, {args.steps} steps per sampler in chunks of {args.chunk}, "
          f"torch threads {torch.get_num_threads()}")
    references = [names[0]] + (["inband"] if "inband" in names[1:] else [])
    results = [{"sampler": name, "seconds_per_step": totals[name] / args.steps,
                "own_share": timers[name].seconds / totals[name],
                "mean_macs_trained": statistics.mean(timers[name].macs),
                "time_over": {ref: totals[name] / totals[ref] for ref in references}} for name in names]
    print(markdown(
        ["sampler", "s/step", "sampler's own share", "mean MACs trained", *(f"time / {ref}" for ref in references)],
        [[r["sampler"], f"{r['seconds_per_step']:.3f}", f"{r['own_share']:.1%}", f"{r['mean_macs_trained'] / 1e6:.1f}M",
          *(f"{r['time_over'][ref]:.3f}" for ref in references)] for r in results],
    ))
    by_name = {r["sampler"]: r for r in results}
    reference = names[0]
    measured = [name for name in names if name != reference]
    target = {"reference": reference, "goal": 1.10 if reference == "uniform" else None,
              "time_over_reference": {name: by_name[name]["time_over"][reference] for name in measured},
              "own_share": {name: by_name[name]["own_share"] for name in measured}}
    goal = " (goal for focus over uniform: <= 1.10, at most 10% wall-clock)" if reference == "uniform" else ""
    print(f"target: time per step over {reference}'s{goal}: "
          + ("; ".join(f"{name} {by_name[name]['time_over'][reference]:.3f} (its own share "
                       f"{by_name[name]['own_share']:.1%})" for name in measured) or "no other sampler timed"))
    return save_report(report_of(header, argv, args, target, results=results), args.json)


if __name__ == "__main__":
    main()
