"""Trains like ``focusformer-train`` and records, per rank, what the tests in test_distributed.py compare.

Run under torchrun, ``torchrun --standalone --nproc-per-node 2 tests/distributed_worker.py RECORD RUNS
SAMPLERS [SECTION.KEY=VALUE ...]``, it trains one digits run per sampler in the comma-separated
SAMPLERS (one torchrun start for all: starting is what costs most here) into ``RUNS/<sampler>``;
:func:`record_run` is one such run, in-process for a single process. Each rank saves
``RECORD/<sampler>/rank<r>.pt`` with the subnets it trained at every step, its weights and
strategy state at every checkpoint, the files it wrote, and what the :class:`Ranks` collectives gave it.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from focusformer.config import load_config
from focusformer.training import trainer as training
from focusformer.training.distributed import DistributedError, Ranks, distributed_session

_WRITERS = ("save_checkpoint", "atomic_write_text", "write_summary")


def record_run(record: Path, run: Path, overrides: Sequence[str], ranks: Ranks | None = None) -> dict[str, Any]:
    ranks = ranks or Ranks()
    writes: list[str] = []
    originals = {name: getattr(training, name) for name in _WRITERS}
    for name, write in originals.items():
        setattr(training, name, _recording(write, name, writes))
    try:
        trainer = training.Trainer(load_config("digits", overrides), run, progress=False, ranks=ranks)
        archs: list[list[dict]] = []
        states: dict[int, dict[str, Any]] = {}
        choose, save = trainer.strategy.archs_for_step, trainer._save

        def recording_choose(step: int) -> list:
            chosen = choose(step)
            archs.append([arch.to_dict() for arch in chosen])
            return chosen

        def recording_save() -> None:
            save()
            states[trainer.step] = {"model": trainer.supernet.state_dict(), "strategy": trainer.strategy.state_dict()}

        trainer.strategy.archs_for_step, trainer._save = recording_choose, recording_save
        trainer.fit()
    finally:
        for name, write in originals.items():
            setattr(training, name, write)
    result = {"archs": archs, "states": states, "writes": writes, "collectives": _collectives(ranks)}
    record.mkdir(parents=True, exist_ok=True)
    torch.save(result, record / f"rank{ranks.rank}.pt")
    return result


def _recording(write: Callable, name: str, writes: list[str]) -> Callable:
    @functools.wraps(write)
    def recorded(path, *args, **kwargs):
        writes.append(f"{name}:{Path(path).name}")
        return write(path, *args, **kwargs)

    return recorded


def _collectives(ranks: Ranks) -> dict[str, Any]:
    """What the helpers give for rank-local values: sums, means, any, and a disagreement caught."""
    local = torch.tensor([float(ranks.rank + 1)])
    try:
        ranks.check_same(ranks.rank, "a rank-local value")
        disagreement = ""
    except DistributedError as exc:
        disagreement = str(exc)
    return {
        "sum": ranks.sum(local.clone()).item(),
        "mean": ranks.mean(local).item(),
        "any": ranks.any(ranks.rank == ranks.world_size - 1),
        "disagreement": disagreement,
        "from_main": ranks.from_main(f"rank {ranks.rank}"),
    }


if __name__ == "__main__":
    record, runs, samplers, overrides = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(","), sys.argv[4:]
    with distributed_session() as session:
        for sampler in samplers:
            record_run(record / sampler, runs / sampler, [*overrides, f"train.sampler={sampler}"], session)
