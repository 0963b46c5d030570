"""The budget-conditioned architecture sampler.

An autoregressive policy: given a MAC budget (continuous, normalised over the
space's range) it emits depth, embed dim, then each layer's heads and MLP ratio,
each from its own categorical distribution conditioned on the budget and on the
decisions already made. Before every decision, choices that cannot lead to an
arch within budget are masked out using exact lower and upper MAC bounds from
:class:`~focusformer.macs.MacTable`, so every sample is within budget with no
rejection loop. Among feasible choices it prefers those that can still reach the
*target band* ``[(1 - band) * budget, budget]``, where the Pareto front lives;
when no choice can reach the band (small budgets with coarse choices) it falls
back to every feasible choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..budget import Budget, BudgetKind, check_in_range
from ..errors import ConfigError
from ..spaces.counts import CostTable
from ..spaces.autoformer import INACTIVE, SearchSpace

# Decision kinds, in the order they are made for each arch.
DEPTH, EMBED, HEADS, RATIO = range(4)


def one_hot_codes(codes: torch.Tensor, space: SearchSpace) -> torch.Tensor:
    """One-hot features of encodings ``(n, L)``: one block per slot, all zeros where INACTIVE."""
    blocks = []
    for slot, cardinality in enumerate(space.encoding_cardinalities):
        column = codes[:, slot]
        block = torch.zeros(codes.shape[0], cardinality, dtype=torch.float32, device=codes.device)
        active = column != INACTIVE
        block[active, column[active]] = 1.0
        blocks.append(block)
    return torch.cat(blocks, dim=1)


class CostBounds:
    """Exact lower and upper bounds on an additive cost (MACs or params) of partial archs."""

    def __init__(self, table: CostTable, depths: Sequence[int]) -> None:
        self.table = table
        self.stem = torch.as_tensor(table.stem_head, dtype=torch.float64)
        self.attention = torch.as_tensor(table.attention, dtype=torch.float64)
        self.mlp = torch.as_tensor(table.mlp, dtype=torch.float64)
        self.depths = torch.tensor(depths, dtype=torch.float64)
        self.mlp_min, self.mlp_max = self.mlp.min(1).values, self.mlp.max(1).values
        self.layer_min = self.attention.min(1).values + self.mlp_min
        self.layer_max = self.attention.max(1).values + self.mlp_max
        self.min_cost = float(self.stem[0] + self.depths[0] * self.layer_min[0])
        self.max_cost = float(self.stem[-1] + self.depths[-1] * self.layer_max[-1])

    def normalise(self, cost: torch.Tensor) -> torch.Tensor:
        return (cost - self.min_cost) / (self.max_cost - self.min_cost)

    def of_choices(self, kind: int, layer: int, depth: torch.Tensor, embed: torch.Tensor,
                   committed: torch.Tensor, heads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)``, shape ``(n, choices)``: cost bounds over all completions of each choice.

        ``committed`` is the cost of decisions already complete (stem and head once the embed dim
        is known, plus every layer with both choices made); ``heads`` is the current layer's
        heads choice (used for the MLP-ratio decision).
        """
        if kind == DEPTH:
            d = self.depths.unsqueeze(0)
            return self.stem[0] + d * self.layer_min[0], self.stem[-1] + d * self.layer_max[-1]
        if kind == EMBED:
            d = depth.unsqueeze(1)
            return self.stem + d * self.layer_min, self.stem + d * self.layer_max
        later = (depth - layer - 1).clamp(min=0).unsqueeze(1)
        rest_low, rest_high = later * self.layer_min[embed].unsqueeze(1), later * self.layer_max[embed].unsqueeze(1)
        if kind == HEADS:
            part = committed.unsqueeze(1) + self.attention[embed]
            return part + self.mlp_min[embed].unsqueeze(1) + rest_low, part + self.mlp_max[embed].unsqueeze(1) + rest_high
        part = committed.unsqueeze(1) + self.attention[embed, heads].unsqueeze(1) + self.mlp[embed]
        return part + rest_low, part + rest_high

    def of_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.table.count_batch(codes.numpy()), dtype=torch.float64)


@dataclass
class SamplerOutput:
    codes: torch.Tensor  # (n, L) encodings, INACTIVE past each arch's depth
    log_prob: torch.Tensor  # (n,) sum over the arch's decisions
    entropy: torch.Tensor  # (n,) sum of the per-decision entropies (over allowed choices)
    macs: torch.Tensor  # (n,) exact MACs of each arch (float64)


class ArchSampler(nn.Module):
    """Autoregressive, budget-conditioned policy over the archs of ``space``."""

    def __init__(self, space: SearchSpace, hidden_dim: int = 64, band: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= band < 1.0:
            raise ConfigError(f"sampler band must be in [0, 1), got {band}")
        self.space, self.band = space, band
        self.bounds = {
            "macs": CostBounds(CostTable.macs(space), space.depth),
            "params": CostBounds(CostTable.params(space), space.depth),
        }
        self.cardinalities = space.encoding_cardinalities
        self.num_slots = space.encoding_length
        # Context: budget features, remaining-budget feature, slot one-hot, decisions so far.
        context_dim = 4 + 1 + self.num_slots + sum(self.cardinalities)
        self.trunk = nn.Sequential(
            nn.Linear(context_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim), nn.GELU()
        )
        self.heads = nn.ModuleList(
            nn.Linear(hidden_dim, n)
            for n in (len(space.depth), len(space.embed_dim), len(space.num_heads), len(space.mlp_ratio))
        )
        self._slot_offsets = np.concatenate([[0], np.cumsum(self.cardinalities)]).tolist()

    def check_budget(self, budget: float, kind: BudgetKind = "macs") -> None:
        """Raise ConfigError, naming the valid range, if no arch fits ``budget`` or it exceeds the largest."""
        check_in_range(Budget(budget, kind), self.bounds[kind].min_cost, self.bounds[kind].max_cost)

    @staticmethod
    def _budget_features(normalised: torch.Tensor) -> torch.Tensor:
        b = normalised.float().unsqueeze(1)
        return torch.cat([b, b * b, torch.sin(torch.pi * b), torch.cos(torch.pi * b)], dim=1)

    def sample(
        self,
        budgets: torch.Tensor,
        generator: torch.Generator | None = None,
        greedy: bool = False,
        kind: BudgetKind = "macs",
        temperature: float = 1.0,
    ) -> SamplerOutput:
        """One arch per budget, each within its budget. Differentiable through ``log_prob``.

        ``kind="params"`` constrains parameters instead of MACs; the policy, trained on MAC
        budgets, is then conditioned on the budget's position within the params range.
        ``temperature`` above 1 flattens every decision's distribution (for diverse candidates).
        """
        budgets = torch.as_tensor(budgets, dtype=torch.float64).reshape(-1)
        bounds = self.bounds[kind]
        if (budgets < bounds.min_cost).any():
            self.check_budget(float(budgets.min()), kind)
        n, device = budgets.shape[0], self.heads[0].weight.device
        rows = torch.arange(n)
        budget_feats = self._budget_features(bounds.normalise(budgets)).to(device)
        target_low = ((1.0 - self.band) * budgets).unsqueeze(1)
        codes = torch.full((n, self.num_slots), INACTIVE, dtype=torch.long)
        decided = torch.zeros(n, sum(self.cardinalities), device=device)
        log_prob = torch.zeros(n, device=device)
        entropy = torch.zeros(n, device=device)
        depth = torch.zeros(n, dtype=torch.float64)
        embed = torch.zeros(n, dtype=torch.long)
        heads = torch.zeros(n, dtype=torch.long)
        committed = torch.zeros(n, dtype=torch.float64)
        cost_range = bounds.max_cost - bounds.min_cost

        for slot in range(self.num_slots):
            kind_of_slot = slot if slot < 2 else HEADS + (slot - 2) % 2
            layer = (slot - 2) // 2
            active = depth > layer if slot >= 2 else torch.ones(n, dtype=torch.bool)
            if not active.any():
                break
            low, high = bounds.of_choices(kind_of_slot, layer, depth, embed, committed, heads)
            feasible = low <= budgets.unsqueeze(1)
            in_band = feasible & (high >= target_low)
            allowed = torch.where(in_band.any(1, keepdim=True), in_band, feasible)
            allowed = (allowed | ~active.unsqueeze(1)).to(device)  # rows past their depth: unused

            slot_onehot = torch.zeros(n, self.num_slots, device=device)
            slot_onehot[:, slot] = 1.0
            remaining = ((budgets - low.min(1).values) / cost_range).float().unsqueeze(1).to(device)
            context = torch.cat([budget_feats, remaining, slot_onehot, decided], dim=1)
            logits = self.heads[kind_of_slot](self.trunk(context)) / temperature
            logits = logits.masked_fill(~allowed, float("-inf"))
            log_probs = torch.log_softmax(logits, dim=1)
            probs = log_probs.exp()
            if greedy:
                choice = logits.argmax(1)
            else:
                choice = torch.multinomial(probs.detach(), 1, generator=generator).squeeze(1)
            active_dev = active.to(device)
            picked = log_probs.gather(1, choice.unsqueeze(1)).squeeze(1)
            log_prob = log_prob + torch.where(active_dev, picked, 0.0)
            step_entropy = -(probs * log_probs.masked_fill(~allowed, 0.0)).sum(1)
            entropy = entropy + torch.where(active_dev, step_entropy, 0.0)

            choice = choice.cpu()
            codes[:, slot] = torch.where(active, choice, INACTIVE)
            decided[rows[active].to(device), self._slot_offsets[slot] + choice[active].to(device)] = 1.0
            if kind_of_slot == DEPTH:
                depth = bounds.depths[choice]
            elif kind_of_slot == EMBED:
                embed = choice
                committed = bounds.stem[embed]
            elif kind_of_slot == HEADS:
                heads = choice
            else:
                layer_cost = bounds.attention[embed, heads] + bounds.mlp[embed, choice]
                committed = committed + torch.where(active, layer_cost, 0.0)
        macs = self.bounds["macs"].of_codes(codes) if kind != "macs" else committed
        return SamplerOutput(codes=codes, log_prob=log_prob, entropy=entropy, macs=macs)


def reinforce_step(
    sampler: ArchSampler,
    optimizer: torch.optim.Optimizer,
    reward: Callable[[torch.Tensor], torch.Tensor],
    budgets: torch.Tensor,
    group: int,
    entropy_weight: float,
    generator: torch.Generator | None = None,
) -> float:
    """One policy-gradient step: ``group`` samples per budget, each group's mean reward as its baseline.

    ``reward`` maps encodings ``(n, L)`` to scores ``(n,)``; advantages are normalised within each
    group, so only the order of rewards for the same budget matters. Returns the mean reward.
    """
    sampler.train()
    out = sampler.sample(budgets.repeat_interleave(group), generator=generator)
    with torch.no_grad():
        rewards = reward(out.codes).view(-1, group).float()
        advantage = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)
    loss = -(advantage.flatten() * out.log_prob).mean() - entropy_weight * out.entropy.mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(rewards.mean())
