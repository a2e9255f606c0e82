"""Tests for mmlib.files: atomic writes leave the old file or the complete new one, nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmlib.files import atomic_open, atomic_write_bytes, atomic_write_text


def test_writes_create_the_folder_and_replace_the_file(tmp_path: Path) -> None:
    target = tmp_path / "run" / "config.json"
    assert atomic_write_text(target, "gravure à l'eau-forte\n") == target
    assert target.read_bytes() == "gravure à l'eau-forte\n".encode()
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["config.json"]


def test_a_stream_replaces_the_file_only_when_the_block_ends(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "images.u8", "old")
    with atomic_open(target) as handle:
        for chunk in (b"new ", b"content"):
            handle.write(chunk)
        assert target.read_text() == "old"
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["images.u8"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_midway_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, error: type[BaseException]
) -> None:
    target = atomic_write_text(tmp_path / "images.u8", "old")
    with pytest.raises(error, match="decoding failed"):
        with atomic_open(target) as handle:
            handle.write(b"half of the new content")
            raise error("decoding failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["images.u8"]


def test_a_failed_rename_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = atomic_write_text(tmp_path / "best.pt", "old")

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_the_content_is_on_disk_before_a_rename_in_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[object] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(descriptor: int) -> None:
        events.append("fsync")
        fsync(descriptor)

    def recording_replace(source: str, target: str) -> None:
        events.append((Path(source).parent == Path(target).parent, Path(source).read_bytes()))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    atomic_write_bytes(tmp_path / "last.pt", b"weights")
    assert events == ["fsync", (True, b"weights")]
