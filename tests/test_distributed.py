"""Training under torchrun is one run: 2 CPU processes (gloo) train what 1 process trains.

The multi-process tests start real ``torchrun`` jobs (``python -m torch.distributed.run``) of
``tests/distributed_worker.py`` (which records every rank's subnets, checkpoint states and file
writes) or of ``focusformer-train`` itself, on two short epochs of digits.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from distributed_worker import record_run
from torch import nn

from focusformer.config import TrainConfig
from focusformer.distributed import Ranks, fingerprint, is_collective_failure, ranks_from_env
from focusformer.errors import ConfigError
from focusformer.run_dir import EVENTS_DIR
from focusformer.training.checkpoint import load_checkpoint
from focusformer.training.events import tensorboard_available
from focusformer.training.trainer import EpochBatches, Trainer

WORKER = Path(__file__).with_name("distributed_worker.py")
# Two epochs of 9 global batches of 128, a checkpoint every 3 steps. 181 search-val images in
# evaluation batches of 50 split 100 / 81 over two ranks: averaging the ranks' accuracies instead
# of summing counts would show. The focus sampler is shrunk so that it scores candidates every 3
# steps and steers from the first update on; other samplers ignore focus settings.
BASE = ["train.epochs=2", "train.batch_size=128", "train.checkpoint_every=3", "data.search_val_size=181",
        "data.reward_size=64",
        "train.eval_batch_size=50", "focus.update_every=3", "focus.eval_candidates=4", "focus.eval_images=64",
        "focus.policy_steps=3", "focus.min_tau=-1", "focus.stable_updates=1"]
RUNS = {
    "uniform": [*BASE, "train.sampler=uniform"],
    "sandwich": [*BASE, "train.sampler=uniform", "train.sandwich=true"],  # 3 backward passes, one gradient sync
    # picks by minibatch loss (averaged over ranks), then trains largest, smallest and the pick,
    # the last two distilled from the largest's logits
    "attentive-distill": [*BASE, "train.sampler=attentive", "train.sandwich=true", "train.distill=kl"],
    "focus": [*BASE, "train.sampler=focus"],
    # the same, with rank 1's learner scrambled: rank 0 decides, so nothing may change
    "focus-perturbed": [*BASE, "train.sampler=focus"],
    # one subnet trained as a dense model (focusformer-train --subnet DIR --init scratch)
    "subnet": [*BASE, "train.sampler=uniform", "subnet.init=scratch",
               "subnet.arch={embed_dim: 32, depth: 3, num_heads: [3, 6, 4], mlp_ratio: [2.0, 4.0, 3.0]}"],
}
FOCUS = RUNS["focus"]
CHECKPOINT_STEPS = [3, 6, 9, 12, 15, 18]


def _torchrun(nproc: int, *args: str, log_dir: Path | None = None) -> list[str]:
    logs = ["--log-dir", str(log_dir), "--redirects", "3"] if log_dir else []
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *logs,
            *map(str, args)]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _records(folder: Path) -> list[dict]:
    return [torch.load(folder / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)]


def _cli_overrides(overrides: list[str]) -> list[str]:
    return [part for item in overrides for part in ("--set", item)]


def _summary(run: Path) -> list[dict[str, str]]:
    with open(run / "summary.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def _assert_equal(a, b, where: str = "") -> None:
    """Bit for bit, through nested dicts and lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), where


def _assert_close_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal up to rounding: a gradient averaged over 2 processes differs from one process's in the
    last bits, and AdamW, dividing by the root of tiny second moments, turns that into differences
    of up to a few 1e-5 in weights of order 1e-2 (the learning rate is 2e-3)."""
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-4, msg=name)


# -- one process: the helpers change nothing ------------------------------------------------------
def test_single_process_ranks_are_a_no_op():
    ranks, model, tensor = Ranks(), nn.Linear(2, 2), torch.tensor([1.5])
    before = torch.get_rng_state()
    ranks.seed_step(seed=0, step=5)
    assert torch.equal(torch.get_rng_state(), before)  # a single process keeps its one RNG stream
    assert ranks.wrap(model) is model and ranks.mean(tensor) is tensor and ranks.sum(tensor) is tensor
    assert ranks.any(True) and not ranks.any(False) and ranks.from_main("x") == "x"
    ranks.check_same(object(), "anything")
    assert ranks.shard(10) == range(10) and ranks.split_batch(7) == 7 and ranks.is_main
    assert ranks_from_env({}) is None
    assert ranks_from_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (1, 4, 1)


def test_epoch_batches_split_every_global_batch_over_the_ranks():
    single = list(EpochBatches(100, 12, seed=3, start=2))
    shards = [list(EpochBatches(100, 12, seed=3, start=2, ranks=Ranks(r, 3, device=torch.device("cpu"))))
              for r in range(3)]
    assert len(single) == len(shards[0]) == 8 - 2
    for b, batch in enumerate(single):
        assert [i for shard in shards for i in shard[b]] == batch
    assert [len(Ranks(r, 3).shard(10)) for r in range(3)] == [3, 3, 4]
    assert [i for r in range(3) for i in Ranks(r, 3).shard(10)] == list(range(10))


def test_a_global_batch_that_does_not_split_is_a_clear_error():
    with pytest.raises(ConfigError, match="128 is the global batch and must split evenly over 3 processes"):
        Ranks(0, 3).split_batch(128)
    with pytest.raises(ConfigError, match="must be even; got 33 .66 over 2"):
        Ranks(1, 2).split_batch(66, even=True)
    assert Ranks(1, 2).split_batch(66) == 33


def test_lr_scaling_is_deits_and_off_by_default():
    assert TrainConfig(batch_size=1024, lr=5e-4).peak_lr == 5e-4
    assert TrainConfig(batch_size=1024, lr=5e-4, scale_lr=True).peak_lr == pytest.approx(1e-3)


def test_fingerprint_sees_every_bit_and_collective_failures_are_recognised():
    state = {"w": torch.arange(6.0).reshape(2, 3), "rng": {"state": 7}, "tau": float("nan"), "q": [(1.0, None)]}
    same = {"w": torch.arange(6.0).reshape(2, 3), "rng": {"state": 7}, "tau": float("nan"), "q": [(1.0, None)]}
    assert fingerprint(state) == fingerprint(same)
    same["w"][1, 2] = torch.nextafter(same["w"][1, 2], torch.tensor(10.0))
    assert fingerprint(state) != fingerprint(same)
    assert fingerprint(torch.zeros(2, 3)) != fingerprint(torch.zeros(3, 2))
    gloo = RuntimeError("[third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer")
    assert is_collective_failure(gloo) and not is_collective_failure(RuntimeError("mat1 and mat2 shapes differ"))


# -- two processes ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[Path, dict[str, list[dict]]]:
    """Uninterrupted 2-process runs with each sampler (one torchrun job), recorded per rank."""
    folder = tmp_path_factory.mktemp("two-processes")
    _run(_torchrun(2, WORKER, folder / "record", folder / "runs", json.dumps(RUNS)))
    return folder / "runs", {name: _records(folder / "record" / name) for name in RUNS}


@pytest.mark.parametrize("name", ["uniform", "sandwich", "attentive-distill", "subnet"])
def test_two_processes_train_the_weights_one_process_trains(two_processes, name, tmp_path):
    runs, records = two_processes
    ranks = records[name]
    single = record_run(tmp_path / "record", tmp_path / "one", RUNS[name])
    assert ranks[0]["archs"] == ranks[1]["archs"] == single["archs"]  # the same subnets, step by step
    assert list(ranks[0]["states"]) == list(single["states"]) == CHECKPOINT_STEPS
    for step in CHECKPOINT_STEPS:  # both ranks hold the same weights at every checkpoint
        _assert_equal(ranks[0]["states"][step]["model"], ranks[1]["states"][step]["model"], f"step {step}")
        _assert_close_weights(ranks[0]["states"][step]["model"], single["states"][step]["model"])
        _assert_equal(ranks[0]["states"][step]["strategy"], single["states"][step]["strategy"], f"step {step}")
    for one, two in zip(_summary(tmp_path / "one"), _summary(runs / name)):  # exact counts over 90 + 91
        columns = [c for c in one if c.startswith("val_top1_")]
        assert columns == (["val_top1_subnet"] if name == "subnet" else ["val_top1_largest", "val_top1_smallest"])
        for column in columns:
            assert one[column] == two[column]
        assert float(one["train_loss"]) == pytest.approx(float(two["train_loss"]), rel=1e-5)
    assert ranks[1]["writes"] == [] and sorted(ranks[0]["writes"]) == sorted(single["writes"])
    # TensorBoard events too: rank 0 alone, into one event file.
    assert ranks[0]["events"] == single["events"] == tensorboard_available() and ranks[1]["events"] is False
    assert len(list((runs / name / EVENTS_DIR).glob("events.out.tfevents.*"))) == int(tensorboard_available())
    assert {"save_checkpoint:last.pt", "atomic_write_text:config.yaml", "atomic_write_text:final.json",
            "write_summary:summary.csv"} == set(ranks[0]["writes"])


def test_rank_0_decides_for_the_focus_sampler_whatever_the_other_ranks_compute(two_processes):
    """Rank 0 plans the steps and learns; rank 1 follows. With rank 1's learner scrambled (weights,
    and a predictor that claims to rank), the run is bit for bit the unperturbed one."""
    ranks, perturbed = two_processes[1]["focus"], two_processes[1]["focus-perturbed"]
    assert len(ranks[0]["archs"]) == 18 and ranks[0]["archs"] == ranks[1]["archs"] == perturbed[1]["archs"]
    for step in CHECKPOINT_STEPS:
        _assert_equal(ranks[0]["states"][step]["model"], ranks[1]["states"][step]["model"], f"step {step}")
        _assert_equal(ranks[0]["states"][step], perturbed[0]["states"][step], f"step {step}")
    assert ranks[0]["states"][18]["strategy"]["policy_updates"] >= 2  # the policy learned during the run
    assert ranks[1]["states"][18]["strategy"]["policy_updates"] == 0  # rank 1 never learned
    for record in ranks:  # the helpers that a rank-local choice must go through
        collectives = record["collectives"]
        assert (collectives["sum"], collectives["mean"], collectives["any"]) == (3.0, 1.5, True)
        assert "disagree on a rank-local value" in collectives["disagreement"]
        assert collectives["from_main"] == "rank 0"
        assert record["scoring_as_one_process"] == {"score": True, "top1": True, "loss": True, "distill": True}


def _rank_pid(parent: int, rank: int) -> int:
    """The pid of torchrun's worker ``rank`` (Linux: from its environment)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent \
                    and f"RANK={rank}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except (OSError, IndexError, ValueError):
            continue
    raise AssertionError(f"no worker of rank {rank} under pid {parent}")


def _step_of(run: Path) -> int:
    try:
        return torch.load(run / "last.pt", map_location="cpu", weights_only=True)["step"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def test_killed_rank_stops_the_job_and_resume_loses_nothing(two_processes, tmp_path):
    reference = two_processes[0] / "focus"
    run, logs = tmp_path / "run", tmp_path / "logs"
    train = ["-m", "focusformer.cli.train", "--no-progress"]
    process = subprocess.Popen(_torchrun(2, *train, *_cli_overrides(FOCUS), "--output", run, log_dir=logs),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _step_of(run) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before a rank could be killed"
    os.kill(_rank_pid(process.pid, 1), signal.SIGKILL)
    _, stderr = process.communicate(timeout=240)
    assert process.returncode != 0 and "Signal 9 (SIGKILL)" in stderr  # torchrun names the killed rank
    rank0_err = next(logs.rglob("0/stderr.log")).read_text()
    assert "focusformer-train: error: rank 0 of 2 lost contact with the other processes" in rank0_err
    assert "Traceback" not in rank0_err
    assert next(logs.rglob("1/stdout.log")).read_text() == ""  # rank 1 prints nothing ...
    assert "global batch 128 = 2 processes x 64" in next(logs.rglob("0/stdout.log")).read_text()  # ... rank 0 does
    assert 3 <= _step_of(run) < 18

    one_process = tmp_path / "one-process"
    shutil.copytree(run, one_process)
    _run(_torchrun(2, *train, "--resume", run))  # the same number of processes: bit for bit
    expected, resumed = load_checkpoint(reference), load_checkpoint(run)
    _assert_equal(expected["model"], resumed["model"], "model")
    _assert_equal(expected["strategy"], resumed["strategy"], "strategy")
    assert _summary(reference) == _summary(run)

    trainer = Trainer.resume(one_process, progress=False)  # 2 processes, then 1: floating-point tolerance
    trainer.fit()
    _assert_close_weights(expected["model"], trainer.network.state_dict())
    _assert_close_weights(expected["strategy"]["sampler"], trainer.strategy.sampler.state_dict())
    top1 = [[row["val_top1_largest"] for row in _summary(run)] for run in (reference, one_process)]
    assert top1[0] == top1[1]
