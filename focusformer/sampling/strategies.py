"""How the trainer picks the subnets to train at each step.

A strategy proposes one or more archs per step (their gradients are summed in
one optimizer step), may learn after each step, and carries its own state, saved
in the checkpoint so a resumed run continues the exact same sequence of subnets.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from ..config import Config, FocusConfig
from .predictor import AccuracyPredictor, Measurements, fit_predictor, kendall_tau
from .sampler import ArchSampler, reinforce_step
from ..spaces import SearchSpace
from ..spaces.base import AnyArch
from .calibration import calibrate_identity

#: Scores archs by search-val top-1 (percent) with the supernet's current weights.
ScoreFn = Callable[[Sequence[AnyArch]], list[float]]


class SamplingStrategy(Protocol):
    name: str

    def archs_for_step(self, step: int) -> list[AnyArch]:
        """The subnets to train at optimizer step ``step``."""

    def after_step(self, step: int) -> None:
        """Called once ``step`` optimizer steps are done."""

    def status(self) -> str:
        """A few words for the progress bar."""

    def epoch_metrics(self) -> dict[str, float]:
        """Extra per-epoch columns for ``summary.csv``; resets the epoch's tallies."""

    def state_dict(self) -> dict[str, Any]:
        """Plain data (ints, floats, strings, lists, dicts, tensors) for the checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class UniformStrategy:
    """AutoFormer: one uniformly random subnet per step.

    With ``budgets`` (on a space with identity layers) each step draws one of them and makes
    each layer an identity with the probability calibrated for it (ViTAS), so the subnets
    trained sit around the budgets users deploy at.
    """

    name = "uniform"

    def __init__(self, space: SearchSpace, seed: int, budgets: Sequence[float] = ()) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.calibrations = tuple(calibrate_identity(space, b, seed=seed) for b in budgets)

    def _sample(self) -> AnyArch:
        if not self.calibrations:
            return self.space.sample(self.rng)
        calibration = self.calibrations[int(self.rng.integers(len(self.calibrations)))]
        return self.space.sample(self.rng, identity_prob=calibration.identity_prob)

    def archs_for_step(self, step: int) -> list[AnyArch]:
        return [self._sample()]

    def after_step(self, step: int) -> None:
        pass

    def status(self) -> str:
        return ""

    def epoch_metrics(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class SandwichStrategy(UniformStrategy):
    """The sandwich rule: the largest, the smallest and one random subnet every step."""

    name = "sandwich"

    def archs_for_step(self, step: int) -> list[AnyArch]:
        return [self.space.largest(), self.space.smallest(), self._sample()]


class FocusStrategy:
    """The learned sampler: after a uniform warm-up, train the subnet it proposes for a random budget.

    Every ``update_every`` steps (from half-way through warm-up) it scores a few candidates with
    inherited weights, refits the accuracy predictor on all recent measurements, and (after
    warm-up) takes policy-gradient steps on the sampler with the predictor as reward, a
    per-budget mean-reward baseline and an entropy bonus. A ``uniform_share`` of steps stays
    uniform so no region of the space starves.
    """

    name = "focus"

    def __init__(self, space: SearchSpace, config: FocusConfig, seed: int, total_steps: int,
                 score: ScoreFn | None, budgets: Sequence[float] = ()) -> None:
        self.space, self.config, self.score = space, config, score
        self.budgets = tuple(budgets)
        self.warmup_steps = int(config.warmup_fraction * total_steps)
        self.sampler = ArchSampler(space, config.hidden_dim, config.band)
        self.sampler_optimizer = torch.optim.Adam(self.sampler.parameters(), lr=config.lr)
        self.predictor = AccuracyPredictor(space, config.hidden_dim)
        self.predictor_optimizer = torch.optim.Adam(self.predictor.parameters(), lr=config.lr)
        self.measurements = Measurements(capacity=config.measurement_window)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.queue: list[tuple[float, torch.Tensor]] = []  # pre-drawn (budget, code) proposals
        self.budget = float("nan")  # the budget of the latest proposal
        self.tau = float("nan")
        self.policy_updates = 0
        self.tallies = _Tallies()

    # -- proposals ------------------------------------------------------------------------------
    def draw_budgets(self, n: int) -> torch.Tensor:
        """Training budgets: from the target list when one is set, else uniform over the MAC range."""
        if self.budgets:
            return torch.as_tensor(self.rng.choice(self.budgets, size=n), dtype=torch.float64)
        bounds = self.sampler.bounds["macs"]
        return torch.as_tensor(self.rng.uniform(bounds.min_cost, bounds.max_cost, size=n), dtype=torch.float64)

    @torch.no_grad()
    def propose(self, budgets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and exact MACs of one sample per budget; updates the hit-rate and entropy tallies."""
        out = self.sampler.sample(budgets, generator=self.generator)
        self.tallies.proposed += len(budgets)
        self.tallies.in_band += int((out.macs >= (1 - self.config.band) * budgets).sum())
        self.tallies.entropy_sum += float(out.entropy.sum())
        return out.codes, out.macs

    def archs_for_step(self, step: int) -> list[AnyArch]:
        if step < self.warmup_steps or self.rng.random() < self.config.uniform_share:
            self.budget = float("nan")
            return [self.space.sample(self.rng)]
        if not self.queue:
            # Proposals are drawn in batches: the policy only changes at the next update.
            budgets = self.draw_budgets(self.config.update_every)
            codes, _ = self.propose(budgets)
            self.queue = list(zip(budgets.tolist(), codes))
        self.budget, code = self.queue.pop(0)
        return [self.space.decode(code.numpy())]

    # -- learning -------------------------------------------------------------------------------
    def after_step(self, step: int) -> None:
        cfg = self.config
        if self.score is None or step % cfg.update_every or step < self.warmup_steps // 2:
            return
        self._measure(sampler_half=step >= self.warmup_steps)
        train_codes, train_acc = self.measurements.split(holdout=False)
        fit_predictor(self.predictor, self.predictor_optimizer, train_codes, train_acc,
                      cfg.predictor_steps, self.generator)
        self.tau = kendall_tau(self.predictor, *self.measurements.split(holdout=True))
        if step >= self.warmup_steps and train_codes.shape[0] >= cfg.eval_candidates:
            for _ in range(cfg.policy_steps):
                self._policy_step()
            self.policy_updates += 1
            self.queue = []  # proposals of the old policy

    def _measure(self, sampler_half: bool) -> None:
        n = self.config.eval_candidates
        n_sampler = n // 2 if sampler_half else 0
        archs = [self.space.sample(self.rng) for _ in range(n - n_sampler)]
        if n_sampler:
            codes, _ = self.propose(self.draw_budgets(n_sampler))
            archs += [self.space.decode(c.numpy()) for c in codes]
        accuracies = self.score(archs)
        codes = torch.as_tensor(np.stack([self.space.encode(a) for a in archs]))
        self.measurements.add(codes, torch.tensor(accuracies))
        if n_sampler:
            self.tallies.reward_sum += sum(accuracies[-n_sampler:])
            self.tallies.rewarded += n_sampler

    def _policy_step(self) -> None:
        def predicted(codes: torch.Tensor) -> torch.Tensor:
            self.predictor.eval()
            return self.predictor(codes)

        cfg = self.config
        reinforce_step(self.sampler, self.sampler_optimizer, predicted, self.draw_budgets(cfg.policy_budgets),
                       cfg.policy_group, cfg.entropy_weight, self.generator)

    # -- reporting and state --------------------------------------------------------------------
    def status(self) -> str:
        return "uniform" if self.budget != self.budget else f"budget {self.budget / 1e6:.3g}M"

    def epoch_metrics(self) -> dict[str, float]:
        t, nan = self.tallies, float("nan")
        metrics = {
            "sampler_entropy": t.entropy_sum / t.proposed if t.proposed else nan,
            "mean_reward": t.reward_sum / t.rewarded if t.rewarded else nan,
            "predictor_tau": self.tau,
            "budget_hit_rate": t.in_band / t.proposed if t.proposed else nan,
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
            "generator": self.generator.get_state(),
            "queue": [(budget, code) for budget, code in self.queue],
            "budget": self.budget,
            "tau": self.tau,
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
        self.generator.set_state(state["generator"])
        self.queue = [(budget, code) for budget, code in state["queue"]]
        self.budget, self.tau = state["budget"], state["tau"]
        self.policy_updates = state["policy_updates"]
        self.tallies = _Tallies(**state["tallies"])


@dataclass
class _Tallies:
    """Per-epoch counters behind the focus sampler's summary columns."""

    proposed: int = 0
    in_band: int = 0
    entropy_sum: float = 0.0
    reward_sum: float = 0.0
    rewarded: int = 0


def build_strategy(config: Config, total_steps: int, score: ScoreFn | None) -> SamplingStrategy:
    name, seed, budgets = config.train.sampler, config.train.seed, config.train.budgets
    if name == "focus":
        return FocusStrategy(config.space, config.focus, seed, total_steps, score, budgets)
    return {"uniform": UniformStrategy, "sandwich": SandwichStrategy}[name](config.space, seed, budgets)
