"""The replication study's evaluation: every finished run evaluated alike, as soon as it finishes.

Per run (cached in RUN/eval/ by benchmarks.quality.evaluate, with the currencies study's settings,
so the uniform runs it compares against are not evaluated again): specialize's answers at 8M, 15M
and 25M MACs from 32 uniform draws (1,000 search-val images select; test top-1 on all 10,000);
for the five families also the spread of 32 in-band draws (the test top-1 of the one search-val
ranks first, minus the median of all 32 on the whole test split);
for attentive on ViTAS's space also the 100-subnet cloud's hypervolume. The currencies study's
uniform runs that attentive is compared with (``--supernets``) are evaluated alike for what the
comparison needs. Each evaluated run's figures are recorded (``record.py``) in the repository.

    python -m benchmarks.studies.replication.evaluate ROOT --supernets CURRENCIES_ROOT [--arms A,B] [--watch]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.quality import evaluate
from benchmarks.studies.currencies.evaluate import COMMON
from benchmarks.studies.replication import record
from benchmarks.studies.replication.train import ARMS, SEEDS

FAMILIES = ("autoformer5", "vitas5", "psvit1d5", "psvit2d5", "wide5")
#: The currencies study's arms that attentive is compared with, and what the comparison reads.
BASELINES = {"vuniform16": "draws,cloud", "auniform16": "draws"}


def measures(arm: str) -> str:
    if arm in BASELINES:
        return BASELINES[arm]
    if arm in FAMILIES:
        return "draws,spread"
    return "draws,cloud" if arm == "vattentive8" else "draws"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--supernets", type=Path, required=True, help="the currencies study's ROOT")
    parser.add_argument("--records", type=Path, default=record.RECORDS,
                        help="where each run's figures are recorded (default: the study's results/runs)")
    parser.add_argument("--arms", default=",".join([*ARMS, *BASELINES]),
                        help="comma-separated (default: all); processes given apart arms share no run")
    parser.add_argument("--watch", action="store_true", help="keep evaluating runs as they finish")
    args = parser.parse_args(argv)
    chosen = args.arms.split(",")
    unknown = sorted(set(chosen) - set(ARMS) - set(BASELINES))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join([*ARMS, *BASELINES])}")
    arm_of = {(args.supernets if arm in BASELINES else args.root) / f"{arm}-s{seed}": arm
              for seed in SEEDS for arm in chosen}

    def keep(run: Path, planned: str) -> None:
        record.write_supernet(run, arm_of[run], planned, COMMON, args.records)

    evaluate.evaluate_as_finished({run: measures(arm) for run, arm in arm_of.items()}, COMMON, args.watch,
                                  evaluated=keep)


if __name__ == "__main__":
    main()
