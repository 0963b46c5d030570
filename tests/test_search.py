"""Evolution and random search under MAC / parameter budgets, with a cheap synthetic score.

Budgets are checked independently with ``count_macs`` / ``count_params`` (not the search's
own cost tables), and the planted optimum is found by brute force over layer multisets.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import zlib

import numpy as np
import pytest

from focusformer.budget import Budget, format_count
from focusformer.errors import ConfigError
from focusformer.search.evolution import EvolutionConfig, _crossover, _mutate, _new_children, evolution_search
from focusformer.search.random_search import random_search
from focusformer.search.state import SearchOutcome
from focusformer.search.within_budget import BudgetCosts, sample_within_budget, within_budget
from focusformer.spaces import Arch
from focusformer.spaces.counts import count_macs, count_params

SPACES = ("digits", "fashion-mnist", "autoformer-tiny")
KINDS = ("macs", "params")
SMALL = EvolutionConfig(population=10, generations=4, parents=4, mutations=5, crossovers=5)
COUNT = {"macs": count_macs, "params": count_params}


def cost(arch, space, kind):
    return COUNT[kind](arch, space)


def cost_range(space, kind):
    """Smallest and largest subnet cost; every cost is increasing in every choice."""
    return cost(space.smallest(), space, kind), cost(space.largest(), space, kind)


def budgets_across(space, kind, n=12):
    low, high = cost_range(space, kind)
    return [Budget(float(v), kind) for v in np.linspace(low, high, n)] + [Budget(high * 1.5, kind)]


def synthetic_score(arch: Arch) -> float:
    """Deterministic, arch-dependent, with a hash tiebreak so ties are rare."""
    tiebreak = zlib.crc32(arch.to_json().encode()) / 2**32
    return arch.embed_dim * arch.depth / 100 + sum(arch.num_heads) + tiebreak


class Recorder:
    """A score function that records every arch it is given, optionally failing at one call."""

    def __init__(self, fn=synthetic_score, fail_at_call: int | None = None):
        self.fn, self.fail_at_call = fn, fail_at_call
        self.calls: list[list[Arch]] = []

    def __call__(self, archs):
        if self.fail_at_call is not None and len(self.calls) + 1 == self.fail_at_call:
            raise RuntimeError("interrupted")
        self.calls.append(list(archs))
        return [self.fn(a) for a in archs]

    @property
    def archs(self) -> list[Arch]:
        return [a for call in self.calls for a in call]


def assert_valid_and_within(archs, space, budget):
    for arch in archs:
        space.validate(arch)
        assert cost(arch, space, budget.kind) <= budget.value, (arch, budget)


# -- sampling within budget ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SPACES)
def test_sample_within_budget_is_always_in_budget(space_of, name, kind):
    space = space_of(name)
    rng = np.random.default_rng(0)
    for budget in budgets_across(space, kind):
        archs = [sample_within_budget(space, budget, rng) for _ in range(25)]
        assert_valid_and_within(archs, space, budget)
        assert all(within_budget(a, space, budget) for a in archs)
    # At exactly the smallest cost only the cheapest subnet(s) fit.
    low, _ = cost_range(space, kind)
    for _ in range(5):
        assert cost(sample_within_budget(space, Budget(low, kind), rng), space, kind) == low


@pytest.mark.parametrize("kind", KINDS)
def test_within_budget_matches_independent_count(space_of, kind):
    space = space_of("fashion-mnist")
    rng = np.random.default_rng(1)
    for _ in range(50):
        arch = space.sample(rng)
        c = cost(arch, space, kind)
        assert BudgetCosts(space, Budget(c, kind)).cost(arch) == c
        assert within_budget(arch, space, Budget(c, kind))
        assert not within_budget(arch, space, Budget(c - 1, kind))


def test_sampling_covers_the_feasible_choices(space_of):
    """Large budget: every choice of every decision appears; tight budget: still several archs."""
    space = space_of("digits")
    rng = np.random.default_rng(2)
    archs = [sample_within_budget(space, Budget(1e12), rng) for _ in range(300)]
    assert {a.depth for a in archs} == set(space.depth)
    assert {a.embed_dim for a in archs} == set(space.embed_dim)
    assert {h for a in archs for h in a.num_heads} == set(space.num_heads)
    low, high = cost_range(space, "macs")
    tight = Budget(low + 0.2 * (high - low))
    assert len({sample_within_budget(space, tight, rng) for _ in range(100)}) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_budget_below_smallest_raises(space_of, kind):
    space = space_of("digits")
    low, _ = cost_range(space, kind)
    budget = Budget(low - 1, kind)
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="below this space.s range.*or more") as refused:
        sample_within_budget(space, budget, rng)
    if kind != "latency" and format_count(low - 1) == format_count(low):  # then written in full too
        assert f"({low - 1:,.0f})" in str(refused.value) and f"({low:,.0f})" in str(refused.value)
    with pytest.raises(ConfigError, match="below this space.s range"):
        evolution_search(space, budget, Recorder(), SMALL, seed=0)
    with pytest.raises(ConfigError, match="below this space.s range"):
        random_search(space, budget, Recorder(), 10, seed=0)
    with pytest.raises(ConfigError, match="kind"):
        sample_within_budget(space, Budget(1e12, "flops"), rng)  # type: ignore[arg-type]


# -- mutation, crossover and children -----------------------------------------------------------
def test_crossover_of_different_depths_is_well_formed(space_of):
    space = space_of("fashion-mnist")
    rng = np.random.default_rng(3)
    for _ in range(300):
        a, b = space.sample(rng), space.sample(rng)
        child = _crossover(a, b, space, rng)
        space.validate(child)
        assert child.depth in (a.depth, b.depth)
        assert child.embed_dim in (a.embed_dim, b.embed_dim)
        donor = a if child.depth == a.depth else b
        for layer in range(child.depth):
            from_either = [p for p in (a, b) if layer < p.depth]
            assert child.num_heads[layer] in {p.num_heads[layer] for p in from_either}
            assert child.mlp_ratio[layer] in {p.mlp_ratio[layer] for p in from_either}
            if layer >= min(a.depth, b.depth):
                assert child.num_heads[layer] == donor.num_heads[layer]


def test_mutation_is_well_formed_and_respects_probabilities(space_of):
    space = space_of("fashion-mnist")
    rng = np.random.default_rng(4)
    parent = space.sample(rng)
    frozen = EvolutionConfig(depth_mutation=0.0, layer_mutation=0.0)
    assert all(_mutate(parent, space, frozen, rng) == parent for _ in range(20))
    wild = EvolutionConfig(depth_mutation=1.0, layer_mutation=1.0)
    children = [_mutate(parent, space, wild, rng) for _ in range(200)]
    for child in children:
        space.validate(child)
    assert {c.depth for c in children} == set(space.depth)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SPACES)
def test_children_are_new_and_within_budget(space_of, name, kind):
    space = space_of(name)
    rng = np.random.default_rng(5)
    config = EvolutionConfig(mutations=20, crossovers=20, depth_mutation=0.5, layer_mutation=0.6)
    for budget in budgets_across(space, kind, n=8):
        parents = list({sample_within_budget(space, budget, rng) for _ in range(6)})
        seen = set(parents)
        children = _new_children(parents, seen, space, BudgetCosts(space, budget), budget.value, config, rng)
        assert_valid_and_within(children, space, budget)
        assert len(set(children)) == len(children)
        assert not seen & set(children)
        if budget.value >= 0.5 * sum(cost_range(space, kind)):  # roomy budgets: no shortage of new archs
            assert len(children) == config.mutations + config.crossovers


@pytest.mark.parametrize("kind", KINDS)
def test_repair_keeps_in_budget_archs_and_fixes_over_budget_ones(space_of, kind):
    space = space_of("autoformer-tiny")
    costs = BudgetCosts(space, Budget(1.0, kind))
    low, high = cost_range(space, kind)
    rng = np.random.default_rng(6)
    for _ in range(100):
        arch = space.sample(rng)
        budget = float(rng.uniform(low, high))
        repaired = costs.walk(budget, rng, preferred=arch)
        space.validate(repaired)
        assert cost(repaired, space, kind) <= budget
        if cost(arch, space, kind) <= budget:
            assert repaired == arch


# -- evolution ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SPACES)
def test_every_scored_candidate_is_valid_in_budget_and_scored_once(space_of, name, kind):
    space = space_of(name)
    for i, budget in enumerate(budgets_across(space, kind, n=6)):
        score = Recorder()
        outcome = evolution_search(space, budget, score, SMALL, seed=i)
        scored = score.archs
        assert_valid_and_within(scored, space, budget)
        assert len(set(scored)) == len(scored) == outcome.scored
        if i > 0:  # (at the smallest cost only one arch fits: no children to score)
            assert len(score.calls) == SMALL.generations + 1  # initial population, then one call a generation
        assert outcome.best in scored
        assert outcome.best_score == max(synthetic_score(a) for a in scored)
        assert len(outcome.history) == SMALL.generations + 1
        assert all(x <= y for x, y in zip(outcome.history, outcome.history[1:]))
        assert outcome.history[-1] == outcome.best_score


def test_evolution_terminates_when_the_budget_admits_few_archs(space_of):
    space = space_of("digits")
    low, _ = cost_range(space, "macs")
    score = Recorder()
    outcome = evolution_search(space, Budget(low), score, SMALL, seed=0)
    assert outcome.best == space.smallest()
    assert outcome.scored == len(set(score.archs)) == 1
    assert outcome.history == [synthetic_score(space.smallest())] * (SMALL.generations + 1)


def test_evolution_config_at_population_keeps_autoformers_proportions():
    assert EvolutionConfig.at_population(50, 20) == EvolutionConfig()  # AutoFormer's own settings
    small = EvolutionConfig.at_population(4, 2)
    assert (small.parents, small.mutations, small.crossovers) == (1, 2, 2)


def test_evolution_is_deterministic_under_a_seed(space_of):
    space = space_of("fashion-mnist")
    low, high = cost_range(space, "macs")
    budget = Budget((low + high) / 2)
    first, again, other = Recorder(), Recorder(), Recorder()
    a = evolution_search(space, budget, first, SMALL, seed=7)
    b = evolution_search(space, budget, again, SMALL, seed=7)
    evolution_search(space, budget, other, SMALL, seed=8)
    assert a == b and first.calls == again.calls
    assert first.calls != other.calls


def best_feasible_cost(space, budget):
    """Brute force: the largest cost within budget (a layer's cost does not depend on its position)."""
    layers = list(itertools.product(space.num_heads, space.mlp_ratio))
    best = 0
    for depth in space.depth:
        for embed in space.embed_dim:
            for combo in itertools.combinations_with_replacement(layers, depth):
                arch = Arch(embed, depth, tuple(h for h, _ in combo), tuple(r for _, r in combo))
                c = cost(arch, space, budget.kind)
                if best < c <= budget.value:
                    best = c
    return best


@pytest.mark.parametrize("kind", KINDS)
def test_evolution_finds_the_planted_optimum(space_of, kind):
    """Score = cost (higher is better within budget): evolution gets within 1.5% of the largest
    feasible cost at every budget (exact knapsack optima are needle-like: many archs tie, one
    layer change moves the cost by a chunk), and in total closer to it than random search."""
    space = space_of("fashion-mnist")
    low, high = cost_range(space, kind)
    config = EvolutionConfig(population=20, generations=15, parents=5, mutations=10, crossovers=10)

    def score(archs):
        return [float(cost(a, space, kind)) for a in archs]

    evo_gaps, random_gaps = [], []
    for fraction in (0.15, 0.4, 0.7, 0.9):
        budget = Budget(low + fraction * (high - low), kind)
        optimum = best_feasible_cost(space, budget)
        evo = evolution_search(space, budget, score, config, seed=0)
        rnd = random_search(space, budget, score, evo.scored, seed=0)
        assert evo.best_score <= optimum and rnd.best_score <= optimum
        evo_gaps.append((optimum - evo.best_score) / optimum)
        random_gaps.append((optimum - rnd.best_score) / optimum)
    assert max(evo_gaps) <= 0.015, evo_gaps
    assert sum(evo_gaps) < sum(random_gaps), (evo_gaps, random_gaps)


def test_evolution_beats_random_search_on_a_hidden_target(space_of):
    """Score = genes matching a hidden in-budget arch: evolution climbs, random search cannot."""
    space = space_of("autoformer-tiny")
    low, high = cost_range(space, "macs")
    budget = Budget(low + 0.6 * (high - low))
    target = sample_within_budget(space, budget, np.random.default_rng(123))

    def matches(archs):
        out = []
        for a in archs:
            same = [a.embed_dim == target.embed_dim, a.depth == target.depth]
            same += [a.num_heads[i] == target.num_heads[i] and a.mlp_ratio[i] == target.mlp_ratio[i]
                     for i in range(min(a.depth, target.depth))]
            out.append(float(sum(same)))
        return out

    config = EvolutionConfig(population=20, generations=15, parents=5, mutations=10, crossovers=10)
    evo = evolution_search(space, budget, matches, config, seed=0)
    rnd = random_search(space, budget, matches, evo.scored, seed=0)
    assert rnd.scored == evo.scored
    assert evo.best_score > rnd.best_score
    assert evo.best_score >= 2 + target.depth - 2  # at most two layers off the target


# -- resuming -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fail_at_call", [1, 2, 4, SMALL.generations + 1])
def test_interrupted_evolution_resumes_exactly(space_of, tmp_path, fail_at_call):
    space = space_of("fashion-mnist")
    low, high = cost_range(space, "params")
    budget = Budget(low + 0.4 * (high - low), "params")
    reference = evolution_search(space, budget, Recorder(), SMALL, seed=3)

    path = tmp_path / "state.json"
    with pytest.raises(RuntimeError, match="interrupted"):
        evolution_search(space, budget, Recorder(fail_at_call=fail_at_call), SMALL, seed=3, state_path=path)
    assert path.exists() == (fail_at_call > 1)
    before = set(json.dumps(a) for a, _ in json.loads(path.read_text())["scored"]) if path.exists() else set()
    resumed_score = Recorder()
    resumed = evolution_search(space, budget, resumed_score, SMALL, seed=3, state_path=path)
    assert resumed == reference
    assert len(resumed_score.calls) == SMALL.generations + 2 - fail_at_call
    assert not before & {json.dumps(a.to_dict()) for a in resumed_score.archs}  # nothing scored twice

    # A finished search leaves its state; calling again returns the outcome without scoring.
    assert json.loads(path.read_text())["generation"] == SMALL.generations
    assert evolution_search(space, budget, Recorder(fail_at_call=1), SMALL, seed=3, state_path=path) == reference


def test_a_finished_evolution_continues_into_more_generations(space_of, tmp_path):
    """More generations continue a recorded search: the outcome of an uninterrupted longer run,
    scoring only the new generations. Fewer than recorded cannot be wound back: refused."""
    space = space_of("digits")
    low, high = cost_range(space, "macs")
    budget = Budget(low + 0.6 * (high - low))
    longer = dataclasses.replace(SMALL, generations=SMALL.generations + 2)
    reference = evolution_search(space, budget, Recorder(), longer, seed=4)
    path = tmp_path / "state.json"
    evolution_search(space, budget, Recorder(), SMALL, seed=4, state_path=path)
    score = Recorder()
    assert evolution_search(space, budget, score, longer, seed=4, state_path=path) == reference
    assert len(score.calls) == 2  # one call per new generation
    with pytest.raises(ConfigError, match=f"already run {longer.generations} generations, more than the "
                                          f"{SMALL.generations} asked for"):
        evolution_search(space, budget, Recorder(), SMALL, seed=4, state_path=path)


def test_state_with_other_settings_is_refused(space_of, tmp_path):
    space = space_of("digits")
    low, high = cost_range(space, "macs")
    budget = Budget((low + high) / 2)
    path = tmp_path / "state.json"
    evolution_search(space, budget, Recorder(), SMALL, seed=0, state_path=path)
    with pytest.raises(ConfigError, match="other settings.*seed"):
        evolution_search(space, budget, Recorder(), SMALL, seed=1, state_path=path)
    with pytest.raises(ConfigError, match="other settings.*budget"):
        evolution_search(space, Budget(high), Recorder(), SMALL, seed=0, state_path=path)
    with pytest.raises(ConfigError, match="other settings.*budget"):
        evolution_search(space, Budget(budget.value, "params"), Recorder(), SMALL, seed=0, state_path=path)
    with pytest.raises(ConfigError, match="other settings.*config"):
        evolution_search(space, budget, Recorder(), dataclasses.replace(SMALL, mutations=SMALL.mutations + 1),
                         seed=0, state_path=path)
    with pytest.raises(ConfigError, match="other settings.*space"):
        evolution_search(space_of("fashion-mnist"), Budget(1e12), Recorder(), SMALL, seed=0, state_path=path)
    with pytest.raises(ConfigError, match="other settings.*search"):
        random_search(space, budget, Recorder(), 20, seed=0, state_path=path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        evolution_search(space, budget, Recorder(), SMALL, seed=0, state_path=path)
    path.write_text("[]")
    with pytest.raises(ConfigError, match="not a focusformer search state"):
        evolution_search(space, budget, Recorder(), SMALL, seed=0, state_path=path)


# -- random search ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SPACES)
def test_random_search_scores_distinct_in_budget_archs(space_of, name, kind):
    space = space_of(name)
    for i, budget in enumerate(budgets_across(space, kind, n=4)[1:]):
        score = Recorder()
        outcome = random_search(space, budget, score, 45, seed=i, batch_size=20)
        scored = score.archs
        assert_valid_and_within(scored, space, budget)
        assert len(set(scored)) == len(scored) == outcome.scored == 45
        assert [len(c) for c in score.calls] == [20, 20, 5]
        assert len(outcome.history) == 3
        assert outcome.best_score == max(synthetic_score(a) for a in scored)


def test_random_search_stops_when_the_budget_admits_few_archs(space_of):
    space = space_of("digits")
    low, _ = cost_range(space, "macs")
    outcome = random_search(space, Budget(low), Recorder(), 100, seed=0)
    assert outcome.scored == 1 and outcome.best == space.smallest() and len(outcome.history) == 1


def test_random_search_is_deterministic_and_resumes_exactly(space_of, tmp_path):
    space = space_of("digits")
    low, high = cost_range(space, "macs")
    budget = Budget(low + 0.5 * (high - low))
    reference = random_search(space, budget, Recorder(), 70, seed=5, batch_size=20)
    assert random_search(space, budget, Recorder(), 70, seed=5, batch_size=20) == reference
    assert random_search(space, budget, Recorder(), 70, seed=6, batch_size=20) != reference
    path = tmp_path / "random.json"
    with pytest.raises(RuntimeError):
        random_search(space, budget, Recorder(fail_at_call=3), 70, seed=5, state_path=path, batch_size=20)
    score = Recorder()
    assert random_search(space, budget, score, 70, seed=5, state_path=path, batch_size=20) == reference
    assert [len(c) for c in score.calls] == [20, 10]
    assert random_search(space, budget, Recorder(fail_at_call=1), 70, seed=5, state_path=path,
                         batch_size=20) == reference
    # More candidates continue it: the archs an uninterrupted run of 80 scores, the new ones only.
    score = Recorder()
    more = random_search(space, budget, score, 80, seed=5, state_path=path, batch_size=20)
    fresh_score = Recorder()
    fresh = random_search(space, budget, fresh_score, 80, seed=5, batch_size=20)
    assert (more.best, more.best_score, more.scored) == (fresh.best, fresh.best_score, fresh.scored)
    assert [len(c) for c in score.calls] == [10] and score.archs == fresh_score.archs[70:]
    with pytest.raises(ConfigError, match="already run 80 candidates, more than the 60"):
        random_search(space, budget, Recorder(), 60, seed=5, state_path=path, batch_size=20)
    with pytest.raises(ConfigError, match="other settings.*batch_size"):
        random_search(space, budget, Recorder(), 80, seed=5, state_path=path, batch_size=10)


def test_random_search_continues_only_while_its_budget_holds_new_archs(space_of, tmp_path):
    """A search that ran out of distinct in-budget archs stays as it is when asked for more; one
    that stopped at its count goes on. Older state files, which recorded the count and only
    ``finished``, are read the same way."""
    space = space_of("digits")
    low, high = cost_range(space, "macs")
    few, path = Budget(low), tmp_path / "few.json"
    first = random_search(space, few, Recorder(), 5, seed=0, state_path=path)
    assert first.scored == 1
    score = Recorder()
    assert random_search(space, few, score, 10, seed=0, state_path=path) == first and not score.calls

    budget = Budget(low + 0.5 * (high - low))
    for exhausted, wanted in ((False, 40), (True, 20)):  # an older state, stopped by its count or not
        path = tmp_path / f"old-{exhausted}.json"
        done = random_search(space, budget, Recorder(), 20, seed=1, state_path=path, batch_size=20)
        state = json.loads(path.read_text())
        del state["exhausted"]
        state["finished"] = True  # as older states recorded it
        state["settings"]["num_candidates"] = 20 if not exhausted else 30  # 30: it had fallen short
        path.write_text(json.dumps(state))
        score = Recorder()
        more = random_search(space, budget, score, 40, seed=1, state_path=path, batch_size=20)
        assert more.scored == wanted and (more == done) == exhausted


# -- settings and misc --------------------------------------------------------------------------
@pytest.mark.parametrize("changes", [
    {"population": 0}, {"generations": 0}, {"parents": 0}, {"parents": 51}, {"mutations": -1},
    {"mutations": 0, "crossovers": 0}, {"population": 2.5}, {"depth_mutation": 1.5},
    {"layer_mutation": -0.1}, {"layer_mutation": math.nan},
])
def test_evolution_config_is_validated(changes):
    with pytest.raises(ConfigError):
        EvolutionConfig(**changes)


def test_bad_score_functions_are_reported(space_of):
    space = space_of("digits")
    with pytest.raises(ValueError, match="scores for"):
        evolution_search(space, Budget(1e12), lambda archs: [1.0], SMALL, seed=0)
    with pytest.raises(ValueError, match="nan"):
        random_search(space, Budget(1e12), lambda archs: [math.nan] * len(archs), 5, seed=0)


def test_progress_bar(space_of, capsys):
    space = space_of("digits")
    outcome = evolution_search(space, Budget(1e12), Recorder(), SMALL, seed=0, progress=True)
    assert isinstance(outcome, SearchOutcome)
    assert "best=" in capsys.readouterr().err
    random_search(space, Budget(1e12), Recorder(), 10, seed=0, progress=True)
    assert "best=" in capsys.readouterr().err


def test_state_from_before_space_families_continues(space_of, tmp_path):
    """State files written before search-space families name no family in their space: AutoFormer.
    They also recorded the generations in the settings; they continue all the same."""
    space = space_of("digits")
    low, high = cost_range(space, "macs")
    budget = Budget((low + high) / 2)
    path = tmp_path / "state.json"
    reference = evolution_search(space, budget, Recorder(), SMALL, seed=0)
    with pytest.raises(RuntimeError, match="interrupted"):
        evolution_search(space, budget, Recorder(fail_at_call=2), SMALL, seed=0, state_path=path)
    state = json.loads(path.read_text())
    assert state["settings"]["space"].pop("family") == "autoformer"
    state["settings"]["config"]["generations"] = SMALL.generations  # as they also recorded
    path.write_text(json.dumps(state))
    assert evolution_search(space, budget, Recorder(), SMALL, seed=0, state_path=path) == reference
