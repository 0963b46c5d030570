"""What a family hands the latency table: the dense modules whose run times add up to a subnet's.

A latency table (:mod:`focusformer.latency`) times these modules on the target device and
adds them up as the family's cost terms add: a *base* probe per network-wide choice
(everything outside the layers: stem, pooling, final norm, head) plus each layer's probes.
Probes with equal keys are the same computation and are timed once, so a table measures
each distinct module a single time however many layers and choices share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import torch
from torch import nn

ProbeKey = tuple[Union[str, int], ...]


@dataclass(frozen=True)
class Probe:
    """A module to time: ``build()`` makes it (any weights), and it takes a batch of ``input_shape``.

    ``key`` names the computation (JSON-safe: strings and integers); equal keys must mean equal
    run times, since only one of them is timed.
    """

    key: ProbeKey
    input_shape: tuple[int, ...] = field(compare=False)
    build: Callable[[], nn.Module] = field(compare=False, repr=False)


class Residual(nn.Module):
    """``x + body(x)``: one half of a pre-norm transformer layer (norm and attention, or norm and MLP)."""

    def __init__(self, *body: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
