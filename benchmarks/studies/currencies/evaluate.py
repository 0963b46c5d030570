"""The currencies study's evaluation: every finished run evaluated alike, as soon as it finishes.

Per run (cached in RUN/eval/ by benchmarks.quality.evaluate): specialize's answers at 8M, 15M and
25M MACs from 32 uniform draws and (focus runs) from the policy, on 1,000 search-val images, each
answer's test top-1 on all 10,000 test images, and a 100-subnet cloud scored on the first 2,000
test images for the hypervolume. The 15-epoch focus supernets on ViTAS's space also get the search
cost measures: the data-free answer, specialize with 1-32 candidates (timed per budget), and
AutoFormer's evolution (population 50, 20 generations: 1,000 subnets per budget, timed).

    python -m benchmarks.studies.currencies.evaluate ROOT [--watch]   # from the repository root

``--watch`` keeps evaluating runs as their training finishes, until every run of the study is
done; without it, the finished runs are evaluated once. The tables come from
``benchmarks/studies/currencies/analyze.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.quality import evaluate
from benchmarks.studies.currencies.train import ARMS, SEEDS

BUDGETS = "8M,15M,25M"
COMMON = ["--budgets", BUDGETS, "--val-images", "1000", "--candidates", "32", "--cloud", "100",
          "--cloud-images", "2000"]


def measures(arm: str) -> str:
    if arm == "vfocus15":
        return "draws,picks,cloud,datafree,sweep,evolution"
    return "draws,picks,cloud" if "focus" in arm else "draws,cloud"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--watch", action="store_true")
    args = parser.parse_args(argv)
    plan = {args.root / f"{arm}-s{seed}": measures(arm) for seed in SEEDS for arm in ARMS}
    evaluate.evaluate_as_finished(plan, COMMON, args.watch)


if __name__ == "__main__":
    main()
