"""A latency table (LUT): module run times measured on one device, added up like a family's costs.

The table holds the median time of every distinct module a space's subnets are made of (its
family's probes, :mod:`focusformer.spaces.timing`). A subnet's predicted latency is

    sum over the arch's probes (base[g], then each layer's) of scale[kind] x time + offset

where a probe's *kind* is the first part of its key (``vit-attention``, ``psvit-layer``, ...)
and the scales and the offset are fitted when the table is built, on whole subnets timed end
to end (timed alone, a module runs with its weights hot in cache and without the calls
around it, so plain sums come out biased, and not by the same factor for every kind of
module; the fit is stored with the table). That is a
:class:`~focusformer.spaces.costs.LayeredCost`, so latency is a budget kind like MACs and
parameters: the sampler masks with it, and the searches sample, mutate and repair within it.

Saved as JSON: the space it was built for, the device, torch's version, how modules were
timed, the fit, and one ``{"key": [...], "ms": ...}`` entry per module.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch

from ..errors import ConfigError
from ..fileio import atomic_write_text, read_json
from ..spaces import SearchSpace
from ..spaces.base import ArchBase
from ..spaces.costs import LayeredCost
from ..spaces.timing import Probe, ProbeKey
from ..typed import from_mapping, to_mapping
from .timer import TimingSettings, device_name

FORMAT_VERSION = 1


@dataclass(frozen=True)
class KindScale:
    """The scale of one kind of module (a probe key's first part), fitted apart from the others."""

    kind: str
    scale: float


@dataclass(frozen=True)
class Calibration:
    """``measured = sum of scale[kind] x module time + offset_ms``, fitted on ``subnets`` subnets
    timed whole: ``kind_scales`` where the modules' kinds were fitted apart, ``scale`` for every
    other kind (all of them when ``kind_scales`` is empty)."""

    scale: float = 1.0
    offset_ms: float = 0.0
    subnets: int = 0
    #: Mean absolute percentage error of the plain sums, and of the fit, on those subnets.
    mape_summed: float = 0.0
    mape_fitted: float = 0.0
    kind_scales: tuple[KindScale, ...] = ()
    #: The fit's error on each calibration subnet when fitted on the others (leave-one-out;
    #: None under three subnets).
    mape_held_out: Optional[float] = None

    def __post_init__(self) -> None:
        scales = [self.scale, *(k.scale for k in self.kind_scales)]
        if not (all(math.isfinite(s) and s > 0 for s in scales) and math.isfinite(self.offset_ms)):
            raise ConfigError(f"calibration: scales must be positive and the offset finite, got {scales}, "
                              f"{self.offset_ms}")

    def scale_of(self, kind: str) -> float:
        return next((k.scale for k in self.kind_scales if k.kind == kind), self.scale)

    def describe(self) -> str:
        """The fit in one line (or that there is none)."""
        if not self.subnets:
            return "not calibrated (plain sums)"
        scales = (" + ".join(f"{k.scale:.3f} x {k.kind}" for k in self.kind_scales) if self.kind_scales
                  else f"{self.scale:.3f} x summed")
        held_out = "" if self.mape_held_out is None else f", {self.mape_held_out:.1f}% held out"
        return (f"calibrated on {self.subnets} subnets: measured = {scales} + {self.offset_ms:.3f} ms "
                f"(MAPE {self.mape_summed:.1f}% summed, {self.mape_fitted:.1f}% fitted{held_out})")


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """Measured module latencies of one space on one device; see the module docstring."""

    space: SearchSpace
    settings: TimingSettings
    device_name: str
    torch_version: str
    #: Median milliseconds of each probe, by probe key.
    measurements: Mapping[ProbeKey, float] = field(repr=False)
    calibration: Calibration = Calibration()

    # -- as a cost model ----------------------------------------------------------------------
    def check_space(self, space: SearchSpace, source: str = "latency table") -> None:
        """ConfigError (one line) unless this table was built for ``space``."""
        if space == self.space:
            return
        mine, theirs = self.space.to_dict(), space.to_dict()
        keys = dict.fromkeys(["family", *theirs, *mine])
        differing = next((k for k in keys if mine.get(k) != theirs.get(k)), "space")
        raise ConfigError(
            f"{source} was built for space {self.space.name!r} ({self.space.family}), not for this one "
            f"({space.name!r}, {space.family}): {differing} differs ({mine.get(differing)!r} there, "
            f"{theirs.get(differing)!r} here); build one for it with focusformer-latency build"
        )

    def cost_model(self, space: SearchSpace, source: str = "latency table") -> LayeredCost:
        """The table as milliseconds per arch of ``space`` (which must be the table's own)."""
        self.check_space(space, source)
        return self._cost_model

    @cached_property
    def _cost_model(self) -> LayeredCost:
        space, fit = self.space, self.calibration
        return LayeredCost.build(
            space.decision_plan(),
            layer_options=space.layer_options,
            base_cost=lambda network: _on_grid(self._calibrated([space.timing_base(network)]) + fit.offset_ms),
            layer_cost=lambda layer, network, values: _on_grid(
                self._calibrated(space.timing_layer(layer, network, values))),
            network_valid=space.network_valid,
            layer_signature=space.layer_signature,
        )

    def _calibrated(self, probes: Iterable[Probe]) -> float:
        return sum(self.calibration.scale_of(kind) * ms for kind, ms in self.by_kind(probes).items())

    def by_kind(self, probes: Iterable[Probe]) -> dict[str, float]:
        """The plain sums (no calibration) of the probes' measured times, by kind of probe."""
        sums: dict[str, float] = {}
        for probe in probes:
            try:
                ms = self.measurements[probe.key]
            except KeyError:
                raise ConfigError(f"latency table has no measurement for {list(probe.key)}; rebuild it") from None
            kind = probe_kind(probe.key)
            sums[kind] = sums.get(kind, 0.0) + ms
        return sums

    def probes(self, arch: ArchBase) -> list[Probe]:
        """The modules ``arch`` is made of, as the table adds them up."""
        network, layers = self.space.arch_values(arch)
        return [self.space.timing_base(network),
                *(probe for i, values in enumerate(layers) for probe in self.space.timing_layer(i, network, values))]

    def summed(self, arch: ArchBase) -> float:
        """The plain sum of the measured times of ``arch``'s modules (no calibration)."""
        return sum(self.by_kind(self.probes(arch)).values())

    def predict(self, arch: ArchBase) -> float:
        """Predicted milliseconds of ``arch`` (an arch of the table's space)."""
        return float(self._cost_model.count(self.space.encode(arch)[None])[0])

    @cached_property
    def fingerprint(self) -> str:
        """A digest of everything the predictions depend on (searches record it to resume safely)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    # -- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "space": self.space.to_dict(),
            "device": {"type": self.settings.device, "name": self.device_name},
            "torch_version": self.torch_version,
            "timing": to_mapping(self.settings),
            "calibration": to_mapping(self.calibration),
            "measurements": [{"key": list(key), "ms": ms} for key, ms in self.measurements.items()],
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LatencyTable:
        if not isinstance(data, dict) or "measurements" not in data:
            raise ConfigError(f"{where}: not a latency table (build one with focusformer-latency build)")
        if data.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{where}: unsupported format_version {data.get('format_version')!r} "
                              f"(this focusformer reads {FORMAT_VERSION})")
        try:
            device = data["device"]
            settings = from_mapping(TimingSettings, data["timing"], f"{where}: timing")
            if not isinstance(device, dict) or device.get("type") != settings.device:
                raise ConfigError(f"{where}: device: expected {{'type': {settings.device!r}, 'name': ...}}")
            return cls(
                space=SearchSpace.from_dict(data["space"], where=f"{where}: space"),
                settings=settings,
                device_name=str(device.get("name", "")),
                torch_version=str(data.get("torch_version", "")),
                measurements=_read_measurements(data["measurements"], where),
                calibration=from_mapping(Calibration, data.get("calibration", {}), f"{where}: calibration"),
            )
        except KeyError as exc:
            raise ConfigError(f"{where}: missing {exc.args[0]!r}") from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        data = read_json(path, "no such latency table (build one with focusformer-latency build)",
                         "not a readable latency table")
        return cls.from_dict(data, str(path))

    def unavailable_here(self) -> str | None:
        """Why subnets cannot be timed here as the table was (another device), or None if they can."""
        if self.settings.device == "cuda" and not torch.cuda.is_available():
            return f"this machine has no CUDA device (the table is for {self.device_name})"
        here = device_name(self.settings.device)
        if here != self.device_name:
            return f"this machine's {self.settings.device} is {here}, the table's is {self.device_name}"
        return None

    def describe(self) -> str:
        """One line: the device and how it was timed."""
        threads = "" if self.settings.threads is None else f", {self.settings.threads} thread(s)"
        return (f"{self.settings.device} ({self.device_name}{threads}), batch {self.settings.batch_size}, "
                f"torch {self.torch_version}")


#: Cost terms are multiples of 2^-20 ms (about 1 ns): floats add such numbers exactly, so a
#: subnet's cost is the same however its terms are summed, and the bounds the sampler and the
#: searches decide on agree bit for bit with the totals (as MACs, whole numbers, do).
GRID = 2.0**-20


def probe_kind(key: ProbeKey) -> str:
    """What a probe computes, without its sizes: the first part of its key."""
    return str(key[0])


def _on_grid(ms: float) -> float:
    return round(ms / GRID) * GRID


def _read_measurements(entries: Any, where: str) -> dict[ProbeKey, float]:
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: measurements: expected a list of {{'key': [...], 'ms': ...}}")
    measurements: dict[ProbeKey, float] = {}
    for i, entry in enumerate(entries):
        key, ms = (entry.get("key"), entry.get("ms")) if isinstance(entry, dict) else (None, None)
        valid_key = isinstance(key, list) and all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in key)
        if not valid_key or isinstance(ms, bool) or not isinstance(ms, (int, float)) or not ms >= 0 \
                or not math.isfinite(ms):
            raise ConfigError(f"{where}: measurements[{i}]: expected a key list and a time in ms >= 0, got {entry!r}")
        measurements[tuple(key)] = float(ms)
    return measurements
