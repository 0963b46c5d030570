"""Run a study's training runs and their front measurements as parallel jobs, on one GPU or CPU.

Each job trains one run with ``focusformer-train`` (skipped when its ``final.json`` exists)
and then measures it with ``bench_families.py`` (uniform in-band draws at each budget, every
candidate's search-val and test top-1: the best by search-val and the spread). Jobs run
``--jobs`` at a time, longest first; each writes ``RUN/train.log``, ``RUN/bench.log`` and
``RUN/bench.json``. Tiny ViTs leave a GPU mostly idle, waiting on kernel launches from
Python, so several processes share one GPU well.

The studies (``--study``):

* ``vitas-recipe`` (issue #23): ``vitas-fashion-mnist`` with one mechanism changed at a time
  against the pre-#23 space (left weight sharing, no minimum depth), 2 seeds, 5 epochs;
  ``fashion-mnist`` (AutoFormer) trained the same way; equal compute at 10 epochs (a bilateral
  step runs two passes); the recipe at 15 epochs against AutoFormer at 15 and 30.
* ``vitas-gap`` (issue #23, after the recipe landed): what still holds the shipped
  ``vitas-fashion-mnist`` (shared q/k, minimum depth 1, left sharing) below AutoFormer: one
  patch size (``[4]``, AutoFormer's), no identity layers, then both; 2 seeds, 5 epochs, beside
  ``autoformer-5ep`` (``--study vitas-gap vitas-recipe --only vitas-default autoformer-5ep``).
* ``spread`` (issue #24 section 1): the within-budget spread of the candidate spaces on uniform
  supernets, 2 seeds, 5 epochs.

Run (benchmarks/RESULTS.md gives the results)::

    python benchmarks/gpu_study.py --study vitas-recipe spread --root runs/gpu --jobs 12
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGETS = "8M,15M,25M"

#: ``space`` settings of the pre-#23 ViTAS space, and of each single change from it.
VITAS_BEFORE = ("space.weight_sharing=left", "space.min_depth=0")
VITAS_RECIPE = ("space.weight_sharing=bilateral", "space.min_depth=1")


@dataclass(frozen=True)
class Job:
    name: str
    config: str
    epochs: int
    seed: int
    settings: tuple[str, ...] = ()
    target_budgets: str = ""

    @property
    def cost(self) -> float:
        """Rough relative run time, to start the longest jobs first."""
        return self.epochs * (2 if "space.weight_sharing=bilateral" in self.settings else 1)

    def train_command(self, run: Path, data_dir: str | None) -> list[str]:
        config = HERE.parent / "configs" / f"{self.config}.yaml"  # a path: works without an install
        command = [sys.executable, "-m", "focusformer.cli.train", "--config", str(config), "--epochs",
                   str(self.epochs), "--seed", str(self.seed), "--sampler", "uniform", "--output", str(run),
                   "--no-progress", "--overwrite"]
        if self.target_budgets:
            command += ["--target-budgets", self.target_budgets]
        if data_dir:
            command += ["--data-dir", data_dir]
        for setting in self.settings:
            command += ["--set", setting]
        return command


def vitas_recipe_jobs(seeds: tuple[int, ...]) -> list[Job]:
    vitas = "vitas-fashion-mnist"
    rows = {
        "vitas-before": VITAS_BEFORE,
        "vitas-bilateral": ("space.weight_sharing=bilateral", "space.min_depth=0"),
        "vitas-shared-qk": VITAS_BEFORE + ("space.private_qk=false",),
        "vitas-min-depth": ("space.weight_sharing=left", "space.min_depth=1"),
        "vitas-cutmix": VITAS_BEFORE + ("train.cutmix=1.0",),
        "vitas-recipe": VITAS_RECIPE,
        # measured after the first round: the two strongest single levers together, left and bilateral
        "vitas-shared-qk-min-depth": ("space.weight_sharing=left", "space.min_depth=1", "space.private_qk=false"),
        "vitas-bilateral-shared-qk-min-depth": VITAS_RECIPE + ("space.private_qk=false",),
    }
    jobs = [Job(f"{name}-5ep-s{s}", vitas, 5, s, settings) for name, settings in rows.items() for s in seeds]
    jobs += [Job(f"vitas-recipe-budgets-5ep-s{s}", vitas, 5, s, VITAS_RECIPE, BUDGETS) for s in seeds]
    jobs += [Job(f"autoformer-{e}ep-s{s}", "fashion-mnist", e, s) for e in (5, 10, 15, 30) for s in seeds]
    jobs += [Job(f"vitas-before-10ep-s{s}", vitas, 10, s, VITAS_BEFORE) for s in seeds]
    jobs += [Job(f"vitas-recipe-15ep-s{s}", vitas, 15, s, VITAS_RECIPE) for s in seeds]
    jobs += [Job(f"vitas-recipe-budgets-15ep-s{s}", vitas, 15, s, VITAS_RECIPE, BUDGETS) for s in seeds]
    return jobs


def vitas_gap_jobs(seeds: tuple[int, ...]) -> list[Job]:
    rows = {
        "vitas-default": (),
        "vitas-default-patch4": ("space.patch_size=[4]",),
        "vitas-default-no-identity": ("space.identity=false",),
        "vitas-default-patch4-no-identity": ("space.patch_size=[4]", "space.identity=false"),
    }
    return [Job(f"{name}-5ep-s{s}", "vitas-fashion-mnist", 5, s, settings) for name, settings in rows.items()
            for s in seeds]


def spread_jobs(seeds: tuple[int, ...]) -> list[Job]:
    return [Job(f"{config}-5ep-s{s}", config, 5, s) for config in ("psvit-1d-fashion-mnist", "wide-fashion-mnist")
            for s in seeds]


STUDIES = {"vitas-recipe": vitas_recipe_jobs, "vitas-gap": vitas_gap_jobs, "spread": spread_jobs}


def run_job(job: Job, root: Path, data_dir: str | None, candidates: int, deadline: float) -> str:
    run = root / job.name
    run.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.time()
    if not (run / "final.json").is_file():
        with open(run / "train.log", "w") as log:
            code = run_logged(job.train_command(run, data_dir), log, env, deadline)
        if code != 0:
            return f"{job.name}: training failed ({code}) after {time.time() - started:.0f}s"
    trained = time.time()
    bench = [sys.executable, str(HERE / "bench_families.py"), "--runs", f"{job.name}={run}", "--budgets", BUDGETS,
             "--draws", "inband", "--spread", "--candidates", str(candidates), "--val-images", "1000",
             "--json", str(run / "bench.json")]
    with open(run / "bench.log", "w") as log:
        code = run_logged(bench, log, env, deadline)
    status = "ok" if code == 0 else f"bench failed ({code})"
    return f"{job.name}: {status}; train {trained - started:.0f}s, bench {time.time() - trained:.0f}s"


def run_logged(command: list[str], log, env: dict, deadline: float) -> int:
    remaining = deadline - time.time()
    if remaining <= 0:
        return 124
    log.write(" ".join(command) + "\n")
    log.flush()
    try:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=remaining).returncode
    except subprocess.TimeoutExpired:
        return 124


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", nargs="+", choices=sorted(STUDIES), required=True)
    parser.add_argument("--root", type=Path, default=Path("runs/gpu"))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=8, help="jobs at a time")
    parser.add_argument("--candidates", type=int, default=64, help="in-band draws per budget")
    parser.add_argument("--data-dir", help="where Fashion-MNIST lives (default: the dataset's usual place)")
    parser.add_argument("--only", nargs="*", help="run only the jobs whose names contain one of these")
    parser.add_argument("--epochs", type=int, help="override every job's epochs (smoke tests)")
    parser.add_argument("--time-limit", type=float, default=float("inf"), help="seconds; unfinished jobs stop")
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    jobs = [job for study in args.study for job in STUDIES[study](seeds)]
    if args.only:
        jobs = [job for job in jobs if any(key in job.name for key in args.only)]
    if args.epochs:
        jobs = [Job(j.name, j.config, args.epochs, j.seed, j.settings, j.target_budgets) for j in jobs]
    jobs.sort(key=lambda job: -job.cost)
    started = time.time()
    deadline = started + args.time_limit
    print(f"{len(jobs)} jobs, {args.jobs} at a time -> {args.root}", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_job, job, args.root, args.data_dir, args.candidates, deadline) for job in jobs]
        for future in as_completed(futures):
            print(f"[{time.time() - started:.0f}s] {future.result()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
