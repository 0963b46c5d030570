"""Where a benchmark's figures go besides the screen: a JSON report, when asked for one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save_report(report: dict[str, Any], path: str | Path | None) -> dict[str, Any]:
    """Write ``report`` as JSON to ``path`` (nothing when ``None``) and say so; return the report."""
    if path is not None:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"saved {path}")
    return report
