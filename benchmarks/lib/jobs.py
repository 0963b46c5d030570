"""Train several supernets side by side, resumably: one process per run, one thread each.

A study names its runs as :class:`TrainJob` (a run directory and the ``focusformer-train``
arguments that make it); :func:`run_jobs` trains them ``lanes`` at a time. A run that finished
(``final.json``) is skipped, one that was cut off (``last.pt``) resumed, so a study started again
after a session ends picks up where it stopped. Each run's output goes to ``RUN.log``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

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


def run_jobs(jobs: Sequence[TrainJob], lanes: int = 2, train: Sequence[str] = TRAIN) -> list[int]:
    """Train every unfinished job, ``lanes`` at a time; their exit codes (0 for skipped ones)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(job: TrainJob) -> int:
        if job.done:
            return 0
        job.run.parent.mkdir(parents=True, exist_ok=True)
        command = job.command(train)
        with open(f"{job.run}.log", "a") as log:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode

    with ThreadPoolExecutor(max_workers=lanes) as pool:
        return list(pool.map(one, jobs))


def seeded(root: Path, arm: str, args: Sequence[str], seeds: Sequence[int]) -> list[TrainJob]:
    """One job per seed: ``ROOT/<arm>-s<seed>``, trained with ``args --seed <seed>``."""
    return [TrainJob(root / f"{arm}-s{seed}", (*args, "--seed", str(seed))) for seed in seeds]
