"""What a search has scored, and its state file.

* **No arch is scored twice**: scores are cached by arch, and each call of the score function
  gets only archs never scored before in this search (:func:`score_new`).
* **Resumable**: with a state path the full state (including the generator's state) is written
  atomically after each generation or batch; calling again with the same settings continues
  from it and gives exactly the outcome of an uninterrupted run. Settings that differ from the
  file's raise :class:`SearchStateMismatch` (a ConfigError naming the keys), ``scored_by``
  among them: what the score function scores with (weights, images), so a state scored by
  other weights or on other images is never continued. A finished search leaves its state file
  in place; calling again returns the recorded outcome without scoring. How long a search runs
  is not a setting: a longer search continues a recorded one (more evolution generations give
  exactly the outcome of an uninterrupted run of that many; more random-search candidates score
  the same archs an uninterrupted run would), and a shorter one than recorded is refused
  (:func:`longer_than_asked`), since a state cannot be wound back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..budget import Budget
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..spaces import SearchSpace
from ..spaces.base import DEFAULT_FAMILY, ArchBase, ArchScoreFn

#: Version of the state file layout.
STATE_VERSION = 1


@dataclass(frozen=True)
class SearchOutcome:
    best: ArchBase
    best_score: float
    scored: int  # number of distinct archs scored
    history: list[float]  # best score after each generation (evolution) or each batch (random)


def score_new(score: ArchScoreFn, archs: list[ArchBase], cache: dict[ArchBase, float]) -> None:
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


def best_scored(cache: dict[ArchBase, float]) -> tuple[ArchBase, float]:
    """The best-scoring arch; ties go to the one scored first."""
    best = max(cache, key=cache.__getitem__)  # max returns the first maximal item
    return best, cache[best]


def rng_from_state(state: Any) -> np.random.Generator:
    rng = np.random.default_rng(0)
    rng.bit_generator.state = state
    return rng


class SearchStateMismatch(ConfigError):
    """A search state at ``path`` written with other settings; ``keys`` names those that differ."""

    def __init__(self, path: Path, keys: list[str]) -> None:
        super().__init__(f"{path}: search state was written with other settings (differs in: {', '.join(keys)}); "
                         "delete it to start afresh")
        self.path, self.keys = path, keys


def state_settings(search: str, space: SearchSpace, budget: Budget, seed: int, scored_by: Mapping[str, Any] | None,
                   **extra: Any) -> dict[str, Any]:
    settings = {"search": search, "seed": int(seed), "budget": budget.record(),
                "space": space.to_dict(), **extra}
    if scored_by is not None:
        settings["scored_by"] = dict(scored_by)
    return json.loads(json.dumps(settings))  # as it reads back from the file


def load_state(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
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
        saved = without_length(saved)
    if saved != settings:
        keys = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k)) \
            if isinstance(saved, dict) else ["settings"]
        raise SearchStateMismatch(path, keys)
    return state


def without_length(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` less how long the search runs (evolution's generations, random search's
    candidate count): a state continues into a longer search. Older state files recorded it."""
    settings = {k: v for k, v in settings.items() if k != "num_candidates"}
    if isinstance(settings.get("config"), dict):
        settings["config"] = {k: v for k, v in settings["config"].items() if k != "generations"}
    return settings


def read_scored(state: dict[str, Any], space: SearchSpace, path: Path) -> dict[ArchBase, float]:
    try:
        return {space.arch_from_dict(a, "state.scored"): float(s) for a, s in state["scored"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: corrupt search state ({exc})") from None


def write_state(path: Path, settings: dict[str, Any], cache: dict[ArchBase, float],
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


def longer_than_asked(path: Path, done: str, asked: str) -> ConfigError:
    return ConfigError(f"{path}: this search has already run {done}, more than the {asked} asked for; "
                       "ask for as many or more to continue it, or delete the state to start afresh "
                       "(focusformer-search --restart)")


def outcome_of(cache: dict[ArchBase, float], history: list[float]) -> SearchOutcome:
    best, best_score = best_scored(cache)
    return SearchOutcome(best=best, best_score=best_score, scored=len(cache), history=list(history))
