"""The focus sampler as a training strategy: a learned, budget-conditioned policy that steers
training toward the subnets its accuracy predictor rates best for each budget.

:class:`FocusStrategy` plans each step from uniform sampling's own draw, scores groups of
candidates on reward images of its own, fits the predictor and updates the policy
(:mod:`~focusformer.sampling.sampler`, :mod:`~focusformer.sampling.predictor`); its random
streams are kept apart (:func:`focus_streams`) so that learning never shifts the draws.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..config import BudgetPrior, FocusConfig
from ..distributed import Ranks
from ..spaces import SearchSpace
from ..spaces.base import ArchBase
from .base import MinibatchLossFn, PerImageRewardFn
from .predictor import AccuracyPredictor, Measurements, fit_predictor, kendall_tau
from .sampler import ArchSampler, kl_since, reinforce_step
from .training_budgets import budget_distribution
from .uniform import UniformDraws, draw_stream


class FocusStrategy:
    """The learned sampler: trains, for each step's budget, the best of a few policy proposals.

    Every ``update_every`` steps it scores one group of candidates for one budget on a fixed
    set of reward images (all in the same supernet state, so their scores are comparable),
    measures the predictor's Kendall tau on that new group, then refits the predictor on
    within-group pairs. While the mean tau of the last ``stable_updates`` groups is at least
    ``min_tau``, policy-gradient steps follow the predictor (advantages normalised per budget,
    an entropy floor, a KL trust region per update), and from the first such update after the
    minimum warm-up the policy steers training.

    Each step starts from uniform sampling's own draw (:class:`UniformDraws`): before steering,
    and on a ``uniform_share`` of steps after, that draw is trained, so those steps are exactly
    uniform sampling's. A steered step trains instead the policy's pick for the draw's budget
    (its MACs, or the target budget it was drawn for), so it costs about what the uniform step
    would have, and steering only changes *which* subnet of that cost is trained.

    Its randomness comes in separate streams (:func:`focus_streams`): the draws (uniform
    sampling's own stream, so the sequence of draws is the uniform run's whatever the learner
    does; with target budgets on a space without identity layers the draws lie in ``focus.band``,
    which is uniform sampling's :data:`UNIFORM_TARGET_BAND` by default), the exploration coins, the
    steered proposals and the learner's. Under several processes (``ranks``) rank 0 alone plans
    the steps and learns; the others receive its plan and the candidates to score, so ranks whose
    floating point differs still train one model.
    """

    name = "focus"

    def __init__(self, space: SearchSpace, config: FocusConfig, seed: int, total_steps: int,
                 score: PerImageRewardFn | None, budgets: Sequence[float] = (), budget_prior: BudgetPrior = "uniform",
                 ranks: Ranks | None = None) -> None:
        self.space, self.config, self.score = space, config, score
        self.ranks = ranks or Ranks()
        self.min_steering_step = int(config.warmup_fraction * total_steps)
        self.sampler = ArchSampler(space, config.hidden_dim, config.band, config.balanced)
        self.sampler_optimizer = torch.optim.Adam(self.sampler.parameters(), lr=config.lr)
        self.predictor = AccuracyPredictor(space, config.hidden_dim)
        self.predictor_optimizer = torch.optim.Adam(self.predictor.parameters(), lr=config.lr)
        self.measurements = Measurements(capacity=config.measurement_window)
        self.budgets = budget_distribution(space, budgets, budget_prior)
        streams = focus_streams(seed)
        self.rng, self.coins, self.learning_rng = streams.draws, streams.coins, streams.learning
        self.proposal_generator, self.generator = streams.proposals_torch, streams.learning_torch
        self.uniform = UniformDraws(space, self.rng, budgets, seed, config.band)
        self.queue: list[_Proposal] = []  # planned steps; the policy only changes at an update
        self.current = _Proposal(float("nan"), torch.zeros(0, dtype=torch.long), explore=True)
        self.tau = float("nan")  # mean of recent_taus once there are stable_updates of them
        self.recent_taus: list[float] = []  # the predictor's tau on each new group, before learning it
        self.steering = False
        self.policy_updates = 0
        self.tallies = _Tallies()

    @property
    def budget(self) -> float:
        """The budget of the current step (NaN before the first step)."""
        return self.current.budget

    # -- proposals ------------------------------------------------------------------------------
    def draw_budgets(self, n: int) -> torch.Tensor:
        """``n`` budgets from the deployment distribution, on the learner's stream."""
        return torch.as_tensor(self.budgets.draw(self.learning_rng, n), dtype=torch.float64)

    @torch.no_grad()
    def best_proposals(self, budgets: torch.Tensor, generator: torch.Generator, tally: bool = True) -> torch.Tensor:
        """Per budget, the best of ``best_of`` policy samples by the predictor: codes ``(n, L)``.
        ``tally`` counts the samples in the epoch's hit-rate and entropy columns."""
        k = self.config.best_of
        out = self.sampler.sample(budgets.repeat_interleave(k), generator=generator, group=k)
        self.predictor.eval()
        predicted = self.predictor(out.codes).view(-1, k)
        best = predicted.argmax(1) + torch.arange(len(budgets)) * k
        if tally:
            self.tallies.proposed += len(budgets) * k
            self.tallies.in_band += int((out.macs >= (1 - self.config.band) * budgets.repeat_interleave(k)).sum())
            self.tallies.entropy_sum += float(out.normalised_entropy.sum())
        return out.codes[best]

    def _plan(self, n: int) -> list[_Proposal]:
        draws = [self.uniform.draw() for _ in range(n)]
        budgets = torch.as_tensor([budget for _, budget in draws], dtype=torch.float64)
        explore = torch.as_tensor(
            [not self.steering or self.coins.random() < self.config.uniform_share for _ in range(n)])
        codes = torch.as_tensor(np.stack([self.space.encode(arch) for arch, _ in draws]), dtype=torch.long)
        if (~explore).any():
            codes[~explore] = self.best_proposals(budgets[~explore], self.proposal_generator)
        return [_Proposal(b, c, bool(e)) for b, c, e in zip(budgets.tolist(), codes, explore.tolist())]

    def archs_for_step(self, step: int, minibatch_loss: MinibatchLossFn | None = None) -> list[ArchBase]:
        if not self.queue:  # rank 0 plans; every rank follows its plan
            self.queue = self.ranks.from_main(self._plan(self.config.update_every) if self.ranks.is_main else None)
        self.current = self.queue.pop(0)
        self.tallies.steps += 1
        self.tallies.steered += not self.current.explore
        return [self.space.decode(self.current.code.numpy())]

    # -- learning -------------------------------------------------------------------------------
    def after_step(self, step: int) -> None:
        cfg = self.config
        if self.score is None or step % cfg.update_every:
            return
        self._measure()
        if not self.ranks.is_main:  # the learner runs on rank 0 only; it alone plans the next steps
            return
        codes, scores, groups = self.measurements.all()
        fit_predictor(self.predictor, self.predictor_optimizer, codes, scores, groups, cfg.predictor_steps,
                      self.generator)
        recent = self.recent_taus[-cfg.stable_updates:]
        self.tau = sum(recent) / len(recent) if len(recent) == cfg.stable_updates else float("nan")
        if self.tau >= cfg.min_tau:  # False for NaN
            self._update_policy()
            if not self.steering and step >= self.min_steering_step:
                self.steering = True
        self.queue = []  # planned with the old policy, predictor or steering state

    def _measure(self) -> None:
        """Score one comparable group (candidates for one budget, in the same supernet state); the
        predictor's tau on it, before it learns from it, is an out-of-sample measure of its ranking.
        Once steering, half the group is what steered steps train, so ``policy_gain`` measures it."""
        n = self.config.eval_candidates
        n_policy = n // 2 if self.steering else 0
        codes = self.ranks.from_main(self._measurement_candidates(n, n_policy) if self.ranks.is_main else None)
        per_image = self.score([self.space.decode(code.numpy()) for code in codes])  # every rank scores its share
        if not self.ranks.is_main:
            return
        scores = per_image.mean(1)
        tau = kendall_tau(self.predictor, codes, scores)
        if not np.isnan(tau):  # nan when no pair of scores differs
            self.recent_taus = (self.recent_taus + [tau])[-self.config.stable_updates:]
        self.measurements.add(codes, scores)
        spread, noise = reward_spread_and_noise(per_image)
        self.tallies.groups += 1
        self.tallies.spread_sum += spread
        self.tallies.noise_sum += noise
        if n_policy:
            self.tallies.gain_sum += float(scores[:n_policy].mean() - scores[n_policy:].mean())
            self.tallies.gains += 1

    def _measurement_candidates(self, n: int, n_policy: int) -> torch.Tensor:
        """One group's codes: ``n`` candidates for one budget, the first ``n_policy`` of them what
        steered steps train (the best of ``best_of`` policy samples), the rest uniform in band."""
        budget = self.draw_budgets(1)
        codes = self.sampler.sample(budget.repeat(n - n_policy), generator=self.generator, uniform=True).codes
        if n_policy:
            codes = torch.cat([self.best_proposals(budget.repeat(n_policy), self.generator), codes])
        return codes

    def _update_policy(self) -> None:
        cfg = self.config

        def predicted(codes: torch.Tensor) -> torch.Tensor:
            self.predictor.eval()
            return self.predictor(codes)

        first = None
        for _ in range(cfg.policy_steps):
            step = reinforce_step(self.sampler, self.sampler_optimizer, predicted, self.draw_budgets(cfg.policy_budgets),
                                  cfg.policy_group, cfg.entropy_weight, self.generator, cfg.entropy_floor)
            first = first or step
            self.tallies.policy_steps += 1
            self.tallies.floor_steps += step.raised_entropy
            if kl_since(self.sampler, first) > cfg.max_kl:
                break
        self.policy_updates += 1

    # -- reporting and state --------------------------------------------------------------------
    def status(self) -> str:
        if math.isnan(self.budget):
            return ""
        return f"{'explore' if self.current.explore else 'focus'} {self.budget / 1e6:.3g}M"

    @torch.no_grad()
    def distinct_per_100(self) -> int:
        """Distinct archs among 100 steered proposals for budgets of the deployment distribution."""
        generator = torch.Generator().manual_seed(0)  # its own stream: training's is untouched
        budgets = torch.as_tensor(self.budgets.draw(np.random.default_rng(0), 100), dtype=torch.float64)
        codes = self.best_proposals(budgets, generator, tally=False)
        return len({tuple(code.tolist()) for code in codes})

    def epoch_metrics(self) -> dict[str, float]:
        t, nan = self.tallies, float("nan")
        metrics = {
            "steered_share": t.steered / t.steps if t.steps else nan,
            "predictor_tau": self.tau,
            "policy_updates": float(self.policy_updates),
            "sampler_entropy": t.entropy_sum / t.proposed if t.proposed else nan,
            "budget_hit_rate": t.in_band / t.proposed if t.proposed else nan,
            "reward_spread": t.spread_sum / t.groups if t.groups else nan,
            "reward_se": t.noise_sum / t.groups if t.groups else nan,
            "policy_gain": t.gain_sum / t.gains if t.gains else nan,
            "entropy_floor_steps": t.floor_steps / t.policy_steps if t.policy_steps else nan,
            "distinct_per_100": float(self.distinct_per_100()),
        }
        self.tallies = _Tallies()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "sampler_optimizer": self.sampler_optimizer.state_dict(),
            "predictor": self.predictor.state_dict(),
            "predictor_optimizer": self.predictor_optimizer.state_dict(),
            "measurements": self.measurements.state_dict(),
            "rng": self.rng.bit_generator.state,
            "coins": self.coins.bit_generator.state,
            "learning_rng": self.learning_rng.bit_generator.state,
            "proposal_generator": self.proposal_generator.get_state(),
            "generator": self.generator.get_state(),
            "queue": [asdict(p) for p in self.queue],
            "current": asdict(self.current),
            "tau": self.tau,
            "recent_taus": list(self.recent_taus),
            "steering": self.steering,
            "policy_updates": self.policy_updates,
            "tallies": asdict(self.tallies),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Optimizer.load_state_dict keeps references to the given tensors: copy them, so this
        # strategy never shares its Adam moments with the one the state came from.
        state = copy.deepcopy(state)
        self.sampler.load_state_dict(state["sampler"])
        self.sampler_optimizer.load_state_dict(state["sampler_optimizer"])
        self.predictor.load_state_dict(state["predictor"])
        self.predictor_optimizer.load_state_dict(state["predictor_optimizer"])
        self.measurements.load_state_dict(state["measurements"])
        self.rng.bit_generator.state = state["rng"]
        self.coins.bit_generator.state = state["coins"]
        self.learning_rng.bit_generator.state = state["learning_rng"]
        self.proposal_generator.set_state(state["proposal_generator"])
        self.generator.set_state(state["generator"])
        self.queue = [_Proposal(**p) for p in state["queue"]]
        self.current = _Proposal(**state["current"])
        self.tau, self.recent_taus = state["tau"], list(state["recent_taus"])
        self.steering, self.policy_updates = state["steering"], state["policy_updates"]
        self.tallies = _Tallies(**state["tallies"])


@dataclass
class _Proposal:
    """One planned training step of the focus sampler."""

    budget: float
    code: torch.Tensor
    explore: bool  # a uniform draw in the budget's band, not the policy's pick


@dataclass
class _Tallies:
    """Per-epoch counters behind the focus sampler's summary columns."""

    steps: int = 0
    steered: int = 0
    proposed: int = 0
    in_band: int = 0
    entropy_sum: float = 0.0
    groups: int = 0
    spread_sum: float = 0.0
    noise_sum: float = 0.0
    gain_sum: float = 0.0
    gains: int = 0
    policy_steps: int = 0
    floor_steps: int = 0


def reward_spread_and_noise(per_image: torch.Tensor) -> tuple[float, float]:
    """(std of the candidates' mean scores, median standard error of a pair's score difference).

    The first is what the reward should resolve; the second how noisy a comparison of two
    candidates scored on the same images is.
    """
    n = per_image.shape[1]
    i, j = torch.triu_indices(len(per_image), len(per_image), offset=1)
    if len(i) == 0:
        return float("nan"), float("nan")
    errors = (per_image[i] - per_image[j]).std(1) / n ** 0.5
    return float(per_image.mean(1).std()), float(errors.quantile(0.5))


@dataclass
class FocusStreams:
    """The focus sampler's independent random streams (see :func:`focus_streams`)."""

    draws: np.random.Generator  # uniform sampling's draws (and their target budgets)
    coins: np.random.Generator  # exploration coins once steering
    proposals_torch: torch.Generator  # the policy's samples that steered steps train
    learning: np.random.Generator  # budgets of measurements and policy updates
    learning_torch: torch.Generator  # measurement candidates, predictor fits, policy updates


def focus_streams(seed: int) -> FocusStreams:
    """Separate streams, so that learning never shifts the draws or the coins: the draws are
    uniform sampling's own, the rest children of ``numpy.random.SeedSequence(seed)``."""
    coins, proposals, learning = np.random.SeedSequence(seed).spawn(3)

    def torch_generator(sequence: np.random.SeedSequence) -> torch.Generator:
        return torch.Generator().manual_seed(int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1)))

    return FocusStreams(draw_stream(seed), np.random.default_rng(coins), torch_generator(proposals),
                        np.random.default_rng(learning), torch_generator(learning))
