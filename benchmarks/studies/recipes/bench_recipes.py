"""Benchmark: training recipes compared on one fixed probe set of subnets, over seeds.

A cheap way to ask "which recipe trains the better supernet" without searching every run:
each run's supernet scores the same subnets (a probe file: per budget, a list of archs) on
all the test images, and a run is summarised per budget by its mean test top-1 over the
probe's archs. Two probes are shipped: ``benchmarks/probe-fashion-mnist-winners.json``, the
10 distinct evolution winners per budget of issue #9's 15-epoch study (written by
``bench_focus_vs_uniform.py --common --save-common``): the subnets searches chose, many of them
well under their budget; and ``probe-fashion-mnist-inband.json``, 10 archs drawn within each
budget's band [0.9 B, B] (``make_probe.py``): where a supernet trained for those budgets aims.

Runs are given as groups, ``name=RUN,RUN,...``, one run per seed; every other group is paired
with the first by seed (mean paired difference ± SE, bold beyond 2 SE). Scores are cached per arch in
RUN/results/common-*.json (shared with ``bench_focus_vs_uniform.py --common``). Nothing is
asserted.

    python benchmarks/bench_recipes.py \\
        --probe benchmarks/probe-fashion-mnist-winners.json benchmarks/probe-fashion-mnist-inband.json \\
        --runs uniform=runs/families/fashion-mnist-s0,runs/families/fashion-mnist-s1 \\
               uniform+sandwich+kl=runs/recipes/uniform-sandwich-kl-s0,runs/recipes/uniform-sandwich-kl-s1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_focus_vs_uniform import mean_std, paired_by_seed, parse_groups, score_common

from focusformer.budget import parse_budgets
from focusformer.config import Config
from focusformer.spaces.base import SearchSpace
from focusformer.spaces.counts import count_macs
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint


def read_probe(path: Path) -> dict[str, list[dict]]:
    probe = json.loads(path.read_text())
    if not isinstance(probe, dict) or not all(isinstance(v, list) and v for v in probe.values()):
        raise SystemExit(f"{path}: a probe file maps budget labels (8M, ...) to non-empty lists of archs")
    return probe


def probe_macs(space: SearchSpace, probe: dict[str, list[dict]]) -> dict[str, list[int]]:
    """Per budget label, the MACs of the probe's archs in ``space``, ascending."""
    return {label: sorted(count_macs(space.arch_from_dict(a), space) for a in archs) for label, archs in probe.items()}


def check_probe(run: Path, probes: dict[Path, dict[str, list[dict]]]) -> dict:
    """The run's recipe and each probe's MACs; stops if a probe arch is not in the run's space or
    over its budget."""
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    if payload["epoch"] != config.train.epochs:
        raise SystemExit(f"{run}: not finished ({payload['epoch']} of {config.train.epochs} epochs)")
    macs = {path: probe_macs(config.space, probe) for path, probe in probes.items()}
    for path, per_label in macs.items():
        for label, values in per_label.items():
            if values[-1] > parse_budgets(label)[0].value:
                raise SystemExit(f"{path}: an arch for {label} has {values[-1] / 1e6:.1f}M MACs")
    return {"seed": config.train.seed, "epochs": config.train.epochs, "trained": describe_recipe(config),
            "probe_macs": macs}


def describe_recipe(config: Config) -> str:
    """What sets the run apart from the config's default recipe, in the CLI's words."""
    train = config.train
    parts = [train.sampler]
    if train.target_budgets.strip():
        parts.append(f"targets {train.target_budgets}")
    if train.sampler == "focus" and config.focus.uniform_share == 1.0:
        parts.append("no steering")
    if train.sandwich:
        parts.append("sandwich")
    if train.distill != "none":
        parts.append(f"distill {train.distill}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", type=Path, nargs="+", required=True,
                        help="JSON files: budget label -> list of archs; one table per file")
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN,RUN,...",
                        help="one group per recipe, its runs one per seed; the first group is the reference")
    args = parser.parse_args()
    probes = {path: read_probe(path) for path in args.probe}
    groups = parse_groups(args.runs)
    recipes = {name: {run: check_probe(run, probes) for run in runs} for name, runs in groups.items()}
    first = next(iter(next(iter(recipes.values())).values()))
    for path, probe in probes.items():
        print_table(path, probe, recipes)
        for label, macs in first["probe_macs"][path].items():
            print(f"- {label}: its archs' MACs (M) " + ", ".join(f"{m / 1e6:.2f}" for m in macs))


def print_table(path: Path, probe: dict[str, list[dict]], recipes: dict[str, dict[Path, dict]]) -> None:
    means = {name: {recipe["seed"]: score_common(run, probe) for run, recipe in mine.items()}
             for name, mine in recipes.items()}
    sizes = ", ".join(f"{len(archs)} at {label}" for label, archs in probe.items())
    print(f"\nprobe {path} ({sizes}); a run's mean test top-1 (%) over the probe's archs per budget;\n"
          "mean ± std over seeds; paired difference against the first group, mean ± SE:\n")
    labels = list(probe)
    print("| recipe | trained as | seeds | epochs | " + " | ".join(labels) + " |")
    print("|" + "---|" * (4 + len(labels)))
    reference = next(iter(means))
    for name, mine in means.items():
        epochs = sorted({r["epochs"] for r in recipes[name].values()})
        trained = "; ".join(sorted({r["trained"] for r in recipes[name].values()}))
        print(f"| {name} | {trained} | {len(mine)} | {'/'.join(map(str, epochs))} | "
              + " | ".join(mean_std([m[label] for m in mine.values()]) for label in labels) + " |")
        if name == reference:
            continue
        pairs, cells = paired_by_seed(mine, means[reference], labels)
        print(f"| {name} - {reference} | | {pairs} pairs | | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
