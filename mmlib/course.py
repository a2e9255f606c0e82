"""What the course notebooks share: working from the project root."""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding `pyproject.toml` and `mmlib/`.

    Falls back to `start` itself, so the course also runs from a plain folder of your own.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mmlib").is_dir():
            return folder
    return here


def enter_project_root() -> Path:
    """Change to the project root, so `Config`'s relative paths (`data/...`) mean the same in
    notebooks (which Jupyter starts in `notebooks/`) as on the command line."""
    root = project_root()
    os.chdir(root)
    return root
