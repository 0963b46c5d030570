"""The training runs of the currencies study: what focus saves in supernet epochs and in search time.

Arms (each seeds 0-2, one process of one thread per run, resumable):

* ``vitas-fashion-mnist`` (its config: focus with ``reward: loss``): ``vfocus15`` (focus, 15
  epochs), ``vuniform16``, ``vuniform24``, ``vuniform32`` (uniform sampling, 16 / 24 / 32 epochs);
* ``fashion-mnist`` (AutoFormer's space): ``afocusloss15`` and ``afocusdistill15`` (focus with
  ``reward: loss`` / ``distill``, 15 epochs), ``auniform16`` (uniform, 16 epochs: equal compute).

Runs go to ROOT/<arm>-s<seed>; run from the repository root:

    python -m benchmarks.studies.currencies.train ROOT [--arms vfocus15,vuniform16] [--lanes 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.lib.jobs import run_jobs, seeded

VITAS = ["--config", "vitas-fashion-mnist"]
AUTOFORMER = ["--config", "fashion-mnist"]
ARMS = {
    "vfocus15": [*VITAS, "--sampler", "focus", "--epochs", "15"],
    "vuniform16": [*VITAS, "--sampler", "uniform", "--epochs", "16"],
    "vuniform24": [*VITAS, "--sampler", "uniform", "--epochs", "24"],
    "vuniform32": [*VITAS, "--sampler", "uniform", "--epochs", "32"],
    "afocusloss15": [*AUTOFORMER, "--sampler", "focus", "--set", "focus.reward=loss", "--epochs", "15"],
    "afocusdistill15": [*AUTOFORMER, "--sampler", "focus", "--set", "focus.reward=distill", "--epochs", "15"],
    "auniform16": [*AUTOFORMER, "--sampler", "uniform", "--epochs", "16"],
}
SEEDS = (0, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated (default: all)")
    parser.add_argument("--lanes", type=int, default=2)
    args = parser.parse_args()
    jobs = [job for seed in SEEDS for arm in args.arms.split(",")
            for job in seeded(args.root, arm, [*ARMS[arm], "--checkpoint-every", "100"], [seed])]
    raise SystemExit(max(run_jobs(jobs, args.lanes), default=0))


if __name__ == "__main__":
    main()
