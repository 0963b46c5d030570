"""Score candidate subnets with inherited weights: the one scoring path shared by the focus
sampler's training, ``focusformer-specialize`` and ``focusformer-search``.

Top-1 is what search reports. The focus sampler can instead reward a candidate by its
per-image cross-entropy (``loss``) or its KL to the largest subnet (``distill``): continuous
scores whose differences between candidates scored on the same images are far less noisy.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from ..config import RewardName
from ..devices import autocast
from ..distributed import Ranks
from ..spaces.base import ArchBase
from ..spaces.elastic import Side
from ..spaces.supernet import ArchNetwork

#: Image subsets up to this size are decoded once and kept in memory as one tensor.
_CACHE_LIMIT_BYTES = 1 << 30


class CandidateScorer:
    """Top-1 (percent) of archs run through ``supernet`` (a supernet, or a subnet run's dense model)
    on the first ``max_images`` of ``dataset``.

    ``dataset`` is a held-out split (search-val, or test for final reports only). The split
    is already a seeded random subset of its source, so its first images are a random sample.
    Under several processes (``ranks``) each rank scores its own run of whole batches, the very
    batches one process would score (a kernel's rounding can depend on the batch), and correct
    counts and per-image scores are put together over ranks: every rank gets what one process
    gets, bit for bit.
    """

    def __init__(self, supernet: ArchNetwork, dataset: Dataset, device: torch.device,
                 batch_size: int = 256, max_images: int | None = None, amp: bool = True,
                 num_workers: int = 0, ranks: Ranks | None = None) -> None:
        self.supernet, self.device, self.batch_size, self.amp = supernet, device, batch_size, amp
        self.num_workers = num_workers
        self.ranks = ranks or Ranks()
        size = len(dataset) if max_images is None else min(max_images, len(dataset))
        self.num_images = size
        batches = self.ranks.shard(math.ceil(size / batch_size))
        self.shard = shard = range(batches.start * batch_size, min(batches.stop * batch_size, size))
        self.dataset = dataset if len(shard) == len(dataset) else Subset(dataset, shard)
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None
        first_image, _ = dataset[0]
        if len(shard) and first_image.numel() * first_image.element_size() * len(shard) <= _CACHE_LIMIT_BYTES:
            images, labels = zip(*(self.dataset[i] for i in range(len(shard))))
            self._cached = torch.stack(images).to(device), torch.as_tensor(labels).to(device)

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._cached is not None:
            images, labels = self._cached
            for start in range(0, len(images), self.batch_size):
                yield images[start:start + self.batch_size], labels[start:start + self.batch_size]
        else:
            loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                                pin_memory=self.device.type == "cuda")
            for images, labels in loader:
                yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    def _sides(self, side: Side | None) -> tuple[Side, ...]:
        return self.supernet.space.sides if side is None else (side,)

    @torch.no_grad()
    def score(self, archs: Sequence[ArchBase], side: Side | None = None) -> list[float]:
        """Top-1 of each arch at ``side``; ``None``: the mean over the space's sides (one for
        ``left`` weight sharing; left and right for ``bilateral``, as ViTAS scores a subnet)."""
        sides = self._sides(side)
        correct = torch.zeros(len(archs), dtype=torch.long, device=self.device)
        with _eval_mode(self.supernet):
            for images, labels in self._batches():
                for k, arch in enumerate(archs):
                    for one_side in sides:
                        with autocast(self.device, self.amp):
                            logits = self.supernet(images, arch, one_side)
                        correct[k] += (logits.argmax(-1) == labels).sum()
        return (100.0 * self.ranks.sum(correct).double() / (self.num_images * len(sides))).tolist()

    def score_sides(self, archs: Sequence[ArchBase]) -> list[dict[Side, float]]:
        """Top-1 of each arch at each of the space's sides."""
        by_side = {side: self.score(archs, side) for side in self.supernet.space.sides}
        return [{side: scores[k] for side, scores in by_side.items()} for k in range(len(archs))]

    @torch.no_grad()
    def per_image(self, archs: Sequence[ArchBase], reward: RewardName) -> torch.Tensor:
        """Per-image scores ``(len(archs), num_images)`` on CPU, higher is better; under
        ``bilateral`` weight sharing the mean of both sides' scores.

        ``top1``: 100 for a correct prediction, else 0. ``loss``: minus the cross-entropy.
        ``distill``: minus KL(largest subnet || candidate), the in-place-distillation loss.
        """
        sides = self._sides(None)
        scores = torch.zeros(len(archs), self.num_images, device=self.device)
        first = self.shard.start
        with _eval_mode(self.supernet):
            for images, labels in self._batches():
                teacher = None
                if reward == "distill":  # the largest subnet uses every channel: its sides agree
                    with autocast(self.device, self.amp):
                        teacher = self.supernet(images, self.supernet.space.largest()).float()
                    teacher = F.log_softmax(teacher, dim=-1)
                rows = []
                for arch in archs:
                    row = torch.zeros(len(labels), device=self.device)
                    for side in sides:
                        with autocast(self.device, self.amp):
                            logits = self.supernet(images, arch, side).float()
                        row += _image_scores(logits, labels, reward, teacher)
                    rows.append(row / len(sides))
                scores[:, first:first + len(labels)] = torch.stack(rows)
                first += len(labels)
        return self.ranks.sum(scores).cpu()  # other ranks' columns are zeros here: the sum is exact


def _image_scores(logits: torch.Tensor, labels: torch.Tensor, reward: RewardName,
                  teacher: torch.Tensor | None) -> torch.Tensor:
    if reward == "top1":
        return 100.0 * (logits.argmax(-1) == labels).float()
    if reward == "loss":
        return -F.cross_entropy(logits, labels, reduction="none")
    log_q = F.log_softmax(logits, dim=-1)
    return -(teacher.exp() * (teacher - log_q)).sum(-1)


@contextlib.contextmanager
def _eval_mode(module: ArchNetwork) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
