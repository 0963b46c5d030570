"""Latency budgets: module run times measured on the target device, as a cost model.

``build_table`` times a space's modules on a device (``timer``), ``LatencyTable`` stores them
with the fit that turns their sums into subnet latencies, and ``LatencyTable.cost_model`` is
the :class:`~focusformer.spaces.costs.LayeredCost` the sampler and the searches budget with.
"""

from .build import build_table, time_subnets
from .table import Calibration, LatencyTable
from .timer import TimingSettings, device_name, time_modules

__all__ = ["Calibration", "LatencyTable", "TimingSettings", "build_table", "device_name", "time_modules",
           "time_subnets"]
