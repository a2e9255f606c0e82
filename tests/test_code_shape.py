"""The shape of the library's code: no function over 80 lines, no class over 300.

`LONGER` is a ratchet: what was longer when the limits came in, each capped at its length
then, so it can only shrink; shorten one and lower its cap here, split it and drop it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mmlib"
MOST_FUNCTION_LINES = 80
MOST_CLASS_LINES = 300
# "module path::qualified name" -> the most lines it may keep, until it is split.
LONGER = {
    # Set-up (data, loaders, optimizer), the epoch loop, validation, logging, checkpoints and
    # resuming in one class; splitting it is a change of its own.
    "train.py::Trainer": 605,
}

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def definitions(tree: ast.AST, prefix: str = "") -> list[tuple[str, Definition]]:
    """Every function and class in `tree`, nested ones too, by qualified name."""
    found: list[tuple[str, Definition]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, Definition):
            name = f"{prefix}{node.name}"
            found.append((name, node))
            found += definitions(node, f"{name}.")
        else:
            found += definitions(node, prefix)
    return found


def over_the_limits() -> dict[str, int]:
    """The length in lines (signature to last line, decorators aside) of each function and
    class of the package that is over its limit."""
    over: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        for name, node in definitions(ast.parse(path.read_text(encoding="utf-8"))):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            limit = MOST_CLASS_LINES if isinstance(node, ast.ClassDef) else MOST_FUNCTION_LINES
            if length > limit:
                over[f"{module}::{name}"] = length
    return over


def test_no_function_or_class_is_longer_than_its_limit_or_its_cap() -> None:
    too_long = {
        name: length for name, length in over_the_limits().items() if length > LONGER.get(name, 0)
    }
    assert not too_long, (
        f"over {MOST_FUNCTION_LINES} lines (function) or {MOST_CLASS_LINES} (class), "
        f"or over the cap in LONGER: {too_long}; split it"
    )


@pytest.mark.parametrize("name", sorted(LONGER))
def test_each_exception_is_still_over_the_limit(name: str) -> None:
    """An exception split to within the limits leaves LONGER, so that it cannot grow back."""
    assert name in over_the_limits(), f"{name} is within the limits now: remove it from LONGER"
