"""Summarise in-band evaluations over seeds: per budget, the test top-1 of the best of 32 uniform
in-band draws (``RUN/eval-uniform.json``) and of the trained policy's pick (``eval-policy.json``),
both written by ``focusformer-specialize --json`` (see ``vitas_focus_study.sh``), plus the largest
subnet's test top-1 (``final.json``) and seconds per epoch (``summary.csv``).

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


def load_run(run: Path) -> dict:
    seed = yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"]
    result = {"seed": seed, "draws": {}, "policy": {}, "patch": {}}
    for draws in ("uniform", "policy"):
        path = run / f"eval-{draws}.json"
        if path.exists():
            for row in json.loads(path.read_text()):
                label = f"{row['budget'] / 1e6:g}M"
                result["draws" if draws == "uniform" else "policy"][label] = row["test_top1"]
                result["patch"][(draws, label)] = row["arch"].get("patch_size")
    result["largest"] = json.loads((run / "final.json").read_text())["largest"]["test_top1"]
    with open(run / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    result["seconds"] = statistics.mean(float(r["seconds"]) for r in rows)
    return result


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{values[0]:.2f}" if len(values) == 1 else f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def paired(values: list[float], reference: list[float]) -> str:
    diffs = [a - b for a, b in zip(values, reference)]
    if not diffs:
        return "-"
    if len(diffs) == 1:
        return f"{diffs[0]:+.2f} (1 pair)"
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / len(diffs) ** 0.5
    text = f"{mean:+.2f} ± {se:.2f}"
    return f"{'**' + text + '**' if abs(mean) > 2 * se else text} ({sum(d > 0 for d in diffs)}/{len(diffs)} > 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN,RUN,...")
    parser.add_argument("--budgets", default="8M,15M,25M")
    args = parser.parse_args()
    groups = {}
    for spec in args.runs:
        name, _, runs = spec.partition("=")
        groups[name] = {r["seed"]: r for r in (load_run(Path(p)) for p in runs.split(",") if p)}
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


if __name__ == "__main__":
    main()
