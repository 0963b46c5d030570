"""Training one supernet over several processes with PyTorch's own stack.

``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`distributed_session` reads them, joins the process group (NCCL on CUDA, gloo on
CPU) and yields this process's :class:`Ranks`. Without those variables, or with one
process, it yields the single-process :class:`Ranks`, whose helpers do nothing, so a
plain run takes exactly the code path it always took.

What keeps the processes one run:

* the supernet is wrapped in ``DistributedDataParallel`` with ``find_unused_parameters``
  (each step's subnet leaves the rest of the supernet without gradient);
* every rank trains the same subnets: strategies are seeded from the run's seed alone
  (never the rank), their inputs (candidate scores) are all-reduced, and
  :meth:`Ranks.check_same` stops the run if the subnets of a step ever differ;
* anything a rank measures on its own shard that decides what is trained (a minibatch
  loss, say) must go through :meth:`Ranks.mean` before a strategy acts on it;
* rank 0 alone writes files; :meth:`Ranks.check_same` confirms before each checkpoint
  that every rank holds the weights and sampler state that rank 0 saves.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist

from ..ranks import DistributedError, Ranks

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
