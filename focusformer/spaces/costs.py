"""Additive cost models (MACs, parameters) of a space, with exact bounds for partial archs.

Every family's cost has the same shape:

    cost(arch) = base[g] + sum over layers i of layer[i, g, o_i]

where ``g`` indexes the network-wide decisions (all of them together) and ``o_i`` is
layer ``i``'s *option*: the tuple of its decisions' choice indices, with ``INACTIVE``
where a decision does not apply. Which options a layer may take depends on ``g`` (a
layer beyond the depth takes only the all-inactive option; an attention width must
split into whole heads), so the same table also says which archs are valid.

:class:`PartialArchs` walks a batch of archs through the decisions in order and, before
each decision, gives the exact lowest and highest cost reachable after each choice.
The sampler masks with these bounds (every sample within budget, no rejection loop),
and the searches use them to sample, mutate and repair within a budget.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from .decisions import INACTIVE, DecisionPlan

NetworkValues = tuple[Any, ...]
LayerValues = tuple[Any, ...]  # one layer's decision values, None where a decision does not apply


@dataclass(frozen=True, eq=False)
class LayeredCost:
    """The cost table of a space for one kind of cost; see the module docstring."""

    plan: DecisionPlan
    options: np.ndarray  # (O, S): choice indices of each layer option, INACTIVE where inactive
    allowed: np.ndarray  # (L, G, O) bool: layer i may take option o when the network decisions are g
    base: np.ndarray  # (G,) float64
    layer: np.ndarray  # (L, G, O) float64, 0 where not allowed

    @classmethod
    def build(
        cls,
        plan: DecisionPlan,
        layer_options: Callable[[int, NetworkValues], Iterable[LayerValues]],
        base_cost: Callable[[NetworkValues], int],
        layer_cost: Callable[[int, NetworkValues, LayerValues], int],
        network_valid: Callable[[NetworkValues], bool] = lambda values: True,
        layer_signature: Callable[[int], Any] = lambda layer: None,
    ) -> LayeredCost:
        """Enumerate every network choice and layer option. ``layer_cost`` is called once per
        distinct ``(layer_signature(i), g, option)``: layers with one signature cost alike."""
        network_choices = [d.choices for d in plan.network]
        networks = list(itertools.product(*network_choices))
        layer_choices = [d.choices for d in plan.layer]
        option_index: dict[tuple[int, ...], int] = {}
        allowed_cells: list[tuple[int, int, int]] = []
        costs: dict[tuple[Any, int, int], float] = {}
        base = np.full(len(networks), np.nan)
        for g, values in enumerate(networks):
            if not network_valid(values):
                continue
            base[g] = base_cost(values)
            for i in range(plan.num_layers):
                for option in layer_options(i, values):
                    code = tuple(INACTIVE if v is None else layer_choices[s].index(v) for s, v in enumerate(option))
                    o = option_index.setdefault(code, len(option_index))
                    allowed_cells.append((i, g, o))
                    key = (layer_signature(i), g, o)
                    if key not in costs:
                        costs[key] = float(layer_cost(i, values, tuple(option)))
        shape = (plan.num_layers, len(networks), len(option_index))
        allowed = np.zeros(shape, dtype=bool)
        layer = np.zeros(shape)
        for i, g, o in allowed_cells:
            allowed[i, g, o] = True
            layer[i, g, o] = costs[(layer_signature(i), g, o)]
        options = np.array(list(option_index), dtype=np.int64).reshape(len(option_index), len(plan.layer))
        return cls(plan, options, allowed, base, layer)

    # -- derived tables -----------------------------------------------------------------------
    @cached_property
    def network_shape(self) -> tuple[int, ...]:
        return tuple(len(d.choices) for d in self.plan.network)

    @cached_property
    def _layer_extremes(self) -> tuple[np.ndarray, np.ndarray]:
        """(L, G) cheapest and dearest option of each layer; +inf / -inf where none is allowed."""
        low = np.where(self.allowed, self.layer, np.inf).min(axis=2)
        high = np.where(self.allowed, self.layer, -np.inf).max(axis=2)
        return low, high

    @cached_property
    def rest(self) -> tuple[np.ndarray, np.ndarray]:
        """(L + 1, G): bounds on the cost of layers ``i`` and after."""
        low, high = self._layer_extremes
        zero = np.zeros((1, low.shape[1]))
        return (np.concatenate([np.cumsum(low[::-1], 0)[::-1], zero]),
                np.concatenate([np.cumsum(high[::-1], 0)[::-1], zero]))

    @cached_property
    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(G,) bounds on the whole arch's cost for each network choice; +inf / -inf if invalid."""
        valid = ~np.isnan(self.base)
        low = np.where(valid, np.nan_to_num(self.base) + self.rest[0][0], np.inf)
        high = np.where(valid, np.nan_to_num(self.base) + self.rest[1][0], -np.inf)
        return low, high

    @cached_property
    def network_prefix_bounds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """For network decision ``j``: bounds over every completion of the first ``j + 1``
        decisions, flattened in mixed radix (index = prefix index * n_j + choice)."""
        low, high = (t.reshape(self.network_shape) for t in self.totals)
        bounds = []
        for j in range(len(self.network_shape)):
            axes = tuple(range(j + 1, len(self.network_shape)))
            bounds.append((low.min(axis=axes).reshape(-1) if axes else low.reshape(-1),
                           high.max(axis=axes).reshape(-1) if axes else high.reshape(-1)))
        return bounds

    # -- bounds of a layer decision ---------------------------------------------------------------
    def layer_decision_bounds(self, layer: int, position: int, g: np.ndarray,
                              consistent: np.ndarray) -> tuple[np.ndarray, ...]:
        """For archs with network index ``g`` ``(n,)`` whose ``layer`` may still take the options
        ``consistent`` ``(n, O)``, the decision at ``position`` of that layer: ``(active (n,),
        low (n, C), high (n, C), rest_low (n, 1), rest_high (n, 1))``, the bounds on this layer's
        cost after each choice and on the later layers' cost (the cost so far not included)."""
        column = self.options[:, position]
        active = (consistent & (column != INACTIVE)).any(1)
        choices = len(self.plan.layer[position].choices)
        matches = consistent[:, None, :] & (column == np.arange(choices)[:, None])[None]  # (n, C, O)
        costs = self.layer[layer, g][:, None, :]
        low = np.where(matches, costs, np.inf).min(2)
        high = np.where(matches, costs, -np.inf).max(2)
        rest_low, rest_high = self.rest
        return active, low, high, rest_low[layer + 1, g][:, None], rest_high[layer + 1, g][:, None]

    def one_arch_layer_bounds(self, layer: int, g: int, earlier: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`layer_decision_bounds` for one arch whose ``layer`` made the choices ``earlier``
        (int64 codes of its first decisions), computed once per table and then looked up: the
        searches decide one arch at a time, and meet the same few layer prefixes again and again.
        The arrays are read-only; callers add to them."""
        key = (layer, g, earlier.tobytes())
        bounds = self._one_arch_layer_bounds.get(key)
        if bounds is None:
            consistent = self.allowed[layer, g] & (self.options[:, :len(earlier)] == earlier).all(1)
            bounds = self.layer_decision_bounds(layer, len(earlier), np.array([g]), consistent[None])
            for array in bounds:
                array.setflags(write=False)
            self._one_arch_layer_bounds[key] = bounds
        return bounds

    @cached_property
    def _one_arch_layer_bounds(self) -> dict[tuple[int, int, bytes], tuple[np.ndarray, ...]]:
        return {}

    @property
    def min_cost(self) -> float:
        return float(self.totals[0].min())

    @property
    def max_cost(self) -> float:
        return float(self.totals[1].max())

    @cached_property
    def _option_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Mixed-radix key of an option's codes (each shifted by one so INACTIVE is 0) to its index."""
        radix = np.array([len(d.choices) + 1 for d in self.plan.layer], dtype=np.int64)
        weights = np.concatenate([[1], np.cumprod(radix[:-1])]).astype(np.int64)
        lookup = np.full(int(np.prod(radix)), -1, dtype=np.int64)
        lookup[(self.options + 1) @ weights] = np.arange(len(self.options))
        return weights, lookup

    # -- counting -----------------------------------------------------------------------------
    def split(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network index ``(n,)`` and per-layer option index ``(n, L)`` of encodings ``(n, S)``;
        ValueError if a code is not a valid, canonical arch of the space."""
        codes = np.asarray(codes, dtype=np.int64).reshape(-1, self.plan.encoding_length)
        k = len(self.plan.network)
        network = codes[:, :k]
        if (network < 0).any() or (network >= np.array(self.network_shape)).any():
            raise ValueError("network decision index out of range")
        g = np.ravel_multi_index(network.T, self.network_shape) if k else np.zeros(len(codes), dtype=np.int64)
        layers = codes[:, k:].reshape(len(codes), self.plan.num_layers, len(self.plan.layer))
        cards = np.array([len(d.choices) for d in self.plan.layer])
        if (layers < INACTIVE).any() or (layers >= cards).any():
            raise ValueError("layer decision index out of range")
        weights, lookup = self._option_lookup
        options = lookup[(layers + 1) @ weights]
        layer_index = np.arange(self.plan.num_layers)
        if (options < 0).any() or not self.allowed[layer_index, g[:, None], np.maximum(options, 0)].all():
            raise ValueError("not a valid arch of the space")
        return g, options

    def count(self, codes: np.ndarray) -> np.ndarray:
        """The cost of each of many archs given their encodings ``(n, S)``, as float64."""
        g, options = self.split(codes)
        return self.base[g] + self.layer[np.arange(self.plan.num_layers), g[:, None], options].sum(axis=1)


#: ``rule(slot, valid, feasible)`` for :func:`decide`: the choice index to take at ``slot``, one of
#: ``valid`` (those leading to some valid arch) or ``feasible`` (those also within the limit).
DecisionRule = Callable[[int, list[int], list[int]], int]


class PartialArchs:
    """``n`` archs decided slot by slot, with exact cost bounds for each next choice.

    Use: for each slot in order, ``active, low, high = state.bounds(slot)``; pick a choice per
    row among those with ``low <= limit`` (rows with ``active`` false must pass INACTIVE);
    ``state.commit(slot, choices)``. ``state.codes`` and ``state.cost`` hold the result.
    A choice that leads to no valid arch has ``low = +inf`` and ``high = -inf``.

    The bookkeeping is in numpy: the arrays are small, and for the searches' one arch at a time
    torch's per-operation overhead would dominate. :meth:`bounds`, ``codes`` and ``cost`` hand
    out torch tensors (sharing the arrays' memory) for the sampler; :meth:`bounds_array` the arrays.
    """

    def __init__(self, cost: LayeredCost, n: int) -> None:
        self.cost_model, self.n = cost, n
        plan = cost.plan
        self._k, self._per_layer = len(plan.network), len(plan.layer)
        self._codes = np.full((n, plan.encoding_length), INACTIVE, dtype=np.int64)
        self._prefix = np.zeros(n, dtype=np.int64)  # mixed-radix index of the network decisions so far
        self._cost = np.zeros(n, dtype=np.float64)  # base + finished layers, once the network is decided
        self._consistent: np.ndarray | None = None  # (n, O) options of the current layer still possible

    @property
    def codes(self) -> torch.Tensor:
        """``(n, S)`` encodings; INACTIVE where undecided or inactive."""
        return torch.from_numpy(self._codes)

    @property
    def codes_array(self) -> np.ndarray:
        """:attr:`codes` as the numpy array it shares memory with."""
        return self._codes

    @property
    def cost(self) -> torch.Tensor:
        """``(n,)`` cost of the decisions committed so far (float64)."""
        return torch.from_numpy(self._cost)

    def bounds(self, slot: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(active (n,), low (n, C), high (n, C))`` for the decision at ``slot``."""
        return tuple(torch.from_numpy(array) for array in self.bounds_array(slot))  # type: ignore[return-value]

    def bounds_array(self, slot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`bounds` as numpy arrays."""
        model = self.cost_model
        if slot < self._k:
            choices = model.network_shape[slot]
            index = self._prefix[:, None] * choices + np.arange(choices)
            low, high = model.network_prefix_bounds[slot]
            return np.ones(self.n, dtype=bool), low[index], high[index]
        layer, position = divmod(slot - self._k, self._per_layer)
        if position == 0:
            self._consistent = model.allowed[layer, self._prefix]
        if self.n == 1:  # the searches: one arch at a time
            bounds = model.one_arch_layer_bounds(layer, int(self._prefix[0]), self._codes[0, slot - position:slot])
        else:
            bounds = model.layer_decision_bounds(layer, position, self._prefix, self._consistent)
        active, low, high, rest_low, rest_high = bounds
        return active.copy(), self._cost[:, None] + low + rest_low, self._cost[:, None] + high + rest_high

    def commit(self, slot: int, choices: torch.Tensor | np.ndarray) -> None:
        """Record ``choices`` (n,) for ``slot``; INACTIVE for rows where the decision is inactive."""
        choices = np.asarray(choices, dtype=np.int64)
        model = self.cost_model
        self._codes[:, slot] = choices
        if slot < self._k:
            self._prefix = self._prefix * model.network_shape[slot] + choices
            if slot == self._k - 1:
                self._cost = np.array(model.base[self._prefix], dtype=np.float64)
            return
        layer, position = divmod(slot - self._k, self._per_layer)
        self._consistent = self._consistent & (model.options[:, position] == choices[:, None])
        if position == self._per_layer - 1:
            option = self._consistent.argmax(1)  # the one option left (the first, as torch's argmax)
            self._cost = self._cost + model.layer[layer, self._prefix, option]


def decide(cost: LayeredCost, rule: DecisionRule, limit: float = np.inf) -> np.ndarray:
    """One arch's encoding, decided slot by slot by ``rule(slot, valid, feasible)``.

    ``valid`` are the choice indices that lead to some valid arch, ``feasible`` those that
    also lead to one costing at most ``limit``; ``rule`` returns one of them. Inactive
    slots are skipped (left INACTIVE).
    """
    state = PartialArchs(cost, 1)
    for slot in range(cost.plan.encoding_length):
        active, low, _ = state.bounds_array(slot)
        if not active[0]:
            state.commit(slot, np.array([INACTIVE]))
            continue
        low = low[0].tolist()
        valid = [c for c, value in enumerate(low) if value < np.inf]
        feasible = [c for c in valid if low[c] <= limit]
        state.commit(slot, np.array([rule(slot, valid, feasible)]))
    return state.codes_array[0]


def slot_values(codes: Sequence[int], plan: DecisionPlan) -> tuple[NetworkValues, tuple[LayerValues, ...]]:
    """Decision values of an encoding: the network values and one tuple per layer (None where inactive)."""
    slots = plan.slots
    values = [None if c == INACTIVE else slots[s].choices[int(c)] for s, c in enumerate(codes)]
    k, m = len(plan.network), len(plan.layer)
    layers = tuple(tuple(values[k + i * m: k + (i + 1) * m]) for i in range(plan.num_layers))
    return tuple(values[:k]), layers
