"""Tests for mmlib.files: atomic writes leave the old file or the complete new one, nothing else."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from mmlib.files import (
    FAULT_VARIABLE,
    WriteError,
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    check_writable,
    fault_point,
    remove_temporaries,
)


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


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_files_get_the_mode_open_would_give_them(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "history.csv", "epoch\n")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    ("number", "advice"),
    [
        (errno.ENOSPC, "the disk is full; free some space"),
        (errno.EFBIG, "file-size limit (ulimit -f); raise it"),
        (errno.EROFS, "read-only; use a writable folder"),
        (errno.EACCES, "make the folder writable or use another one"),
    ],
)
def test_a_failed_write_names_the_file_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: int, advice: str
) -> None:
    target = atomic_write_text(tmp_path / "last.pt", "old")

    def write_fails(*_args: object) -> None:
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "fsync", write_fails)
    with pytest.raises(WriteError) as info:
        atomic_write_bytes(target, b"new")
    message = str(info.value)
    assert message.startswith(f"{target}: cannot write ({os.strerror(number)}): ")
    assert advice in message
    assert message.endswith("the previous last.pt, if any, is unchanged")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_an_uncreatable_temporary_is_a_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(WriteError, match="config.json: cannot write .Read-only file system."):
        atomic_write_text(tmp_path / "config.json", "{}")


def test_remove_temporaries_removes_the_library_s_temporary_names_only(tmp_path: Path) -> None:
    ours = [".last.pt.k2j_9xq1.tmp", ".history.csv.abcdefgh.tmp", ".mmlib-probe.0a1b2c3d.tmp"]
    others = ["last.pt", "notes.tmp", ".last.pt.tmp", ".last.pt.SHOUTING.tmp", ".x.abc.tmp", "a.b"]
    for name in ours + others:
        (tmp_path / name).write_text("x")
    (tmp_path / ".folder.abcdefgh.tmp").mkdir()
    removed = remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, ".folder.abcdefgh.tmp"])
    assert remove_temporaries(tmp_path / "missing") == []


def test_check_writable_makes_the_folder_and_leaves_nothing(tmp_path: Path) -> None:
    check_writable(tmp_path / "runs" / "new", "set checkpoint_dir to a writable folder")
    assert list((tmp_path / "runs" / "new").iterdir()) == []


def test_check_writable_names_the_folder_and_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(descriptor: int, _data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(WriteError) as info:
        check_writable(tmp_path, "set cache_dir to a writable folder")
    assert str(info.value) == (
        f"{tmp_path}: cannot write (No space left on device): the disk is full; free some "
        "space, or set cache_dir to a writable folder"
    )
    assert list(tmp_path.iterdir()) == []


def test_fault_point_does_nothing_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_VARIABLE, raising=False)
    fault_point("step:1")
    monkeypatch.setenv(FAULT_VARIABLE, "step:2")
    fault_point("step:1")  # a kill here would end the test run
