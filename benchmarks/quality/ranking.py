"""Benchmark: how well a supernet ranks subnets, against the same subnets trained stand-alone.

The figure one-shot NAS papers argue over, and the ground truth for the sampler's reward. From
one trained supernet run it picks ``--spread`` subnets spread over the MAC range (the best of a
few draws within each of ``--spread`` log-spaced budgets) and ``--within`` subnets drawn uniformly
within one budget's band (``--budget``). Each is exported (the better side, for bilateral
supernets), scored with its inherited weights on the test set, then trained stand-alone with
``focusformer-train --subnet EXPORT --init scratch`` (or ``--init inherited``: fine-tuned) for
``--epochs`` epochs per seed, ``--jobs`` runs at a time.
Reported: per subnet its MACs, inherited and stand-alone test top-1 (the mean over ``--seeds``);
for each set Kendall's tau and Spearman's rho between the two (scipy), with their p-values, and
the regret of trusting the supernet's first choice (the set's best stand-alone figure minus that
of the subnet it ranks first: what a user who ships the supernet's favourite loses); with several
seeds, the same correlations between the seeds' stand-alone runs, how far the ground truth itself
reproduces. ``--truth REPORT`` also scores this call's figures against another report's
stand-alone means, matched by arch: does a one-epoch fine-tune (``--init inherited --epochs 1``)
order subnets as their 5-epoch stand-alone runs do, where inherited weights do not?

The report is written as each stand-alone run finishes, and a run it records (same arch,
``--init``, ``--epochs`` and seed) is not trained again, so a study resumes from its report even
where the runs' folders are gone.

``--run`` may be given several times (supernets of one space, for example a uniform and a focus
run): the subnets are chosen and exported from the first, each supernet scores them with its own
inherited weights, and one set of stand-alone runs is the ground truth for all of them, so their
correlations differ only by the supernets.

Run from the repository root (benchmarks/RESULTS.md gives the results)::

    python -m benchmarks.quality.ranking --run runs/gpu/autoformer-15ep-s0 --root runs/ranking/autoformer-uniform \\
        --spread 12 --within 8 --budget 15M --epochs 15 --jobs 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

from benchmarks.lib.output import write_json
from focusformer.budget import Budget, parse_budget
from focusformer.cli.budgeted import best_side
from focusformer.data import load_data
from focusformer.devices import default_device
from focusformer.export import save_subnet
from focusformer.sampling.specialize import draw_candidates, untrained_sampler
from focusformer.search.scoring import CandidateScorer
from focusformer.search.within_budget import sample_within_budget
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


def choose(sets: dict[str, list], root: Path, space) -> list[dict]:
    """One record per arch: its set, its directory under ``root`` and its MACs."""
    return [{"set": set_name, "dir": str(root / f"{set_name}-{k:02d}"), "arch": str(arch),
             "macs": count_macs(arch, space), "inherited_test_top1": {}, "side": {}}
            for set_name, archs in sets.items() for k, arch in enumerate(archs)]


def score_inherited(run: Path, subnets: list[dict], archs: list, val_images: int):
    """Each subnet's test top-1 with ``run``'s inherited weights (its better side on search-val);
    returns the supernet."""
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    device = default_device()
    supernet = supernet_from_payload(payload, config, run).to(device)
    data = load_data(config.data, config.space, config.train)
    val = CandidateScorer(supernet, data.search_val, device, config.train.eval_batch_size, val_images)
    test = CandidateScorer(supernet, data.test, device, config.train.eval_batch_size)
    for subnet, arch in zip(subnets, archs):
        side, _ = best_side(val, arch)
        subnet["side"][str(run)] = side
        subnet["inherited_test_top1"][str(run)] = test.score([arch], side)[0]
        print(f"  {run}: {Path(subnet['dir']).name}: {subnet['macs'] / 1e6:.2f}M MACs, inherited "
              f"{subnet['inherited_test_top1'][str(run)]:.2f}% (side {side}, {arch})", flush=True)
    return supernet


def export_all(supernet, run: Path, subnets: list[dict], archs: list) -> None:
    """Export every arch from ``run``'s supernet at the side it scored best (``--init inherited``
    fine-tunes these weights; ``--init scratch`` uses only the arch)."""
    for subnet, arch in zip(subnets, archs):
        side = subnet["side"][str(run)]
        save_subnet(supernet.extract(arch, side).cpu(), Path(subnet["dir"]) / "export", side=side)


def train_command(subnet: dict, init: str, epochs: int, seed: int, data_dir: str | None) -> tuple[list[str], Path]:
    output = Path(subnet["dir"]) / f"{init}-{epochs}ep-s{seed}"
    command = [sys.executable, "-m", "focusformer.cli.train", "--subnet", str(Path(subnet["dir"]) / "export"),
               "--init", init, "--epochs", str(epochs), "--seed", str(seed), "--output", str(output),
               "--no-progress", "--overwrite"]
    return command + (["--data-dir", data_dir] if data_dir else []), output


def recorded_standalone(path: Path, init: str, epochs: int) -> dict[tuple[str, int], float]:
    """The stand-alone figures that an earlier report at ``path`` holds for runs of the same
    ``--init`` and ``--epochs``, by (arch, seed): measured once, they outlive the runs' folders
    (a study whose machine is lost resumes from its report)."""
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    if (earlier["init"], earlier["epochs"]) != (init, epochs):
        return {}
    return {(subnet["arch"], int(seed)): top1 for subnet in earlier["subnets"]
            for seed, top1 in subnet.get("standalone_by_seed", {}).items()}


def correlations(inherited: list[float], standalone: list[float]) -> dict:
    tau, tau_p = stats.kendalltau(inherited, standalone)
    rho, rho_p = stats.spearmanr(inherited, standalone)
    return {"kendall_tau": float(tau), "kendall_p": float(tau_p), "spearman_rho": float(rho),
            "spearman_p": float(rho_p), "subnets": len(inherited)}


def standalone_mean(subnet: dict, seeds: list[str]) -> float | None:
    """The mean of a subnet's stand-alone figures over ``seeds``; None until every seed is in."""
    if not all(seed in subnet["standalone_by_seed"] for seed in seeds):
        return None
    return statistics.mean(subnet["standalone_by_seed"][seed] for seed in seeds)


def agreement(subnets: list[dict], runs: list[str], seeds: list[str]) -> tuple[dict, dict]:
    """What the stand-alone runs say of each supernet, from the subnets that have every seed (so a
    partial report reads too): by run and set, the correlations of the inherited figures with the
    stand-alone mean and the ``regret`` of the supernet's first choice; by set and pair of seeds
    (``"0-1"``), the seeds' correlations with each other. A set of fewer than three such subnets
    has no figures."""
    complete = [s for s in subnets if standalone_mean(s, seeds) is not None]
    by_run: dict[str, dict] = {run: {} for run in runs}
    by_seeds: dict[str, dict] = {}
    for set_name in dict.fromkeys(s["set"] for s in subnets):
        members = [s for s in complete if s["set"] == set_name]
        if len(members) < 3:
            continue
        truth = [standalone_mean(s, seeds) for s in members]
        for run in runs:
            inherited = [s["inherited_test_top1"][run] for s in members]
            first = max(range(len(members)), key=inherited.__getitem__)
            by_run[run][set_name] = {**correlations(inherited, truth), "regret": max(truth) - truth[first]}
        for a, b in itertools.combinations(seeds, 2):
            by_seeds.setdefault(set_name, {})[f"{a}-{b}"] = correlations(
                [s["standalone_by_seed"][a] for s in members], [s["standalone_by_seed"][b] for s in members])
    return by_run, by_seeds


def against_truth(subnets: list[dict], runs: list[str], label: str, truth: dict) -> dict:
    """This call's figures scored against another report's stand-alone means (``truth``), matched
    by arch: each supernet's inherited figures and, as ``label``, the mean of this call's trained
    runs (for example a one-epoch fine-tune, against 5-epoch stand-alone runs of the same subnets).
    By run (and ``label``) and set, as ``agreement`` gives them."""
    by_arch = {s["arch"]: s for s in truth["subnets"]}
    merged = [{**s, "inherited_test_top1": {**s["inherited_test_top1"], label: s["standalone_test_top1"]},
               "standalone_by_seed": by_arch[s["arch"]]["standalone_by_seed"]}
              for s in subnets if s["arch"] in by_arch and s["standalone_test_top1"] is not None]
    by_run, _ = agreement(merged, [*runs, label], [str(seed) for seed in truth["seeds"]])
    return by_run


def _correlation_text(r: dict) -> str:
    return (f"Kendall tau {r['kendall_tau']:+.3f} (p {r['kendall_p']:.3f}), Spearman rho {r['spearman_rho']:+.3f} "
            f"(p {r['spearman_p']:.3f}) over {r['subnets']} subnets")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, action="append", required=True,
                        help="a trained supernet run; repeat for more supernets of the same space")
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
    parser.add_argument("--json", type=Path, help="where the report goes (default: ROOT/ranking.json)")
    parser.add_argument("--truth", type=Path,
                        help="another report of the same subnets whose stand-alone means also score this call's "
                             "figures (for example a short --init inherited fine-tune against longer scratch runs)")
    args = parser.parse_args(argv)
    if args.truth and not args.truth.is_file():
        parser.error(f"--truth {args.truth}: no such report")
    if len(args.run) > 1 and args.init == "inherited":
        parser.error("--init inherited fine-tunes one supernet's weights: give one --run")
    payload = load_checkpoint(args.run[0])
    config = config_from_checkpoint(payload, args.run[0])
    for other in args.run[1:]:
        if config_from_checkpoint(load_checkpoint(other), other).space != config.space:
            parser.error(f"{other} searches another space than {args.run[0]}")
    budget = parse_budget(args.budget)
    sets = {"spread": spread_archs(config.space, args.spread, args.seed),
            "within": list(draw_candidates(untrained_sampler(config), budget, args.within, args.seed, uniform=True))}
    archs = [arch for set_archs in sets.values() for arch in set_archs]
    print(f"{', '.join(map(str, args.run))}: {len(archs)} subnets -> {args.root}", flush=True)
    subnets = choose(sets, args.root, config.space)
    del payload
    for k, run in enumerate(args.run):
        supernet = score_inherited(run, subnets, archs, args.val_images)
        if k == 0:
            export_all(supernet, run, subnets, archs)
        del supernet
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [str(run) for run in args.run]
    path = args.json or args.root / "ranking.json"
    done = recorded_standalone(path, args.init, args.epochs)
    for subnet in subnets:
        subnet["standalone_by_seed"] = {str(seed): done[subnet["arch"], seed] for seed in seeds
                                        if (subnet["arch"], seed) in done}
    report = {"runs": runs, "init": args.init, "epochs": args.epochs, "seeds": seeds, "subnets": subnets,
              "correlations": {run: {} for run in runs}}
    writing = threading.Lock()
    jobs = [(subnet, seed) for subnet in subnets for seed in seeds if str(seed) not in subnet["standalone_by_seed"]]
    if len(jobs) < len(subnets) * len(seeds):
        print(f"{len(subnets) * len(seeds) - len(jobs)} stand-alone runs recorded in {path}: not trained again",
              flush=True)

    def train(job) -> None:
        subnet, seed = job
        command, output = train_command(subnet, args.init, args.epochs, seed, args.data_dir)
        if not (output / "final.json").is_file():
            output.mkdir(parents=True, exist_ok=True)
            with open(output.parent / f"{output.name}.log", "w") as log:
                log.write(" ".join(command) + "\n")
                log.flush()
                if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                    print(f"  failed: {output} (see {output.name}.log)", flush=True)
                    return
        with writing:  # each figure is in the report as soon as it is measured
            subnet["standalone_by_seed"][str(seed)] = json.loads((output / "final.json").read_text())["subnet"][
                "test_top1"]
            write_json(path, report)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(train, jobs))
    for subnet in subnets:
        mine = list(subnet["standalone_by_seed"].values())
        subnet["standalone_test_top1"] = statistics.mean(mine) if mine else None
    header = "".join(f"{'inherited ' + str(k):>13}" for k in range(len(runs)))
    print(f"\n{'set':<8} {'MACs':>8}{header} {args.init + ' ' + str(args.epochs) + 'ep':>14}  arch")
    for subnet in subnets:
        standalone = subnet["standalone_test_top1"]
        inherited = "".join(f"{subnet['inherited_test_top1'][run]:>13.2f}" for run in runs)
        print(f"{subnet['set']:<8} {subnet['macs'] / 1e6:>7.2f}M{inherited} "
              f"{'-' if standalone is None else f'{standalone:.2f}':>14}  {subnet['arch']}")
    report["correlations"], report["seed_agreement"] = agreement(subnets, runs, [str(seed) for seed in seeds])
    for k, run in enumerate(runs):
        for set_name, r in report["correlations"][run].items():
            print(f"inherited {k} ({run}), {set_name}: {_correlation_text(r)}; regret of its first "
                  f"{r['regret']:.2f} points")
    if args.truth:
        label = f"{args.init}-{args.epochs}ep"
        report["truth"] = {"report": str(args.truth), "label": label,
                           "correlations": against_truth(subnets, runs, label, json.loads(args.truth.read_text()))}
        for name, sets_ in report["truth"]["correlations"].items():
            for set_name, r in sets_.items():
                print(f"against {args.truth}: {name}, {set_name}: {_correlation_text(r)}; regret of its first "
                      f"{r['regret']:.2f} points")
    for set_name, pairs in report["seed_agreement"].items():
        for pair, r in pairs.items():
            print(f"stand-alone seeds {pair.replace('-', ' and ')}, {set_name}: {_correlation_text(r)}")
    write_json(path, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
