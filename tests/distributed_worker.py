"""Trains like ``focusformer-train`` and records, per rank, what the tests in test_distributed.py compare.

Run under torchrun, ``torchrun --standalone --nproc-per-node 2 tests/distributed_worker.py RECORD RUNS
JSON``, it trains one digits run per entry of JSON, ``{"name": ["section.key=value", ...]}`` (one
torchrun start for all: starting is what costs most here), into ``RUNS/<name>`` (a name ending in
``-perturbed`` scrambles the focus learner of every rank but 0); :func:`record_run`
is one such run, in-process for a single process. Each rank saves ``RECORD/<name>/rank<r>.pt``
with the subnets it trained at every step, its weights and strategy state at every checkpoint,
the files it wrote, whether it wrote TensorBoard events, and what the :class:`Ranks` collectives
gave it.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from focusformer.config import load_config
from focusformer.distributed import DistributedError, Ranks, distributed_session
from focusformer.search.scoring import CandidateScorer
from focusformer.training import trainer as training

_WRITERS = ("save_checkpoint", "atomic_write_text", "write_summary")


def record_run(record: Path, run: Path, overrides: Sequence[str], ranks: Ranks | None = None,
               perturb: bool = False) -> dict[str, Any]:
    """One run; with ``perturb`` every rank but 0 scrambles its focus learner (sampler and predictor
    weights, and each predictor fit), as ranks whose floating point differs would drift apart."""
    ranks = ranks or Ranks()
    writes: list[str] = []
    event_logs: list[bool] = []  # whether each event log the trainer opens writes
    originals = {name: getattr(training, name) for name in (*_WRITERS, "EventLog")}
    for name in _WRITERS:
        setattr(training, name, _recording(originals[name], name, writes))

    class RecordedEventLog(originals["EventLog"]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            event_logs.append(self.active)

    training.EventLog = RecordedEventLog
    try:
        trainer = training.Trainer(load_config("digits", overrides), run, progress=False, ranks=ranks)
        if perturb and not ranks.is_main:
            _perturb_learner(trainer.strategy)
        archs: list[list[dict]] = []
        states: dict[int, dict[str, Any]] = {}
        choose, save = trainer.strategy.archs_for_step, trainer._save

        def recording_choose(step: int, minibatch_loss=None) -> list:
            chosen = choose(step, minibatch_loss)
            archs.append([arch.to_dict() for arch in chosen])
            return chosen

        def recording_save() -> None:
            save()
            states[trainer.step] = {"model": trainer.network.state_dict(), "strategy": trainer.strategy.state_dict()}

        trainer.strategy.archs_for_step, trainer._save = recording_choose, recording_save
        trainer.fit()
    finally:
        for name, write in originals.items():
            setattr(training, name, write)
    result = {"archs": archs, "states": states, "writes": writes, "events": any(event_logs),
              "collectives": _collectives(ranks),
              "scoring_as_one_process": _scoring_as_one_process(trainer, ranks)}
    record.mkdir(parents=True, exist_ok=True)
    torch.save(result, record / f"rank{ranks.rank}.pt")
    return result


def _perturb_learner(strategy: Any) -> None:
    noise = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for parameter in [*strategy.sampler.parameters(), *strategy.predictor.parameters()]:
            parameter.add_(torch.randn(parameter.shape, generator=noise))
    strategy.recent_taus = [1.0] * strategy.config.stable_updates  # as if it had learned to rank


def _recording(write: Callable, name: str, writes: list[str]) -> Callable:
    @functools.wraps(write)
    def recorded(path, *args, **kwargs):
        writes.append(f"{name}:{Path(path).name}")
        return write(path, *args, **kwargs)

    return recorded


def _scoring_as_one_process(trainer: training.Trainer, ranks: Ranks) -> dict[str, bool]:
    """Whether scoring split over the ranks gives, bit for bit, what one process scoring all gives
    (supernet runs: a subnet run's scorer runs one arch, which the supernet runs cover)."""
    if trainer.config.subnet.arch is not None:
        return {}
    space, data = trainer.config.space, trainer.data.search_val
    archs = [space.largest(), space.smallest(), space.sample(0)]
    split, whole = (CandidateScorer(trainer.network, data, trainer.device, batch_size=50, ranks=r)
                    for r in (ranks, None))
    same = {"score": split.score(archs) == whole.score(archs)}
    for reward in ("top1", "loss", "distill"):
        same[reward] = torch.equal(split.per_image(archs, reward), whole.per_image(archs, reward))
    return same


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
    record, runs, specs = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    with distributed_session() as session:
        for name, overrides in specs.items():
            record_run(record / name, runs / name, overrides, session, perturb=name.endswith("-perturbed"))
