"""The cost tables' bounds for partial archs are exact, and one arch at a time reads the same
bounds as a batch (the searches decide one arch at a time, the sampler a batch)."""

from __future__ import annotations

import numpy as np
import pytest

from focusformer.budget import Budget
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.spaces.costs import LayeredCost, PartialArchs, decide
from focusformer.spaces.counts import count_macs
from focusformer.spaces.decisions import INACTIVE

SPACES = ("digits", "vitas-digits", "psvit-digits", "psvit-2d-fashion-mnist")
KINDS = ("macs", "params")


def walk(cost: LayeredCost, choose) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """One arch decided by ``choose(slot, low, high)`` (its code at each active slot), and the bounds
    met at each slot."""
    state, met = PartialArchs(cost, 1), []
    for slot in range(cost.plan.encoding_length):
        active, low, high = state.bounds_array(slot)
        met.append((active, low, high))
        state.commit(slot, np.array([choose(slot, low[0], high[0]) if active[0] else INACTIVE]))
    return state.codes_array[0].copy(), met


def greedy_completion(cost: LayeredCost, prefix: np.ndarray, slot: int, choice: int, cheapest: bool) -> float:
    """The cost of ``prefix`` up to ``slot``, ``choice`` at ``slot``, then the choice with the lowest
    low bound (``cheapest``) or the highest high bound at every later slot."""
    def choose(at: int, low: np.ndarray, high: np.ndarray) -> int:
        if at < slot:
            return int(prefix[at])
        if at == slot:
            return choice
        return int(np.argmin(low)) if cheapest else int(np.argmax(high))

    codes, _ = walk(cost, choose)
    return float(cost.count(codes[None])[0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SPACES)
def test_bounds_are_reached_by_some_completion_and_hold_for_every_sampled_arch(space_of, name, kind):
    space = space_of(name)
    cost = space.cost_model(kind)
    rng = np.random.default_rng(0)
    for arch in [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(6))]:
        codes = space.encode(arch)
        final = float(cost.count(codes[None])[0])
        followed, met = walk(cost, lambda slot, low, high: int(codes[slot]))
        np.testing.assert_array_equal(followed, codes)
        active_slots = [slot for slot, (active, _, _) in enumerate(met) if active[0]]
        assert active_slots == [slot for slot, code in enumerate(codes) if code != INACTIVE]
        for slot in active_slots:
            _, low, high = met[slot]
            assert low[0, codes[slot]] <= final <= high[0, codes[slot]]
        # Tightness: from a prefix of this arch, every valid choice's bounds are costs of real archs.
        slot = int(rng.choice(active_slots))
        _, low, high = met[slot]
        for choice in np.flatnonzero(np.isfinite(low[0])):
            assert greedy_completion(cost, codes, slot, int(choice), cheapest=True) == low[0, choice]
            assert greedy_completion(cost, codes, slot, int(choice), cheapest=False) == high[0, choice]
        assert np.all(np.isinf(low[0]) == np.isinf(high[0]))


@pytest.mark.parametrize("name", SPACES)
def test_one_arch_at_a_time_reads_the_bounds_of_a_batch(space_of, name):
    space = space_of(name)
    cost = space.cost_model("macs")
    rng = np.random.default_rng(1)
    codes = np.stack([space.encode(space.sample(rng)) for _ in range(8)])
    batch = PartialArchs(cost, len(codes))
    for slot in range(cost.plan.encoding_length):
        batch_bounds = batch.bounds_array(slot)
        for row, arch_codes in enumerate(codes):
            single = PartialArchs(cost, 1)
            for earlier in range(slot):
                single.bounds_array(earlier)
                single.commit(earlier, arch_codes[earlier:earlier + 1])
            for _ in range(2):  # the second read comes from the table's memo
                for single_array, batch_array in zip(single.bounds_array(slot), batch_bounds):
                    np.testing.assert_array_equal(single_array[0], batch_array[row])
        batch.commit(slot, codes[:, slot])
    np.testing.assert_array_equal(batch.codes_array, codes)


def test_bounds_handed_out_are_the_callers_to_change(space_of):
    cost = space_of("digits").cost_model("macs")
    first = PartialArchs(cost, 1)
    slot = len(cost.plan.network)  # the first layer decision
    for earlier in range(slot):
        first.bounds_array(earlier)
        first.commit(earlier, np.array([0]))
    for array in first.bounds_array(slot):
        array[...] = 0
    second = PartialArchs(cost, 1)
    for earlier in range(slot):
        second.bounds_array(earlier)
        second.commit(earlier, np.array([0]))
    active, low, high = second.bounds_array(slot)
    assert active.all() and (low > 0).all() and (high >= low).all()


def test_one_arch_bounds_are_computed_once_per_table(space_of, monkeypatch):
    table = space_of("vitas-digits").cost_model("macs")
    fresh = LayeredCost(table.plan, table.options, table.allowed, table.base, table.layer)  # an empty memo
    computed = []
    original = LayeredCost.layer_decision_bounds
    monkeypatch.setattr(LayeredCost, "layer_decision_bounds",
                        lambda self, *args: computed.append(args[:2]) or original(self, *args))

    def cheapest(slot, valid, feasible):
        return valid[0]

    first = decide(fresh, cheapest)
    assert computed, "the first arch computes its layer bounds"
    count = len(computed)
    np.testing.assert_array_equal(decide(fresh, cheapest), first)
    assert len(computed) == count, "the same arch again is all lookups"


@pytest.mark.parametrize("name", ["digits", "vitas-digits", "psvit-digits"])
def test_evolution_scores_the_same_archs_with_and_without_the_memo(space_of, monkeypatch, name):
    space = space_of(name)
    costs = space.cost_model("macs")
    budget = Budget((costs.min_cost + costs.max_cost) / 2)
    config = EvolutionConfig(population=10, generations=4, parents=4, mutations=5, crossovers=5)

    def search() -> list:
        scored = []

        def score(archs):
            scored.extend(archs)
            return [float(count_macs(arch, space)) for arch in archs]

        outcome = evolution_search(space, budget, score, config, seed=0)
        return [scored, outcome.best, outcome.history]

    with_memo = search()
    monkeypatch.setattr(LayeredCost, "_one_arch_layer_bounds", property(lambda self: {}))  # a memo that forgets
    assert search() == with_memo

