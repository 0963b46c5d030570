"""Building a latency table on this machine's device: time every probe, then fit the calibration."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..spaces import SearchSpace
from ..spaces.base import AnyArch, spanning_archs
from ..spaces.costs import LayeredCost
from ..spaces.timing import Probe, ProbeKey
from .table import Calibration, LatencyTable
from .timer import TimingSettings, check_device, device_name, time_modules

#: Probes built and timed together (round-robin); bounds the memory of large spaces' modules.
CHUNK = 64


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


def time_subnets(space: SearchSpace, archs: Sequence[AnyArch], settings: TimingSettings) -> list[float]:
    """Median milliseconds of each arch's dense model (the export) run whole, timed round-robin."""
    return time_modules([(space.build_subnet(arch), image_shape(space)) for arch in archs], settings)


def fit_calibration(summed: Sequence[float], measured: Sequence[float]) -> Calibration:
    """Least-squares ``measured = scale x summed + offset``; the offset alone where that line would
    not be positive over the sums (all sums equal, a negative slope, or below zero at the smallest)."""
    x, y = np.asarray(summed, dtype=float), np.asarray(measured, dtype=float)
    scale, offset = 1.0, float(np.mean(y - x))
    if len(x) >= 2 and np.ptp(x) > 0:
        fitted_scale, fitted_offset = np.polyfit(x, y, 1)
        if fitted_scale > 0 and fitted_scale * x.min() + fitted_offset > 0:
            scale, offset = float(fitted_scale), float(fitted_offset)
    return Calibration(scale, offset, len(x), _mape(x, y), _mape(scale * x + offset, y))


def _mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(predicted - measured) / measured))


def build_table(space: SearchSpace, settings: TimingSettings, calibration_subnets: int = 10, seed: int = 0,
                progress: bool = False) -> LatencyTable:
    """Time every probe of ``space`` on ``settings.device``, then fit the calibration on
    ``calibration_subnets`` subnets timed whole (0: none, plain sums)."""
    check_device(settings.device)
    probes = list(collect_probes(space).values())
    measurements: dict[ProbeKey, float] = {}
    with tqdm(total=len(probes), desc="timing modules", unit="module", disable=not progress) as bar:
        for start in range(0, len(probes), CHUNK):
            chunk = probes[start:start + CHUNK]
            times = time_modules([(probe.build(), probe.input_shape) for probe in chunk], settings)
            measurements.update((probe.key, ms) for probe, ms in zip(chunk, times))
            bar.update(len(chunk))
    table = LatencyTable(space, settings, device_name(settings.device), torch.__version__, measurements)
    if calibration_subnets < 1:
        return table
    archs = spanning_archs(space, calibration_subnets, seed)  # the fit then spans the whole range
    summed = [table.predict(arch) for arch in archs]
    measured = time_subnets(space, archs, settings)
    return replace(table, calibration=fit_calibration(summed, measured))
