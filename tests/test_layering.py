"""Imports between the package's layers run one way: down.

Read from the code itself (every ``import`` and ``from ... import`` of every module, module-level
or inside a function; those under ``if TYPE_CHECKING:`` are annotations only and do not count), so
an import that runs up fails here, naming the module and what it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "focusformer"

#: Bottom to top: a module may import its own layer and the layers below it.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "typed", "fileio", "budget", "devices", "distributed", "version", "run_dir"}),
    frozenset({"spaces"}),
    frozenset({"config", "latency", "onnx_export"}),
    frozenset({"data"}),
    frozenset({"hub", "export"}),
    frozenset({"sampling", "search"}),
    frozenset({"training"}),
    frozenset({"plot", "cli", "__init__"}),
)


def layer_of(unit: str) -> int:
    for level, units in enumerate(LAYERS):
        if unit in units:
            return level
    raise AssertionError(f"focusformer.{unit} has no layer: add it to LAYERS")


def unit_of(module: str) -> str:
    """``focusformer.search.scoring`` -> ``search``; ``focusformer`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The focusformer modules ``path`` imports (a name imported from a package counts as its
    submodule when one of that name exists)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    class Imports(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names if alias.name.startswith("focusformer"))

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("focusformer"):
                return
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                as_path = PACKAGE.parent.joinpath(*sub.split("."))
                found.add(sub if as_path.with_suffix(".py").is_file() or as_path.is_dir() else target)

    Imports().visit(ast.parse(path.read_text()))
    return found


def upward_imports(package: Path) -> list[str]:
    """Every import in ``package`` from a unit to one above it in :data:`LAYERS`."""
    upward = []
    for path in (p for p in package.rglob("*.py") if "__pycache__" not in p.parts):
        here = unit_of(module_name(path))
        for target in imported_modules(path):
            there = unit_of(target)
            if there != here and layer_of(there) > layer_of(here):
                upward.append(f"{module_name(path)} imports {target}")
    return sorted(upward)


def test_imports_run_down_the_layers():
    assert len([p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]) > 60  # the whole package is read
    upward = upward_imports(PACKAGE)
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_the_layering_check_sees_an_import_that_runs_up(tmp_path, monkeypatch):
    """The check itself: a module low in the stack that imports training is caught, and one that
    imports down is not."""
    fake = tmp_path / "focusformer"
    (fake / "search").mkdir(parents=True)
    (fake / "training").mkdir()
    (fake / "training" / "__init__.py").write_text("")
    (fake / "training" / "trainer.py").write_text("from ..search import good\n")
    (fake / "search" / "good.py").write_text("")
    (fake / "search" / "bad.py").write_text("def f():\n    from ..training import trainer\n")
    monkeypatch.setattr("test_layering.PACKAGE", fake)
    assert upward_imports(fake) == ["focusformer.search.bad imports focusformer.training.trainer"]
