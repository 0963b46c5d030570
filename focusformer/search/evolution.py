"""Architecture search under a MAC, parameter or latency budget: AutoFormer's evolution and random search.

Both searches look for the subnet with the best score (search-val top-1 with inherited
weights) among the subnets of a space whose cost is within a :class:`~focusformer.budget.Budget`.
They are the baseline the learned, budget-conditioned sampler is compared against, so they
hold to a few guarantees:

* **Every scored arch is a valid arch of the space and within budget** (cost ``<=`` budget,
  counted exactly as :func:`~focusformer.spaces.counts.count_macs` / ``count_params``).
* **No arch is scored twice**: scores are cached by arch, and each call of the score
  function gets only archs never scored before in this search.
* **Every loop is bounded**: sampling within budget needs no rejection; making a child, and
  filling a population or a batch with new archs, gives up after a fixed number of tries.
* **Deterministic**: everything random comes from one local ``np.random.Generator`` seeded
  with ``seed``; the same seed and score function give the same outcome and history.
* **Resumable**: with ``state_path`` the full state (including the generator's state) is
  written atomically after each generation / batch; calling again with the same settings
  continues from it and gives exactly the outcome of an uninterrupted run. Settings that
  differ from the file's raise :class:`SearchStateMismatch` (a ConfigError naming the keys),
  ``scored_by`` among them: what the score function scores with (weights, images), so a state
  scored by other weights or on other images is never continued. A finished search leaves its
  state file in place; calling again returns the recorded outcome without scoring. A longer
  search continues it: more ``generations`` give exactly the outcome of an uninterrupted run of
  that many; more random-search candidates score the same archs an uninterrupted run would. A
  shorter one than recorded is refused (the state cannot be wound back).

The searches work on any family through its decisions (:mod:`focusformer.spaces.decisions`).
Sampling within budget (:func:`sample_within_budget`) makes the decisions in order (the
network-wide ones, then each layer's), each uniformly among the choices that can still be
completed within budget, on exact bounds (:class:`~focusformer.spaces.costs.PartialArchs`),
so some choice is always feasible at every decision once the first one was.

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
population, so evolution's history has ``generations + 1`` entries. Random search's history
has one entry per batch of ``batch_size`` candidates.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from ..budget import Budget, check_reachable
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..spaces import INACTIVE, SearchSpace
from ..spaces.base import DEFAULT_FAMILY, ArchBase, ArchScoreFn
from ..spaces.costs import decide

#: Tries of a mutation or crossover for one child (then repair, then fallback draws as many).
CHILD_TRIES = 10
#: Consecutive draws of :func:`sample_within_budget` without a new arch after which the
#: in-budget space counts as exhausted (initial population, random search).
STALE_DRAWS = 200
#: Version of the state file layout.
STATE_VERSION = 1


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


@dataclass(frozen=True)
class SearchOutcome:
    best: ArchBase
    best_score: float
    scored: int  # number of distinct archs scored
    history: list[float]  # best score after each generation (evolution) or each batch (random)


# -- exact costs and feasibility ----------------------------------------------------------------
class _Costs:
    """Exact cost (MACs or params) of a space's archs, and walks through its decisions within a
    limit, on the same exact bounds the sampler masks with (:class:`~focusformer.spaces.costs.PartialArchs`)."""

    def __init__(self, space: SearchSpace, budget: Budget) -> None:
        self.space = space
        self.model = budget.cost_model(space)
        self.min_cost, self.max_cost = self.model.min_cost, self.model.max_cost

    def cost(self, arch: ArchBase) -> float:
        return float(self.model.count(self.space.encode(arch)[None])[0])

    def walk(self, limit: float, rng: np.random.Generator, preferred: ArchBase | None = None) -> ArchBase:
        """An arch within ``limit``, decided in order (the network-wide decisions, then each layer's).

        At each decision the feasible choices are those with a completion within ``limit``
        (exact lower bounds). ``preferred``'s value is kept when it is active there and feasible;
        otherwise the choice is uniform among the feasible ones. Needs ``limit >= self.min_cost``.
        """
        wanted = self.space.encode(preferred) if preferred is not None else None

        def rule(slot: int, valid: list[int], feasible: list[int]) -> int:
            if wanted is not None and wanted[slot] in feasible:
                return int(wanted[slot])
            return _uniform(rng, feasible)

        return self.space.decode(decide(self.model, rule, limit))


def _checked_costs(space: SearchSpace, budget: Budget) -> _Costs:
    """The cost tables for ``budget``'s kind; ConfigError if no subnet of ``space`` fits it."""
    _check_kind(budget)
    value = budget.value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ConfigError(f"budget {value!r}: must be a finite number")
    costs = _Costs(space, budget)
    check_reachable(budget, costs.min_cost, costs.max_cost)
    return costs


def _check_kind(budget: Budget) -> None:
    if budget.kind not in ("macs", "params", "latency"):
        raise ConfigError(f"budget kind {budget.kind!r}: must be 'macs', 'params' or 'latency'")


def within_budget(arch: ArchBase, space: SearchSpace, budget: Budget) -> bool:
    """Whether ``arch`` (which must be an arch of ``space``, else ConfigError) costs at most ``budget``."""
    space.validate(arch)
    _check_kind(budget)
    return _Costs(space, budget).cost(arch) <= budget.value


def sample_within_budget(space: SearchSpace, budget: Budget, rng: np.random.Generator) -> ArchBase:
    """A random arch of ``space`` within ``budget``, with no rejection loop.

    Decisions are made in order (the network-wide ones, then each layer's), each uniformly
    among the choices that can still be completed within budget. Not uniform over archs:
    cheap choices are feasible more often. ConfigError, naming the valid range, if the
    budget is below the smallest subnet. A budget above the largest subnet allows every arch.
    """
    return _checked_costs(space, budget).walk(budget.value, rng)


# -- mutation and crossover ---------------------------------------------------------------------
def _uniform(rng: np.random.Generator, valid: list[int]) -> int:
    return valid[int(rng.integers(len(valid)))]


def _mutate(parent: ArchBase, space: SearchSpace, config: EvolutionConfig, rng: np.random.Generator) -> ArchBase:
    """AutoFormer's mutation (no budget check); see the module docstring."""
    slots = space.decision_plan().slots
    codes = space.encode(parent)

    def rule(slot: int, valid: list[int], feasible: list[int]) -> int:
        if codes[slot] == INACTIVE:  # a decision the parent does not make (a new layer, say)
            return _uniform(rng, valid)
        probability = config.depth_mutation if slots[slot].structural else config.layer_mutation
        if rng.random() < probability or codes[slot] not in valid:
            return _uniform(rng, valid)
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
        return pick if pick in valid else _uniform(rng, valid)

    return space.decode(decide(space.cost_model("macs"), rule))


def _make_child(operator: str, parents: Sequence[ArchBase], seen: set[ArchBase], space: SearchSpace,
                costs: _Costs, limit: float, config: EvolutionConfig, rng: np.random.Generator) -> ArchBase | None:
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


def _new_children(parents: Sequence[ArchBase], seen: set[ArchBase], space: SearchSpace, costs: _Costs,
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


def _draw_new(count: int, seen: set[ArchBase], costs: _Costs, limit: float, rng: np.random.Generator) -> list[ArchBase]:
    """Up to ``count`` distinct archs not in ``seen``; stops after STALE_DRAWS draws in a row bring nothing new."""
    seen = set(seen)
    drawn: list[ArchBase] = []
    stale = 0
    while len(drawn) < count and stale < STALE_DRAWS:
        arch = costs.walk(limit, rng)
        if arch in seen:
            stale += 1
        else:
            seen.add(arch)
            drawn.append(arch)
            stale = 0
    return drawn


# -- scoring and state --------------------------------------------------------------------------
def _score_new(score: ArchScoreFn, archs: list[ArchBase], cache: dict[ArchBase, float]) -> None:
    if not archs:
        return
    scores = list(score(list(archs)))
    if len(scores) != len(archs):
        raise ValueError(f"score function returned {len(scores)} scores for {len(archs)} archs")
    for arch, value in zip(archs, scores):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"score function returned {value} for {arch}")
        cache[arch] = value


def _best(cache: dict[ArchBase, float]) -> tuple[ArchBase, float]:
    """The best-scoring arch; ties go to the one scored first."""
    best = max(cache, key=cache.__getitem__)  # max returns the first maximal item
    return best, cache[best]


def _rng_from_state(state: Any) -> np.random.Generator:
    rng = np.random.default_rng(0)
    rng.bit_generator.state = state
    return rng


class SearchStateMismatch(ConfigError):
    """A search state at ``path`` written with other settings; ``keys`` names those that differ."""

    def __init__(self, path: Path, keys: list[str]) -> None:
        super().__init__(f"{path}: search state was written with other settings (differs in: {', '.join(keys)}); "
                         "delete it to start afresh")
        self.path, self.keys = path, keys


def _settings(search: str, space: SearchSpace, budget: Budget, seed: int, scored_by: Mapping[str, Any] | None,
              **extra: Any) -> dict[str, Any]:
    settings = {"search": search, "seed": int(seed), "budget": budget.record(),
                "space": space.to_dict(), **extra}
    if scored_by is not None:
        settings["scored_by"] = dict(scored_by)
    return json.loads(json.dumps(settings))  # as it reads back from the file


def _load_state(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state at ``path`` (None if there is none); ConfigError if unreadable or for other settings."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read search state ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: search state is not valid JSON (not text)") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: search state is not valid JSON ({exc})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or "settings" not in state:
        raise ConfigError(f"{path}: not a focusformer search state (version {STATE_VERSION})")
    saved = state["settings"]
    if isinstance(saved, dict) and isinstance(saved.get("space"), dict):
        # State files written before search-space families name no family: they are AutoFormer's.
        saved = {**saved, "space": {"family": DEFAULT_FAMILY, **saved["space"]}}
    if isinstance(saved, dict):
        saved = _without_length(saved)
    if saved != settings:
        keys = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k)) \
            if isinstance(saved, dict) else ["settings"]
        raise SearchStateMismatch(path, keys)
    return state


def _without_length(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` less how long the search runs (evolution's generations, random search's
    candidate count): a state continues into a longer search. Older state files recorded it."""
    settings = {k: v for k, v in settings.items() if k != "num_candidates"}
    if isinstance(settings.get("config"), dict):
        settings["config"] = {k: v for k, v in settings["config"].items() if k != "generations"}
    return settings


def _read_scored(state: dict[str, Any], space: SearchSpace, path: Path) -> dict[ArchBase, float]:
    try:
        return {space.arch_from_dict(a, "state.scored"): float(s) for a, s in state["scored"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: corrupt search state ({exc})") from None


def _write_state(path: Path, settings: dict[str, Any], cache: dict[ArchBase, float],
                 rng: np.random.Generator, history: list[float], **fields: Any) -> None:
    state = {
        "version": STATE_VERSION,
        "settings": settings,
        **fields,
        "history": history,
        "rng": rng.bit_generator.state,
        "scored": [[arch.to_dict(), score] for arch, score in cache.items()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(state) + "\n")


def _longer_than_asked(path: Path, done: str, asked: str) -> ConfigError:
    return ConfigError(f"{path}: this search has already run {done}, more than the {asked} asked for; "
                       "ask for as many or more to continue it, or delete the state to start afresh "
                       "(focusformer-search --restart)")


def _outcome(cache: dict[ArchBase, float], history: list[float]) -> SearchOutcome:
    best, best_score = _best(cache)
    return SearchOutcome(best=best, best_score=best_score, scored=len(cache), history=list(history))


# -- the searches -------------------------------------------------------------------------------
def evolution_search(space: SearchSpace, budget: Budget, score: ArchScoreFn, config: EvolutionConfig, seed: int,
                     state_path: Path | None = None, progress: bool = False,
                     scored_by: Mapping[str, Any] | None = None) -> SearchOutcome:
    """AutoFormer's evolution search within ``budget``; see the module docstring for the details.
    ``scored_by`` (JSON-able) identifies what ``score`` scores with, for the state file."""
    costs = _checked_costs(space, budget)
    limit = budget.value
    settings = _without_length(_settings("evolution", space, budget, seed, scored_by,
                                         config=dataclasses.asdict(config)))
    state_path = Path(state_path) if state_path is not None else None
    state = _load_state(state_path, settings) if state_path is not None else None

    if state is not None:
        cache = _read_scored(state, space, state_path)
        try:
            population = [space.arch_from_dict(a, "state.population") for a in state["population"]]
            generation, history = int(state["generation"]), [float(h) for h in state["history"]]
            rng = _rng_from_state(state["rng"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{state_path}: corrupt search state ({exc})") from None
        if any(arch not in cache for arch in population):
            raise ConfigError(f"{state_path}: corrupt search state (population arch without a score)")
        if generation > config.generations:
            raise _longer_than_asked(state_path, f"{generation} generations", f"{config.generations}")
    else:
        rng = np.random.default_rng(seed)
        cache: dict[ArchBase, float] = {}
        population = _draw_new(config.population, set(), costs, limit, rng)
        _score_new(score, population, cache)
        population.sort(key=lambda a: -cache[a])  # stable: ties keep the draw order
        generation, history = 0, [cache[population[0]]]
        if state_path is not None:
            _write_state(state_path, settings, cache, rng, history, generation=0,
                         population=[a.to_dict() for a in population])

    bar = tqdm(total=config.generations, initial=generation, desc="evolution", unit="gen",
               disable=not progress, dynamic_ncols=True)
    bar.set_postfix_str(f"best={history[-1]:.2f}")
    try:
        while generation < config.generations:
            parents = population[: config.parents]
            children = _new_children(parents, set(cache), space, costs, limit, config, rng)
            _score_new(score, children, cache)
            pool = population + children
            pool.sort(key=lambda a: -cache[a])  # stable: ties keep the earlier arch
            population = pool[: config.population]
            generation += 1
            history.append(max(history[-1], cache[population[0]]))
            if state_path is not None:
                _write_state(state_path, settings, cache, rng, history, generation=generation,
                             population=[a.to_dict() for a in population])
            bar.update(1)
            bar.set_postfix_str(f"best={history[-1]:.2f}")
    finally:
        bar.close()
    return _outcome(cache, history)


def random_search(space: SearchSpace, budget: Budget, score: ArchScoreFn, num_candidates: int, seed: int,
                  state_path: Path | None = None, progress: bool = False, batch_size: int = 50,
                  scored_by: Mapping[str, Any] | None = None) -> SearchOutcome:
    """Score ``num_candidates`` distinct archs from :func:`sample_within_budget`, ``batch_size`` per call
    (``scored_by`` as for :func:`evolution_search`).

    If the space has fewer distinct in-budget archs than asked, the search stops once
    ``STALE_DRAWS`` draws in a row bring no new arch (so it may score fewer).
    """
    for name, value in (("num_candidates", num_candidates), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"random search {name}: must be a positive integer, got {value!r}")
    num_candidates, batch_size = int(num_candidates), int(batch_size)
    costs = _checked_costs(space, budget)
    settings = _settings("random", space, budget, seed, scored_by, batch_size=batch_size)
    state_path = Path(state_path) if state_path is not None else None
    state = _load_state(state_path, settings) if state_path is not None else None

    if state is not None:
        cache = _read_scored(state, space, state_path)
        try:
            history = [float(h) for h in state["history"]]
            # Older states say only ``finished``: short of their candidate count, the space ran out.
            exhausted = bool(state.get("exhausted", state["finished"] and
                                       len(cache) < state["settings"].get("num_candidates", len(cache))))
            rng = _rng_from_state(state["rng"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{state_path}: corrupt search state ({exc})") from None
        if len(cache) > num_candidates:
            raise _longer_than_asked(state_path, f"{len(cache)} candidates", f"{num_candidates}")
    else:
        rng, cache, history, exhausted = np.random.default_rng(seed), {}, [], False

    bar = tqdm(total=num_candidates, initial=len(cache), desc="random search", unit="arch",
               disable=not progress, dynamic_ncols=True)
    if history:
        bar.set_postfix_str(f"best={history[-1]:.2f}")
    try:
        while not exhausted and len(cache) < num_candidates:
            wanted = min(batch_size, num_candidates - len(cache))
            batch = _draw_new(wanted, set(cache), costs, budget.value, rng)
            _score_new(score, batch, cache)
            if batch:
                history.append(_best(cache)[1])
            exhausted = len(batch) < wanted
            if state_path is not None:
                _write_state(state_path, settings, cache, rng, history, exhausted=exhausted,
                             finished=exhausted or len(cache) >= num_candidates)
            bar.update(len(batch))
            if history:
                bar.set_postfix_str(f"best={history[-1]:.2f}")
    finally:
        bar.close()
    return _outcome(cache, history)
