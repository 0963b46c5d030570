"""Online accuracy predictor: arch encoding to a score whose order follows measured accuracy.

Trained with a pairwise logistic ranking loss on the (arch, accuracy) pairs
measured so far, so the sampler can be trained on many more candidates than can
be evaluated. Only the order of scores is meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from torch import nn

from .sampler import one_hot_codes
from ..spaces import SearchSpace


class AccuracyPredictor(nn.Module):
    def __init__(self, space: SearchSpace, hidden_dim: int = 64) -> None:
        super().__init__()
        self.space = space
        self.net = nn.Sequential(
            nn.Linear(sum(space.encoding_cardinalities), hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(one_hot_codes(codes, self.space)).squeeze(1)


def pairwise_ranking_loss(scores: torch.Tensor, accuracies: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Logistic loss on ordered pairs ``(i, j)``: the more accurate one should score higher. Ties are skipped."""
    i, j = pairs[:, 0], pairs[:, 1]
    sign = torch.sign(accuracies[i] - accuracies[j])
    keep = sign != 0
    if not keep.any():
        return scores.sum() * 0.0
    margin = sign[keep] * (scores[i[keep]] - scores[j[keep]])
    return F.softplus(-margin).mean()


@dataclass
class Measurements:
    """Measured (encoding, search-val top-1) pairs; the most recent ``capacity`` are kept.

    Every ``holdout_every``-th measurement is held out from predictor training and used
    only to report its rank correlation.
    """

    capacity: int
    holdout_every: int = 5
    codes: torch.Tensor | None = None
    accuracies: torch.Tensor | None = None
    holdout: torch.Tensor | None = None
    count: int = 0

    def add(self, codes: torch.Tensor, accuracies: torch.Tensor) -> None:
        n = codes.shape[0]
        flags = (torch.arange(self.count, self.count + n) % self.holdout_every) == self.holdout_every - 1
        self.count += n
        if self.codes is None:
            self.codes, self.accuracies, self.holdout = codes.clone(), accuracies.clone().float(), flags
        else:
            self.codes = torch.cat([self.codes, codes])[-self.capacity:]
            self.accuracies = torch.cat([self.accuracies, accuracies.float()])[-self.capacity:]
            self.holdout = torch.cat([self.holdout, flags])[-self.capacity:]

    def split(self, holdout: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.codes is None:
            return torch.zeros(0, 0, dtype=torch.long), torch.zeros(0)
        mask = self.holdout if holdout else ~self.holdout
        return self.codes[mask], self.accuracies[mask]

    def state_dict(self) -> dict:
        return {"codes": self.codes, "accuracies": self.accuracies, "holdout": self.holdout, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.codes, self.accuracies = state["codes"], state["accuracies"]
        self.holdout, self.count = state["holdout"], state["count"]


def fit_predictor(
    predictor: AccuracyPredictor,
    optimizer: torch.optim.Optimizer,
    codes: torch.Tensor,
    accuracies: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    pairs_per_step: int = 1024,
) -> float:
    """A few optimizer steps on random pairs of the training measurements; returns the last loss."""
    n = codes.shape[0]
    if n < 2:
        return float("nan")
    predictor.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        pairs = torch.randint(0, n, (pairs_per_step, 2), generator=generator)
        loss = pairwise_ranking_loss(predictor(codes), accuracies, pairs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


@torch.no_grad()
def kendall_tau(predictor: AccuracyPredictor, codes: torch.Tensor, accuracies: torch.Tensor) -> float:
    """Rank correlation between predicted scores and measured accuracies (NaN if too few)."""
    if codes.shape[0] < 3 or torch.unique(accuracies).numel() < 2:
        return float("nan")
    predictor.eval()
    tau = kendalltau(predictor(codes).numpy(), accuracies.numpy()).statistic
    return float(tau) if np.isfinite(tau) else float("nan")
