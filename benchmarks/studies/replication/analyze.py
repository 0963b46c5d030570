"""The replication study's tables, from its records (``record.py``): no checkpoint is read.

1. The families at matched MACs (best of 32 in-band uniform draws, test top-1; the largest
   subnet) and the spread of their clouds, each paired by seed with AutoFormer's space;
2. ViTAS's two mechanisms: one patch size, and no identity layers, against the shipped space;
3. attentive sampling at equal compute against the currencies study's uniform runs of 16 epochs;
4. specialize's picks inherited, fine-tuned 5 epochs and retrained 15 (``retrain.py``), paired by
   seed per budget;
5. the ranking benchmark's correlations, where RECORDS/ranking.json exists (``NOTE.md``), with
   the stand-alone seeds' agreement and what trusting a supernet's first choice costs.

    python -m benchmarks.studies.replication.analyze [--records RECORDS] --out benchmarks/studies/replication/results
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from benchmarks.lib.output import write_json
from benchmarks.lib.stats import Summary, paired_by_seed
from benchmarks.lib.tables import markdown
from benchmarks.quality import evaluate
from benchmarks.quality.ranking import agreement, standalone_mean
from benchmarks.studies.currencies.evaluate import COMMON
from benchmarks.studies.currencies.train import ARMS as CURRENCIES_ARMS
from benchmarks.studies.replication import evaluate as replication_evaluate
from benchmarks.studies.replication import record
from benchmarks.studies.replication.evaluate import FAMILIES
from benchmarks.studies.replication.retrain import BUDGETS, SCHEDULES, picks_by_budget, trained_under
from benchmarks.studies.replication.train import ARMS, SEEDS


def planned_measures(arm: str) -> list[str]:
    """The measures that this study's evaluation computes and records for ``arm`` (one of its own
    arms, or one of the currencies study's that it compares with)."""
    if arm in ARMS or arm in replication_evaluate.BASELINES:
        return replication_evaluate.measures(arm).split(",")
    if arm in CURRENCIES_ARMS:
        raise ValueError(f"{arm!r}: the currencies study's arm is not one this study records")
    raise ValueError(f"{arm!r} is an arm of neither this study nor the currencies study")


def section(title: str, arms: list[str], chosen: list[str], records: Path, out: Path, name: str) -> str:
    """benchmarks.quality.evaluate's tables of the measures ``chosen`` for the recorded runs of
    ``arms``, the first the reference; arms with no record are left out and named. Each measure
    must be one that ``evaluate.py`` records for every arm."""
    unplanned = [(arm, m) for arm in arms for m in chosen if m not in planned_measures(arm)]
    if unplanned:
        raise ValueError(f"{name}: measures that the arms' evaluation does not plan: {unplanned}")
    have = {arm: record.supernet_rows(records, arm, SEEDS, chosen, COMMON) for arm in arms}
    missing = [arm for arm, (rows, _) in have.items() if not rows]
    rows = {arm: by_seed for arm, (by_seed, _) in have.items() if by_seed}
    if not have[arms[0]][0] or len(rows) < 2:  # no reference, or nothing to compare with it
        return f"## {title}\n\nNot yet: {', '.join(missing)} not recorded.\n"
    summary = evaluate.summarise(rows)
    moved = [line for _, lines in have.values() for line in lines]
    tables = evaluate.report_text(rows, summary) + "".join(f"\n{line}." for line in moved) + ("\n" if moved else "")
    (out / f"{name}.md").write_text(tables)
    write_json(out / f"{name}.json", evaluate.to_json(rows, summary))
    note = f"\nNot yet recorded: {', '.join(missing)}.\n" if missing else ""
    return f"## {title}\n\n{tables}{note}"


def retraining(records: Path) -> str:
    """Inherited (specialize's test top-1), fine-tuned and retrained test top-1, paired by seed. A
    budget whose pick is a smaller budget's reads that budget's runs (``retrain.trained_under``)."""
    figures: dict[str, dict[str, dict[int, float]]] = {b: {} for b in BUDGETS}
    shared = []
    for seed in SEEDS:
        recorded = record.retraining(records, seed)
        if recorded is None:
            continue
        picks, finished = recorded["picks"], recorded["test_top1"]
        for budget, found in picks_by_budget(picks, BUDGETS).items():
            figures[budget].setdefault("inherited", {})[seed] = found["test_top1"]
        under = trained_under(picks, BUDGETS)
        shared += [f"seed {seed}: {budget} as {first}" for budget, first in under.items() if first != budget]
        for name, _, _ in SCHEDULES:
            for budget in BUDGETS:
                run = f"{name}-{under[budget]}"
                if run in finished:
                    figures[budget].setdefault(name, {})[seed] = finished[run]
    schedules = [name for name, _, _ in SCHEDULES]
    names = ["inherited", *schedules]
    # Each schedule against the inherited weights, then each pair of schedules.
    pairs = [(name, "inherited") for name in schedules] + list(itertools.combinations(schedules, 2))
    rows = []
    for budget, by_name in figures.items():
        cells = [Summary.of(list(by_name[n].values())).format() if by_name.get(n) else "-" for n in names]
        diffs = [paired_by_seed(by_name[a], by_name[b]).format() if by_name.get(a) and by_name.get(b) else "-"
                 for a, b in pairs]
        rows.append([budget, *cells, *diffs])
    header = ["budget", *names, *(f"{a} - {b}" for a, b in pairs)]
    same = (f" The same subnet answered several budgets (so they share its runs): {'; '.join(shared)}."
            if shared else "")
    return ("## Retraining specialize's picks\n\nTest top-1 (mean ± sd over seeds); differences paired by seed, mean "
            f"[95% t-interval], bold where it excludes zero.{same}\n\n" + markdown(header, rows) + "\n")


def ranking(records: Path) -> str:
    """The ranking benchmark's report, read again with its own ``agreement`` so that a partial
    report reads too: per set, each supernet's inherited test top-1 against the stand-alone mean
    (subnets with every seed trained) and the regret of its first choice, the stand-alone seeds
    against each other, and the subnets."""
    path = records / "ranking.json"
    if not path.is_file():
        return "## Ranking fidelity\n\nNot yet run (NOTE.md gives the command).\n"
    report = json.loads(path.read_text())
    seeds, runs = [str(seed) for seed in report["seeds"]], report["runs"]
    names = {run: Path(run).name for run in runs}
    by_run, by_seeds = agreement(report["subnets"], runs, seeds)

    def cells(r: dict) -> list[str]:
        return [f"{r['kendall_tau']:+.3f} (p {r['kendall_p']:.3f})",
                f"{r['spearman_rho']:+.3f} (p {r['spearman_p']:.3f})"]

    rows = []
    for set_name in dict.fromkeys(s["set"] for s in report["subnets"]):
        rows += [[names[run], set_name, *cells(r), f"{r['regret']:.2f}", r["subnets"]]
                 for run in runs if (r := by_run[run].get(set_name))]
        rows += [[f"stand-alone seed {pair.replace('-', ' against seed ')}", set_name, *cells(r), "-", r["subnets"]]
                 for pair, r in by_seeds.get(set_name, {}).items()]
    means = [standalone_mean(s, seeds) for s in report["subnets"]]
    subnets = [[Path(s["dir"]).name, f"{s['macs'] / 1e6:.2f}M",
                *(f"{s['inherited_test_top1'][run]:.2f}" for run in runs),
                *(f"{s['standalone_by_seed'][seed]:.2f}" if seed in s["standalone_by_seed"] else "-" for seed in seeds),
                "-" if mean is None else f"{mean:.2f}", s["arch"]]
               for s, mean in zip(report["subnets"], means)]
    missing = means.count(None)
    note = f" {missing} of {len(report['subnets'])} subnets still lack a stand-alone seed." if missing else ""
    return ("## Ranking fidelity\n\n" + f"Stand-alone: {report['init']}, {report['epochs']} epochs, seeds "
            f"{', '.join(seeds)} (their mean is the ground truth).{note} Regret: the best stand-alone mean in the set "
            "minus that of the subnet the supernet ranks first.\n\n"
            + markdown(["ranked by", "set", "Kendall tau", "Spearman rho", "regret", "subnets"], rows) + "\n\n"
            + markdown(["subnet", "MACs", *(f"inherited, {names[run]}" for run in runs),
                        *(f"stand-alone s{seed}" for seed in seeds), "stand-alone mean", "arch"], subnets) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=record.RECORDS,
                        help="the study's records (default: its results/runs)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = args.records
    parts = [
        section("The families at matched MACs, and their clouds' spread", list(FAMILIES), ["draws", "spread"],
                records, args.out, "families"),
        section("ViTAS's mechanisms: one patch size, no identity layers",
                ["vitas5", "vitas5patch4", "vitas5noidentity"], ["draws"], records, args.out, "vitas-mechanisms"),
        section("Attentive at equal compute on ViTAS's space", ["vuniform16", "vattentive8"], ["draws", "cloud"],
                records, args.out, "attentive-vitas"),
        section("Attentive at equal compute on AutoFormer's space", ["auniform16", "aattentive7"], ["draws"],
                records, args.out, "attentive-autoformer"),
        retraining(records),
        ranking(records),
    ]
    report = "\n".join(parts)
    (args.out / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
