"""Benchmark: supernets trained by different samplers, searched the same way, over seeds.

It separates the effect of *training* from the effect of *search*: every run, whatever
sampler trained it, is evaluated by the same procedures:

* a shared cloud of ``--cloud`` subnets (smallest, largest, seeded uniform samples) scored on
  ``--val-images`` search-val images: the hypervolume of its front (the cloud is cached in
  RUN/results/, as ``focusformer-plot`` does);
* per budget, the same evolution search (AutoFormer's settings by default: population 50,
  20 generations) on search-val, and the test top-1 (10,000 images) of its winner;
* for runs with a learned sampler (focus), also ``focusformer-specialize``'s pick (its default
  rungs: candidates shared with the bands of cheaper budgets);
* with ``--uniform-draws``, for every run the same check with an untrained sampler: the best on
  search-val of ``--candidates`` distinct uniform draws within the bands of each budget and its
  rungs, and its test top-1. Against specialize on the same supernet it measures what the
  learned policy adds; against evolution, what a full search adds over a few in-band draws
  (cached in RUN/results/uniform-draws-*.json);
* with ``--common``, the search's noise taken out: per budget, every run's evolution winner (the
  union over all runs given) is scored on every supernet on the test images, and each run is
  summarised by its mean over that common set. Every supernet is then judged on the same
  subnets and images, so a paired difference reflects training alone, not which winner a noisy
  search happened to pick (scores cached per arch in RUN/results/common-*.json).

Runs are given as groups, ``name=RUN,RUN,...``, one run per seed; the first group is the
reference, and every other group is paired with it by seed: the mean paired difference and
its standard error (std of the differences / sqrt(pairs)). Runs whose summary.csv has a learned
sampler's columns (focus) also get their mechanics: steered share, predictor tau, entropy as a
share of the uniform policy's, distinct archs per 100 proposals, reward spread and SE. Per-run results are cached in
RUN/results/bench-*.json, so adding runs does not redo finished ones. Nothing is asserted.

    python benchmarks/bench_focus_vs_uniform.py \\
        --runs uniform=runs/focus9/uniform-s0,runs/focus9/uniform-s1,runs/focus9/uniform-s2 \\
               focus=runs/focus9/focus-s0,runs/focus9/focus-s1,runs/focus9/focus-s2 \\
        --budgets 8M,15M,25M --cloud 100 --val-images 1000 --common --plot benchmarks/pareto-focus-vs-uniform.png
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
from dataclasses import asdict
from pathlib import Path

import numpy as np

from focusformer.budget import Budget, parse_budgets
from focusformer.config import Config
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.plot import RunSeries, draw_figure
from focusformer.sampling.specialize import run_rungs, sampler_from_checkpoint, specialize, untrained_sampler
from focusformer.search.cloud import checkpoint_id, load_or_score_cloud, macs_range
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.search.pareto import hypervolume
from focusformer.search.results import SearchResult
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, load_supernet

METRICS = ("evolution", "specialized")


def settings_key(settings: dict) -> str:
    """A short stable name for a cache file: what it was computed from, hashed."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_scorers(run: Path, config: Config, val_images: int) -> tuple[CandidateScorer, CandidateScorer]:
    """The run's supernet as a scorer on its first ``val_images`` search-val images, and on test."""
    device = default_device()
    supernet = load_supernet(run).to(device)
    splits = load_data(config.data, config.space, config.train)
    batch = config.train.eval_batch_size
    return (CandidateScorer(supernet, splits.search_val, device, batch, val_images),
            CandidateScorer(supernet, splits.test, device, batch))


def evaluate_run(run: Path, budgets: list[Budget], args: argparse.Namespace) -> dict:
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    if payload["epoch"] != config.train.epochs:
        raise SystemExit(f"{run}: not finished ({payload['epoch']} of {config.train.epochs} epochs)")
    evolution = EvolutionConfig(population=args.population, generations=args.generations,
                                parents=min(10, args.population))
    settings = {"budgets": [b.value for b in budgets], "cloud": args.cloud, "val_images": args.val_images,
                "evolution": asdict(evolution), "candidates": args.candidates, "checkpoint": checkpoint_id(payload),
                "specialize_rungs": "auto"}
    cache = run / "results" / f"bench-{settings_key(settings)}.json"
    if cache.is_file():
        return json.loads(cache.read_text())

    space = config.space
    cloud, _, _ = load_or_score_cloud(run, config, checkpoint_id(payload), "search-val", args.cloud, 0,
                                      args.val_images, progress=False)
    val, test = run_scorers(run, config, args.val_images)
    sampler = None
    if config.train.sampler == "focus" and payload["strategy"].get("policy_updates"):
        sampler = sampler_from_checkpoint(payload, config, str(run))
    row = {"run": str(run), "seed": config.train.seed, "sampler": config.train.sampler,
           "hypervolume": hypervolume(cloud.points(), macs_range(space)), "budgets": {}}
    for budget in budgets:
        found = evolution_search(space, budget, val.score, evolution, seed=0, progress=not args.no_progress)
        entry = {"evolution": test.score([found.best])[0], "evolution_val": found.best_score,
                 "evolution_macs": count_macs(found.best, space), "evolution_arch": found.best.to_dict()}
        if sampler is not None:
            picked = specialize(sampler, budget, val.score, args.candidates, seed=0,
                                rungs=run_rungs(sampler, budget, config))
            entry.update(specialized=test.score([picked.best])[0], specialized_macs=count_macs(picked.best, space))
        row["budgets"][budget.label] = entry
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(row, indent=2) + "\n")
    return row


def uniform_draws(run: Path, budgets: list[Budget], args: argparse.Namespace) -> dict[str, float]:
    """Per budget label, the test top-1 of specialize's pick among uniform in-band draws."""
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    settings = {"budgets": [b.value for b in budgets], "val_images": args.val_images, "candidates": args.candidates,
                "band": config.focus.band, "checkpoint": checkpoint_id(payload), "specialize_rungs": "auto"}
    cache = run / "results" / f"uniform-draws-{settings_key(settings)}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    val, test = run_scorers(run, config, args.val_images)
    sampler = untrained_sampler(config)
    picks = {b.label: specialize(sampler, b, val.score, args.candidates, seed=0, uniform=True,
                                 rungs=run_rungs(sampler, b, config)).best for b in budgets}
    result = dict(zip(picks, test.score(list(picks.values()))))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_uniform_draws(rows: dict[str, list[dict]], budgets: list[Budget], args: argparse.Namespace) -> None:
    """Specialize's pick among uniform in-band draws, against each run's own specialized pick
    (what the learned policy adds, same supernet) and the first group's evolution winner."""
    labels = [b.label for b in budgets]
    draws = {name: {r["seed"]: uniform_draws(Path(r["run"]), budgets, args) for r in mine}
             for name, mine in rows.items()}
    reference_name = next(iter(rows))
    evolution = {r["seed"]: {b: r["budgets"][b]["evolution"] for b in labels} for r in rows[reference_name]}
    print(f"\nuniform draws: the best on search-val of {args.candidates} distinct uniform draws within each "
          "budget's band (specialize with an untrained sampler), its test top-1; mean ± std over seeds; "
          "paired differences mean ± SE:\n")
    print("| method | seeds | " + " | ".join(f"{b} uniform draws" for b in labels) + " |")
    print("|" + "---|" * (2 + len(labels)))
    for name, mine in rows.items():
        per_seed = draws[name]
        print(f"| {name} | {len(per_seed)} | "
              + " | ".join(mean_std([d[b] for d in per_seed.values()]) for b in labels) + " |")
        pairs, cells = paired_by_seed(per_seed, evolution, labels)
        print(f"| {name} uniform draws - {reference_name} evolution | {pairs} pairs | " + " | ".join(cells) + " |")
        specialized = {r["seed"]: {b: r["budgets"][b]["specialized"] for b in labels}
                       for r in mine if all("specialized" in r["budgets"][b] for b in labels)}
        if specialized:
            pairs, cells = paired_by_seed(specialized, per_seed, labels)
            print(f"| {name} specialized - {name} uniform draws | {pairs} pairs | " + " | ".join(cells) + " |")


def arch_key(arch_dict: dict) -> str:
    return json.dumps(arch_dict, sort_keys=True)


def common_set(rows: dict[str, list[dict]], budgets: list[Budget]) -> dict[str, list[dict]]:
    """Per budget label, the distinct evolution winners of every run, in a fixed order."""
    common = {}
    for b in budgets:
        found = {arch_key(r["budgets"][b.label]["evolution_arch"]): r["budgets"][b.label]["evolution_arch"]
                 for mine in rows.values() for r in mine}
        common[b.label] = [found[k] for k in sorted(found)]
    return common


def score_common(run: Path, common: dict[str, list[dict]]) -> dict[str, float]:
    """Test top-1 of every arch of the common set on this run's supernet, cached per arch."""
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    cache = run / "results" / f"common-{settings_key(checkpoint_id(payload))}.json"
    scores = json.loads(cache.read_text()) if cache.is_file() else {}
    wanted = {arch_key(a): a for archs in common.values() for a in archs}
    missing = [k for k in sorted(wanted) if k not in scores]
    if missing:
        device = default_device()
        supernet = load_supernet(run).to(device)
        splits = load_data(config.data, config.space, config.train)
        test = CandidateScorer(supernet, splits.test, device, config.train.eval_batch_size)
        archs = [config.space.arch_from_dict(wanted[k]) for k in missing]
        scores.update(zip(missing, test.score(archs)))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(scores, indent=1) + "\n")
    return {label: statistics.mean(scores[arch_key(a)] for a in archs) for label, archs in common.items()}


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def paired(values: list[float], reference: list[float], digits: int = 2) -> str:
    """Mean paired difference ± its SE, bold beyond 2 SE, and how many pairs are positive."""
    diffs = [a - b for a, b in zip(values, reference)]
    if len(diffs) < 2:
        return "-" if not diffs else f"{diffs[0]:+.{digits}f}"
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / len(diffs) ** 0.5
    text = f"{mean:+.{digits}f} ± {se:.{digits}f}"
    if abs(mean) > 2 * se:
        text = f"**{text}**"
    return f"{text} ({sum(d > 0 for d in diffs)}/{len(diffs)} > 0)"


def paired_by_seed(mine: dict[int, dict[str, float]], reference: dict[int, dict[str, float]],
                   labels: list[str]) -> tuple[int, list[str]]:
    """How many seeds both have, and per label their paired difference (see ``paired``)."""
    seeds = [seed for seed in mine if seed in reference]
    return len(seeds), [paired([mine[s][label] for s in seeds], [reference[s][label] for s in seeds])
                        for label in labels]


def parse_groups(specs: list[str]) -> dict[str, list[Path]]:
    """``name=RUN,RUN,...`` arguments as {name: runs}."""
    groups = {}
    for spec in specs:
        name, _, runs = spec.partition("=")
        groups[name] = [Path(r) for r in runs.split(",") if r]
    return groups


def front_slope(run: Path, args: argparse.Namespace) -> float:
    """Top-1 points gained per doubling of MACs: a least-squares line through the run's cloud."""
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    cloud, _, _ = load_or_score_cloud(run, config, checkpoint_id(payload), "search-val", args.cloud, 0,
                                      args.val_images, progress=False)
    return float(np.polyfit(np.log2(cloud.macs), cloud.top1, 1)[0])


#: summary.csv columns of a learned sampler's mechanics (issue #9), shown per run when present.
MECHANICS = ("steered_share", "predictor_tau", "sampler_entropy", "distinct_per_100", "budget_hit_rate",
             "reward_spread", "reward_se")


def mechanics(run: Path) -> dict[str, float] | None:
    """Means over the last five epochs of the run's sampler columns; None without them (uniform)."""
    with open(run / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[-5:]
    if not rows or MECHANICS[0] not in rows[0]:
        return None
    means = {}
    for column in MECHANICS:
        values = [float(row[column]) for row in rows if row.get(column) not in (None, "", "nan")]
        means[column] = statistics.mean(values) if values else float("nan")
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN,RUN,...",
                        help="one group per method, its runs one per seed; the first group is the reference")
    parser.add_argument("--budgets", default="8M,15M,25M")
    parser.add_argument("--cloud", type=int, default=100)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=32, help="specialize's candidates (focus runs)")
    parser.add_argument("--common", action="store_true",
                        help="also score every run's evolution winners on every supernet (search noise removed)")
    parser.add_argument("--save-common", type=Path, metavar="FILE",
                        help="with --common: also write the common set (per budget, its archs) to FILE as JSON, "
                             "a probe set for bench_recipes.py")
    parser.add_argument("--uniform-draws", action="store_true",
                        help="also specialize every run with an untrained sampler (uniform draws within each band)")
    parser.add_argument("--plot", type=Path, help="figure: every group's fronts over seeds, budgets marked")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.save_common and not args.common:
        parser.error("--save-common needs --common")
    budgets = parse_budgets(args.budgets)
    groups = parse_groups(args.runs)

    rows = {name: sorted((evaluate_run(run, budgets, args) for run in runs), key=lambda r: r["seed"])
            for name, runs in groups.items()}
    print(f"device {default_device()}; cloud {args.cloud}, {args.val_images} search-val images; evolution "
          f"{args.population} x {args.generations}; test top-1 (%) of each search's winner\n")
    header = "| method | seed | hypervolume | " + " | ".join(
        f"{b.label} evolution | {b.label} specialized" for b in budgets) + " |"
    print(header)
    print("|" + "---|" * (3 + 2 * len(budgets)))
    for name, mine in rows.items():
        for r in mine:
            cells = [f"{r['budgets'][b.label][m]:.2f}" if m in r["budgets"][b.label] else "-"
                     for b in budgets for m in METRICS]
            print(f"| {name} | {r['seed']} | {r['hypervolume']:.4f} | " + " | ".join(cells) + " |")
    print("\nhow flat each front is: top-1 points per doubling of MACs, a line fitted through the cloud; "
          "mean ± std over seeds:\n")
    for name, runs in groups.items():
        print(f"- {name}: {mean_std([front_slope(run, args) for run in runs])}")
    print("\nmean ± std over seeds; paired difference against the first group, mean ± SE over seeds:\n")
    print("| method | seeds | hypervolume | " + " | ".join(f"{b.label} evolution" for b in budgets)
          + " | " + " | ".join(f"{b.label} specialized" for b in budgets) + " |")
    print("|" + "---|" * (3 + 2 * len(budgets)))
    reference_name = next(iter(rows))
    reference = {r["seed"]: r for r in rows[reference_name]}
    for name, mine in rows.items():
        hv = [r["hypervolume"] for r in mine]
        evo = [[r["budgets"][b.label]["evolution"] for r in mine] for b in budgets]
        spec = [[r["budgets"][b.label]["specialized"] for r in mine if "specialized" in r["budgets"][b.label]]
                for b in budgets]
        print(f"| {name} | {len(mine)} | {statistics.mean(hv):.4f} | " + " | ".join(mean_std(v) for v in evo)
              + " | " + " | ".join(mean_std(v) for v in spec) + " |")
        if name == reference_name:
            continue
        pairs = [r for r in mine if r["seed"] in reference]
        ref = [reference[r["seed"]] for r in pairs]
        cells = [paired([r["hypervolume"] for r in pairs], [r["hypervolume"] for r in ref], 4)]
        for b in budgets:
            cells.append(paired([r["budgets"][b.label]["evolution"] for r in pairs],
                                [x["budgets"][b.label]["evolution"] for x in ref]))
        for b in budgets:
            have = [(r, x) for r, x in zip(pairs, ref) if "specialized" in r["budgets"][b.label]]
            cells.append(paired([r["budgets"][b.label]["specialized"] for r, _ in have],
                                [x["budgets"][b.label]["evolution"] for _, x in have]))
        print(f"| {name} - {reference_name} | {len(pairs)} pairs | " + " | ".join(cells) + " |")
    print(f"\n(specialized differences are against the {reference_name} run's evolution winner of the same seed; "
          "bold: beyond 2 SE)")
    if args.common:
        common = common_set(rows, budgets)
        sizes = ", ".join(f"{len(archs)} at {label}" for label, archs in common.items())
        if args.save_common:
            args.save_common.write_text(json.dumps(common, indent=1) + "\n")
            print(f"\ncommon set -> {args.save_common}")
        print(f"\ncommon set: every run's evolution winner ({sizes}), each scored on every supernet; "
              "a run's mean test top-1 over the set; mean ± std over seeds, paired difference mean ± SE:\n")
        means = {name: {r["seed"]: score_common(Path(r["run"]), common) for r in mine} for name, mine in rows.items()}
        print("| method | seeds | " + " | ".join(f"{b.label} common" for b in budgets) + " |")
        print("|" + "---|" * (2 + len(budgets)))
        for name, mine in means.items():
            print(f"| {name} | {len(mine)} | "
                  + " | ".join(mean_std([m[b.label] for m in mine.values()]) for b in budgets) + " |")
            if name == reference_name:
                continue
            pairs, cells = paired_by_seed(mine, means[reference_name], [b.label for b in budgets])
            print(f"| {name} - {reference_name} | {pairs} pairs | " + " | ".join(cells) + " |")
    if args.uniform_draws:
        print_uniform_draws(rows, budgets, args)
    learned = [(name, run, mechanics(run)) for name, runs in groups.items() for run in runs]
    learned = [(name, run, m) for name, run, m in learned if m is not None]
    if learned:
        print("\nsampler mechanics, summary.csv, mean of the last five epochs:\n")
        print("| method | run | " + " | ".join(MECHANICS) + " |")
        print("|" + "---|" * (2 + len(MECHANICS)))
        for name, run, m in learned:
            print(f"| {name} | {run.name} | " + " | ".join(f"{m[c]:.3g}" for c in MECHANICS) + " |")

    if args.plot:
        series = []
        for name, runs in groups.items():
            for run in runs:
                payload = load_checkpoint(run)
                config = config_from_checkpoint(payload, run)
                cloud, _, _ = load_or_score_cloud(run, config, checkpoint_id(payload), "search-val", args.cloud, 0,
                                                  args.val_images, progress=False)
                row = next(r for r in rows[name] if r["run"] == str(run))
                results = {"evolution": [
                    SearchResult("evolution", b, config.space.arch_from_dict(e["evolution_arch"]), e["evolution_macs"],
                                 0, e["evolution_val"], e["evolution"], 0.0, 0)
                    for b, e in zip(budgets, row["budgets"].values())]}
                series.append(RunSeries(name, config.space, cloud, results))
        draw_figure(series, args.plot, "search-val", [b.value for b in budgets])
        print(f"figure -> {args.plot}")


if __name__ == "__main__":
    main()
