"""Top-1 accuracy of a subnet, run through the supernet or as a dense model."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed); a no-op on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


@torch.no_grad()
def top1_accuracy(
    forward: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    device: torch.device,
    amp: bool = True,
) -> float:
    """Percentage of images in ``loader`` whose highest logit is the label."""
    correct = total = 0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = forward(images)
        correct += (logits.argmax(dim=-1) == labels).sum().item()
        total += labels.numel()
    return 100.0 * correct / max(total, 1)
