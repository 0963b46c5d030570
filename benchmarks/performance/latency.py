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
itself, a ceiling for any prediction on this machine at this time. Goal (issue #13): tau >= 0.9
and MAPE <= 10% on CPU at batch size 1. Nothing is asserted; this only prints.
Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_latency.py --configs fashion-mnist vitas-fashion-mnist \\
        psvit-1d-fashion-mnist psvit-2d-fashion-mnist --subnets 60

``--save DIR`` also writes each table as ``DIR/<config>.json``. ``--marginal`` (PSViT configs) instead
compares, stage by stage, what one cell adds to a model whose other cells are identities (its
marginal cost, end to end) with the same cell timed apart (its module in the table), all in one
round-robin.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from benchmarks.performance.throughput import machine_header
from focusformer.budget import Budget
from focusformer.config import load_config
from focusformer.latency import LatencyTable, TimingSettings, time_modules, time_subnets
from focusformer.latency.build import image_shape, time_table
from focusformer.search.evolution import sample_within_budget
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


def bench(config: str, settings: TimingSettings, args: argparse.Namespace) -> list[list[str]]:
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
    rows, offset = [], 0
    for name, group in sets.items():
        part = slice(offset, offset + len(group))
        offset += len(group)
        m = measured[part]
        rows.append([config, name, str(len(group)), f"{m.min():.2f}-{m.max():.2f}", f"{mape(summed[part], m):.1f}",
                     *(f"{kendalltau(p[part], m)[0]:.3f} / {mape(p[part], m):.1f}" for p in predicted.values())])
    first = measured[: len(again)]
    rows.append([config, "retest", str(len(again)), f"{again.min():.2f}-{again.max():.2f}", "",
                 f"{kendalltau(first, again)[0]:.3f} / {mape(first, again):.1f}", ""])
    return rows


def marginal(config: str, settings: TimingSettings) -> list[list[str]]:
    """PSViT: one ``layer`` or ``shared`` cell per stage in an otherwise all-identity model at the
    widest widths, against the same cell timed apart."""
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
    return [[config, str(stage), op, f"{whole[i + 1] - whole[0]:.3f}", f"{apart[i]:.3f}",
             f"{apart[i] / (whole[i + 1] - whole[0]):.2f}"] for i, (stage, op) in enumerate(cases)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = parser.parse_args()
    threads = None if args.device == "cuda" else args.threads
    settings = TimingSettings(args.device, args.batch_size, threads, args.warmup, args.repeats)
    print("\n".join(machine_header(torch.device(args.device))))
    print(f"timing: {settings}")
    if args.marginal:
        rows = [["config", "stage", "cell", "marginal ms (in model)", "timed apart ms", "apart / marginal"]]
        for config in args.configs:
            rows += marginal(config, settings)
    else:
        rows = [["config", "subnets", "n", "measured ms", "MAPE summed %", "tau / MAPE % (one scale)",
                 "tau / MAPE % (as built)"]]
        for config in args.configs:
            rows += bench(config, settings, args)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows))


if __name__ == "__main__":
    main()
