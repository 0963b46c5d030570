"""Benchmark: a latency table's predictions against the end-to-end latency of random subnets.

For each config, on this machine: build a latency table exactly as ``focusformer-latency build``
does (``focusformer.latency.build_table``: every distinct module timed round-robin, warm-up,
repeats, median; then the calibration fitted on ``--calibration`` subnets timed whole), then time
two sets of subnets end to end (their exported dense models, round-robin, the table's settings):

* ``uniform``: the family's own uniform sampling (``space.sample``), a narrow band of latencies;
* ``budgets``: one subnet within each of N latency budgets spread over the table's range
  (``sample_within_budget``), what specialize and search pick from.

Both are drawn with other seeds than the calibration subnets, so the fit is not scored on its own
data. Printed per config and set: the mean absolute percentage error (MAPE) of the plain sums, and
Kendall tau and MAPE of two calibrations fitted on the same timings: ``one scale`` (a single
scale and offset for every module: its tau is the plain sums' too) and ``as built`` (what
``focusformer-latency build`` keeps: a scale per kind of module where that predicts held-out
calibration subnets better, see ``fit_calibration``). The ``retest`` row times the ``uniform``
set a second time and scores the first timing against it: the agreement of the measurement with
itself, a ceiling for any prediction on this machine at this time. Target: tau >= 0.9 and
MAPE <= 10% on CPU at batch size 1; the ``target:`` line prints the lowest tau and the highest
MAPE of the ``as built`` table over the ``uniform`` and ``budgets`` sets, with the retest's.
Nothing is asserted; this only prints (and, with ``--json PATH``, saves the figures).

Why: latency budgets in specialize and search are only as good as the table's predictions; the
ranking (tau) decides which subnet wins a budget, the relative error whether it meets it.

Run, from the repository root::

    OMP_NUM_THREADS=1 python -m benchmarks.performance.latency --configs fashion-mnist vitas-fashion-mnist \\
        psvit-1d-fashion-mnist psvit-2d-fashion-mnist --subnets 60

``--save DIR`` also writes each table as ``DIR/<config>.json``. ``--marginal`` (PSViT configs) instead
compares, stage by stage, what one cell adds to a model whose other cells are identities (its
marginal cost, end to end) with the same cell timed apart (its module in the table), all in one
round-robin; its ``target:`` line prints the range of apart / marginal (1 where the table's sum
of modules holds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import aligned
from focusformer.budget import Budget
from focusformer.config import load_config
from focusformer.latency import LatencyTable, TimingSettings, time_modules, time_subnets
from focusformer.latency.build import image_shape, time_table
from focusformer.search.within_budget import sample_within_budget
from focusformer.spaces import PSViTArch, PSViTStage


def subnet_sets(table: LatencyTable, count: int, seed: int) -> dict[str, list]:
    space = table.space
    costs = table.cost_model(space)
    rng = np.random.default_rng(seed)
    uniform = [space.sample(rng) for _ in range(count)]
    budgets = np.linspace(costs.min_cost, costs.max_cost, count)
    spread = [sample_within_budget(space, Budget(float(b), "latency", table), rng) for b in budgets]
    return {"uniform": uniform, "budgets": spread}


def mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(predicted - measured) / measured))


def bench(config: str, settings: TimingSettings, args: argparse.Namespace) -> tuple[list[list[str]], list[dict]]:
    """The table's rows for ``config`` (strings), and the same figures as numbers."""
    space = load_config(config).space
    start = time.perf_counter()
    timings = time_table(space, settings, args.calibration, seed=0)
    tables = {"one scale": timings.calibrated(per_kind=False), "as built": timings.calibrated()}
    built = time.perf_counter() - start
    if args.save:
        tables["as built"].save(Path(args.save) / f"{config}.json")
    print(f"{config}: {len(timings.table.measurements)} modules, timed in {built:.1f}s")
    for name, table in tables.items():
        print(f"  {name}: {table.calibration.describe()}")
    sets = subnet_sets(tables["as built"], args.subnets, seed=args.seed)
    archs = [arch for group in sets.values() for arch in group]
    start = time.perf_counter()
    measured = np.array(time_subnets(space, archs, settings))
    again = np.array(time_subnets(space, sets["uniform"], settings))
    print(f"  {len(archs) + len(again)} subnets timed end to end in {time.perf_counter() - start:.1f}s")
    summed = np.array([timings.table.summed(arch) for arch in archs])
    predicted = {name: np.array([table.predict(arch) for arch in archs]) for name, table in tables.items()}
    rows, figures, offset = [], [], 0
    for name, group in sets.items():
        part = slice(offset, offset + len(group))
        offset += len(group)
        m = measured[part]
        scores = {table: {"tau": float(kendalltau(p[part], m)[0]), "mape": mape(p[part], m)}
                  for table, p in predicted.items()}
        figures.append({"config": config, "set": name, "n": len(group), "measured_ms": [float(m.min()), float(m.max())],
                        "mape_summed": mape(summed[part], m), **scores})
        rows.append([config, name, str(len(group)), f"{m.min():.2f}-{m.max():.2f}", f"{mape(summed[part], m):.1f}",
                     *(f"{score['tau']:.3f} / {score['mape']:.1f}" for score in scores.values())])
    first = measured[: len(again)]
    retest = {"tau": float(kendalltau(first, again)[0]), "mape": mape(first, again)}
    figures.append({"config": config, "set": "retest", "n": len(again),
                    "measured_ms": [float(again.min()), float(again.max())], "retest": retest})
    rows.append([config, "retest", str(len(again)), f"{again.min():.2f}-{again.max():.2f}", "",
                 f"{retest['tau']:.3f} / {retest['mape']:.1f}", ""])
    return rows, figures


def marginal(config: str, settings: TimingSettings) -> tuple[list[list[str]], list[dict]]:
    """PSViT: one ``layer`` or ``shared`` cell per stage in an otherwise all-identity model at the
    widest widths, against the same cell timed apart (the table's rows, and the figures as numbers)."""
    space = load_config(config).space
    widths, ratio = [choices[-1] for choices in space.widths], space.mlp_ratio[-1]
    rest = ("identity",) * (space.cells_per_stage - 1)

    def arch(stage: int, op: str) -> PSViTArch:
        return PSViTArch(tuple(PSViTStage(w, ratio, ((op if s == stage else "identity"),) + rest)
                               for s, w in enumerate(widths)))

    cases = [(stage, op) for stage in range(space.num_stages) for op in ("layer", "shared")]
    archs = [arch(-1, "identity")] + [arch(stage, op) for stage, op in cases]
    probes = []
    for stage, op in cases:
        network, layers = space.arch_values(arch(stage, op))
        layer = stage * space.cells_per_stage
        probes += list(space.timing_layer(layer, network, layers[layer]))
    times = time_modules([(space.build_subnet(a), image_shape(space)) for a in archs]
                         + [(p.build(), p.input_shape) for p in probes], settings)
    whole, apart = times[:len(archs)], times[len(archs):]
    figures = [{"config": config, "stage": stage, "cell": op, "marginal_ms": whole[i + 1] - whole[0],
                "apart_ms": apart[i], "apart_over_marginal": apart[i] / (whole[i + 1] - whole[0])}
               for i, (stage, op) in enumerate(cases)]
    rows = [[config, str(f["stage"]), f["cell"], f"{f['marginal_ms']:.3f}", f"{f['apart_ms']:.3f}",
             f"{f['apart_over_marginal']:.2f}"] for f in figures]
    return rows, figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance.latency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["fashion-mnist", "vitas-fashion-mnist",
                                                         "psvit-1d-fashion-mnist", "psvit-2d-fashion-mnist"])
    parser.add_argument("--subnets", type=int, default=60, help="subnets per set (default: %(default)s)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (ignored on cuda)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--calibration", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="seed of the timed subnets (the fit's is 0)")
    parser.add_argument("--save", metavar="DIR", help="also write each table to DIR/<config>.json")
    parser.add_argument("--marginal", action="store_true",
                        help="PSViT configs: each cell's marginal cost in the model against the cell timed apart")
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    threads = None if args.device == "cuda" else args.threads
    settings = TimingSettings(args.device, args.batch_size, threads, args.warmup, args.repeats)
    header = print_header("benchmarks.performance.latency", argv, device=torch.device(args.device),
                          what="latency: a latency table's predictions against subnets timed end to end"
                          + (" (--marginal: cells in the model against cells timed apart)" if args.marginal else ""))
    print(f"timing: {settings}")
    figures: list[dict] = []
    if args.marginal:
        columns = ["config", "stage", "cell", "marginal ms (in model)", "timed apart ms", "apart / marginal"]
        rows = []
        for config in args.configs:
            config_rows, config_figures = marginal(config, settings)
            rows += config_rows
            figures += config_figures
        ratios = [f["apart_over_marginal"] for f in figures]
        target = {"compared": "cell timed apart / its marginal cost in the model",
                  "apart_over_marginal": [min(ratios), max(ratios)]}
        line = (f"target: a cell timed apart against its marginal cost in the model (1 where the table's sum "
                f"holds); apart / marginal {min(ratios):.2f} to {max(ratios):.2f}")
    else:
        columns = ["config", "subnets", "n", "measured ms", "MAPE summed %", "tau / MAPE % (one scale)",
                   "tau / MAPE % (as built)"]
        rows = []
        for config in args.configs:
            config_rows, config_figures = bench(config, settings, args)
            rows += config_rows
            figures += config_figures
        scored = [f["as built"] for f in figures if "as built" in f]
        retests = [f["retest"] for f in figures if "retest" in f]
        target = {"compared": "as-built table's predictions / measured latency", "goal_tau": 0.9, "goal_mape": 10.0,
                  "lowest_tau": min(s["tau"] for s in scored), "highest_mape": max(s["mape"] for s in scored),
                  "retest_lowest_tau": min(r["tau"] for r in retests),
                  "retest_highest_mape": max(r["mape"] for r in retests)}
        line = (f"target: predicted against measured latency, Kendall tau >= 0.9 and MAPE <= 10% (CPU, batch "
                f"size 1); as built: lowest tau {target['lowest_tau']:.3f}, highest MAPE "
                f"{target['highest_mape']:.1f}%; retest (the measurement against itself): lowest tau "
                f"{target['retest_lowest_tau']:.3f}, highest MAPE {target['retest_highest_mape']:.1f}%")
    print(aligned(columns, rows, left=len(columns)))
    print(line)
    return save_report(report_of(header, argv, args, target, settings=str(settings), results=figures), args.json)


if __name__ == "__main__":
    main()
