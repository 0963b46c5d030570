"""Specialize's rungs: a budget is a cap, so candidates also come from the bands of cheaper budgets."""

from __future__ import annotations

import pytest
import torch

from focusformer.budget import Budget
from focusformer.config import load_config
from focusformer.sampling.sampler import ArchSampler
from focusformer.sampling.specialize import FALLBACK_RUNGS, budget_rungs, run_rungs, specialize
from focusformer.spaces.counts import count_macs


def test_rungs_are_the_target_budgets_below_or_fractions_of_the_budget():
    budget = Budget(25e6)
    assert [r.value for r in budget_rungs(budget, (8e6, 15e6, 25e6, 40e6), smallest=1e5)] == [15e6, 8e6]
    assert [r.value for r in budget_rungs(budget, (), smallest=1e5)] == [25e6 * f for f in FALLBACK_RUNGS]
    # Target budgets are MACs: a parameter budget ignores them.
    params = budget_rungs(Budget(4e5, "params"), (8e6,), smallest=1e4)
    assert [(r.value, r.kind) for r in params] == [(4e5 * f, "params") for f in FALLBACK_RUNGS]
    # Nothing below the smallest subnet; below the smallest target budget, fractions again.
    assert [r.value for r in budget_rungs(budget, (), smallest=10e6)] == [12.5e6]
    assert [r.value for r in budget_rungs(Budget(8e6), (8e6, 15e6), smallest=1e5)] == [4e6, 2e6]
    # Above the largest subnet, the largest's rungs: it is answered as that cost.
    assert budget_rungs(Budget(1e12), (), smallest=1e5, largest=20e6) == budget_rungs(Budget(20e6), (), smallest=1e5)
    assert [r.value for r in budget_rungs(Budget(1e12), (8e6, 15e6, 25e6), smallest=1e5, largest=20e6)] == [15e6, 8e6]



@pytest.mark.parametrize("config_name", ["digits", "fashion-mnist"])
@pytest.mark.parametrize("kind", ["macs", "params"])
def test_a_run_budget_above_the_largest_subnet_has_the_largest_subnets_rungs(config_name, kind):
    config = load_config(config_name)
    sampler = ArchSampler(config.space)
    largest = sampler.bounds[kind].max_cost
    rungs = run_rungs(sampler, Budget(largest, kind), config)
    assert rungs and run_rungs(sampler, Budget(largest * 100, kind), config) == rungs


def _macs_scorer(space, prefer_cheap: bool):
    scored = []

    def score(archs):
        scored.extend(archs)
        return [(-1.0 if prefer_cheap else 1.0) * count_macs(a, space) for a in archs]

    return score, scored


@pytest.mark.parametrize("uniform", [False, True])
def test_candidates_are_shared_between_the_bands_and_a_cheaper_winner_is_found(uniform):
    space = load_config("fashion-mnist").space
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    budget = Budget(20e6)
    rungs = budget_rungs(budget, (), smallest=sampler.bounds["macs"].min_cost)
    bands = [budget, *rungs]
    score, scored = _macs_scorer(space, prefer_cheap=True)

    found = specialize(sampler, budget, score, num_candidates=15, seed=0, uniform=uniform, rungs=rungs)

    macs = [count_macs(a, space) for a in found.candidates]
    in_band = [sum((1 - sampler.band) * b.value <= m <= b.value for m in macs) for b in bands]
    # Every candidate in one of the bands, at most its share in each (a policy's draws in a
    # narrow band can run out of distinct archs; uniform draws fill every share).
    assert sum(in_band) == len(found.candidates) == len(set(found.candidates)) == len(scored)
    assert in_band == [5, 5, 5] if uniform else (all(n <= 5 for n in in_band) and sum(in_band) >= 12)
    # The best by score (the cheapest here) lies in the lowest rung's band, far below the budget's.
    assert count_macs(found.best, space) <= rungs[-1].value
    assert found.best_score == max(found.scores)


def test_without_rungs_every_candidate_lies_in_the_budget_band():
    space = load_config("fashion-mnist").space
    sampler = ArchSampler(space)
    budget = Budget(20e6)
    score, _ = _macs_scorer(space, prefer_cheap=True)
    found = specialize(sampler, budget, score, num_candidates=8, seed=0, uniform=True)
    assert all((1 - sampler.band) * budget.value <= count_macs(a, space) <= budget.value for a in found.candidates)


def test_more_bands_than_candidates_keeps_the_budget_band_first():
    space = load_config("fashion-mnist").space
    sampler = ArchSampler(space)
    budget = Budget(20e6)
    rungs = budget_rungs(budget, (), smallest=sampler.bounds["macs"].min_cost)
    score, _ = _macs_scorer(space, prefer_cheap=False)
    found = specialize(sampler, budget, score, num_candidates=1, seed=0, rungs=rungs)
    assert len(found.candidates) == 1
    assert (1 - sampler.band) * budget.value <= count_macs(found.best, space) <= budget.value


class _PreferCheap(torch.nn.Module):
    """A stand-in accuracy predictor that rates cheaper archs higher (their encodings sum lower)."""

    def forward(self, codes):
        return -codes.clamp_min(0).sum(1).float()


def test_data_free_answer_is_the_policy_greedy_arch_chosen_across_bands_by_the_predictor():
    from focusformer.sampling.specialize import data_free_answer

    space = load_config("fashion-mnist").space
    torch.manual_seed(0)
    sampler = ArchSampler(space).eval()
    budget = Budget(20e6)
    rungs = budget_rungs(budget, (), smallest=sampler.bounds["macs"].min_cost)
    alone = data_free_answer(sampler, budget)
    assert alone == data_free_answer(sampler, budget, rungs)  # no predictor: the budget's own band
    assert (1 - sampler.band) * budget.value <= count_macs(alone, space) <= budget.value
    greedy = sampler.sample(torch.tensor([budget.value], dtype=torch.float64), greedy=True).codes[0]
    assert space.encode(alone).tolist() == greedy.tolist()  # the policy's most probable arch
    chosen = data_free_answer(sampler, budget, rungs, _PreferCheap())
    assert count_macs(chosen, space) <= rungs[-1].value  # the cheapest band's arch, as the predictor prefers
