"""Train several supernets side by side, resumably: one process per run, one thread each.

A study names its runs as :class:`TrainJob` (a run directory and the ``focusformer-train``
arguments that make it); :func:`run_jobs` trains them ``lanes`` at a time. A run that finished
(``final.json``) is skipped, one that was cut off (``last.pt``) resumed, so a study started again
after a session ends picks up where it stopped. Each run's output goes to ``RUN.log``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

#: How a job calls the training command: this interpreter's package, whatever checkout it is.
TRAIN = (sys.executable, "-m", "focusformer.cli.train")


@dataclass(frozen=True)
class TrainJob:
    run: Path
    args: tuple[str, ...]  # focusformer-train's arguments, --output aside

    def command(self, train: Sequence[str] = TRAIN) -> list[str]:
        if (self.run / "last.pt").is_file():
            return [*train, "--resume", str(self.run), "--no-progress"]
        return [*train, *self.args, "--output", str(self.run), "--no-progress"]

    @property
    def done(self) -> bool:
        return (self.run / "final.json").is_file()


def run_jobs(jobs: Sequence[TrainJob], lanes: int = 2, train: Sequence[str] = TRAIN,
             finished: Callable[[TrainJob], None] | None = None) -> list[int]:
    """Train every unfinished job, ``lanes`` at a time; their exit codes (0 for skipped ones).
    ``finished(job)``, if given, is called as each job that trains here finishes (from its lane's
    thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(job: TrainJob) -> int:
        if job.done:
            return 0
        job.run.parent.mkdir(parents=True, exist_ok=True)
        command = job.command(train)
        with open(f"{job.run}.log", "a") as log:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode
        if code == 0 and finished is not None:
            finished(job)
        return code

    with ThreadPoolExecutor(max_workers=lanes) as pool:
        return list(pool.map(one, jobs))


def seeded(root: Path, arm: str, args: Sequence[str], seeds: Sequence[int]) -> list[TrainJob]:
    """One job per seed: ``ROOT/<arm>-s<seed>``, trained with ``args --seed <seed>``."""
    return [TrainJob(root / f"{arm}-s{seed}", (*args, "--seed", str(seed))) for seed in seeds]


def finished_runs(root: Path, arm: str, seeds: Sequence[int]) -> list[Path]:
    """The arm's runs (``ROOT/<arm>-s<seed>``) whose training finished; a study cut short is
    reported on what it has."""
    runs = [root / f"{arm}-s{seed}" for seed in seeds]
    return [run for run in runs if (run / "final.json").is_file()]


def train_study(description: str, arms: dict[str, list[str]], seeds: Sequence[int],
                argv: list[str] | None = None, kept: Callable[[str, int], bool] | None = None) -> None:
    """A study's training command line: ``ROOT [--arms A,B] [--lanes N]``; trains each arm's seeds
    (``ROOT/<arm>-s<seed>``, checkpointed every 100 steps), seed by seed, and exits with the worst
    exit code. A run for which ``kept(arm, seed)`` holds (its figures are kept elsewhere) is
    skipped."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("root", type=Path)
    parser.add_argument("--arms", default=",".join(arms), help="comma-separated (default: all)")
    parser.add_argument("--lanes", type=int, default=2, help="runs side by side (default: 2)")
    args = parser.parse_args(argv)
    chosen = args.arms.split(",")
    unknown = sorted(set(chosen) - set(arms))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(arms)}")
    jobs = [job for seed in seeds for arm in chosen if not (kept and kept(arm, seed))
            for job in seeded(args.root, arm, [*arms[arm], "--checkpoint-every", "100"], [seed])]
    if kept and len(jobs) < len(seeds) * len(chosen):
        print(f"{len(seeds) * len(chosen) - len(jobs)} runs skipped: their figures are kept", flush=True)
    raise SystemExit(max(run_jobs(jobs, args.lanes), default=0))
