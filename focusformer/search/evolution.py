"""AutoFormer's evolution search under a MAC, parameter or latency budget.

The searches (this one and :func:`~focusformer.search.random_search.random_search`) look for the
subnet with the best score (search-val top-1 with inherited weights) among the subnets of a space
whose cost is within a :class:`~focusformer.budget.Budget`. They are the baseline the learned,
budget-conditioned sampler is compared against, so they hold to a few guarantees:

* **Every scored arch is a valid arch of the space and within budget**
  (:mod:`~focusformer.search.within_budget`).
* **No arch is scored twice, and a search resumes exactly** from its state file, or continues
  into a longer one (:mod:`~focusformer.search.state`).
* **Every loop is bounded**: sampling within budget needs no rejection; making a child, and
  filling a population or a batch with new archs, gives up after a fixed number of tries.
* **Deterministic**: everything random comes from one local ``np.random.Generator`` seeded
  with ``seed``; the same seed and score function give the same outcome and history.

The searches work on any family through its decisions (:mod:`focusformer.spaces.decisions`).

Evolution (:func:`evolution_search`), as in AutoFormer:

* initial population: ``population`` distinct archs from :func:`sample_within_budget`;
* each generation, the top ``parents`` of the population are the parents; ``mutations``
  children by mutation of a uniformly chosen parent and ``crossovers`` children by crossover
  of two distinct uniformly chosen parents; the new children are scored in one call;
* selection is elitist (mu + lambda): the next population is the top ``population`` archs
  of the current population and the new children (ties keep the earlier arch), so the best
  score never decreases and the population never shrinks;
* **mutation** replays the parent's decisions in order: a *structural* decision (AutoFormer's
  depth) is resampled with probability ``depth_mutation``, every other one (the embed dim,
  as AutoFormer's ``s_prob`` does, and each layer's decisions) with probability
  ``layer_mutation``; a decision the parent does not make (a layer beyond its depth) is drawn
  uniformly. Resampling is uniform over the choices that keep the arch valid (for AutoFormer,
  every choice; for ViTAS, widths that split into whole heads);
* **crossover**: structural decisions come from one parent (the donor, chosen uniformly);
  every decision both parents make comes from either (independently, uniformly); decisions
  only one parent makes come from it. Parents of different depths thus give a well-formed
  child of the donor's depth;
* **budget and novelty**: a child must be within budget and new (never scored, not already
  made this generation). The operator is retried up to ``CHILD_TRIES`` times; then the last
  over-budget try, if any, is **repaired**: its decisions are replayed in order, each kept if
  the arch can still be completed within budget and otherwise resampled uniformly among the
  feasible choices (so the repair terminates and yields an in-budget arch close to the
  child). If that still gives no new arch, the child **falls back** to up to
  ``CHILD_TRIES`` draws of :func:`sample_within_budget`; if none is new (the in-budget
  space is nearly exhausted) the generation has one child fewer. With a single parent,
  crossover children are made by mutation.


``history[g]`` is the best score after generation ``g``, ``history[0]`` being the initial
population, so evolution's history has ``generations + 1`` entries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from ..budget import Budget
from ..errors import ConfigError
from ..spaces import INACTIVE, SearchSpace
from ..spaces.base import ArchBase, ArchScoreFn
from ..spaces.costs import decide
from .state import (
    SearchOutcome,
    load_state,
    longer_than_asked,
    outcome_of,
    read_scored,
    rng_from_state,
    score_new,
    state_settings,
    without_length,
    write_state,
)
from .within_budget import BudgetCosts, checked_costs, draw_new, uniform_choice

#: Tries of a mutation or crossover for one child (then repair, then fallback draws as many).
CHILD_TRIES = 10


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvolutionConfig:
    """AutoFormer's evolution settings (its defaults: population 50, 20 generations, top 10)."""

    population: int = 50
    generations: int = 20
    parents: int = 10  # top-k kept as parents each generation
    mutations: int = 25  # children by mutation per generation
    crossovers: int = 25  # children by crossover per generation
    depth_mutation: float = 0.2  # probability to resample the depth
    #: Probability to resample each layer's heads and (independently) its MLP ratio,
    #: and to resample the network-wide embed dim.
    layer_mutation: float = 0.4

    @classmethod
    def at_population(cls, population: int, generations: int) -> EvolutionConfig:
        """AutoFormer's proportions at any population: a fifth kept as parents, half the
        children by mutation and half by crossover (at 50: 10 parents, 25 + 25 children)."""
        return cls(population=population, generations=generations, parents=max(1, population // 5),
                   mutations=population // 2, crossovers=population - population // 2)

    def __post_init__(self) -> None:
        for name in ("population", "generations", "parents", "mutations", "crossovers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"evolution.{name}: must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("population", "generations", "parents"):
            if getattr(self, name) < 1:
                raise ConfigError(f"evolution.{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("mutations", "crossovers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"evolution.{name}: must be 0 or more, got {getattr(self, name)}")
        if self.mutations + self.crossovers < 1:
            raise ConfigError("evolution.mutations + evolution.crossovers: must be at least 1")
        if self.parents > self.population:
            raise ConfigError(
                f"evolution.parents: must be at most population ({self.population}), got {self.parents}"
            )
        for name in ("depth_mutation", "layer_mutation"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(f"evolution.{name}: must be a number, got {value!r}")
            if not 0.0 <= value <= 1.0:  # also rejects NaN
                raise ConfigError(f"evolution.{name}: must be between 0 and 1, got {value}")
            object.__setattr__(self, name, float(value))


# -- mutation and crossover ---------------------------------------------------------------------
def _mutate(parent: ArchBase, space: SearchSpace, config: EvolutionConfig, rng: np.random.Generator) -> ArchBase:
    """AutoFormer's mutation (no budget check); see the module docstring."""
    slots = space.decision_plan().slots
    codes = space.encode(parent)

    def rule(slot: int, valid: list[int], feasible: list[int]) -> int:
        if codes[slot] == INACTIVE:  # a decision the parent does not make (a new layer, say)
            return uniform_choice(rng, valid)
        probability = config.depth_mutation if slots[slot].structural else config.layer_mutation
        if rng.random() < probability or codes[slot] not in valid:
            return uniform_choice(rng, valid)
        return int(codes[slot])

    return space.decode(decide(space.cost_model("macs"), rule))


def _crossover(a: ArchBase, b: ArchBase, space: SearchSpace, rng: np.random.Generator) -> ArchBase:
    """Uniform crossover (no budget check): structural decisions from one parent, each other from either."""
    if rng.random() < 0.5:
        a, b = b, a  # ``a`` donates the structure and the decisions ``b`` lacks
    slots = space.decision_plan().slots
    code_a, code_b = space.encode(a), space.encode(b)

    def rule(slot: int, valid: list[int], feasible: list[int]) -> int:
        mine, theirs = int(code_a[slot]), int(code_b[slot])
        if mine != INACTIVE and theirs != INACTIVE and not slots[slot].structural:
            pick = mine if rng.random() < 0.5 else theirs
        else:
            pick = mine if mine != INACTIVE else theirs
        return pick if pick in valid else uniform_choice(rng, valid)

    return space.decode(decide(space.cost_model("macs"), rule))


def _make_child(operator: str, parents: Sequence[ArchBase], seen: set[ArchBase], space: SearchSpace,
                costs: BudgetCosts, limit: float, config: EvolutionConfig, rng: np.random.Generator) -> ArchBase | None:
    """One new (not in ``seen``) child within ``limit``, or None; see the module docstring."""
    over_budget = None
    for _ in range(CHILD_TRIES):
        if operator == "mutation" or len(parents) < 2:
            child = _mutate(parents[int(rng.integers(len(parents)))], space, config, rng)
        else:
            i, j = rng.choice(len(parents), size=2, replace=False)
            child = _crossover(parents[int(i)], parents[int(j)], space, rng)
        if costs.cost(child) > limit:
            over_budget = child
        elif child not in seen:
            return child
    if over_budget is not None:
        child = costs.walk(limit, rng, preferred=over_budget)
        if child not in seen:
            return child
    for _ in range(CHILD_TRIES):
        child = costs.walk(limit, rng)
        if child not in seen:
            return child
    return None


def _new_children(parents: Sequence[ArchBase], seen: set[ArchBase], space: SearchSpace, costs: BudgetCosts,
                  limit: float, config: EvolutionConfig, rng: np.random.Generator) -> list[ArchBase]:
    """Up to ``mutations + crossovers`` distinct new in-budget children of ``parents``."""
    seen = set(seen)
    children = []
    for operator in ("mutation",) * config.mutations + ("crossover",) * config.crossovers:
        child = _make_child(operator, parents, seen, space, costs, limit, config, rng)
        if child is not None:
            children.append(child)
            seen.add(child)
    return children


# -- the search ---------------------------------------------------------------------------------
def evolution_search(space: SearchSpace, budget: Budget, score: ArchScoreFn, config: EvolutionConfig, seed: int,
                     state_path: Path | None = None, progress: bool = False,
                     scored_by: Mapping[str, Any] | None = None) -> SearchOutcome:
    """AutoFormer's evolution search within ``budget``; see the module docstring for the details.
    ``scored_by`` (JSON-able) identifies what ``score`` scores with, for the state file."""
    costs = checked_costs(space, budget)
    limit = budget.value
    settings = without_length(state_settings("evolution", space, budget, seed, scored_by,
                                             config=dataclasses.asdict(config)))
    state_path = Path(state_path) if state_path is not None else None
    state = load_state(state_path, settings) if state_path is not None else None

    if state is not None:
        cache = read_scored(state, space, state_path)
        try:
            population = [space.arch_from_dict(a, "state.population") for a in state["population"]]
            generation, history = int(state["generation"]), [float(h) for h in state["history"]]
            rng = rng_from_state(state["rng"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{state_path}: corrupt search state ({exc})") from None
        if any(arch not in cache for arch in population):
            raise ConfigError(f"{state_path}: corrupt search state (population arch without a score)")
        if generation > config.generations:
            raise longer_than_asked(state_path, f"{generation} generations", f"{config.generations}")
    else:
        rng = np.random.default_rng(seed)
        cache: dict[ArchBase, float] = {}
        population = draw_new(config.population, set(), costs, limit, rng)
        score_new(score, population, cache)
        population.sort(key=lambda a: -cache[a])  # stable: ties keep the draw order
        generation, history = 0, [cache[population[0]]]
        if state_path is not None:
            write_state(state_path, settings, cache, rng, history, generation=0,
                        population=[a.to_dict() for a in population])

    bar = tqdm(total=config.generations, initial=generation, desc="evolution", unit="gen",
               disable=not progress, dynamic_ncols=True)
    bar.set_postfix_str(f"best={history[-1]:.2f}")
    try:
        while generation < config.generations:
            parents = population[: config.parents]
            children = _new_children(parents, set(cache), space, costs, limit, config, rng)
            score_new(score, children, cache)
            pool = population + children
            pool.sort(key=lambda a: -cache[a])  # stable: ties keep the earlier arch
            population = pool[: config.population]
            generation += 1
            history.append(max(history[-1], cache[population[0]]))
            if state_path is not None:
                write_state(state_path, settings, cache, rng, history, generation=generation,
                            population=[a.to_dict() for a in population])
            bar.update(1)
            bar.set_postfix_str(f"best={history[-1]:.2f}")
    finally:
        bar.close()
    return outcome_of(cache, history)
