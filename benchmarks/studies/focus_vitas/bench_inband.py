"""Summarise in-band evaluations over seeds: per budget, the test top-1 of the best of 32 uniform
in-band draws (``RUN/eval-uniform.json``) and of the trained policy's pick (``eval-policy.json``),
both written by ``focusformer-specialize --json`` (see ``vitas_focus_study.sh``; with ``--evals
band``, ``eval-*-band.json``: the band-only check of ``--rungs none``, specialize's behaviour
before its rungs, kept for the earlier tables of benchmarks/RESULTS.md), plus the largest
subnet's test top-1 (``final.json``) and seconds per epoch (``summary.csv``). Where a run also has
``bench_focus_vs_uniform.py``'s result (``bench-*.json``, in the run or its ``results/``), a third
table gives its cloud's hypervolume and the evolution search's winners' test top-1, and a fourth
where the fronts differ: the best search-val top-1 of the cloud (``cloud-search-val-*.json``)
within each MAC range. A run with a cloud and no ``bench-*.json`` (``focusformer-plot RUN --cloud
100 --val-images 1000`` scores the same cloud) gets its hypervolume from the cloud, the same
computation, and no evolution column.

Groups are ``name=RUN,RUN,...`` one run per seed (the seed read from each run's config); the first
group is the reference: every other group's paired differences (mean ± SE over seeds, bold beyond
2 SE, pairs positive). Policy picks are paired both with the same run's uniform draws (what the
learned policy adds on its own supernet) and with the reference's uniform draws. Nothing is
asserted.

    python benchmarks/bench_inband.py --runs uniform=runs/p24/uniform15-s0,runs/p24/uniform15-s1 \\
        focus=runs/p24/focus15-s0,runs/p24/focus15-s1
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import yaml

from focusformer.config import load_config
from focusformer.search.cloud import macs_range
from focusformer.search.pareto import hypervolume


def load_run(run: Path, evals: str = "rungs") -> dict:
    seed = yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"]
    result = {"seed": seed, "draws": {}, "policy": {}, "patch": {}}
    for draws in ("uniform", "policy"):
        path = run / f"eval-{draws}{'-band' if evals == 'band' else ''}.json"
        if path.exists():
            for row in json.loads(path.read_text()):
                label = f"{row['budget'] / 1e6:g}M"
                result["draws" if draws == "uniform" else "policy"][label] = row["test_top1"]
                result["patch"][(draws, label)] = row["arch"].get("patch_size")
    result["largest"] = json.loads((run / "final.json").read_text())["largest"]["test_top1"]
    benches = sorted([*run.glob("bench-*.json"), *run.glob("results/bench-*.json")], key=lambda p: p.stat().st_mtime)
    if benches:
        bench = json.loads(benches[-1].read_text())
        result["hypervolume"] = bench["hypervolume"]
        result["evolution"] = {label: entry["evolution"] for label, entry in bench["budgets"].items()}
    clouds = [*run.glob("cloud-search-val-*.json"), *run.glob("results/cloud-search-val-*.json")]
    if clouds:
        subnets = json.loads(clouds[0].read_text())["subnets"]
        if "hypervolume" not in result:
            space = load_config(run / "config.yaml").space
            points = [(s["macs"], s["top1"]) for s in subnets]
            result["hypervolume"] = hypervolume(points, macs_range(space))
        result["front"] = {low: max((s["top1"] for s in subnets if low <= s["macs"] / 1e6 < high), default=None)
                           for low, high in MAC_RANGES}
    with open(run / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    result["seconds"] = statistics.mean(float(r["seconds"]) for r in rows)
    return result


#: MAC ranges (millions) of the front-by-range table.
MAC_RANGES = ((0, 2), (2, 5), (5, 8), (8, 15), (15, 25), (25, 1e9))


def mean_std(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def paired(values: list[float], reference: list[float], digits: int = 2) -> str:
    diffs = [a - b for a, b in zip(values, reference)]
    if not diffs:
        return "-"
    if len(diffs) == 1:
        return f"{diffs[0]:+.{digits}f} (1 pair)"
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / len(diffs) ** 0.5
    text = f"{mean:+.{digits}f} ± {se:.{digits}f}"
    return f"{'**' + text + '**' if abs(mean) > 2 * se else text} ({sum(d > 0 for d in diffs)}/{len(diffs)} > 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN,RUN,...")
    parser.add_argument("--budgets", default="8M,15M,25M")
    parser.add_argument("--evals", choices=["rungs", "band"], default="rungs",
                        help="specialize's default check (eval-*.json), or the band-only one (eval-*-band.json)")
    args = parser.parse_args()
    groups = {}
    for spec in args.runs:
        name, _, runs = spec.partition("=")
        groups[name] = {r["seed"]: r for r in (load_run(Path(p), args.evals) for p in runs.split(",") if p)}
    budgets = args.budgets.split(",")
    print("| run | seed | largest | " + " | ".join(f"{b} draws | {b} policy" for b in budgets) + " | s/epoch |")
    print("|" + "---|" * (4 + 2 * len(budgets)))
    for name, runs in groups.items():
        for seed, r in sorted(runs.items()):
            cells = []
            for b in budgets:
                for kind, key in (("draws", "uniform"), ("policy", "policy")):
                    value = r[kind].get(b)
                    cells.append("-" if value is None else f"{value:.2f} (p{r['patch'][(key, b)]})")
            print(f"| {name} | {seed} | {r['largest']:.2f} | " + " | ".join(cells) + f" | {r['seconds']:.1f} |")
    reference_name, reference = next(iter(groups.items()))
    print(f"\nmean ± std over seeds; paired differences against {reference_name} (same seed), mean ± SE:\n")
    print("| group | seeds | largest | " + " | ".join(f"{b} draws" for b in budgets) + " | "
          + " | ".join(f"{b} policy" for b in budgets) + " |")
    print("|" + "---|" * (3 + 2 * len(budgets)))
    for name, runs in groups.items():
        rs = list(runs.values())
        print(f"| {name} | {len(rs)} | {mean_std([r['largest'] for r in rs])} | "
              + " | ".join(mean_std([r["draws"][b] for r in rs if b in r["draws"]]) for b in budgets) + " | "
              + " | ".join(mean_std([r["policy"][b] for r in rs if b in r["policy"]]) for b in budgets) + " |")
        if name == reference_name:
            continue
        seeds = [s for s in runs if s in reference]
        mine, ref = [runs[s] for s in seeds], [reference[s] for s in seeds]
        cells = [paired([r["largest"] for r in mine], [r["largest"] for r in ref])]
        cells += [paired([r["draws"][b] for r in mine], [r["draws"][b] for r in ref]) for b in budgets]
        cells += [paired([r["policy"][b] for r in mine if b in r["policy"]],
                         [x["draws"][b] for r, x in zip(mine, ref) if b in r["policy"]]) for b in budgets]
        print(f"| {name} - {reference_name} | {len(seeds)} pairs | " + " | ".join(cells) + " |")
        own = [paired([r["policy"][b] for r in mine if b in r["policy"]],
                      [r["draws"][b] for r in mine if b in r["policy"]]) for b in budgets]
        print(f"| {name}: policy - own draws | {len(seeds)} | - | " + " | ".join("-" for _ in budgets) + " | "
              + " | ".join(own) + " |")
    print_search(groups, budgets)
    print_fronts(groups)


def print_fronts(groups: dict[str, dict[int, dict]]) -> None:
    """Per MAC range, the best cloud subnet's search-val top-1: where one front lies above the other."""
    groups = {name: kept for name, runs in groups.items() if (kept := [r for r in runs.values() if "front" in r])}
    if not groups:
        return
    labels = [f"{low:g}-{high:g}M" if high < 1e9 else f">= {low:g}M" for low, high in MAC_RANGES]
    print("\nthe front by MAC range: best search-val top-1 of the 100-subnet cloud in each range, mean ± std:\n")
    print("| group | seeds | " + " | ".join(labels) + " |")
    print("|" + "---|" * (2 + len(labels)))
    for name, runs in groups.items():
        cells = [mean_std([r["front"][low] for r in runs if r["front"][low] is not None]) for low, _ in MAC_RANGES]
        print(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")


def print_search(groups: dict[str, dict[int, dict]], budgets: list[str]) -> None:
    """Hypervolume and evolution winners, for the runs that have them (seeds paired as above); a
    group without evolution searches shows "-" there."""
    groups = {name: kept for name, runs in groups.items()
              if (kept := {s: r for s, r in runs.items() if "hypervolume" in r})}
    if not groups:
        return
    reference_name, reference = next(iter(groups.items()))
    print(f"\nevolution search and cloud hypervolume (bench_focus_vs_uniform.py); paired against "
          f"{reference_name}, mean ± SE:\n")
    print("| group | seeds | hypervolume | " + " | ".join(f"{b} evolution" for b in budgets) + " |")
    print("|" + "---|" * (3 + len(budgets)))

    def evolution(rs: list[dict], b: str) -> list[float] | None:
        return [r["evolution"][b] for r in rs] if all("evolution" in r for r in rs) else None

    for name, runs in groups.items():
        rs = list(runs.values())
        print(f"| {name} | {len(rs)} | {mean_std([r['hypervolume'] for r in rs], 4)} | "
              + " | ".join(mean_std(v) if (v := evolution(rs, b)) else "-" for b in budgets) + " |")
        if name == reference_name:
            continue
        seeds = [s for s in runs if s in reference]
        mine, ref = [runs[s] for s in seeds], [reference[s] for s in seeds]
        cells = [paired([r["hypervolume"] for r in mine], [r["hypervolume"] for r in ref], 4)]
        for b in budgets:
            have, had = evolution(mine, b), evolution(ref, b)
            cells.append(paired(have, had) if have and had else "-")
        print(f"| {name} - {reference_name} | {len(seeds)} pairs | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
