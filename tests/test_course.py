"""Tests for mmlib.course."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmlib.course import enter_project_root, project_root

ROOT = Path(__file__).resolve().parents[1]


def test_project_root_is_found_from_a_subfolder() -> None:
    assert project_root(ROOT / "notebooks") == ROOT
    assert project_root(ROOT) == ROOT


def test_project_root_falls_back_to_the_start(tmp_path: Path) -> None:
    assert project_root(tmp_path) == tmp_path.resolve()


def test_enter_project_root_changes_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "notebooks")
    assert enter_project_root() == ROOT
    assert Path.cwd() == ROOT
