"""The replication study's records: each finished run's figures, kept in the repository.

A supernet's checkpoint stays on the machine that trained it, and a machine can be lost with its
runs (this study's first runs were). What the tables need of a run is small, so each step writes
it here as soon as a run is evaluated or retrained, and ``analyze.py`` reads only these records:

* ``<run>.json`` (``evaluate.py``): the run's arm, seed and checkpoint, the evaluation's settings,
  and its rows (:class:`benchmarks.quality.evaluate.KeptRows`);
* ``retrain-s<seed>.json`` (``retrain.py``): specialize's picks and each finished subnet run's
  test top-1, written when the picks are made and again as each subnet run finishes;
* ``ranking.json``: the ranking benchmark's report (its ``--json``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from benchmarks.lib.output import write_json
from benchmarks.quality import evaluate

#: Where the study's records live in the repository.
RECORDS = Path(__file__).parent / "results" / "runs"


def write_supernet(run: Path, arm: str, measures: str, common: list[str], records: Path) -> None:
    """``records/<run>.json``: the rows of ``run`` (of ``arm``) for every subset of ``measures``
    (comma-separated), from its evaluation's cache, with the settings they were evaluated with."""
    kept = evaluate.keep_rows(run, measures.split(","), common)
    if run.name != f"{arm}-s{kept.seed}":
        raise ValueError(f"{run}: trained with seed {kept.seed}, so it should be named {arm}-s{kept.seed}")
    write_json(records / f"{run.name}.json", {"arm": arm, "settings": common, **dataclasses.asdict(kept)})


def supernet_rows(records: Path, arm: str, seeds: tuple[int, ...], measures: list[str],
                  common: list[str]) -> tuple[dict[int, dict[str, float]], list[str]]:
    """The recorded seeds of ``arm``, each its row of ``measures`` as the evaluation reports it,
    and a line for each budget evaluated at another cost. A record of other settings than
    ``common``, or without that set of measures, is an error."""
    rows, moved = {}, []
    key = evaluate.measures_key(measures)
    for seed in seeds:
        path = records / f"{arm}-s{seed}.json"
        if not path.is_file():
            continue
        kept = json.loads(path.read_text())
        if kept["settings"] != common:
            raise ValueError(f"{path.name} was evaluated with {kept['settings']}, not {common}")
        if key not in kept["rows"]:
            raise ValueError(f"{path.name} records no {key}; evaluate.py plans what it records")
        rows[seed] = kept["rows"][key]
        moved += [f"{arm}-s{seed}: {column} evaluated at {cost:,.0f} MACs, its space's largest subnet"
                  for column, cost in kept["evaluated_at"].items()]
    return rows, moved


def write_retraining(folder: Path, records: Path) -> None:
    """``records/retrain-s<seed>.json`` for ``folder`` (ROOT/retrain-s<seed>): specialize's picks
    and the test top-1 of each finished subnet run, by run name (``finetune5-8M``). Figures that
    an earlier record of the same picks holds and this folder does not (a machine lost since) are
    kept."""
    picks = json.loads((folder / "picks.json").read_text())
    finished = {run.name: json.loads((run / "final.json").read_text())["subnet"]["test_top1"]
                for run in sorted(folder.iterdir()) if (run / "final.json").is_file()}
    earlier = retraining(records, folder.name.removeprefix("retrain-s"))
    if earlier is not None and _choices(earlier["picks"]) == _choices(picks):
        finished = {**earlier["test_top1"], **finished}
    write_json(records / f"{folder.name}.json", {"picks": picks, "test_top1": finished})


def _choices(picks: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """What specialize chose, each budget's arch (its JSON also holds timings, which vary)."""
    return [(float(found["budget"]), json.dumps(found["arch"], sort_keys=True)) for found in picks]


def retraining(records: Path, seed: int | str) -> dict[str, Any] | None:
    """The record of retraining seed ``seed``'s picks, or ``None`` before it has one."""
    path = records / f"retrain-s{seed}.json"
    return json.loads(path.read_text()) if path.is_file() else None
