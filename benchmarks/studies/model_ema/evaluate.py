"""The weight-EMA study's evaluation: specialize's answers at 8M, 15M and 25M MACs (32 uniform
draws, and the trained policy's pick), on 1,000 search-val images, each answer's test top-1, for
every run of ``train.py`` as soon as it finishes (cached in RUN/eval/).

    python -m benchmarks.studies.model_ema.evaluate ROOT [--watch]   # from the repository root
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.quality import evaluate
from benchmarks.studies.model_ema.train import ARMS, SEEDS

COMMON = ["--budgets", "8M,15M,25M", "--val-images", "1000", "--candidates", "32"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--watch", action="store_true")
    args = parser.parse_args(argv)
    plan = {args.root / f"{arm}-s{seed}": "draws,picks" for seed in SEEDS for arm in ARMS}
    evaluate.evaluate_as_finished(plan, COMMON, args.watch)


if __name__ == "__main__":
    main()
