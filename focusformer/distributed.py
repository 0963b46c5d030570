"""Several processes training one run: this process's place in the job, what ranks agree on, and
joining the job torchrun started.

:class:`Ranks` is the single-process default everywhere; under torchrun :func:`distributed_session`
yields the real one (NCCL on CUDA, gloo on CPU). It sits below the search and training layers
(scoring all-reduces candidate scores), which use it without knowing whether a job is distributed,
so a plain run takes exactly the code path it always took.

What keeps the processes one run:

* the supernet is wrapped in ``DistributedDataParallel`` with ``find_unused_parameters`` (each
  step's subnet leaves the rest of the supernet without gradient);
* rank 0 decides what is trained: it plans the sampler's steps and learns, and the trainer
  broadcasts each step's subnets from it (:meth:`Ranks.from_main`), so ranks whose floating
  point differs (other CPUs, BLAS builds) still train one model;
* anything a rank measures on its own shard that decides what is trained (a minibatch loss, a
  candidate's score) goes through :meth:`Ranks.mean` or :meth:`Ranks.sum` first;
* rank 0 alone writes files; :meth:`Ranks.check_same` confirms before each checkpoint that every
  rank holds the weights rank 0 saves.
"""

from __future__ import annotations

import contextlib
import os
import random
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .devices import default_device
from .errors import ConfigError, FocusformerError


class DistributedError(FocusformerError):
    """The processes of a run disagree, or lost contact with each other."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job; the default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: Where this rank computes; collectives run on it (NCCL needs CUDA tensors).
    device: torch.device = field(default_factory=default_device)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files, logs and shows progress."""
        return self.rank == 0

    # -- data ---------------------------------------------------------------------------------
    def split_batch(self, global_batch: int, even: bool = False) -> int:
        """This rank's share of a global batch, which must split evenly; ``even``: the share must be
        even too (mixup and cutmix pair each image with another of the same process's batch)."""
        if global_batch % self.world_size:
            raise ConfigError(
                f"train.batch_size: {global_batch} is the global batch and must split evenly over "
                f"{self.world_size} processes; use a multiple of {self.world_size}"
            )
        share = global_batch // self.world_size
        if even and share % 2:
            raise ConfigError(
                f"train.batch_size: mixup and cutmix pair up images, so each process's share of the global "
                f"batch must be even; got {share} ({global_batch} over {self.world_size} process(es))"
            )
        return share

    def shard(self, num_items: int) -> range:
        """This rank's contiguous part of ``range(num_items)``; the parts cover it exactly once."""
        return range(num_items * self.rank // self.world_size, num_items * (self.rank + 1) // self.world_size)

    def rank_seed(self, seed: int) -> int:
        """A seed for this rank's own stream (data-loader workers); a single process keeps ``seed``."""
        if not self.distributed:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def seed_step(self, seed: int, step: int) -> None:
        """Seed this rank's global RNGs (drop path, mixup, augmentations) for optimizer step ``step``.

        Under several processes each rank needs its own streams, and a run resumed with another
        number of processes cannot continue saved ones; seeding from (seed, step, rank) makes
        every step's randomness a function of where it is. A single process keeps its one
        continuous stream (saved and restored with checkpoints) and is left alone.
        """
        if not self.distributed:
            return
        value = int(np.random.SeedSequence([seed, step, self.rank]).generate_state(1)[0])
        torch.manual_seed(value)
        np.random.seed(value)
        random.seed(value)

    # -- collectives --------------------------------------------------------------------------
    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over ranks (in place); counts stay exact, unlike averages of averages."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a rank-local float tensor (a minibatch loss); a new tensor."""
        if not self.distributed:
            return tensor
        total = tensor.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (a stop request)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def check_same(self, value: Any, what: str) -> None:
        """Raise :class:`DistributedError` on every rank unless all ranks hold an equal ``value``."""
        if not self.distributed:
            return
        mine = fingerprint(value)
        extremes = torch.tensor([mine, -mine], dtype=torch.int64, device=self.device)
        dist.all_reduce(extremes, op=dist.ReduceOp.MAX)
        if extremes[0].item() != -extremes[1].item():
            raise DistributedError(
                f"the {self.world_size} processes disagree on {what}; they no longer train one model "
                "(a rank changed its weights on its own?), so the run stops"
            )

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (a picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # -- the model ----------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` under DistributedDataParallel (rank 0's weights are copied to all), or itself."""
        if not self.distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # The subnet changes every step, so parameters outside it get no gradient: plain DDP fails
        # at the second step and static_graph fails too; unused parameters must be found.
        return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)

    @staticmethod
    def gradient_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
        """Around a forward and its backward: ``sync=False`` only accumulates gradients locally.

        Several subnets in one optimizer step (sandwich) sync only on the last backward,
        which then averages the accumulated sum over ranks once.
        """
        if sync or not isinstance(model, DistributedDataParallel):
            return contextlib.nullcontext()
        return model.no_sync()


def fingerprint(value: Any) -> int:
    """A CRC-32 of ``value``'s content: tensors by their bytes, containers element by element,
    anything else by ``repr`` (archs, numbers, RNG states). Equal content, equal fingerprint."""
    crc = 0
    for part in _parts(value):
        crc = zlib.crc32(part, crc)
    return crc


def _parts(value: Any) -> Iterator[bytes]:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        yield f"{tensor.dtype}{tuple(tensor.shape)}".encode()
        yield tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
    elif isinstance(value, dict):
        for key, item in value.items():
            yield repr(key).encode()
            yield from _parts(item)
    elif isinstance(value, (list, tuple)):
        yield f"{type(value).__name__}{len(value)}".encode()
        for item in value:
            yield from _parts(item)
    else:
        yield repr(value).encode()


# -- joining a torchrun job --------------------------------------------------------------------
#: How long a collective waits for the other ranks before the run fails (torch's own default for gloo).
DEFAULT_TIMEOUT = timedelta(minutes=30)
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
#: Words in the messages of gloo collectives that failed for want of a peer (NCCL's failures and
#: timeouts arrive as ``DistError``).
_BACKEND_MARKERS = ("gloo/transport", "Connection reset by peer", "Connection closed by peer", "Timed out")


def ranks_from_env(environ: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` as torchrun sets them, or ``None`` outside torchrun."""
    environ = os.environ if environ is None else environ
    if not all(name in environ for name in _ENV):
        return None
    try:
        return tuple(int(environ[name]) for name in _ENV)  # type: ignore[return-value]
    except ValueError:
        raise DistributedError(f"{', '.join(_ENV)} must be integers (set by torchrun)") from None


@contextlib.contextmanager
def distributed_session(timeout: timedelta = DEFAULT_TIMEOUT) -> Iterator[Ranks]:
    """Join the torchrun job this process belongs to (if any) for the duration of the block.

    A collective error inside the block (another rank died or hung past ``timeout``) becomes
    one :class:`DistributedError`, so the command ends with a one-line message; torchrun then
    stops the other ranks and reports which one failed first.
    """
    found = ranks_from_env()
    if found is None or found[1] == 1:
        yield Ranks()
        return
    rank, world_size, local_rank = found
    if torch.cuda.is_available():
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, timeout=timeout)
    try:
        yield Ranks(rank, world_size, local_rank, device)
    except RuntimeError as exc:
        if not is_collective_failure(exc):
            raise
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DistributedError(
            f"rank {rank} of {world_size} lost contact with the other processes ({first_line}); "
            "the job stops. Resume from the last checkpoint with --resume"
        ) from None
    finally:
        dist.destroy_process_group()


def is_collective_failure(exc: BaseException) -> bool:
    """A collective failed because a peer died or timed out. DDP's gradient all-reduce over gloo
    reports that as a plain RuntimeError ('[.../gloo/transport/tcp/pair.cc] ... Connection reset
    by peer')."""
    return isinstance(exc, dist.DistError) or (
        isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _BACKEND_MARKERS)
    )
