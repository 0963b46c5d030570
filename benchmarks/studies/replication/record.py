"""The replication study's records: each finished run's figures, kept in the repository.

A supernet's checkpoint stays on the machine that trained it, and a machine can be lost with its
runs (this study's first runs were). What the tables need of a run is small, so each step writes
it here as soon as a run is evaluated or retrained, and ``analyze.py`` reads only these records:

* ``<run>.json`` (``evaluate.py``): the run's arm and seed, the evaluation's settings, and its
  row of figures for each measure (:func:`benchmarks.quality.evaluate.rows_by_measure`);
* ``retrain-s<seed>.json`` (``retrain.py``): specialize's picks and each finished subnet run's
  test top-1;
* ``ranking.json``: the ranking benchmark's report (its ``--json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.quality import evaluate
from focusformer.fileio import atomic_write_text

#: Where the study's records live in the repository.
RECORDS = Path(__file__).parent / "results" / "runs"


def write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def write_supernet(run: Path, measures: str, common: list[str], records: Path) -> None:
    """``records/<run>.json``: the run's rows of ``measures`` (comma-separated), from its cache."""
    arm, _, seed = run.name.rpartition("-s")
    rows = evaluate.rows_by_measure(run, measures.split(","), common)
    write(records / f"{run.name}.json", {"arm": arm, "seed": int(seed), "settings": common, "rows": rows})


def supernet_rows(records: Path, arm: str, seeds: tuple[int, ...], measures: list[str]) -> dict[int, dict[str, float]]:
    """The recorded seeds of ``arm``, each one row of the columns of ``measures`` (as the
    evaluation's own table would have them); a record without one of ``measures`` is an error."""
    rows = {}
    for seed in seeds:
        path = records / f"{arm}-s{seed}.json"
        if not path.is_file():
            continue
        by_measure = json.loads(path.read_text())["rows"]
        missing = [m for m in measures if m not in by_measure]
        if missing:
            raise ValueError(f"{path.name} records no {', '.join(missing)}; evaluate.py plans what it records")
        rows[seed] = {column: value for m in measures for column, value in by_measure[m].items()}
    return rows


def write_retraining(folder: Path, records: Path) -> None:
    """``records/retrain-s<seed>.json`` for ``folder`` (ROOT/retrain-s<seed>): specialize's picks and
    the test top-1 of each finished subnet run, by run name (``finetune5-8M``)."""
    finished = {run.name: json.loads((run / "final.json").read_text())["subnet"]["test_top1"]
                for run in sorted(folder.iterdir()) if (run / "final.json").is_file()}
    picks = json.loads((folder / "picks.json").read_text())
    write(records / f"{folder.name}.json", {"picks": picks, "test_top1": finished})


def retraining(records: Path, seed: int) -> dict | None:
    path = records / f"retrain-s{seed}.json"
    return json.loads(path.read_text()) if path.is_file() else None
