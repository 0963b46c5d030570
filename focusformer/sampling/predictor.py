"""Online accuracy predictor: arch encoding to a score whose order follows measured scores.

Trained with a pairwise logistic ranking loss on pairs of candidates measured in the
same group (same supernet state, same budget), so the sampler can be trained on many
more candidates than can be evaluated. Only the order of predictions is meaningful, and
only between archs of about the same cost. Its quality is measured on each new group
before it is trained on it (test, then train), so every tau is out of sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..spaces import SearchSpace
from .sampler import one_hot_codes


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
    """Measured (encoding, score) pairs in comparable groups; the most recent ``capacity`` are kept.

    A group is a set of candidates scored in the same supernet state for the same budget, so
    only scores within a group are compared: the supernet improves between updates, and a
    larger subnet scores higher whatever its design.
    """

    capacity: int
    codes: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    groups: torch.Tensor | None = None
    count: int = 0  # groups added so far

    def add(self, codes: torch.Tensor, scores: torch.Tensor) -> None:
        """One group: candidates scored in the same supernet state for the same budget."""
        groups = torch.full((codes.shape[0],), self.count, dtype=torch.long)
        self.count += 1
        if self.codes is None:
            self.codes, self.scores, self.groups = codes.clone(), scores.clone().float(), groups
            return
        self.codes = torch.cat([self.codes, codes])[-self.capacity:]
        self.scores = torch.cat([self.scores, scores.float()])[-self.capacity:]
        self.groups = torch.cat([self.groups, groups])[-self.capacity:]

    def all(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(codes, scores, groups) of every kept measurement."""
        if self.codes is None:
            return torch.zeros(0, 0, dtype=torch.long), torch.zeros(0), torch.zeros(0, dtype=torch.long)
        return self.codes, self.scores, self.groups

    def state_dict(self) -> dict:
        return {"codes": self.codes, "scores": self.scores, "groups": self.groups, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.codes, self.scores, self.groups = state["codes"], state["scores"], state["groups"]
        self.count = state["count"]


def same_group_pairs(groups: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random pairs ``(i, j)`` of indices in the same group (empty if no group has two members)."""
    order = torch.argsort(groups, stable=True)
    _, counts = torch.unique_consecutive(groups[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    members = torch.repeat_interleave(counts, counts)  # group size at each sorted position
    eligible = torch.nonzero(members >= 2).squeeze(1)
    if eligible.numel() == 0:
        return torch.zeros(0, 2, dtype=torch.long)
    first = eligible[torch.randint(0, eligible.numel(), (n,), generator=generator)]
    group_start = torch.repeat_interleave(starts, counts)[first]
    second = group_start + (torch.rand(n, generator=generator) * members[first]).long()
    return torch.stack([order[first], order[second]], dim=1)


def fit_predictor(
    predictor: AccuracyPredictor,
    optimizer: torch.optim.Optimizer,
    codes: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    pairs_per_step: int = 1024,
) -> float:
    """A few optimizer steps on random within-group pairs; returns the last loss (NaN: no pairs)."""
    loss = torch.tensor(float("nan"))
    if codes.shape[0] < 2:
        return loss.item()
    predictor.train()
    for _ in range(steps):
        pairs = same_group_pairs(groups, pairs_per_step, generator)
        if pairs.numel() == 0:
            break
        loss = pairwise_ranking_loss(predictor(codes), scores, pairs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


def grouped_kendall_tau(predicted: torch.Tensor, measured: torch.Tensor, groups: torch.Tensor) -> float:
    """Kendall's tau over the pairs within each group: (concordant - discordant) / pairs.

    Pairs tied in ``measured`` are skipped; a tie in ``predicted`` counts as neither.
    NaN when no group has two distinct measurements.
    """
    same = groups.unsqueeze(0) == groups.unsqueeze(1)
    upper = torch.triu(torch.ones_like(same), diagonal=1)
    sign_measured = torch.sign(measured.unsqueeze(0) - measured.unsqueeze(1))
    pairs = same & upper & (sign_measured != 0)
    if not pairs.any():
        return float("nan")
    sign_predicted = torch.sign(predicted.unsqueeze(0) - predicted.unsqueeze(1))
    return float((sign_measured * sign_predicted)[pairs].float().mean())


@torch.no_grad()
def kendall_tau(predictor: AccuracyPredictor, codes: torch.Tensor, scores: torch.Tensor,
                groups: torch.Tensor | None = None) -> float:
    """Rank agreement of predicted and measured scores, within groups when ``groups`` is given."""
    if codes.shape[0] < 2:
        return float("nan")
    predictor.eval()
    predicted = predictor(codes)
    if groups is None:
        groups = torch.zeros(codes.shape[0], dtype=torch.long)
    return grouped_kendall_tau(predicted, scores, groups)
