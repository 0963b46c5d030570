"""Random search within a budget: distinct archs drawn by
:func:`~focusformer.search.within_budget.sample_within_budget`, scored in batches, the best kept.
Deterministic under its seed and resumable (:mod:`~focusformer.search.state`); the simplest
baseline beside evolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from ..budget import Budget
from ..errors import ConfigError
from ..spaces import SearchSpace
from ..spaces.base import ArchScoreFn
from .state import (
    SearchOutcome,
    best_scored,
    load_state,
    longer_than_asked,
    outcome_of,
    read_scored,
    rng_from_state,
    score_new,
    state_settings,
    write_state,
)
from .within_budget import checked_costs, draw_new


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
    costs = checked_costs(space, budget)
    settings = state_settings("random", space, budget, seed, scored_by, batch_size=batch_size)
    state_path = Path(state_path) if state_path is not None else None
    state = load_state(state_path, settings) if state_path is not None else None

    if state is not None:
        cache = read_scored(state, space, state_path)
        try:
            history = [float(h) for h in state["history"]]
            if "exhausted" in state:
                exhausted = bool(state["exhausted"])
            else:  # older states say only ``finished`` and their count: finished short of it, the space ran out
                exhausted = bool(state["finished"]) and len(cache) < state["settings"].get("num_candidates", len(cache))
            rng = rng_from_state(state["rng"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{state_path}: corrupt search state ({exc})") from None
        if len(cache) > num_candidates:
            raise longer_than_asked(state_path, f"{len(cache)} candidates", f"{num_candidates}")
    else:
        rng, cache, history, exhausted = np.random.default_rng(seed), {}, [], False

    bar = tqdm(total=num_candidates, initial=len(cache), desc="random search", unit="arch",
               disable=not progress, dynamic_ncols=True)
    if history:
        bar.set_postfix_str(f"best={history[-1]:.2f}")
    try:
        while not exhausted and len(cache) < num_candidates:
            wanted = min(batch_size, num_candidates - len(cache))
            batch = draw_new(wanted, set(cache), costs, budget.value, rng)
            score_new(score, batch, cache)
            if batch:
                history.append(best_scored(cache)[1])
            exhausted = len(batch) < wanted
            if state_path is not None:
                write_state(state_path, settings, cache, rng, history, exhausted=exhausted)
            bar.update(len(batch))
            if history:
                bar.set_postfix_str(f"best={history[-1]:.2f}")
    finally:
        bar.close()
    return outcome_of(cache, history)
