"""Building a latency table on this machine's device: time every probe, then fit the calibration."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import lsq_linear
from torch import nn
from tqdm import tqdm

from ..spaces import SearchSpace
from ..spaces.base import ArchBase, spanning_archs
from ..spaces.costs import LayeredCost
from ..spaces.timing import Probe, ProbeKey
from .table import Calibration, KindScale, LatencyTable
from .timer import TimingSettings, check_device, device_name, time_modules

#: Weights of the probes built and timed together (round-robin): bounds the memory large spaces need.
CHUNK_BYTES = 1 << 30


def collect_probes(space: SearchSpace) -> dict[ProbeKey, Probe]:
    """Every distinct probe the space's latency terms need, by key."""
    probes: dict[ProbeKey, Probe] = {}

    def note(found: Sequence[Probe]) -> float:
        for probe in found:
            probes.setdefault(probe.key, probe)
        return 0.0

    # Building a cost table visits exactly the terms a table needs, each distinct one once.
    LayeredCost.build(
        space.decision_plan(),
        layer_options=space.layer_options,
        base_cost=lambda network: note([space.timing_base(network)]),
        layer_cost=lambda layer, network, values: note(space.timing_layer(layer, network, values)),
        network_valid=space.network_valid,
        layer_signature=space.layer_signature,
    )
    return probes


def image_shape(space: SearchSpace) -> tuple[int, int, int]:
    return (space.in_chans, space.image_size, space.image_size)


def time_subnets(space: SearchSpace, archs: Sequence[ArchBase], settings: TimingSettings) -> list[float]:
    """Median milliseconds of each arch's dense model (the export) run whole, timed round-robin."""
    return time_modules([(space.build_subnet(arch), image_shape(space)) for arch in archs], settings)


#: Bounds of a kind's fitted scale: a kind timed apart is off by tens of percent, not by 10x.
KIND_SCALE_BOUNDS = (0.1, 10.0)


def fit_calibration(parts: Sequence[Mapping[str, float]], measured: Sequence[float],
                    per_kind: bool = True, with_offset: bool = True) -> Calibration:
    """Fit how the modules' plain times add up to whole subnets' ``measured`` times; ``parts`` holds
    each subnet's plain times summed by kind of module.

    Two fits, by least squares on relative errors (a budget is as likely small as large, so a
    0.1 ms miss on a 0.2 ms subnet counts as it does to the user):

    * one scale and an offset: ``measured = scale x summed + offset``; where that line would
      not be positive over the sums (all sums equal, a negative slope, or below zero at the
      smallest), the median ratio ``measured / summed`` as the scale alone;
    * a scale per kind of module and an offset (a cell timed apart can be off by more than an
      MLP is), each scale within :data:`KIND_SCALE_BOUNDS`; only with at least two subnets
      more than it has unknowns.

    The one whose predictions of each subnet, fitted on the others (leave-one-out), are closer
    is kept; the single scale on a tie or when the per-kind fit is not possible. The per-kind
    calibration keeps the single scale for kinds the calibration subnets never contained.
    ``per_kind=False`` fits the single scale only; ``with_offset=False`` the median ratio only.
    """
    kinds = sorted({kind for row in parts for kind, ms in row.items() if ms > 0})
    x = np.array([[row.get(kind, 0.0) for kind in kinds] for row in parts], dtype=float).reshape(len(parts), -1)
    y = np.asarray(measured, dtype=float)
    summed = x.sum(axis=1)
    scale, offset = _fit_line(summed, y, with_offset)
    single = Calibration(scale, offset, len(y), _mape(summed, y), _mape(scale * summed + offset, y),
                         mape_held_out=_held_out(lambda rows: _line_predictor(summed, y, rows, with_offset), y))
    if not (per_kind and with_offset) or len(kinds) < 2 or len(y) < len(kinds) + 3:
        return single
    fitted = _fit_kinds(x, y)
    if fitted is None:
        return single
    held_out = _held_out(lambda rows: _kinds_predictor(x, y, rows), y)
    if held_out is None or single.mape_held_out is None or not held_out < single.mape_held_out:
        return single
    scales, kind_offset = fitted
    return Calibration(scale, kind_offset, len(y), single.mape_summed, _mape(x @ scales + kind_offset, y),
                       tuple(KindScale(kind, float(s)) for kind, s in zip(kinds, scales)), held_out)


def _fit_line(x: np.ndarray, y: np.ndarray, with_offset: bool = True) -> tuple[float, float]:
    scale, offset = float(np.median(y / x)), 0.0
    if with_offset and len(x) >= 2 and np.ptp(x) > 0:
        fitted_scale, fitted_offset = np.polyfit(x, y, 1, w=1 / y)
        if fitted_scale > 0 and fitted_scale * x.min() + fitted_offset > 0:
            scale, offset = float(fitted_scale), float(fitted_offset)
    return scale, offset


def _fit_kinds(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Per-kind scales and an offset, or None where the fit would predict a non-positive time."""
    low, high = KIND_SCALE_BOUNDS
    k = x.shape[1]
    design = np.column_stack([x, np.ones(len(y))]) / y[:, None]
    result = lsq_linear(design, np.ones(len(y)), bounds=([low] * k + [-np.inf], [high] * k + [np.inf]))
    scales, offset = result.x[:k], float(result.x[k])
    return None if np.min(x @ scales + offset) <= 0 else (scales, offset)


def _line_predictor(x: np.ndarray, y: np.ndarray, rows: np.ndarray,
                    with_offset: bool = True) -> Callable[[int], float]:
    scale, offset = _fit_line(x[rows], y[rows], with_offset)
    return lambda i: scale * x[i] + offset


def _kinds_predictor(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Callable[[int], float]:
    fitted = _fit_kinds(x[rows], y[rows])
    if fitted is None:  # no positive per-kind fit without this subnet: the line instead
        return _line_predictor(x.sum(axis=1), y, rows)
    scales, offset = fitted
    return lambda i: float(x[i] @ scales + offset)


def _mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(predicted - measured) / measured))


def _held_out(fit_without: Callable[[np.ndarray], Callable[[int], float]], y: np.ndarray) -> float | None:
    """Leave-one-out MAPE: each subnet predicted by ``fit_without(the other rows)``; None under 3 subnets."""
    n = len(y)
    if n < 3:
        return None
    predicted = np.array([fit_without(np.delete(np.arange(n), i))(i) for i in range(n)])
    return _mape(predicted, y)


@dataclass(frozen=True)
class Timings:
    """A space's modules timed on a device (``table``, not yet calibrated), with the calibration
    subnets' plain times by kind of module (``parts``) and their times whole (``whole_ms``)."""

    table: LatencyTable
    parts: list[dict[str, float]]
    whole_ms: list[float]

    def calibrated(self, per_kind: bool = True) -> LatencyTable:
        """The table with the calibration fitted on these timings (see :func:`fit_calibration`)."""
        if not self.whole_ms:
            return self.table
        table = replace(self.table, calibration=fit_calibration(self.parts, self.whole_ms, per_kind))
        if table.cost_model(table.space).min_cost > 0:
            return table
        # The fit's offset takes a subnet cheaper than every calibration subnet below zero: the
        # scale alone, which keeps every prediction positive.
        return replace(self.table, calibration=fit_calibration(self.parts, self.whole_ms, per_kind=False,
                                                               with_offset=False))


def build_table(space: SearchSpace, settings: TimingSettings, calibration_subnets: int = 20, seed: int = 0,
                progress: bool = False) -> LatencyTable:
    """Time every probe of ``space`` on ``settings.device`` and fit the calibration on
    ``calibration_subnets`` subnets timed whole (0: none, plain sums)."""
    return time_table(space, settings, calibration_subnets, seed, progress).calibrated()


def time_table(space: SearchSpace, settings: TimingSettings, calibration_subnets: int = 20, seed: int = 0,
               progress: bool = False) -> Timings:
    """Time every probe of ``space`` on ``settings.device``, and ``calibration_subnets`` subnets whole.

    The calibration subnets are timed in the same round-robin as the probes, so the fit compares
    timings taken under the same machine load. A space whose modules would not fit in memory at
    once is timed in chunks, each with those subnets again; a chunk's times are scaled by how much
    slower or faster the subnets ran than in the first chunk, so every module counts alike.
    """
    check_device(settings.device)
    archs = spanning_archs(space, max(calibration_subnets, 1), seed)  # the fit then spans the whole range
    subnets = [(space.build_subnet(arch), image_shape(space)) for arch in archs]
    measurements: dict[ProbeKey, float] = {}
    reference: list[float] = []
    probes = list(collect_probes(space).values())
    with tqdm(total=len(probes), desc="timing modules", unit="module", disable=not progress) as bar:
        for chunk in _chunks(probes, CHUNK_BYTES):
            times = time_modules(subnets + [(module, probe.input_shape) for probe, module in chunk], settings)
            whole, parts = times[:len(subnets)], times[len(subnets):]
            reference = reference or whole
            level = sum(reference) / sum(whole)
            measurements.update((probe.key, level * ms) for (probe, _), ms in zip(chunk, parts))
            bar.update(len(chunk))
    table = LatencyTable(space, settings, device_name(settings.device), torch.__version__, measurements)
    if calibration_subnets < 1:
        return Timings(table, [], [])
    return Timings(table, [table.by_kind(table.probes(arch)) for arch in archs], reference)


def _chunks(probes: Sequence[Probe], max_bytes: int) -> Iterator[list[tuple[Probe, nn.Module]]]:
    """The probes with their modules, built in order, in chunks of at most ``max_bytes`` of weights
    (at least one module each)."""
    chunk: list[tuple[Probe, nn.Module]] = []
    size = 0
    for probe in probes:
        module = probe.build()
        bytes_ = sum(t.numel() * t.element_size() for t in module.parameters())
        if chunk and size + bytes_ > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append((probe, module))
        size += bytes_
    if chunk:
        yield chunk
