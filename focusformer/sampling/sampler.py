"""The budget-conditioned architecture sampler.

An autoregressive policy over any family's decisions (:mod:`focusformer.spaces.decisions`):
given a MAC budget (continuous, normalised over the space's range) it makes the
decisions in order (the network-wide ones, then each layer's), each from a
categorical distribution conditioned on the budget and the decisions already made.
Decisions of one kind (every layer's heads, say) share one output head. Before every
decision, choices that cannot lead to an arch within budget are masked out using
the exact lower and upper cost bounds of :class:`~focusformer.spaces.costs.PartialArchs`,
so every sample is within budget with no rejection loop. Among feasible choices it
prefers those that can still reach the *target band* ``[(1 - band) * budget, budget]``,
where the Pareto front lives; when no choice can reach the band (small budgets with
coarse choices) it falls back to every feasible choice. The band is checked one decision at a
time, so it is a preference: with coarse later choices (identity layers) a choice that can reach
it may leave no completion inside it, and the sample falls below the band, never above the budget.

*Balanced* decisions (``focus.balanced``: network-wide ones such as ViTAS's patch size) are not
the policy's to make: each is drawn uniformly among the choices that can reach the band, as a
uniform draw would, and the policy decides the rest given it. Where a decision selects private
weights (a patch size's own embedding and tokens), steering it only moves updates from one set
of weights to the other; balancing keeps that split at uniform sampling's and steers within.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..budget import Budget, BudgetKind, check_reachable
from ..errors import ConfigError
from ..spaces import INACTIVE, SearchSpace
from ..spaces.costs import LayeredCost, PartialArchs


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


@dataclass
class SamplerOutput:
    codes: torch.Tensor  # (n, L) encodings, INACTIVE past each arch's depth
    log_prob: torch.Tensor  # (n,) sum over the arch's decisions
    entropy: torch.Tensor  # (n,) sum of the per-decision entropies (over allowed choices)
    max_entropy: torch.Tensor  # (n,) the same sum for uniform choices: sum of log(number allowed)
    macs: torch.Tensor  # (n,) exact MACs of each arch (float64)

    @property
    def normalised_entropy(self) -> torch.Tensor:
        """Entropy as a fraction of the uniform policy's (1 where every decision is forced)."""
        return torch.where(self.max_entropy > 0, self.entropy / self.max_entropy.clamp_min(1e-12), 1.0)


class ArchSampler(nn.Module):
    """Autoregressive, budget-conditioned policy over the archs of ``space``."""

    def __init__(self, space: SearchSpace, hidden_dim: int = 64, band: float = 0.1,
                 balanced: Sequence[str] = ()) -> None:
        super().__init__()
        if not 0.0 <= band < 1.0:
            raise ConfigError(f"sampler band must be in [0, 1), got {band}")
        self.space, self.band = space, band
        self.bounds = {"macs": space.cost_model("macs"), "params": space.cost_model("params")}
        plan = space.decision_plan()
        self.balanced_slots = plan.network_slots(balanced, "focus.balanced")
        self.cardinalities = plan.cardinalities
        self.num_slots = plan.encoding_length
        # Context: budget features, remaining-budget feature, slot one-hot, decisions so far.
        context_dim = 4 + 1 + self.num_slots + sum(self.cardinalities)
        self.trunk = nn.Sequential(
            nn.Linear(context_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim), nn.GELU()
        )
        kinds = {d.kind: len(d.choices) for d in plan.slots}
        self.heads = nn.ModuleList(nn.Linear(hidden_dim, n) for n in kinds.values())
        self._head_of_slot = [list(kinds).index(d.kind) for d in plan.slots]
        offsets = [0]
        for n in self.cardinalities:
            offsets.append(offsets[-1] + n)
        self._slot_offsets = offsets

    def cost_table(self, kind: BudgetKind = "macs", costs: LayeredCost | None = None) -> LayeredCost:
        """``costs`` if given (a latency table's), else the space's exact table for ``kind``."""
        if costs is not None:
            return costs
        if kind not in self.bounds:
            raise ConfigError(f"a {kind} budget needs its cost table (a latency table for latency)")
        return self.bounds[kind]

    def check_budget(self, budget: float, kind: BudgetKind = "macs", costs: LayeredCost | None = None) -> None:
        """Raise ConfigError, naming the valid range, if no arch fits ``budget``. A budget above the
        largest subnet admits every arch (:meth:`sample` answers it as the largest subnet's cost)."""
        table = self.cost_table(kind, costs)
        check_reachable(Budget(budget, kind), table.min_cost, table.max_cost)

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
        costs: LayeredCost | None = None,
        uniform: bool = False,
        forced: torch.Tensor | None = None,
        group: int = 1,
    ) -> SamplerOutput:
        """One arch per budget, each within its budget. Differentiable through ``log_prob``.

        ``kind="params"`` constrains parameters instead of MACs, and ``kind="latency"`` milliseconds
        on a latency table (``costs``, its cost model); the policy, trained on MAC budgets, is then
        conditioned on the budget's position within that kind's range.
        ``temperature`` above 1 flattens every decision's distribution (for diverse candidates).
        ``uniform`` ignores the policy: every decision is uniform over the allowed choices
        (exploration draws aimed at the same target band). ``forced`` (codes ``(n, L)``) makes
        the given decisions instead of sampling, to read their log-probability under this policy.
        A budget above the largest subnet admits every arch; it is sampled as the largest subnet's
        cost, the top of the range the policy was conditioned on (and its band's top).
        """
        budgets = torch.as_tensor(budgets, dtype=torch.float64).reshape(-1)
        bounds = self.cost_table(kind, costs)
        if (budgets < bounds.min_cost).any():
            self.check_budget(float(budgets.min()), kind, bounds)
        budgets = budgets.clamp(max=bounds.max_cost)
        n, device = budgets.shape[0], self.heads[0].weight.device
        rows = torch.arange(n)
        cost_range = bounds.max_cost - bounds.min_cost
        budget_feats = self._budget_features((budgets - bounds.min_cost) / cost_range).to(device)
        target_low = ((1.0 - self.band) * budgets).unsqueeze(1)
        state = PartialArchs(bounds, n)
        decided = torch.zeros(n, sum(self.cardinalities), device=device)
        log_prob = torch.zeros(n, device=device)
        entropy = torch.zeros(n, device=device)
        max_entropy = torch.zeros(n, device=device)

        for slot in range(self.num_slots):
            active, low, high = state.bounds(slot)
            if not active.any():
                state.commit(slot, torch.full((n,), INACTIVE))
                continue
            feasible = low <= budgets.unsqueeze(1)
            in_band = feasible & (high >= target_low)
            allowed = torch.where(in_band.any(1, keepdim=True), in_band, feasible)
            allowed = (allowed | ~active.unsqueeze(1)).to(device)  # inactive rows: unused

            slot_onehot = torch.zeros(n, self.num_slots, device=device)
            slot_onehot[:, slot] = 1.0
            remaining = ((budgets - low.min(1).values) / cost_range).float().unsqueeze(1).to(device)
            remaining = torch.nan_to_num(remaining, posinf=0.0, neginf=0.0)
            context = torch.cat([budget_feats, remaining, slot_onehot, decided], dim=1)
            balanced = slot in self.balanced_slots
            if uniform or balanced:
                logits = torch.zeros(n, allowed.shape[1], device=device)
            else:
                logits = self.heads[self._head_of_slot[slot]](self.trunk(context)) / temperature
            logits = logits.masked_fill(~allowed, float("-inf"))
            log_probs = torch.log_softmax(logits, dim=1)
            probs = log_probs.exp()
            if forced is not None:
                choice = forced[:, slot].clamp_min(0).to(device)
            elif greedy:
                choice = logits.argmax(1)
            else:
                choice = torch.multinomial(probs.detach(), 1, generator=generator).squeeze(1)
                if balanced and group > 1:
                    choice = _share_within_groups(choice, allowed, group)
            active_dev = active.to(device)
            decided_by_policy = active_dev & (not balanced)
            picked = log_probs.gather(1, choice.unsqueeze(1)).squeeze(1)
            log_prob = log_prob + torch.where(decided_by_policy, picked, 0.0)
            step_entropy = -(probs * log_probs.masked_fill(~allowed, 0.0)).sum(1)
            entropy = entropy + torch.where(decided_by_policy, step_entropy, 0.0)
            max_entropy = max_entropy + torch.where(decided_by_policy, allowed.sum(1).float().log(), 0.0)

            choice = torch.where(active, choice.cpu(), INACTIVE)
            decided[rows[active].to(device), self._slot_offsets[slot] + choice[active].to(device)] = 1.0
            state.commit(slot, choice)
        macs = state.cost if kind == "macs" else torch.as_tensor(self.bounds["macs"].count(state.codes.numpy()))
        return SamplerOutput(codes=state.codes, log_prob=log_prob, entropy=entropy, max_entropy=max_entropy,
                             macs=macs)


def _share_within_groups(choice: torch.Tensor, allowed: torch.Tensor, group: int) -> torch.Tensor:
    """Each run of ``group`` rows takes its first row's choice, where that choice is allowed."""
    n = choice.shape[0]
    first = choice[torch.arange(n, device=choice.device) // group * group]
    ok = allowed.gather(1, first.unsqueeze(1)).squeeze(1)
    return torch.where(ok, first, choice)


@dataclass(frozen=True)
class PolicyStep:
    """What one policy-gradient step did."""

    mean_reward: float  # NaN when the step only raised the entropy
    entropy: float  # mean normalised entropy of the step's samples, before the step
    raised_entropy: bool  # below the entropy floor: the step ascended the entropy only
    samples: SamplerOutput  # the step's samples (for a trust-region check)
    budgets: torch.Tensor  # the budget of each sample


def reinforce_step(
    sampler: ArchSampler,
    optimizer: torch.optim.Optimizer,
    reward: Callable[[torch.Tensor], torch.Tensor],
    budgets: torch.Tensor,
    group: int,
    entropy_weight: float,
    generator: torch.Generator | None = None,
    entropy_floor: float = 0.0,
) -> PolicyStep:
    """One policy-gradient step: ``group`` samples per budget, each group's mean reward as its baseline.

    ``reward`` maps encodings ``(n, L)`` to scores ``(n,)``; advantages are normalised within each
    group, so only the order of rewards for the same budget matters: the policy learns what is
    better *at a budget*, not what is bigger. If the samples' mean normalised entropy is below
    ``entropy_floor`` (a fraction of the uniform policy's), the step ignores the reward and
    ascends the entropy, so the policy cannot collapse onto a handful of archs.
    """
    sampler.train()
    budgets = budgets.repeat_interleave(group)
    out = sampler.sample(budgets, generator=generator, group=group)
    entropy = float(out.normalised_entropy.detach().mean())
    raised = entropy < entropy_floor
    if raised:
        loss, mean_reward = -out.entropy.mean(), float("nan")
    else:
        with torch.no_grad():
            rewards = reward(out.codes).view(-1, group).float()
            advantage = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)
        loss = -(advantage.flatten() * out.log_prob).mean() - entropy_weight * out.entropy.mean()
        mean_reward = float(rewards.mean())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return PolicyStep(mean_reward, entropy, raised, out, budgets)


@torch.no_grad()
def kl_since(sampler: ArchSampler, step: PolicyStep) -> float:
    """KL(policy at ``step`` || policy now), estimated on ``step``'s own samples."""
    now = sampler.sample(step.budgets, forced=step.samples.codes).log_prob
    return float((step.samples.log_prob.detach() - now).mean())
