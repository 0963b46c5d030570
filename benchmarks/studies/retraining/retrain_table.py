"""Issue #25's retraining table: each pick's test top-1 with inherited weights, fine-tuned, retrained.

Reads what ``retrain_study.sh`` leaves in each ``ROOT/s<SEED>`` directory: the exports in
``picks/<budget>`` and the runs ``<budget>-inherited-<E>ep`` and ``<budget>-scratch-<E>ep``. The
inherited figure is the export itself scored on the test set here (the model a user would ship
without training it further), so it needs no record from the search. Fine-tuned and retrained
figures are the runs' ``final.json``. Per seed, then mean ± std over seeds and paired differences,
mean ± SE (bold beyond 2 SE)::

    python benchmarks/retrain_table.py runs/p25/focusloss/s0 runs/p25/focusloss/s1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_focus_vs_uniform import mean_std, paired

from focusformer.config import load_config
from focusformer.data import load_data
from focusformer.evaluation import default_device
from focusformer.export import read_export
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs
from focusformer.training.subnet import DenseSubnet

METHODS = ("inherited", "fine-tuned", "retrained")


def inherited_top1(export: Path, config_path: Path) -> float:
    """Test top-1 of the exported subnet in ``export``, on the data of the run in ``config_path``."""
    space, arch = read_export(export)
    config = load_config(config_path)
    model = DenseSubnet(space, arch)
    model.load_export(export)
    device = default_device()
    data = load_data(config.data, model.space, config.train)
    scorer = CandidateScorer(model.to(device), data.test, device, config.train.eval_batch_size)
    return scorer.score([arch])[0]


def one_run(directory: Path) -> dict:
    """``final.json``'s test top-1 and the epochs trained, of one subnet run."""
    final = json.loads((directory / "final.json").read_text())
    config = load_config(directory / "config.yaml")
    return {"test_top1": final["subnet"]["test_top1"], "epochs": config.train.epochs}


def seed_rows(root: Path) -> dict[str, dict]:
    """Per budget label: the pick's MACs and its three test top-1 figures."""
    rows = {}
    picks = [(export, *read_export(export)) for export in (root / "picks").iterdir()]
    for export, space, arch in sorted(picks, key=lambda pick: count_macs(pick[2], pick[1])):
        label = export.name
        (tuned,) = root.glob(f"{label}-inherited-*ep")
        (scratch,) = root.glob(f"{label}-scratch-*ep")
        fine, re = one_run(tuned), one_run(scratch)
        rows[label] = {"macs": count_macs(arch, space), "arch": str(arch),
                       "inherited": inherited_top1(export, tuned / "config.yaml"),
                       "fine-tuned": fine["test_top1"], "fine_tune_epochs": fine["epochs"],
                       "retrained": re["test_top1"], "retrain_epochs": re["epochs"]}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="+", type=Path, help="retrain_study.sh's ROOT/s<SEED> directories")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    for root in args.roots:
        if not (root / "picks").is_dir():
            parser.error(f"{root}: no picks/ (not a retrain_study.sh seed directory)")
    seeds = {str(root): seed_rows(root) for root in args.roots}
    labels = list(next(iter(seeds.values())))
    print("| seed dir | budget | pick MACs | inherited | fine-tuned | retrained | arch |")
    print("|---|---|---|---|---|---|---|")
    for root, rows in seeds.items():
        for label, row in rows.items():
            print(f"| {root} | {label} | {row['macs'] / 1e6:.2f}M | {row['inherited']:.2f} | "
                  f"{row['fine-tuned']:.2f} ({row['fine_tune_epochs']} ep) | "
                  f"{row['retrained']:.2f} ({row['retrain_epochs']} ep) | {row['arch']} |")
    print("\nmean ± std over seeds; paired differences (same pick), mean ± SE:\n")
    print("| budget | seeds | " + " | ".join(METHODS)
          + " | fine-tuned - inherited | retrained - inherited | fine-tuned - retrained |")
    print("|---|---|" + "---|" * 6)
    for label in labels:
        have = [rows[label] for rows in seeds.values() if label in rows]
        values = {m: [row[m] for row in have] for m in METHODS}
        print(f"| {label} | {len(have)} | " + " | ".join(mean_std(values[m]) for m in METHODS) + " | "
              + " | ".join(paired(values[a], values[b]) for a, b in
                           (("fine-tuned", "inherited"), ("retrained", "inherited"), ("fine-tuned", "retrained")))
              + " |")
    if args.json:
        args.json.write_text(json.dumps(seeds, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
