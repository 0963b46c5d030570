"""The replication study's retraining: specialize's picks, fine-tuned and retrained as dense models.

From each of the currencies study's 15-epoch focus supernets on ViTAS's space (``vfocus15``,
seeds 0-2), ``focusformer-specialize`` picks and exports a subnet at 8M, 15M and 25M MACs (32
candidates, 1,000 search-val images; its test top-1 is the inherited figure); each pick is then
fine-tuned for 5 epochs from its inherited weights and retrained for 15 from scratch with
``focusformer-train --subnet`` (training seed = supernet seed), one process of one thread per run,
resumable. Run from the repository root:

    python -m benchmarks.studies.replication.retrain ROOT --supernets CURRENCIES_ROOT [--lanes 2]

Writes ROOT/retrain-s<seed>/: ``picks.json`` (specialize's JSON), ``picks/<budget>/`` (the
exports), ``finetune5-<budget>/`` and ``retrain15-<budget>/`` (the subnet runs), and records each
seed's picks and figures (``record.py``) in the repository as they are made. A budget is a
cap, so a larger budget may answer with the same subnet as a smaller one; such a pick is trained
once, under the smallest budget that picked it (:func:`trained_under`), since the same subnet,
seed and schedule train the same weights.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Sequence

from benchmarks.lib.jobs import TrainJob, run_jobs
from benchmarks.studies.replication import record
from focusformer.budget import parse_budget

SEEDS = (0, 1, 2)
BUDGETS = ("8M", "15M", "25M")
SUPERNET_ARM = "vfocus15"
#: (name, --init, epochs) of each subnet run.
SCHEDULES = (("finetune5", "inherited", 5), ("retrain15", "scratch", 15))


def pick(supernet: Path, folder: Path) -> Path:
    """Specialize's picks of ``supernet``, exported under ``folder/picks``; their JSON's path."""
    picks = folder / "picks.json"
    if not picks.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # specialize exports one subfolder per budget, or to --export itself when given one budget.
        export = folder / "picks" if len(BUDGETS) > 1 else folder / "picks" / BUDGETS[0]
        command = [sys.executable, "-m", "focusformer.cli.specialize", "--checkpoint", str(supernet),
                   "--budgets", ",".join(BUDGETS), "--candidates", "32", "--val-images", "1000", "--json",
                   "--no-progress", "--export", str(export), "--overwrite"]
        found = subprocess.run(command, capture_output=True, text=True, check=False)
        if found.returncode != 0:
            raise SystemExit(f"specialize failed on {supernet}:\n{found.stderr.strip()}")
        picks.write_text(found.stdout)
    return picks


def picks_by_budget(picks: list[dict], budgets: Sequence[str]) -> dict[str, dict]:
    """Each of ``budgets`` (labels such as ``8M``) -> its pick in specialize's JSON ``picks``
    (matched by the budget each pick names); a budget without a pick is an error."""
    by_value = {float(found["budget"]): found for found in picks}
    matched = {}
    for budget in budgets:
        found = by_value.get(parse_budget(budget).value)
        if found is None:
            raise ValueError(f"specialize's picks hold no answer for {budget}")
        matched[budget] = found
    return matched


def trained_under(picks: list[dict], budgets: Sequence[str]) -> dict[str, str]:
    """Each of ``budgets`` -> the budget whose runs train its pick: the smallest budget that picked
    the same arch."""
    matched = picks_by_budget(picks, budgets)
    first: dict[str, str] = {}
    return {budget: first.setdefault(json.dumps(matched[budget]["arch"], sort_keys=True), budget)
            for budget in sorted(budgets, key=lambda label: parse_budget(label).value)}


def subnet_jobs(folder: Path, seed: int) -> list[TrainJob]:
    distinct = sorted(set(trained_under(json.loads((folder / "picks.json").read_text()), BUDGETS).values()),
                      key=BUDGETS.index)
    return [TrainJob(folder / f"{name}-{budget}", ("--subnet", str(folder / "picks" / budget), "--init", init,
                                                   "--epochs", str(epochs), "--seed", str(seed)))
            for name, init, epochs in SCHEDULES for budget in distinct]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--supernets", type=Path, required=True, help="the currencies study's ROOT")
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--records", type=Path, default=record.RECORDS,
                        help="where each seed's figures are recorded (default: the study's results/runs)")
    args = parser.parse_args(argv)
    jobs = []
    for seed in SEEDS:
        supernet = args.supernets / f"{SUPERNET_ARM}-s{seed}"
        if not (supernet / "final.json").is_file():
            print(f"skipped: {supernet} has not finished training", flush=True)
            continue
        folder = args.root / f"retrain-s{seed}"
        pick(supernet, folder)
        record.write_retraining(folder, args.records)
        jobs += subnet_jobs(folder, seed)
    writing = threading.Lock()  # two lanes may finish runs of one seed at once

    def keep(job: TrainJob) -> None:
        with writing:
            record.write_retraining(job.run.parent, args.records)

    raise SystemExit(max(run_jobs(jobs, args.lanes, finished=keep), default=0))


if __name__ == "__main__":
    main()
