"""The budget-conditioned sampler, the ranking predictor and the focus strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from focusformer.config import FocusConfig, load_config
from focusformer.errors import ConfigError
from focusformer.sampling.focus import FocusStrategy
from focusformer.sampling.predictor import (
    AccuracyPredictor,
    Measurements,
    fit_predictor,
    grouped_kendall_tau,
    kendall_tau,
    same_group_pairs,
)
from focusformer.sampling.sampler import ArchSampler, reinforce_step
from focusformer.sampling.strategies import UniformStrategy
from focusformer.spaces import INACTIVE, Arch
from focusformer.spaces.counts import count_macs, count_macs_batch, count_params

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


def test_budget_below_range_is_a_clear_error():
    space = load_config("digits").space
    sampler = ArchSampler(space)
    with pytest.raises(ConfigError, match="below this space's range.*smallest subnet.*or more"):
        sampler.sample(torch.tensor([sampler.bounds["macs"].min_cost - 1]))
    with pytest.raises(ConfigError, match="below this space's range"):
        sampler.check_budget(sampler.bounds["macs"].min_cost * 0.5)


def test_budget_above_the_largest_subnet_is_sampled_as_the_largest():
    """Every arch fits; the policy is asked at the top of the range it was conditioned on."""
    space = load_config("fashion-mnist").space
    sampler = ArchSampler(space)
    largest = sampler.bounds["macs"].max_cost
    sampler.check_budget(largest * 2)  # no error
    above = sampler.sample(torch.full((16,), largest * 2), generator=torch.Generator().manual_seed(3))
    at = sampler.sample(torch.full((16,), largest), generator=torch.Generator().manual_seed(3))
    assert torch.equal(above.codes, at.codes) and torch.allclose(above.log_prob, at.log_prob)
    # Conditioned at the top, the draws reach the band under the largest subnet, not below it.
    assert (above.macs >= 0.9 * largest).float().mean() > 0.9


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


def test_predictor_learns_a_planted_ranking_from_within_group_pairs():
    """Each group has its own offset (a supernet that improved between updates); only the
    within-group order is real, and the predictor recovers it on groups it never saw."""
    space = load_config("fashion-mnist").space
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    def group(index):
        codes = torch.as_tensor(np.stack([space.encode(space.sample(rng)) for _ in range(10)]))
        return codes, _planted_accuracy(codes, space) + 10.0 * index  # drift between groups

    measurements = Measurements(capacity=512)
    for index in range(25):
        measurements.add(*group(index))
    unseen = [group(100 + index) for index in range(5)]
    held = (torch.cat([c for c, _ in unseen]), torch.cat([a for _, a in unseen]),
            torch.arange(5).repeat_interleave(10))
    predictor = AccuracyPredictor(space)
    before = kendall_tau(predictor, *held)
    fit_predictor(predictor, torch.optim.Adam(predictor.parameters(), lr=3e-3), *measurements.all(),
                  steps=200, generator=torch.Generator().manual_seed(0))
    after = kendall_tau(predictor, *held)
    assert after > 0.8 and after > before


def test_measurements_keep_a_window_of_the_latest_groups():
    space = load_config("digits").space
    m = Measurements(capacity=10)
    rng = np.random.default_rng(0)
    for start in range(0, 30, 6):
        codes = torch.as_tensor(np.stack([space.encode(space.sample(rng)) for _ in range(6)]))
        m.add(codes, torch.arange(start, start + 6, dtype=torch.float32))
    assert m.scores.tolist() == list(range(20, 30))
    assert m.groups.tolist() == [3] * 4 + [4] * 6


def test_same_group_pairs_never_cross_groups():
    groups = torch.tensor([0, 1, 1, 2, 2, 2, 3])
    pairs = same_group_pairs(groups, 2000, torch.Generator().manual_seed(0))
    assert torch.equal(groups[pairs[:, 0]], groups[pairs[:, 1]])
    assert set(groups[pairs[:, 0]].tolist()) == {1, 2}  # singletons have no partner
    counts = torch.bincount(groups[pairs[:, 0]], minlength=4)
    assert abs(counts[2] / counts[1] - 1.5) < 0.3  # first member uniform over eligible items
    assert same_group_pairs(torch.tensor([0, 1, 2]), 5, torch.Generator()).shape == (0, 2)


def test_grouped_kendall_tau_matches_scipy_within_one_group_and_ignores_cross_group_pairs():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    predicted, measured = rng.normal(size=12), rng.normal(size=12)
    expected = kendalltau(predicted, measured).statistic
    got = grouped_kendall_tau(torch.tensor(predicted), torch.tensor(measured), torch.zeros(12, dtype=torch.long))
    assert got == pytest.approx(expected)
    # Two groups whose levels differ wildly: pooled tau would be high, within-group order is reversed.
    predicted = torch.tensor([1.0, 2.0, 3.0, 11.0, 12.0, 13.0])
    measured = torch.tensor([3.0, 2.0, 1.0, 13.0, 12.0, 11.0])
    assert grouped_kendall_tau(predicted, measured, torch.tensor([0, 0, 0, 1, 1, 1])) == -1.0
    assert kendalltau(predicted, measured).statistic > 0  # pooled, cross-group pairs dominate


def _strategy(space, seed=0, score=None, **overrides):
    settings = dict(update_every=5, eval_candidates=6, warmup_fraction=0.2, policy_steps=2, policy_budgets=4,
                    policy_group=4, predictor_steps=20, stable_updates=2, min_tau=0.2)
    settings.update(overrides)
    # The policy's and the predictor's initial weights come from torch's global generator, as any
    # module's do (focusformer-train seeds it); seeded here, a test does not depend on which tests
    # ran before it in its process.
    torch.manual_seed(seed)
    return FocusStrategy(space, FocusConfig(**settings), seed=seed, total_steps=100, score=score)


def _planted_score(archs):
    """Per-image scores of a planted, budget-independent merit: deeper is better at any cost."""
    merit = torch.tensor([float(a.depth) + 0.1 * sum(a.num_heads) for a in archs])
    return merit.unsqueeze(1) + 0.01 * torch.randn(len(archs), 50, generator=torch.Generator().manual_seed(1))


def test_focus_strategy_state_round_trip_continues_identically():
    space = load_config("digits").space
    first = _strategy(space, score=_planted_score)
    for step in range(40):
        first.archs_for_step(step)
        first.after_step(step + 1)
    assert first.policy_updates > 0
    second = _strategy(space, seed=123, score=_planted_score)  # another seed: all must come from the state
    second.load_state_dict(first.state_dict())
    for step in range(40, 70):
        assert first.archs_for_step(step) == second.archs_for_step(step)
        first.after_step(step + 1)
        second.after_step(step + 1)
    for name, tensor in first.sampler.state_dict().items():
        assert torch.equal(tensor, second.sampler.state_dict()[name])
    assert first.epoch_metrics() == pytest.approx(second.epoch_metrics(), nan_ok=True)


def test_focus_strategy_steers_once_the_predictor_ranks():
    """A learnable score: the predictor ranks, the policy is updated, steering starts after the
    minimum warm-up, and about (1 - uniform_share) of later steps follow the policy."""
    space = load_config("digits").space
    strategy = _strategy(space, score=_planted_score)
    steered_at = None
    for step in range(100):
        (arch,) = strategy.archs_for_step(step)
        assert count_macs(arch, space) <= strategy.budget
        if strategy.steering and steered_at is None:
            steered_at = step
        strategy.after_step(step + 1)
    assert steered_at is not None and steered_at >= 20  # warm-up: 20 of 100 steps at least
    metrics = strategy.epoch_metrics()
    assert metrics["predictor_tau"] >= 0.2 and metrics["policy_updates"] >= 2  # the gate (min_tau) holds
    assert 0.4 < metrics["steered_share"] * 100 / (100 - steered_at) < 0.95
    assert metrics["budget_hit_rate"] > 0.9
    assert metrics["reward_se"] < metrics["reward_spread"]
    assert 1 <= metrics["distinct_per_100"] <= 100


def test_focus_strategy_degrades_to_uniform_when_the_predictor_cannot_rank():
    """Pure noise as the score: tau stays low, the policy is never updated, nothing is steered."""
    space = load_config("digits").space
    noise = torch.Generator().manual_seed(5)
    strategy = _strategy(space, score=lambda archs: torch.randn(len(archs), 50, generator=noise), min_tau=0.5,
                         stable_updates=3)
    for step in range(100):
        strategy.archs_for_step(step)
        strategy.after_step(step + 1)
    metrics = strategy.epoch_metrics()
    assert strategy.policy_updates == 0 and not strategy.steering
    assert metrics["steered_share"] == 0.0
    assert metrics["reward_se"] > metrics["reward_spread"] / 3  # the measured noise says why


def _mac_score(space, archs):
    """Per-image scores that rank any family's archs (fewer MACs is better), with a little noise."""
    merit = torch.tensor([-count_macs(a, space) / 1e5 for a in archs])
    return merit.unsqueeze(1) + 0.01 * torch.randn(len(archs), 50, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name, budgets", [("digits", ()), ("digits", (0.3e6, 0.6e6)),
                                           ("vitas-digits", (0.3e6, 0.6e6))])
@pytest.mark.parametrize("score", [None, "planted"])
def test_unsteered_focus_trains_exactly_what_uniform_sampling_trains(name, budgets, score):
    """The exploration floor is uniform sampling itself: until the policy steers (here never: the
    warm-up lasts the whole run), focus trains the very subnets uniform sampling of the same seed
    trains, with or without target budgets (in band, or ViTAS's calibrated identity layers), and
    however much its learner draws meanwhile (a scorer, predictor fits and policy updates)."""
    space = load_config(name).space
    config = FocusConfig(update_every=3, eval_candidates=4, warmup_fraction=1.0, min_tau=-1.0, stable_updates=1,
                         policy_steps=2, policy_budgets=4, policy_group=4, predictor_steps=5)
    scorer = None if score is None else (lambda archs: _mac_score(space, archs))
    focus = FocusStrategy(space, config, seed=3, total_steps=100, score=scorer, budgets=budgets)
    uniform = UniformStrategy(space, seed=3, budgets=budgets)
    for step in range(30):
        assert focus.archs_for_step(step) == uniform.archs_for_step(step)
        focus.after_step(step + 1)
    assert focus.policy_updates == (10 if score else 0) and not focus.steering


def test_steered_steps_cost_what_the_uniform_draws_they_replace_cost():
    """A steered step trains the policy's pick for the budget of uniform sampling's draw (its MACs),
    so steering moves no compute: the steered subnets' MACs follow the uniform draws'."""
    space = load_config("digits").space
    strategy = _strategy(space, score=_planted_score, uniform_share=0.0)
    steered, explored = [], []
    for step in range(100):
        (arch,) = strategy.archs_for_step(step)
        macs = count_macs(arch, space)
        assert macs <= strategy.budget
        (explored if strategy.current.explore else steered).append(macs / strategy.budget)
        strategy.after_step(step + 1)
    assert len(steered) > 30 and explored and all(ratio == 1.0 for ratio in explored)
    assert np.mean(steered) > 0.85  # in the band [0.9 b, b] but where coarse choices cannot reach it


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


def test_uniform_candidates_ignore_the_policy_and_fill_the_band():
    """The untrained baseline: distinct in-band draws that do not depend on the policy's weights,
    where the policy's own candidates do."""
    from focusformer.budget import Budget
    from focusformer.sampling.specialize import draw_candidates

    space = load_config("fashion-mnist").space
    budget = Budget(15e6)
    torch.manual_seed(0)
    first = ArchSampler(space)
    torch.manual_seed(1)
    second = ArchSampler(space)
    with torch.no_grad():
        for head in second.heads:  # a collapsed policy: plain draws would repeat one arch
            head.bias.zero_()
            head.bias[0] = 8.0

    uniform = draw_candidates(first, budget, 24, seed=3, uniform=True)
    assert uniform == draw_candidates(second, budget, 24, seed=3, uniform=True)
    assert draw_candidates(first, budget, 24, seed=3) != draw_candidates(second, budget, 24, seed=3)
    assert len(uniform) == len(set(uniform)) == 24
    macs = [count_macs(arch, space) for arch in uniform]
    assert all((1 - first.band) * budget.value <= m <= budget.value for m in macs)
    assert uniform != draw_candidates(first, budget, 24, seed=4, uniform=True)
