"""The architecture is a rule in code: `mmlib.LAYERS` orders the parts (a package or a top-level
module), and each part imports only itself and the parts before it; inside a package the modules
import one another without cycles, and never through their own package's `__init__`."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import mmlib

PACKAGE = Path(mmlib.__file__).resolve().parent
# The package's own entry points and the old-path shim sit outside the layers.
OUTSIDE_LAYERS = {"__init__", "__main__", "_old_paths"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(dotted: str) -> str:
    """The part a module belongs to: `mmlib.data.readers` -> `data`, `mmlib.config` -> `config`."""
    return dotted.split(".")[1]


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The mmlib modules (or packages) that `path` imports, dotted: `from mmlib.data import
    synthetic` imports the module `mmlib.data.synthetic`, `from mmlib.data import load_split` the
    package `mmlib.data`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmlib"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if _is_module(submodule) else node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("mmlib.")}
    return names


def _layered_modules() -> list[Path]:
    return [
        path for path in _modules() if not (path.parent == PACKAGE and path.stem in OUTSIDE_LAYERS)
    ]


def test_every_part_is_in_the_layers_once() -> None:
    parts = {_part(_dotted(path)) for path in _layered_modules()}
    assert len(set(mmlib.LAYERS)) == len(mmlib.LAYERS)
    assert sorted(mmlib.LAYERS) == sorted(parts)


@pytest.mark.parametrize("path", _layered_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_part_and_the_parts_before_it(path: Path) -> None:
    own = mmlib.LAYERS.index(_part(_dotted(path)))
    later = sorted(name for name in _imports(path) if mmlib.LAYERS.index(_part(name)) > own)
    assert later == [], f"{path.relative_to(PACKAGE)} imports parts after its own: {later}"


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_the_modules_of_a_package_import_one_another_without_cycles(package: str) -> None:
    prefix = f"mmlib.{package}"
    graph: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / package).glob("*.py")):
        if path.stem == "__init__":
            continue
        inside = {name for name in _imports(path) if name.startswith(prefix)}
        assert prefix not in inside, (
            f"{path.relative_to(PACKAGE)} imports its own package's __init__ ({prefix}); "
            "import the module instead"
        )
        graph[_dotted(path)] = inside
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        pytest.fail(f"import cycle inside {prefix}: {error.args[1]}")
