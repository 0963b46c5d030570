"""Latency tables for tests: synthetic measurements with known sums, so latency paths are deterministic."""

from __future__ import annotations

from focusformer.latency import LatencyTable, TimingSettings, device_name
from focusformer.latency.build import collect_probes
from focusformer.latency.table import Calibration
from focusformer.spaces import SearchSpace

#: Timing settings of synthetic tables: enough to time a winner quickly, not to measure anything.
QUICK = TimingSettings("cpu", batch_size=1, threads=1, warmup=1, repeats=3)


def synthetic_ms(key: tuple) -> float:
    """A made-up, distinct time per module: a few microseconds per unit of its sizes."""
    return 0.01 + 1e-4 * sum(part for part in key if isinstance(part, int)) + 1e-3 * len(str(key[0]))


def synthetic_table(space: SearchSpace, scale: float = 1.0, offset_ms: float = 0.0) -> LatencyTable:
    """A table of ``space`` for this machine's CPU whose module times are :func:`synthetic_ms`."""
    measurements = {key: synthetic_ms(key) for key in collect_probes(space)}
    return LatencyTable(space, QUICK, device_name("cpu"), "test", measurements,
                        Calibration(scale, offset_ms, subnets=2))
