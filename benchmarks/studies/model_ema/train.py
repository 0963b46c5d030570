"""Does a moving average of the weights (``train.model_ema``) help a supernet's subnets?

On fashion-mnist (AutoFormer's space) and vitas-fashion-mnist, 5 epochs, seeds 0-1, each config's
default sampler (focus) and the reward each config had when the study ran (fashion-mnist ``distill``,
the default then, set here since ``loss`` became it; vitas-fashion-mnist ``loss``), with and without
``train.model_ema`` (timm's ModelEmaV3, decay 0.9998 with its warm-up). Runs go to
ROOT/<arm>-s<seed>; run from the repository root:

    python -m benchmarks.studies.model_ema.train ROOT [--lanes 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.lib.jobs import run_jobs, seeded

FMNIST = ["--config", "fashion-mnist", "--set", "focus.reward=distill"]
ARMS = {
    "fmnist-ema": [*FMNIST, "--set", "train.model_ema=true"],
    "fmnist-plain": FMNIST,
    "vitas-ema": ["--config", "vitas-fashion-mnist", "--set", "train.model_ema=true"],
    "vitas-plain": ["--config", "vitas-fashion-mnist"],
}
EPOCHS, SEEDS = 5, (0, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--lanes", type=int, default=2)
    args = parser.parse_args(argv)
    jobs = [job for arm, flags in ARMS.items()
            for job in seeded(args.root, arm, [*flags, "--epochs", str(EPOCHS)], SEEDS)]
    codes = run_jobs(jobs, args.lanes)
    raise SystemExit(max(codes, default=0))


if __name__ == "__main__":
    main()
