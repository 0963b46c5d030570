"""Where a benchmark's figures go besides the screen: JSON files, written whole or not at all."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from focusformer.fileio import atomic_write_text


def report_of(header: list[str], argv: Sequence[str] | None, args: argparse.Namespace, target: dict[str, Any],
              **figures: Any) -> dict[str, Any]:
    """A benchmark's report: the machine header, its command line and settings, its target line's
    figures, then its own figures."""
    return {"header": header, "argv": list(argv or []), "args": vars(args), "target": target, **figures}


def write_json(path: str | Path, data: Any, indent: int = 1) -> None:
    """``data`` as JSON at ``path``, its folder made if missing, atomically: a reader (or a run
    resuming after a crash) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def save_report(report: dict[str, Any], path: str | Path | None) -> dict[str, Any]:
    """Write ``report`` as JSON to ``path`` (nothing when ``None``) and say so; return the report."""
    if path is not None:
        write_json(path, report, indent=2)
        print(f"saved {path}")
    return report
