"""The header every benchmark prints first: what machine, load, versions and device it ran on."""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Sequence
from importlib import metadata

import numpy as np
import torch

from focusformer.latency import device_name


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def machine_header(device: torch.device | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """Lines naming the CPUs (and the load when the run started), the versions and the device
    (on CPU its model and the instruction set torch's kernels use)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    device = device or torch.device("cpu")
    # The CPU's model and the vector instructions torch's kernels use: runs on processors with
    # other instruction sets round differently, so bit-identical reruns need the same pair.
    where = (f"device: cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
             else f"device: cpu ({device_name('cpu')}, {platform.machine()}, "
                  f"kernels {torch.backends.cpu.get_cpu_capability()})")
    return [
        f"CPUs: {os.cpu_count()} (usable {usable}), torch threads: {torch.get_num_threads()}, "
        f"load average at start: {load}",
        f"python {platform.python_version()}, torch {torch.__version__}, timm {version('timm')}, "
        f"focusformer {version('focusformer')}, numpy {np.__version__}",
        where,
        *extra,
    ]


def print_header(module: str, argv: Sequence[str] | None, *, what: str = "", device: torch.device | None = None,
                 extra: tuple[str, ...] = (), show: bool = True) -> list[str]:
    """What a benchmark prints first: the :func:`machine_header`, what it measures (``what``, if
    given) and the command that reproduces the run (``python -m MODULE ARGV``); the header's lines,
    for the report. ``show=False`` prints nothing (a process other than the first of several)."""
    header = machine_header(device, extra)
    if show:
        print("\n".join(header))
        if what:
            print(what)
        print(f"command: python -m {module} {shlex.join(argv or [])}".rstrip(), flush=True)
    return header
