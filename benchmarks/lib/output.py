"""Where a benchmark's figures go besides the screen: a JSON report, when asked for one."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def report_of(header: list[str], argv: Sequence[str] | None, args: argparse.Namespace, target: dict[str, Any],
              **figures: Any) -> dict[str, Any]:
    """A benchmark's report: the machine header, its command line and settings, its target line's
    figures, then its own figures."""
    return {"header": header, "argv": list(argv or []), "args": vars(args), "target": target, **figures}


def save_report(report: dict[str, Any], path: str | Path | None) -> dict[str, Any]:
    """Write ``report`` as JSON to ``path`` (nothing when ``None``) and say so; return the report."""
    if path is not None:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"saved {path}")
    return report
