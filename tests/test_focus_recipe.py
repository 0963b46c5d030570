"""The pieces of the training recipe behind focus (issue #9): budget distribution, band
shares, the entropy floor and trust region, in-place distillation, attentive sampling."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from focusformer.config import AttentiveConfig, load_config
from focusformer.errors import ConfigError
from focusformer.sampling.focus import reward_spread_and_noise
from focusformer.sampling.sampler import ArchSampler, kl_since, reinforce_step
from focusformer.sampling.strategies import AttentiveStrategy
from focusformer.sampling.training_budgets import (
    BandTally,
    LogUniformBudgets,
    TargetBudgets,
    UniformSubnetBudgets,
    budget_bands,
    budget_distribution,
)
from focusformer.spaces.counts import count_macs
from focusformer.training.distill import adaptive_alpha_distillation, alpha_divergence, kl_distillation


# -- budgets ------------------------------------------------------------------------------------
def test_log_uniform_budgets_are_log_uniform_over_the_range():
    dist = LogUniformBudgets(4e6, 36e6)
    draws = dist.draw(np.random.default_rng(0), 4000)
    assert draws.min() >= 4e6 and draws.max() <= 36e6
    scaled = (np.log(draws) - np.log(4e6)) / (np.log(36e6) - np.log(4e6))
    assert stats.kstest(scaled, "uniform").pvalue > 0.01
    # Not uniform in MACs: the median is the geometric mean, 12M, not 20M.
    assert np.median(draws) == pytest.approx(12e6, rel=0.05)


def test_target_budgets_are_drawn_evenly():
    draws = TargetBudgets((8e6, 15e6, 25e6)).draw(np.random.default_rng(0), 3000)
    values, counts = np.unique(draws, return_counts=True)
    assert values.tolist() == [8e6, 15e6, 25e6] and counts.min() > 900


def test_default_budgets_are_the_macs_uniform_sampling_trains_at():
    """Without targets, budgets follow the MACs of uniform subnets: on ViTAS's space (a 94x MAC
    range whose bottom is one narrow layer) almost none fall at the degenerate end, where
    log-uniform budgets put a fifth of the steps."""
    space = load_config("vitas-fashion-mnist").space
    dist = budget_distribution(space)
    assert isinstance(dist, UniformSubnetBudgets)
    draws = dist.draw(np.random.default_rng(0), 2000)
    reference = np.asarray([count_macs(space.sample(np.random.default_rng(s)), space) for s in range(2000)])
    assert stats.ks_2samp(draws, reference).pvalue > 0.01
    low_end = 1e6
    macs = space.cost_model("macs")
    log_uniform = budget_distribution(space, prior="log-uniform")
    assert log_uniform == LogUniformBudgets(macs.min_cost, macs.max_cost)
    assert (log_uniform.draw(np.random.default_rng(0), 2000) < low_end).mean() > 0.2
    assert (draws < low_end).mean() < 0.02
    assert budget_distribution(space, (8e6,), prior="log-uniform") == TargetBudgets((8e6,))


def test_band_tally_assigns_each_subnet_to_its_band():
    tally = BandTally(budget_bands(4e6, 36e6, (8e6, 25e6), band=0.1))
    for macs in (7.5e6, 8e6, 7.1e6, 24e6, 30e6):
        tally.add(macs)
    assert tally.shares() == {"share_8M": 0.4, "share_25M": 0.2, "share_other": 0.4}
    bands = budget_bands(4e6, 36e6, (), band=0.1, bins=4)
    assert bands[0].low == 4e6 and bands[-1].high == 36e6
    assert all(a.high == pytest.approx(b.low) for a, b in zip(bands, bands[1:]))
    whole = BandTally(bands)
    for macs in np.exp(np.random.default_rng(0).uniform(np.log(4e6), np.log(36e6), 400)).tolist() + [4e6, 36e6]:
        whole.add(macs)
    shares = whole.shares()
    assert shares["share_other"] == 0 and sum(shares.values()) == pytest.approx(1.0)
    assert min(shares[f"share_{b.label}"] for b in bands) > 0.18  # log-uniform: even over log bands


# -- the policy cannot collapse -----------------------------------------------------------------
def _collapsed_sampler(space):
    sampler = ArchSampler(space)
    with torch.no_grad():
        for head in sampler.heads:
            head.bias.zero_()
            head.bias[0] = 6.0
    return sampler


def test_entropy_floor_raises_a_collapsed_policy_and_ignores_the_reward():
    space = load_config("fashion-mnist").space
    budgets = torch.full((8,), 30e6, dtype=torch.float64)
    reward = lambda codes: -codes[:, 1].float()  # noqa: E731 - rewards the collapsed choice
    results = {}
    for floor in (0.0, 0.6):
        torch.manual_seed(0)
        sampler = _collapsed_sampler(space)
        optimizer = torch.optim.Adam(sampler.parameters(), lr=1e-2)
        generator = torch.Generator().manual_seed(0)
        steps = [reinforce_step(sampler, optimizer, reward, budgets, 8, 0.0, generator, entropy_floor=floor)
                 for _ in range(40)]
        results[floor] = steps
    assert all(not s.raised_entropy for s in results[0.0])
    raised = results[0.6]
    assert raised[0].raised_entropy and math.isnan(raised[0].mean_reward)
    assert raised[-1].entropy > 0.5 > raised[0].entropy  # climbed back to about the floor
    assert results[0.0][-1].entropy < raised[0].entropy + 0.05  # without the floor it stays collapsed


def test_kl_since_is_zero_before_a_step_and_grows_with_steps():
    space = load_config("fashion-mnist").space
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    optimizer = torch.optim.Adam(sampler.parameters(), lr=3e-2)
    generator = torch.Generator().manual_seed(0)
    reward = lambda codes: codes[:, 1].float()  # noqa: E731
    before = copy.deepcopy(sampler)
    first = reinforce_step(sampler, optimizer, reward, torch.full((8,), 20e6, dtype=torch.float64), 8, 0.0, generator)
    # Forced decoding by the policy that drew the samples gives back their own log-probabilities.
    torch.testing.assert_close(before.sample(first.budgets, forced=first.samples.codes).log_prob,
                               first.samples.log_prob.detach())
    assert kl_since(before, first) == pytest.approx(0.0, abs=1e-6)
    after_one = kl_since(sampler, first)
    for _ in range(10):
        reinforce_step(sampler, optimizer, reward, torch.full((8,), 20e6, dtype=torch.float64), 8, 0.0, generator)
    after_eleven = kl_since(sampler, first)
    assert 0 < after_one < after_eleven


def test_trust_region_stops_an_update_early(tmp_path):
    from focusformer.config import FocusConfig
    from focusformer.sampling.focus import FocusStrategy

    space = load_config("digits").space

    def score(archs):
        return torch.tensor([float(a.depth) for a in archs]).unsqueeze(1).repeat(1, 20)

    steps_taken = {}
    for max_kl in (1e-6, 10.0):
        config = FocusConfig(update_every=5, eval_candidates=6, warmup_fraction=0.0, policy_steps=10,
                             policy_budgets=4, policy_group=4, predictor_steps=20, stable_updates=1, min_tau=-1.0,
                             max_kl=max_kl, lr=1e-2)
        strategy = FocusStrategy(space, config, seed=0, total_steps=100, score=score)
        for step in range(30):
            strategy.archs_for_step(step)
            strategy.after_step(step + 1)
        steps_taken[max_kl] = strategy.tallies.policy_steps / strategy.policy_updates
    assert steps_taken[10.0] == 10 and steps_taken[1e-6] < 3


# -- reward noise -------------------------------------------------------------------------------
def test_reward_noise_is_the_paired_standard_error():
    rng = np.random.default_rng(0)
    images = rng.normal(size=400)  # shared per-image difficulty: cancels in paired differences
    own = rng.normal(scale=0.1, size=(3, 400))
    per_image = torch.tensor(images + own + np.array([[0.0], [0.5], [1.0]]))
    spread, noise = reward_spread_and_noise(per_image)
    assert spread == pytest.approx(float(per_image.mean(1).std()))
    assert noise == pytest.approx(0.1 * math.sqrt(2) / math.sqrt(400), rel=0.15)


# -- distillation -------------------------------------------------------------------------------
def _logits(seed, n=6, k=5):
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 2


def test_kl_distillation_matches_torch_and_never_moves_the_teacher():
    student, teacher = _logits(0).requires_grad_(), _logits(1).requires_grad_()
    loss = kl_distillation(student, teacher)
    expected = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), reduction="batchmean", log_target=True)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    assert kl_distillation(teacher.detach(), teacher.detach()).item() == pytest.approx(0.0, abs=1e-7)


def test_alpha_divergence_follows_its_definition():
    student, teacher = _logits(2), _logits(3)
    p, q = F.softmax(teacher, -1).double(), F.softmax(student, -1).double()
    for alpha in (-1.0, 0.5, 2.0):
        ratio = (p / q) ** alpha
        expected = (q * (ratio.clamp(max=5.0) - 1)).sum(-1) / (alpha * (alpha - 1))
        assert torch.allclose(alpha_divergence(student, teacher, alpha).double(), expected, atol=1e-5)
    kl_pq = (p * (p / q).log()).sum(-1)
    kl_qp = (q * (q / p).log()).sum(-1)
    assert torch.allclose(alpha_divergence(student, teacher, 1.0).double(), kl_pq, atol=1e-5)
    assert torch.allclose(alpha_divergence(student, teacher, 0.0).double(), kl_qp, atol=1e-5)
    both = torch.maximum(alpha_divergence(student, teacher, -1.0), alpha_divergence(student, teacher, 1.0))
    assert adaptive_alpha_distillation(student, teacher).item() == pytest.approx(both.mean().item())
    assert adaptive_alpha_distillation(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)


def test_distillation_needs_the_largest_subnet_in_every_step():
    with pytest.raises(ConfigError, match="train.sandwich"):
        load_config("digits", ["train.distill=kl"])
    with pytest.raises(ConfigError, match="'sandwich' is the uniform sampler with train.sandwich: true"):
        load_config("digits", ["train.sampler=sandwich"])
    assert load_config("digits", ["train.sandwich=true", "train.distill=alpha"]).train.distill == "alpha"


def test_a_distillation_step_trains_students_on_the_teachers_soft_targets(tmp_path):
    """One sandwich + KL step: loss = (CE(largest) + KL(smallest) + KL(pick)) / 3, computed here
    independently from the same weights, and the weights then move."""
    from focusformer.training.trainer import Trainer

    config = load_config("digits", ["train.sandwich=true", "train.distill=kl", "train.sampler=uniform",
                                    "train.drop_path=0", "train.mixup=0", "train.cutmix=0"])
    trainer = Trainer(config, tmp_path, progress=False)
    space = config.space
    pick = space.sample(np.random.default_rng(3))
    trainer.strategy.archs_for_step = lambda step, minibatch_loss=None: [pick]
    images, labels = next(iter(torch.utils.data.DataLoader(trainer.data.train, batch_size=32)))
    with torch.no_grad():
        teacher = trainer.network(images, space.largest())
        expected = (trainer.criterion(teacher, labels)
                    + kl_distillation(trainer.network(images, space.smallest()), teacher)
                    + kl_distillation(trainer.network(images, pick), teacher)) / 3
    before = [p.detach().clone() for p in trainer.network.parameters()]
    loss = trainer._train_step(images, labels)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.network.parameters()))


# -- attentive (BestUp) -------------------------------------------------------------------------
def test_attentive_trains_the_candidate_with_the_lowest_minibatch_loss():
    space = load_config("fashion-mnist").space
    strategy = AttentiveStrategy(space, AttentiveConfig(candidates=3), seed=0, budgets=(8e6, 25e6))
    seen = []

    def losses(archs):
        seen.append(list(archs))
        return [float(count_macs(a, space)) for a in archs]  # planted: the cheapest has the lowest loss

    for step in range(30):
        (arch,) = strategy.archs_for_step(step, losses)
        candidates = seen[-1]
        assert len(candidates) == 3 and arch == min(candidates, key=lambda a: count_macs(a, space))
        assert all(0.9 * strategy.budget <= count_macs(a, space) <= strategy.budget for a in candidates)
        assert strategy.budget in (8e6, 25e6)
    # Resumable: the state continues the same sequence.
    other = AttentiveStrategy(space, AttentiveConfig(candidates=3), seed=9, budgets=(8e6, 25e6))
    other.load_state_dict(strategy.state_dict())
    assert [strategy.archs_for_step(s, losses) for s in range(5)] == [other.archs_for_step(s, losses) for s in range(5)]
