"""Benchmark: the fronts of trained supernets of different search-space families at matched MACs.

For every run and every budget it draws ``--candidates`` distinct archs, scores them with
inherited weights on the run's search-val split, and reports the test top-1 of the best one.
``--draws within`` (the default) draws within the budget
(:func:`~focusformer.search.within_budget.sample_within_budget`, the same random search for every
family); ``--draws inband`` draws uniformly within the budget's band
``[(1 - band) * budget, budget]`` (:func:`~focusformer.sampling.specialize.draw_candidates` with
an untrained sampler, what ``focusformer-specialize --draws uniform`` checks; ``--band``
defaults to each run's ``focus.band``; a budget above the largest subnet aims at the band below
the largest). ``--spread`` also scores the test top-1 of every candidate and reports, per
budget, the best and the median of them and the spread, best minus median: how much there is to
find among the budget's subnets, whichever one a search picks. For spaces with several patch
sizes (ViTAS) it also reports the best arch of each patch size, to see whether searching the
patch size pays. Runs are grouped by label (one group per family, one run per seed): per budget
it prints each run, then each group's mean and standard deviation over seeds, and each later
group's paired difference (by seed order) from the first group. The largest and smallest
subnets' test top-1 come from each run's ``final.json``.

Run (the runs of benchmarks/RESULTS.md, "Search-space families on Fashion-MNIST")::

    .venv/bin/python benchmarks/bench_families.py \\
        --runs autoformer=runs/families/fashion-mnist-s0,runs/families/fashion-mnist-s1 \\
               vitas=runs/families/vitas-fashion-mnist-s0,runs/families/vitas-fashion-mnist-s1 \\
        --budgets 8M,15M,25M --json benchmarks/bench_families.json

The spread of 32 uniform in-band draws of a run of the wide space (``wide-fashion-mnist``)::

    .venv/bin/python benchmarks/bench_families.py --runs wide=runs/wide/wide-fashion-mnist-s0 \\
        --budgets 8M,15M,25M --draws inband --spread --candidates 32 --val-images 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from focusformer.budget import Budget, parse_budgets
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.sampling.specialize import draw_candidates, untrained_sampler
from focusformer.search.within_budget import sample_within_budget
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint, supernet_from_payload


def distinct_within(space, budget: Budget, count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    archs: dict = {}
    for _ in range(count * 20):
        archs.setdefault(sample_within_budget(space, budget, rng), None)
        if len(archs) == count:
            break
    return list(archs)


def draw_inband(config, budget: Budget, count: int, seed: int, band: float | None) -> tuple[list, Budget, float]:
    """Up to ``count`` distinct archs drawn uniformly within ``budget``'s band (``band``, or the
    run's ``focus.band``), by specialize's own uniform draws; the budget actually aimed at (a
    budget above the largest subnet aims at the largest's band) and the band used."""
    if band is not None:
        config = dataclasses.replace(config, focus=dataclasses.replace(config.focus, band=band))
    sampler = untrained_sampler(config)
    largest = budget.cost_model(config.space).max_cost
    aimed = dataclasses.replace(budget, value=min(budget.value, largest))
    return list(draw_candidates(sampler, aimed, count, seed, uniform=True)), aimed, sampler.band


def spread_of(test_scores: list[float]) -> dict:
    """Best, median and best minus median of the test top-1 of every candidate."""
    best, median = max(test_scores), statistics.median(test_scores)
    return {"best_test_top1": best, "median_test_top1": median, "spread": best - median}


def evaluate_run(run: Path, budgets: list[Budget], candidates: int, seed: int, val_images: int | None,
                 draws: str = "within", band: float | None = None, spread: bool = False) -> dict:
    payload = load_checkpoint(run)
    config = config_from_checkpoint(payload, run)
    space, device = config.space, default_device()
    supernet = supernet_from_payload(payload, config, run).to(device)
    data = load_data(config.data, space, config.train)
    val = CandidateScorer(supernet, data.search_val, device, config.train.eval_batch_size, val_images)
    test = CandidateScorer(supernet, data.test, device, config.train.eval_batch_size)
    final = json.loads((run / "final.json").read_text())
    result = {"run": str(run), "family": space.family, "draws": draws,
              "largest_test_top1": final["largest"]["test_top1"],
              "smallest_test_top1": final["smallest"]["test_top1"], "budgets": {}}
    for budget in budgets:
        started = time.perf_counter()
        entry: dict = {}
        if draws == "inband":
            archs, aimed, used_band = draw_inband(config, budget, candidates, seed, band)
            low = (1.0 - used_band) * aimed.value
            entry.update(band=used_band, band_macs=[low, aimed.value])
        else:
            archs = distinct_within(space, budget, candidates, seed)
        macs = [count_macs(a, space) for a in archs]
        entry["scored"] = len(archs)
        if draws == "inband":
            entry["in_band"] = sum(low <= m <= aimed.value for m in macs)
        scores = val.score(archs)
        tests = test.score(archs) if spread else [None] * len(archs)
        candidates_seen = [{"arch": str(a), "patch_size": getattr(a, "patch_size", None), "macs": m, "val_top1": v,
                            "test_top1": t} for a, m, v, t in zip(archs, macs, scores, tests)]
        entry.update(pick_best(candidates_seen, spread, lambda arch: test.score([archs[arch]])[0]))
        if spread:
            entry["candidates"] = candidates_seen
        entry["seconds"] = time.perf_counter() - started
        result["budgets"][budget.label] = entry
        line = f"  {run.name} {budget.label}: best test {entry['best']['test_top1']:.2f} ({entry['best']['arch']}"
        if draws == "inband":
            line += f"; {entry['in_band']}/{len(archs)} in band {format_macs(low)}-{format_macs(aimed.value)}"
        line += f", {entry['seconds']:.0f}s)"
        if spread:
            b = entry["best"]
            line += (f"; over all {len(archs)}: best {b['best_test_top1']:.2f}, median {b['median_test_top1']:.2f}, "
                     f"spread {b['spread']:.2f}")
        print(line, flush=True)
    return result


def pick_best(candidates: list[dict], spread: bool, test_of=None) -> dict:
    """Per group (all candidates; each patch size where there are several), the best candidate by
    search-val top-1 and its test top-1 (from the candidate's record, else ``test_of(index)``), and
    with ``spread`` the best, median and spread of the group's test top-1."""
    groups = {"best": list(range(len(candidates)))}
    patch_sizes = sorted({c["patch_size"] for c in candidates} - {None})
    if len(patch_sizes) > 1:
        for p in patch_sizes:
            groups[f"patch {p}"] = [i for i, c in enumerate(candidates) if c["patch_size"] == p]
    picked = {}
    for name, members in groups.items():
        best = max(members, key=lambda i: candidates[i]["val_top1"])
        test_top1 = candidates[best]["test_top1"]
        picked[name] = {"arch": candidates[best]["arch"], "macs": candidates[best]["macs"],
                        "val_top1": candidates[best]["val_top1"],
                        "test_top1": test_of(best) if test_top1 is None else test_top1,
                        "candidates": len(members)}
        if spread:
            picked[name].update(spread_of([candidates[i]["test_top1"] for i in members]))
    return picked


def first_draws(result: dict, count: int) -> dict:
    """A run's ``--spread`` result cut to its first ``count`` candidates: ``count`` distinct draws
    from the same distribution, so runs made with different ``--candidates`` compare alike (not
    the very set that ``--candidates count`` would draw: draws are made in batches of that size)."""
    budgets = {}
    for label, entry in result["budgets"].items():
        candidates = entry["candidates"][:count]
        for c in candidates:  # results written before patch_size was recorded
            c.setdefault("patch_size", int(c["arch"].split("patch=")[1].split(",")[0]) if "patch=" in c["arch"] else None)
        cut = {k: v for k, v in entry.items() if k != "best" and not k.startswith("patch")}
        cut.update(scored=len(candidates), candidates=candidates, **pick_best(candidates, True))
        if "band_macs" in entry:
            low, high = entry["band_macs"]
            cut["in_band"] = sum(low <= c["macs"] <= high for c in candidates)
        budgets[label] = cut
    return {**result, "budgets": budgets}


def format_macs(value: float) -> str:
    return f"{value / 1e6:.2f}M"


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def paired(first: list[dict], other: list[dict], value) -> str:
    """Mean ± standard error of ``value(run_of_other) - value(run_of_first)`` over runs paired by seed order."""
    diffs = [value(rb) - value(ra) for ra, rb in zip(first, other)]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5
    return f"{statistics.mean(diffs):+.2f} ± {se:.2f} ({', '.join(f'{d:+.2f}' for d in diffs)})"


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="LABEL=RUN[,RUN...]")
    parser.add_argument("--budgets", default="8M,15M,25M")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-images", type=int, default=None, help="score on the first N search-val images")
    parser.add_argument("--draws", choices=["within", "inband"], default="within",
                        help="candidates drawn within the budget (sample_within_budget, the default) or uniformly "
                             "within its band [(1 - band) * budget, budget] (specialize's uniform draws)")
    parser.add_argument("--band", type=float, default=None,
                        help="with --draws inband: the band's width as a fraction of the budget "
                             "(default: each run's focus.band)")
    parser.add_argument("--spread", action="store_true",
                        help="also score every candidate's test top-1; report per budget the best, the median "
                             "and the spread (best minus median)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--from-json", action="store_true",
                        help="each RUN is a file written by --json (one run each, as benchmarks/gpu_study.py "
                             "writes RUN/bench.json): summarise it without evaluating anything")
    parser.add_argument("--first", type=int, metavar="N",
                        help="with --from-json: use each run's first N candidates (needs runs measured with --spread)")
    args = parser.parse_args(argv)
    if args.band is not None and args.draws != "inband":
        parser.error("--band applies to --draws inband only")
    if args.first is not None and not args.from_json:
        parser.error("--first applies to --from-json only")
    budgets = parse_budgets(args.budgets)
    groups: dict[str, list[dict]] = defaultdict(list)
    for spec in args.runs:
        label, _, runs = spec.partition("=")
        for run in runs.split(","):
            if args.from_json:
                for result in (r for saved in json.loads(Path(run).read_text()).values() for r in saved):
                    groups[label].append(first_draws(result, args.first) if args.first else result)
                continue
            print(f"{label}: {run}", flush=True)
            groups[label].append(evaluate_run(Path(run), budgets, args.candidates, args.seed, args.val_images,
                                              args.draws, args.band, args.spread))
    if args.from_json:
        args.candidates = args.first or min(b["scored"] for r in groups[label] for b in r["budgets"].values())
        args.draws = next(iter(groups.values()))[0]["draws"]
    summarize(groups, budgets, args.candidates, args.draws, args.spread)
    if args.json:
        args.json.write_text(json.dumps(groups, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return dict(groups)


def summarize(groups: dict[str, list[dict]], budgets: list[Budget], candidates: int, draws: str,
              spread: bool) -> None:
    """Print each group's mean ± std over runs, and each later group's paired differences from the first."""
    drawn = "random in-budget" if draws == "within" else "uniform in-band"
    print(f"\nTest top-1 (%) of the best of {candidates} {drawn} archs by search-val top-1; "
          "mean ± std over runs")
    print(f"{'group':<26} {'largest':>14} {'smallest':>14} " + " ".join(f"{b.label:>14}" for b in budgets))
    for label, results in groups.items():
        cells = [mean_std([r["largest_test_top1"] for r in results]),
                 mean_std([r["smallest_test_top1"] for r in results])]
        cells += [mean_std([r["budgets"][b.label]["best"]["test_top1"] for r in results]) for b in budgets]
        print(f"{label:<26} " + " ".join(f"{c:>14}" for c in cells))
        patch_rows = sorted({k for r in results for b in r["budgets"].values() for k in b if k.startswith("patch")})
        for row in patch_rows:
            cells = [mean_std([r["budgets"][b.label][row]["test_top1"] for r in results
                               if row in r["budgets"][b.label]]) for b in budgets]
            print(f"{'  ' + row:<26} {'':>14} {'':>14} " + " ".join(f"{c:>14}" for c in cells))
    spread_rows = {"best test": "best_test_top1", "median test": "median_test_top1", "spread": "spread"}
    if spread:
        print(f"\nTest top-1 (%) of every one of the {candidates} {drawn} archs: the best, the median, "
              "and the spread (best minus median); mean ± std over runs")
        print(f"{'group':<34} " + " ".join(f"{b.label:>14}" for b in budgets))
        for label, results in groups.items():
            for row, key in spread_rows.items():
                cells = [mean_std([r["budgets"][b.label]["best"][key] for r in results]) for b in budgets]
                print(f"{label + ' ' + row:<34} " + " ".join(f"{c:>14}" for c in cells))
    labels = list(groups)
    first = labels[0]
    for other in labels[1:]:
        if len(groups[other]) != len(groups[first]) or len(groups[first]) < 2:
            continue
        print(f"\npaired by seed ({other} - {first}): mean ± standard error of the difference")
        print(f"  largest: {paired(groups[first], groups[other], lambda r: r['largest_test_top1'])}")
        for budget in budgets:
            best = paired(groups[first], groups[other], lambda r: r["budgets"][budget.label]["best"]["test_top1"])
            print(f"  {budget.label}: {best}")
            if spread:
                for row in ("median test", "spread"):
                    key = spread_rows[row]
                    diff = paired(groups[first], groups[other], lambda r: r["budgets"][budget.label]["best"][key])
                    print(f"  {budget.label} {row}: {diff}")


if __name__ == "__main__":
    main()
