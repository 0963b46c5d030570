"""Building a latency table on this machine's device: time every probe, then fit the calibration."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..spaces import SearchSpace
from ..spaces.base import AnyArch, spanning_archs
from ..spaces.costs import LayeredCost
from ..spaces.timing import Probe, ProbeKey
from .table import Calibration, LatencyTable
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


def time_subnets(space: SearchSpace, archs: Sequence[AnyArch], settings: TimingSettings) -> list[float]:
    """Median milliseconds of each arch's dense model (the export) run whole, timed round-robin."""
    return time_modules([(space.build_subnet(arch), image_shape(space)) for arch in archs], settings)


def fit_calibration(summed: Sequence[float], measured: Sequence[float]) -> Calibration:
    """``measured = scale x summed + offset`` by least squares on relative errors (a budget is as
    likely small as large, so a 0.1 ms miss on a 0.2 ms subnet counts as it does to the user); where
    that line would not be positive over the sums (all sums equal, a negative slope, or below zero
    at the smallest), the median ratio ``measured / summed`` as the scale alone."""
    x, y = np.asarray(summed, dtype=float), np.asarray(measured, dtype=float)
    scale, offset = float(np.median(y / x)), 0.0
    if len(x) >= 2 and np.ptp(x) > 0:
        fitted_scale, fitted_offset = np.polyfit(x, y, 1, w=1 / y)
        if fitted_scale > 0 and fitted_scale * x.min() + fitted_offset > 0:
            scale, offset = float(fitted_scale), float(fitted_offset)
    return Calibration(scale, offset, len(x), _mape(x, y), _mape(scale * x + offset, y))


def _mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(predicted - measured) / measured))


def build_table(space: SearchSpace, settings: TimingSettings, calibration_subnets: int = 20, seed: int = 0,
                progress: bool = False) -> LatencyTable:
    """Time every probe of ``space`` on ``settings.device`` and fit the calibration on
    ``calibration_subnets`` subnets timed whole (0: none, plain sums).

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
        return table
    summed = [table.predict(arch) for arch in archs]
    return replace(table, calibration=fit_calibration(summed, reference))


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
