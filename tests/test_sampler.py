"""The budget-conditioned sampler, the ranking predictor and the focus strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from focusformer.config import FocusConfig, load_config
from focusformer.errors import ConfigError
from focusformer.spaces import Arch
from focusformer.spaces.counts import count_macs, count_macs_batch, count_params
from focusformer.sampling.predictor import AccuracyPredictor, Measurements, fit_predictor, kendall_tau
from focusformer.sampling.sampler import ArchSampler, reinforce_step
from focusformer.spaces import INACTIVE
from focusformer.sampling.strategies import FocusStrategy

SPACES = ["digits", "fashion-mnist", "cifar100", "autoformer-tiny", "autoformer-base"]


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("kind", ["macs", "params"])
def test_every_sample_is_within_budget(name, kind):
    """Property: over many budgets across the whole range, sampled and greedy archs fit."""
    space = load_config(name).space
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    bounds = sampler.bounds[kind]
    rng = np.random.default_rng(1)
    budgets = torch.as_tensor(
        np.concatenate([[bounds.min_cost, bounds.max_cost], rng.uniform(bounds.min_cost, bounds.max_cost, 400)])
    )
    count = count_macs if kind == "macs" else count_params
    for greedy in (False, True):
        out = sampler.sample(budgets, generator=torch.Generator().manual_seed(2), greedy=greedy, kind=kind)
        for code, budget, macs in zip(out.codes.numpy(), budgets.tolist(), out.macs.tolist()):
            arch = space.decode(code)  # raises on a malformed encoding
            assert count(arch, space) <= budget
            assert macs == count_macs(arch, space)
    assert torch.isfinite(out.log_prob).all() and (out.entropy >= 0).all()


def test_samples_aim_at_the_band_below_the_budget():
    space = load_config("fashion-mnist").space
    sampler = ArchSampler(space, band=0.1)
    b = sampler.bounds["macs"]
    budgets = torch.linspace(b.min_cost + 0.2 * (b.max_cost - b.min_cost), b.max_cost, 200, dtype=torch.float64)
    out = sampler.sample(budgets, generator=torch.Generator().manual_seed(0))
    # Untrained, yet masking alone keeps (almost) every sample in [0.9 B, B].
    assert (out.macs >= 0.9 * budgets).float().mean() > 0.95


def test_budget_outside_range_is_a_clear_error():
    space = load_config("digits").space
    sampler = ArchSampler(space)
    with pytest.raises(ConfigError, match="outside this space's range"):
        sampler.sample(torch.tensor([sampler.bounds["macs"].min_cost - 1]))
    with pytest.raises(ConfigError, match="smallest subnet"):
        sampler.check_budget(sampler.bounds["macs"].max_cost * 2)


def test_sampling_is_deterministic_under_a_seed():
    space = load_config("fashion-mnist").space
    sampler = ArchSampler(space)
    budgets = torch.full((32,), 15e6, dtype=torch.float64)
    a = sampler.sample(budgets, generator=torch.Generator().manual_seed(7)).codes
    b = sampler.sample(budgets, generator=torch.Generator().manual_seed(7)).codes
    c = sampler.sample(budgets, generator=torch.Generator().manual_seed(8)).codes
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_learns_a_planted_reward():
    """Reward = embed dim: after training, the greedy arch takes the widest embed dim that fits."""
    space = load_config("fashion-mnist").space
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    optimizer = torch.optim.Adam(sampler.parameters(), lr=3e-3)
    embed_dims = torch.tensor(space.embed_dim, dtype=torch.float32)
    reward = lambda codes: embed_dims[codes[:, 1]]  # noqa: E731
    bounds = sampler.bounds["macs"]
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        budgets = torch.empty(16, dtype=torch.float64).uniform_(bounds.min_cost, bounds.max_cost, generator=generator)
        reinforce_step(sampler, optimizer, reward, budgets, group=8, entropy_weight=0.0, generator=generator)
    test_budgets = torch.linspace(bounds.min_cost, bounds.max_cost, 25, dtype=torch.float64)
    greedy = sampler.sample(test_budgets, greedy=True).codes
    for budget, code in zip(test_budgets.tolist(), greedy):
        # The widest embed dim whose cheapest arch (smallest depth, heads, ratios) still fits.
        d = space.depth[0]
        cheapest = [count_macs(Arch(e, d, (space.num_heads[0],) * d, (space.mlp_ratio[0],) * d), space)
                    for e in space.embed_dim]
        widest = max(i for i, cost in enumerate(cheapest) if cost <= budget)
        assert code[1].item() == widest, (budget, code.tolist())


def _planted_accuracy(codes: torch.Tensor, space) -> torch.Tensor:
    """A known accuracy: grows with MACs, plus a preference for wide MLPs in layer 0."""
    macs = torch.as_tensor(count_macs_batch(codes.numpy(), space), dtype=torch.float32)
    return 50 + 30 * macs / macs.max() + 5 * (codes[:, 3] == len(space.mlp_ratio) - 1).float()


def test_predictor_learns_a_planted_ranking():
    space = load_config("fashion-mnist").space
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    codes = torch.as_tensor(np.stack([space.encode(space.sample(rng)) for _ in range(300)]))
    accuracy = _planted_accuracy(codes, space)
    measurements = Measurements(capacity=512, holdout_every=4)
    measurements.add(codes, accuracy)
    train_codes, train_acc = measurements.split(holdout=False)
    held_codes, held_acc = measurements.split(holdout=True)
    assert len(held_codes) == 75 and len(train_codes) == 225
    predictor = AccuracyPredictor(space)
    before = kendall_tau(predictor, held_codes, held_acc)
    fit_predictor(predictor, torch.optim.Adam(predictor.parameters(), lr=3e-3), train_codes, train_acc,
                  steps=200, generator=torch.Generator().manual_seed(0))
    after = kendall_tau(predictor, held_codes, held_acc)
    assert after > 0.8 and after > before


def test_measurements_keep_a_window_of_the_latest():
    space = load_config("digits").space
    m = Measurements(capacity=10, holdout_every=5)
    rng = np.random.default_rng(0)
    for start in range(0, 30, 6):
        codes = torch.as_tensor(np.stack([space.encode(space.sample(rng)) for _ in range(6)]))
        m.add(codes, torch.arange(start, start + 6, dtype=torch.float32))
    assert m.accuracies.tolist() == list(range(20, 30))
    assert m.holdout.tolist() == [(i % 5) == 4 for i in range(20, 30)]


def _strategy(space, seed=0, score=None):
    config = FocusConfig(update_every=5, eval_candidates=4, warmup_fraction=0.2, policy_steps=2, policy_budgets=4,
                         policy_group=4, predictor_steps=5)
    return FocusStrategy(space, config, seed=seed, total_steps=100, score=score)


def test_focus_strategy_state_round_trip_continues_identically():
    space = load_config("digits").space
    score = lambda archs: [float(a.embed_dim + sum(a.num_heads)) for a in archs]  # noqa: E731
    first = _strategy(space, score=score)
    for step in range(40):
        first.archs_for_step(step)
        first.after_step(step + 1)
    assert first.policy_updates > 0
    second = _strategy(space, seed=123, score=score)  # different seed: everything must come from the state
    second.load_state_dict(first.state_dict())
    for step in range(40, 70):
        assert first.archs_for_step(step) == second.archs_for_step(step)
        first.after_step(step + 1)
        second.after_step(step + 1)
    for name, tensor in first.sampler.state_dict().items():
        assert torch.equal(tensor, second.sampler.state_dict()[name])
    assert first.epoch_metrics() == pytest.approx(second.epoch_metrics(), nan_ok=True)


def test_focus_strategy_proposals_follow_warmup_then_budgets():
    space = load_config("digits").space
    strategy = _strategy(space, score=lambda archs: [float(a.embed_dim) for a in archs])
    for step in range(20):  # warm-up: 20 of 100 steps
        strategy.archs_for_step(step)
        assert strategy.status() == "uniform"
        strategy.after_step(step + 1)
    budgets = []
    for step in range(20, 100):
        (arch,) = strategy.archs_for_step(step)
        if strategy.status() != "uniform":
            budgets.append(strategy.budget)
            assert count_macs(arch, space) <= strategy.budget
        strategy.after_step(step + 1)
    # About three quarters of the steps after warm-up follow the sampler (uniform_share 0.25).
    assert 0.55 < len(budgets) / 80 < 0.95
    metrics = strategy.epoch_metrics()
    assert set(metrics) == {"sampler_entropy", "mean_reward", "predictor_tau", "budget_hit_rate"}
    assert metrics["budget_hit_rate"] > 0.9 and metrics["mean_reward"] > 0


def test_inactive_layers_stay_inactive():
    space = load_config("autoformer-tiny").space
    out = ArchSampler(space).sample(torch.full((50,), 1.5e9, dtype=torch.float64),
                                    generator=torch.Generator().manual_seed(0))
    for code in out.codes:
        depth = space.depth[code[0]]
        assert (code[2 + 2 * depth:] == INACTIVE).all() and (code[: 2 + 2 * depth] >= 0).all()


def test_specialize_draws_distinct_candidates_from_a_collapsed_policy():
    """A sharpened policy repeats itself; specialize widens its draws until it has N distinct archs."""
    from focusformer.budget import Budget
    from focusformer.sampling.specialize import specialize

    space = load_config("fashion-mnist").space
    sampler = ArchSampler(space)
    with torch.no_grad():
        for head in sampler.heads:  # every decision all but certain: the collapsed case
            head.bias.zero_()
            head.bias[0] = 8.0
    budget = Budget(20e6)
    repeated = sampler.sample(torch.full((32,), budget.value, dtype=torch.float64),
                              generator=torch.Generator().manual_seed(0)).codes
    assert len({tuple(code.tolist()) for code in repeated}) <= 3  # plain draws mostly repeat
    scored = []

    def score(archs):
        scored.extend(archs)
        return [float(a.embed_dim * a.depth) for a in archs]

    found = specialize(sampler, budget, score, num_candidates=16, seed=0)
    # Bounded widening: up to 16, and here far more than the 1-3 that plain draws give.
    assert len(found.candidates) == len(set(found.candidates)) == len(scored) >= 12
    assert all(count_macs(arch, space) <= budget.value for arch in found.candidates)
    assert found.best_score == max(a.embed_dim * a.depth for a in found.candidates)
