"""Every module of the source tree is in the installed package: run from outside the checkout.

    python .ci/check_install.py SOURCE/focusformer

Exits non-zero, naming them, if modules (or the shipped configs) of the source tree are missing
from the installed ``focusformer``, or if the package imported is the source tree itself.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import resources
from pathlib import Path


def modules_in(folder: Path, prefix: str) -> set[str]:
    """The dotted names of the ``.py`` files under ``folder`` (symbolic links followed)."""
    found = set()
    for directory, _, files in os.walk(folder, followlinks=True):
        parts = Path(directory).relative_to(folder).parts
        if "__pycache__" in parts:
            continue
        for name in files:
            if name.endswith(".py"):
                module = (*parts, name[:-3]) if name != "__init__.py" else parts
                found.add(".".join((prefix, *module)))
    return found


def main(source: Path) -> int:
    source = source.resolve()
    package = importlib.import_module("focusformer")
    installed = Path(package.__file__).resolve().parent
    if installed == source:
        print(f"focusformer is imported from the source tree {source}, not from an installed copy")
        return 1
    missing = sorted(modules_in(source, "focusformer") - modules_in(installed, "focusformer"))
    configs = {p.name for p in source.joinpath("configs").iterdir() if p.suffix == ".yaml"}
    shipped = {p.name for p in resources.files("focusformer.configs").iterdir() if p.name.endswith(".yaml")}
    missing += sorted(f"configs/{name}" for name in configs - shipped)
    for name in missing:
        print(f"missing from the installed package: {name}")
    if missing:
        return 1
    print(f"the installed package at {installed} holds all {len(modules_in(source, 'focusformer'))} modules "
          f"and {len(configs)} configs of the source tree")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
