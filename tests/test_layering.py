"""The README's map of the library is the import order: a module imports only those above it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _mapped_modules() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Map of the library", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)


def _mmlib_imports(module: str) -> set[str]:
    tree = ast.parse((ROOT / "mmlib" / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmlib"):
            parts = node.module.split(".")
            names |= {a.name for a in node.names} if len(parts) == 1 else {parts[1]}
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mmlib.")}
    return names


def test_the_map_lists_every_module_once() -> None:
    mapped = _mapped_modules()
    modules = {p.stem for p in (ROOT / "mmlib").glob("*.py")} - {"__init__", "__main__"}
    assert sorted(mapped) == sorted(modules)


def test_every_module_imports_only_modules_above_it_in_the_map() -> None:
    mapped = _mapped_modules()
    late = {
        module: sorted(name for name in _mmlib_imports(module) if name in mapped[index:])
        for index, module in enumerate(mapped)
    }
    assert {module: names for module, names in late.items() if names} == {}
