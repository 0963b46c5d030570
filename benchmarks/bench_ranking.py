"""Benchmark: how well a supernet ranks subnets, against the same subnets trained stand-alone.

The figure one-shot NAS papers argue over, and the ground truth for the sampler's reward. From
one trained supernet run it picks ``--spread`` subnets spread over the MAC range (the best of a
few draws within each of ``--spread`` log-spaced budgets) and ``--within`` subnets drawn uniformly
within one budget's band (``--budget``). Each is exported (the better side, for bilateral
supernets), scored with its inherited weights on the test set, then trained stand-alone with
``focusformer-train --subnet EXPORT --init scratch`` (or ``--init inherited``: fine-tuned) for
``--epochs`` epochs per seed, ``--jobs`` runs at a time (benchmarks/gpu_study.py's runner).
Reported: per subnet its MACs, inherited and stand-alone test top-1; for each set Kendall's tau
and Spearman's rho between the two (scipy), with their p-values.

Run (benchmarks/RESULTS.md gives the results)::

    python benchmarks/bench_ranking.py --run runs/gpu/autoformer-15ep-s0 --root runs/ranking/autoformer-uniform \\
        --spread 12 --within 8 --budget 15M --epochs 15 --jobs 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

from bench_families import draw_inband
from gpu_study import run_logged

from focusformer.budget import Budget, parse_budget
from focusformer.cli.budgeted import best_side
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.export import save_subnet
from focusformer.search.evolution import sample_within_budget
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, supernet_from_payload


def spread_archs(space, count: int, seed: int) -> list:
    """``count`` distinct archs, one within each of ``count`` log-spaced budgets over the MAC range
    (each the most expensive of 8 draws within its budget, so the set spans the range)."""
    costs = space.cost_model("macs")
    rng = np.random.default_rng(seed)
    archs: dict = {}
    for budget in np.geomspace(costs.min_cost * 1.5, costs.max_cost, count):
        draws = [sample_within_budget(space, Budget(float(budget)), rng) for _ in range(8)]
        fresh = [a for a in draws if a not in archs] or draws
        archs.setdefault(max(fresh, key=lambda a: count_macs(a, space)), None)
    return list(archs)


def export_all(root: Path, sets: dict[str, list], config, supernet, device, val_images: int) -> list[dict]:
    """Export every arch (its better side) and score it with inherited weights on the test set."""
    data = load_data(config.data, config.space, config.train, seed=config.train.seed)
    val = CandidateScorer(supernet, data.search_val, device, config.train.eval_batch_size, val_images)
    test = CandidateScorer(supernet, data.test, device, config.train.eval_batch_size)
    subnets = []
    for set_name, archs in sets.items():
        for k, arch in enumerate(archs):
            side, _ = best_side(val, arch)
            directory = root / f"{set_name}-{k:02d}"
            save_subnet(supernet.extract(arch, side).cpu(), directory / "export", side=side)
            subnets.append({"set": set_name, "dir": str(directory), "arch": str(arch),
                            "macs": count_macs(arch, config.space), "side": side,
                            "inherited_test_top1": test.score([arch], side)[0]})
            print(f"  {set_name} {k}: {subnets[-1]['macs'] / 1e6:.2f}M MACs, inherited "
                  f"{subnets[-1]['inherited_test_top1']:.2f}% ({arch})", flush=True)
    return subnets


def train_command(subnet: dict, init: str, epochs: int, seed: int, data_dir: str | None) -> tuple[list[str], Path]:
    output = Path(subnet["dir"]) / f"{init}-{epochs}ep-s{seed}"
    command = [sys.executable, "-m", "focusformer.cli.train", "--subnet", str(Path(subnet["dir"]) / "export"),
               "--init", init, "--epochs", str(epochs), "--seed", str(seed), "--output", str(output),
               "--no-progress", "--overwrite"]
    return command + (["--data-dir", data_dir] if data_dir else []), output


def correlations(inherited: list[float], standalone: list[float]) -> dict:
    tau, tau_p = stats.kendalltau(inherited, standalone)
    rho, rho_p = stats.spearmanr(inherited, standalone)
    return {"kendall_tau": float(tau), "kendall_p": float(tau_p), "spearman_rho": float(rho),
            "spearman_p": float(rho_p), "subnets": len(inherited)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained supernet run")
    parser.add_argument("--root", type=Path, required=True, help="where the exports and stand-alone runs go")
    parser.add_argument("--spread", type=int, default=12, help="subnets spread over the MAC range")
    parser.add_argument("--within", type=int, default=8, help="subnets within --budget's band")
    parser.add_argument("--budget", default="15M")
    parser.add_argument("--epochs", type=int, default=15, help="stand-alone training epochs")
    parser.add_argument("--init", choices=["scratch", "inherited"], default="scratch")
    parser.add_argument("--seeds", default="0", help="stand-alone training seeds (their mean is used)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subnets' choice")
    parser.add_argument("--val-images", type=int, default=1000, help="search-val images that pick each side")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    payload = load_checkpoint(args.run)
    config = config_from_checkpoint(payload, args.run)
    device = default_device()
    supernet = supernet_from_payload(payload, config, args.run).to(device)
    budget = parse_budget(args.budget)
    sets = {"spread": spread_archs(config.space, args.spread, args.seed),
            "within": draw_inband(config, budget, args.within, args.seed, None)[0]}
    print(f"{args.run}: {sum(map(len, sets.values()))} subnets -> {args.root}", flush=True)
    subnets = export_all(args.root, sets, config, supernet, device, args.val_images)
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(subnet, seed) for subnet in subnets for seed in seeds]

    def train(job) -> float | None:
        subnet, seed = job
        command, output = train_command(subnet, args.init, args.epochs, seed, args.data_dir)
        if not (output / "final.json").is_file():
            output.mkdir(parents=True, exist_ok=True)
            with open(output.parent / f"{output.name}.log", "w") as log:
                if run_logged(command, log, dict(os.environ), float("inf")) != 0:
                    print(f"  failed: {output} (see {output.name}.log)", flush=True)
                    return None
        return json.loads((output / "final.json").read_text())["subnet"]["test_top1"]

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train, jobs))
    for k, subnet in enumerate(subnets):
        mine = [r for (s, _), r in zip(jobs, results) if s is subnet and r is not None]
        subnet["standalone_test_top1"] = statistics.mean(mine) if mine else None
    report = {"run": str(args.run), "init": args.init, "epochs": args.epochs, "seeds": seeds, "subnets": subnets}
    print(f"\n{'set':<8} {'MACs':>8} {'inherited':>10} {args.init + ' ' + str(args.epochs) + 'ep':>14}  arch")
    for subnet in subnets:
        standalone = subnet["standalone_test_top1"]
        print(f"{subnet['set']:<8} {subnet['macs'] / 1e6:>7.2f}M {subnet['inherited_test_top1']:>10.2f} "
              f"{'-' if standalone is None else f'{standalone:.2f}':>14}  {subnet['arch']}")
    for set_name in sets:
        pairs = [(s["inherited_test_top1"], s["standalone_test_top1"]) for s in subnets
                 if s["set"] == set_name and s["standalone_test_top1"] is not None]
        if len(pairs) >= 3:
            report[set_name] = correlations(*map(list, zip(*pairs)))
            r = report[set_name]
            print(f"{set_name}: Kendall tau {r['kendall_tau']:+.3f} (p {r['kendall_p']:.3f}), Spearman rho "
                  f"{r['spearman_rho']:+.3f} (p {r['spearman_p']:.3f}) over {r['subnets']} subnets")
    (args.root / "ranking.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
