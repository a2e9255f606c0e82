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


def test_ensure_course_run_trains_once(monkeypatch, tmp_path) -> None:
    from mmlib import course
    from mmlib.config import Config

    calls: list[Config] = []

    def fake_train(config):
        run = Path(config.checkpoint_dir) / config.run_name
        run.mkdir(parents=True)
        (run / "best.pt").write_bytes(b"")
        (run / "metrics.json").write_text("{}")
        calls.append(config)
        return run, None

    monkeypatch.setattr(course, "train_and_evaluate", fake_train)
    config = Config.preset("cpu-tiny", checkpoint_dir=tmp_path, run_name="course")
    assert course.ensure_course_run(config) == tmp_path / "course"
    assert course.ensure_course_run(config) == tmp_path / "course"
    assert len(calls) == 1
