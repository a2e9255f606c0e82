"""The shape of the library's code: no function over 80 lines, no class over 300 (no
exceptions: the ratchet that capped the one longer class, the Trainer, emptied when it was
split, issue 23)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmlib"
MOST_FUNCTION_LINES = 80
MOST_CLASS_LINES = 300

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


def test_no_function_or_class_is_longer_than_its_limit() -> None:
    too_long = over_the_limits()
    assert not too_long, (
        f"over {MOST_FUNCTION_LINES} lines (function) or {MOST_CLASS_LINES} (class): "
        f"{too_long}; split it"
    )
