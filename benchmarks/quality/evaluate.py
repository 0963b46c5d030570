"""Quality of trained supernets: one evaluation for a set of runs, summarised over seeds.

Groups of runs (``NAME=RUN,RUN,...``, one run per seed; the first group is the reference) are
evaluated alike, at each budget, with the package's own API, and every measure is cached in
``RUN/eval/`` (keyed by its settings and the checkpoint), so a study evaluated again only computes
what is new. Images that steer training never select or score: the focus reward has its own split,
every selection (specialize, evolution) reads search-val, and every reported top-1 and the cloud's
hypervolume are on the test split.

Measures (``--measures``):

* ``draws``: specialize's answer from ``--candidates`` uniform draws (its ``--draws uniform``,
  rungs included): what a supernet without a trained policy answers;
* ``picks``: specialize's answer from the trained policy (focus runs);
* ``datafree``: specialize's ``--data-free`` answer, nothing scored (focus runs);
* ``sweep``: specialize with each of ``--sweep`` candidate counts, one budget at a time, timed;
* ``evolution``: AutoFormer's evolution search under each budget (``--population`` x
  ``--generations``), timed;
* ``cloud``: ``--cloud`` subnets scored on the test split (its first ``--cloud-images``) and the
  hypervolume of their front;
* ``spread``: ``--candidates`` uniform draws within each budget's band, every one scored on
  search-val and on the whole test split; the test top-1 of the draw search-val ranks first minus
  the draws' median: how much a search within that budget can gain on this supernet, the premise
  of a learned sampler. (The best of the test scores themselves would be biased upward by each
  score's noise.)

Each run's *answer* at a budget is its picks where it has a policy, else its draws: what a user
of that supernet deploys. ``s/epoch`` is the median of the run's epoch times (an epoch that a
stop and resume spans counts the wait; the median leaves it out); it depends on what ran beside.
Printed: one row per run, mean ± sd per group, and every group's paired differences with the
reference (by seed; mean with its 95% t-interval, bold where the interval
excludes zero). Run from the repository root:

    python -m benchmarks.quality.evaluate --runs uniform16=runs/u16-s0,runs/u16-s1 \\
        focus15=runs/f15-s0,runs/f15-s1 --budgets 8M,15M,25M --measures draws,picks,cloud --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lib.machine import machine_header
from benchmarks.lib.output import write_json
from benchmarks.lib.runs import Run, parse_groups
from benchmarks.lib.stats import Summary, paired_by_seed
from benchmarks.lib.tables import markdown
from focusformer.budget import Budget, parse_budgets
from focusformer.sampling.specialize import (
    data_free_answer,
    draw_candidates,
    predictor_from_checkpoint,
    run_rungs,
    sampler_from_checkpoint,
    specialize_all,
    untrained_sampler,
)
from focusformer.search.cloud import checkpoint_id, cloud_archs, macs_range
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.search.pareto import hypervolume
from focusformer.spaces.counts import count_macs

MEASURES = ("draws", "picks", "datafree", "sweep", "evolution", "cloud", "spread")
EVAL_DIR = "eval"


class Evaluation:
    """The measures of one run, each computed once for its settings and cached in ``RUN/eval/``."""

    def __init__(self, run: Run, budgets: list[Budget], args: argparse.Namespace) -> None:
        self.run, self.args = run, args
        self.has_policy = run.sampler == "focus"
        # A budget above the space's largest subnet admits the whole space. It is evaluated at the
        # largest subnet's cost, as specialize answers it, and reported under the budget asked
        # for, so that spaces of different ranges pair at matched budgets. Caches key on the
        # cost evaluated, so one result serves every budget above the largest.
        self.columns = [budget.label for budget in budgets]
        self.budgets = []
        for budget in budgets:
            largest = budget.cost_model(run.config.space).max_cost
            if budget.value > largest:
                print(f"{run.path}: {budget} is above the space's largest subnet; evaluated at {largest:,.0f}")
                budget = Budget(largest, budget.kind)
            self.budgets.append(budget)

    def distinct_budgets(self) -> list[Budget]:
        """The budgets evaluated, each value once: budgets above the largest subnet are all
        evaluated at its cost, and a measure computed per budget computes it once (its results
        are keyed by the budget's label, which the equal budgets share)."""
        return list({budget.value: budget for budget in self.budgets}.values())

    # -- caching --------------------------------------------------------------------------------
    def cached(self, measure: str, settings: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = {"measure": measure, "checkpoint": checkpoint_id(self.run.payload), **settings}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
        path = self.run.path / EVAL_DIR / f"{measure}-{digest}.json"
        if path.is_file():
            return json.loads(path.read_text())["result"]
        result = compute()
        write_json(path, {"settings": key, "result": result})
        return result

    def _test_top1(self, archs: list, images: int | None = None) -> list[float]:
        return self.run.scorer("test", images).score(archs)

    def _answers(self, uniform: bool, candidates: int, budgets: list[Budget]) -> dict[str, Any]:
        """specialize_all on search-val; each answer's test top-1; the wall and CPU seconds of the search."""
        run = self.run
        sampler = untrained_sampler(run.config) if uniform else sampler_from_checkpoint(run.payload, run.config,
                                                                                        str(run.path))
        val = run.scorer("search_val", self.args.val_images)
        wall, cpu = time.perf_counter(), time.process_time()
        found = specialize_all(sampler, budgets, val.score, candidates, self.args.seed, uniform,
                               lambda budget: run_rungs(sampler, budget, run.config))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        tests = self._test_top1([f.best for f in found])
        return {b.label: {"arch": f.best.to_dict(), "macs": count_macs(f.best, run.config.space),
                          "val_top1": f.best_score, "test_top1": t, "scored": len(f.candidates),
                          "seconds": wall, "cpu_seconds": cpu}
                for b, f, t in zip(budgets, found, tests)}

    # -- measures -------------------------------------------------------------------------------
    def draws(self) -> dict[str, Any]:
        settings = {"budgets": [b.value for b in self.budgets], "candidates": self.args.candidates,
                    "val_images": self.args.val_images, "seed": self.args.seed}
        return self.cached("draws", settings, lambda: self._answers(True, self.args.candidates, self.budgets))

    def picks(self) -> dict[str, Any] | None:
        if not self.has_policy:
            return None
        settings = {"budgets": [b.value for b in self.budgets], "candidates": self.args.candidates,
                    "val_images": self.args.val_images, "seed": self.args.seed}
        return self.cached("picks", settings, lambda: self._answers(False, self.args.candidates, self.budgets))

    def datafree(self) -> dict[str, Any] | None:
        if not self.has_policy:
            return None

        def compute() -> dict[str, Any]:
            run = self.run
            sampler = sampler_from_checkpoint(run.payload, run.config, str(run.path))
            predictor = predictor_from_checkpoint(run.payload, run.config)
            answers = {}
            for budget in self.distinct_budgets():
                wall, cpu = time.perf_counter(), time.process_time()
                arch = data_free_answer(sampler, budget, run_rungs(sampler, budget, run.config), predictor)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                answers[budget.label] = {"arch": arch.to_dict(), "macs": count_macs(arch, self.run.config.space),
                                         "test_top1": self._test_top1([arch])[0], "seconds": wall, "cpu_seconds": cpu}
            return answers

        # The answer among the budget's band and its rungs', by the run's predictor (the budget's band
        # alone is the sweep's one candidate).
        return self.cached("datafree", {"budgets": [b.value for b in self.budgets], "rungs": "predictor"}, compute)

    def sweep(self) -> dict[str, Any] | None:
        """Per candidate count and budget (each budget alone, so its time is its own)."""
        if not self.has_policy:
            return None
        counts = [int(k) for k in self.args.sweep.split(",")]

        def compute() -> dict[str, Any]:
            return {str(k): {label: answer for budget in self.distinct_budgets()
                             for label, answer in self._answers(False, k, [budget]).items()} for k in counts}

        settings = {"budgets": [b.value for b in self.budgets], "counts": counts, "val_images": self.args.val_images,
                    "seed": self.args.seed}
        return self.cached("sweep", settings, compute)

    def evolution(self) -> dict[str, Any]:
        config = EvolutionConfig.at_population(self.args.population, self.args.generations)

        def compute() -> dict[str, Any]:
            val = self.run.scorer("search_val", self.args.val_images)
            space, answers = self.run.config.space, {}
            for budget in self.distinct_budgets():
                wall, cpu = time.perf_counter(), time.process_time()
                outcome = evolution_search(space, budget, val.score, config, seed=self.args.seed)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                answers[budget.label] = {"arch": outcome.best.to_dict(), "macs": count_macs(outcome.best, space),
                                         "val_top1": outcome.best_score, "test_top1": self._test_top1([outcome.best])[0],
                                         "scored": outcome.scored, "seconds": wall, "cpu_seconds": cpu}
            return answers

        settings = {"budgets": [b.value for b in self.budgets], "population": config.population,
                    "generations": config.generations, "val_images": self.args.val_images, "seed": self.args.seed}
        return self.cached("evolution", settings, compute)

    def cloud(self) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            space = self.run.config.space
            archs = cloud_archs(space, self.args.cloud, self.args.seed)
            top1 = self._test_top1(archs, self.args.cloud_images)
            points = np.column_stack([[count_macs(a, space) for a in archs], top1])
            return {"hypervolume": hypervolume(points, macs_range(space)),
                    "subnets": [{"macs": int(m), "test_top1": float(t)} for m, t in points]}

        settings = {"size": self.args.cloud, "seed": self.args.seed, "split": "test", "images": self.args.cloud_images}
        return self.cached("cloud", settings, compute)

    def spread(self) -> dict[str, Any]:
        """Per budget: the test top-1 of the in-band draw that search-val ranks first, minus the
        draws' median test top-1. Choosing on search-val keeps the choice's noise out of the score:
        the best of 32 test scores would be biased upward by the noise of each."""
        def scored_draws(key: str, score: Callable[[list], list[float]]) -> Callable[[], dict[str, Any]]:
            """Each budget's in-band uniform draws (the same for every split), scored as ``key``."""
            def compute() -> dict[str, Any]:
                sampler, space, scores = untrained_sampler(self.run.config), self.run.config.space, {}
                for budget in self.distinct_budgets():
                    archs = list(draw_candidates(sampler, budget, self.args.candidates, self.args.seed, uniform=True))
                    scores[budget.label] = {key: score(archs), "macs": [count_macs(a, space) for a in archs]}
                return scores
            return compute

        settings = {"budgets": [b.value for b in self.budgets], "candidates": self.args.candidates,
                    "seed": self.args.seed, "split": "test"}
        on_test = self.cached("spread", settings, scored_draws("test_top1", self._test_top1))
        on_val = self.cached("spread-val", {**settings, "split": "search_val", "val_images": self.args.val_images},
                             scored_draws("val_top1", lambda archs: self.run.scorer("search_val", self.args.val_images)
                                          .score(archs)))
        answers = {}
        for label, test in on_test.items():
            if test["macs"] != on_val[label]["macs"]:  # both caches must hold the same draws
                raise RuntimeError(f"{self.run.path}: the spread's draws at {label} differ between its caches")
            chosen = int(np.argmax(on_val[label]["val_top1"]))
            answers[label] = {"test_top1": test["test_top1"], "val_top1": on_val[label]["val_top1"],
                              "macs": test["macs"], "chosen": chosen,
                              "spread": float(test["test_top1"][chosen] - np.median(test["test_top1"]))}
        return answers


# -- the summary ------------------------------------------------------------------------------------
def run_row(evaluation: Evaluation, measures: list[str]) -> dict[str, float]:
    """The run's figures as flat columns (test top-1 unless named otherwise)."""
    final = evaluation.run.final
    row = {"largest": final["largest"]["test_top1"]}
    results = {m: getattr(evaluation, m)() for m in measures}
    for column, budget in zip(evaluation.columns, evaluation.budgets):
        key = budget.label  # the results' key: the budget evaluated, which a column may name otherwise
        for measure in ("draws", "picks", "datafree", "evolution"):
            if results.get(measure):
                row[f"{column} {measure}"] = results[measure][key]["test_top1"]
        answer = results.get("picks") or results.get("draws")
        if answer:
            row[f"{column} answer"] = answer[key]["test_top1"]
        for measure in ("datafree", "evolution"):
            if results.get(measure):
                row[f"{column} {measure} s"] = results[measure][key]["cpu_seconds"]
        if results.get("sweep"):
            for k, answers in results["sweep"].items():
                row[f"{column} k={k}"] = answers[key]["test_top1"]
                row[f"{column} k={k} s"] = answers[key]["cpu_seconds"]
        if results.get("spread"):
            row[f"{column} spread"] = results["spread"][key]["spread"]
    if results.get("picks"):  # one specialize call answers every budget: its time, once
        row["picks call s"] = next(iter(results["picks"].values()))["cpu_seconds"]
    if results.get("cloud"):
        row["hypervolume"] = results["cloud"]["hypervolume"]
    row["s/epoch"] = float(np.median(evaluation.run.seconds_per_epoch))
    return row


def summarise(rows: dict[str, dict[int, dict[str, float]]]) -> dict[str, Any]:
    """Per group and column: mean ± sd; per group and column, paired differences with the reference."""
    reference = next(iter(rows))
    columns = list(dict.fromkeys(c for group in rows.values() for row in group.values() for c in row))
    summary: dict[str, Any] = {"reference": reference, "groups": {}}
    for name, group in rows.items():
        entry = {"seeds": sorted(group), "columns": {}}
        for column in columns:
            values = {seed: row[column] for seed, row in group.items() if column in row}
            if not values:
                continue
            stats = {"summary": Summary.of(list(values.values()))}
            # The reference's column, or its answer where this group's is picks against its draws.
            base_column = column if column in next(iter(rows[reference].values()), {}) else None
            if name != reference and base_column:
                stats["paired"] = paired_by_seed(values, {s: r[base_column] for s, r in rows[reference].items()
                                                          if base_column in r})
            entry["columns"][column] = stats
        summary["groups"][name] = entry
    return summary


def print_report(rows: dict[str, dict[int, dict[str, float]]], summary: dict[str, Any]) -> None:
    columns = list(dict.fromkeys(c for group in rows.values() for row in group.values() for c in row))
    print("### Per run\n")
    body = [[name, seed, *(f"{row[c]:.4f}" if c == "hypervolume" else
                           f"{row[c]:.2f}" if c in row else "-" for c in columns)]
            for name, group in rows.items() for seed, row in sorted(group.items())]
    print(markdown(["group", "seed", *columns], body))
    print(f"\n### Mean ± sd over seeds; paired differences with {summary['reference']} (by seed; mean "
          "[95% t-interval], bold where it excludes zero)\n")
    body = []
    for name, entry in summary["groups"].items():
        digits = {c: 4 if c == "hypervolume" else 2 for c in columns}
        cells = entry["columns"]
        body.append([name, len(entry["seeds"]),
                     *(cells[c]["summary"].format(digits[c]) if c in cells else "-" for c in columns)])
        if name != summary["reference"]:
            body.append([f"{name} - {summary['reference']}", "",
                         *(cells[c]["paired"].format(digits[c]) if c in cells and "paired" in cells[c] else "-"
                           for c in columns)])
    print(markdown(["group", "n", *columns], body))
    for name, entry in summary["groups"].items():
        answers = [c["paired"] for column, c in entry["columns"].items()
                   if column.endswith(" answer") and "paired" in c]
        if name == summary["reference"] or not answers:
            continue
        better = sum(p.significant and p.mean > 0 for p in answers)
        worse = sum(p.significant and p.mean < 0 for p in answers)
        print(f"\ntarget: {name}'s answers at least {summary['reference']}'s at every budget (paired 95% "
              f"t-intervals): significantly higher at {better}, lower at {worse}, neither at "
              f"{len(answers) - better - worse} of {len(answers)}")


def report_text(rows: dict[str, dict[int, dict[str, float]]], summary: dict[str, Any]) -> str:
    """:func:`print_report`'s tables, as text."""
    text = io.StringIO()
    with redirect_stdout(text):
        print_report(rows, summary)
    return text.getvalue()


def to_json(rows: dict[str, dict[int, dict[str, float]]], summary: dict[str, Any]) -> dict[str, Any]:
    groups = {}
    for name, entry in summary["groups"].items():
        groups[name] = {"seeds": entry["seeds"], "columns": {}}
        for column, stats in entry["columns"].items():
            s = stats["summary"]
            out = {"n": s.n, "mean": s.mean, "sd": s.sd}
            if "paired" in stats:
                p = stats["paired"]
                out["paired"] = {"seeds": list(p.seeds), "diffs": list(p.diffs), "mean": p.mean,
                                 "interval": list(p.interval), "significant": p.significant}
            groups[name]["columns"][column] = out
    return {"reference": summary["reference"], "runs": {n: {str(s): r for s, r in g.items()} for n, g in rows.items()},
            "groups": groups}


def evaluated_report(groups: list[str], measures: list[str], common: list[str], json_path: Path) -> tuple[dict, str]:
    """Evaluate ``groups`` (``NAME=RUN,RUN``; from the runs' caches where they hold the measure) as
    :func:`main` does; its JSON report (also written to ``json_path``) and its printed tables."""
    text = io.StringIO()
    with redirect_stdout(text):
        main(["--runs", *groups, "--measures", ",".join(measures), *common, "--json", str(json_path)])
    return json.loads(json_path.read_text()), text.getvalue()


def measures_key(measures: list[str]) -> str:
    """One name for a set of measures, in any order (a run's row does not depend on their order)."""
    return ",".join(sorted(set(measures), key=MEASURES.index))


@dataclass(frozen=True)
class KeptRows:
    """What a study keeps of one evaluated run, so that its tables can be built once the
    checkpoint is gone: the run's row for each set of measures, exactly as :func:`main` reports it
    (keyed by :func:`measures_key`), and where a budget was evaluated at another cost (one above
    the space's largest subnet)."""

    seed: int
    checkpoint: dict[str, Any]  # focusformer.search.cloud.checkpoint_id
    rows: dict[str, dict[str, float]]
    evaluated_at: dict[str, float]


def keep_rows(path: Path, measures: list[str], common: list[str]) -> KeptRows:
    """The run's rows for every non-empty subset of ``measures``, evaluated with ``common``'s
    settings as :func:`main` evaluates them (from the run's cache where it holds the measure)."""
    args = build_parser().parse_args(["--runs", f"run={path}", *common])
    run, asked = Run.open(path), parse_budgets(args.budgets)
    evaluation = Evaluation(run, asked, args)
    subsets = [list(c) for k in range(1, len(measures) + 1) for c in itertools.combinations(measures, k)]
    moved = {column: budget.value for column, budget, wanted in zip(evaluation.columns, evaluation.budgets, asked)
             if budget.value != wanted.value}
    return KeptRows(seed=run.seed, checkpoint=checkpoint_id(run.payload),
                    rows={measures_key(subset): run_row(evaluation, subset) for subset in subsets},
                    evaluated_at=moved)


def evaluate_as_finished(plan: dict[Path, str], common: list[str], watch: bool, poll_s: float = 300,
                         evaluated: Callable[[Path, str], None] | None = None) -> None:
    """Evaluate each run of ``plan`` (run -> its comma-separated measures) once its training has
    finished (``final.json``), filling its cache, then call ``evaluated(run, measures)`` if given;
    with ``watch``, keep polling until all have."""
    done: set[Path] = set()
    while True:
        for run, measures in plan.items():
            if run not in done and (run / "final.json").is_file():
                print(f"== {run}", flush=True)
                main(["--runs", f"{run.name}={run}", "--measures", measures, *common])
                if evaluated:
                    evaluated(run, measures)
                done.add(run)
        if not watch or len(done) == len(plan):
            return
        time.sleep(poll_s)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN,RUN",
                        help="groups of runs, one per seed; the first group is the reference")
    parser.add_argument("--budgets", required=True, help="MAC budgets, e.g. 8M,15M,25M")
    parser.add_argument("--measures", default="draws,picks,cloud",
                        help=f"comma-separated, of {', '.join(MEASURES)} (default: %(default)s)")
    parser.add_argument("--val-images", type=int, default=1000, help="search-val images that select (default 1000)")
    parser.add_argument("--candidates", type=int, default=32, help="specialize's candidates per budget (default 32)")
    parser.add_argument("--sweep", default="1,2,4,8,16,32", help="candidate counts of the sweep")
    parser.add_argument("--population", type=int, default=50, help="evolution's population (AutoFormer: 50)")
    parser.add_argument("--generations", type=int, default=20, help="evolution's generations (AutoFormer: 20)")
    parser.add_argument("--cloud", type=int, default=100, help="subnets of the test cloud (default 100)")
    parser.add_argument("--cloud-images", type=int, help="score the cloud on the first N test images (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every search and draw (default 0)")
    parser.add_argument("--json", type=Path, help="also write the figures and statistics as JSON here")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    measures = [m for m in args.measures.split(",") if m]
    unknown = sorted(set(measures) - set(MEASURES))
    if unknown:
        parser.error(f"unknown measures {unknown}; choose from {', '.join(MEASURES)}")
    budgets = parse_budgets(args.budgets)

    print("\n".join(machine_header()) + "\n")
    rows: dict[str, dict[int, dict[str, float]]] = {}
    for name, paths in parse_groups(args.runs).items():
        rows[name] = {}
        for path in paths:
            run = Run.open(path)
            if run.seed in rows[name]:
                parser.error(f"group {name}: two runs of seed {run.seed}")
            rows[name][run.seed] = run_row(Evaluation(run, budgets, args), measures)
    summary = summarise(rows)
    print_report(rows, summary)
    if args.json:
        write_json(args.json, to_json(rows, summary))


if __name__ == "__main__":
    main()
