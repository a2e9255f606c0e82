"""Nothing left behind (issue 22): temporary files carry their writer's process id and host, and
the next run removes those whose writer has ended, in the image cache folder as in run folders,
never a running writer's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import tiny_training_config

from mmlib import files
from mmlib.cli import main
from mmlib.config import Config
from mmlib.data.images import cache_path
from mmlib.data.sources import load_split
from mmlib.files import FAULT_VARIABLE, atomic_open, remove_temporaries


def ended_process_id() -> int:
    """The id of a process that has run and ended."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_only_ended_writers_temporaries_are_removed(tmp_path: Path) -> None:
    host = files._host_digest()
    running = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    try:
        kept = [
            f".images.u8.{os.getpid()}-{host}.k2j_9xq1.tmp",
            f".decoded-1.json.{running.pid}-{host}.abcdefgh.tmp",
            f".last.pt.{ended_process_id()}-0badc0de.abcdefgh.tmp",  # another machine's
            f".mmlib-probe.{running.pid}-{host}.0a1b2c3d.tmp",
        ]
        dead = ended_process_id()
        removed = [
            f".images.u8.{dead}-{host}.k2j_9xq1.tmp",
            f".mmlib-probe.{dead}-{host}.0a1b2c3d.tmp",
            ".history.csv.abcdefgh.tmp",  # written before names carried the writer
        ]
        for name in kept + removed:
            (tmp_path / name).write_text("x")
        assert sorted(p.name for p in remove_temporaries(tmp_path)) == sorted(removed)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    finally:
        running.communicate(b"\n")


def test_a_write_in_progress_is_named_after_its_writer_and_kept(tmp_path: Path) -> None:
    with atomic_open(tmp_path / "images.u8") as handle:
        handle.write(b"pixels")
        (temporary,) = tmp_path.iterdir()
        assert temporary.name.startswith(f".images.u8.{os.getpid()}-{files._host_digest()}.")
        assert remove_temporaries(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["images.u8"]


@pytest.fixture
def killed_run_config(tmp_path: Path, seed_dataset: Callable[..., Path]) -> Config:
    """A one-epoch tiny run on 24 seed images, saved as tmp_path/config.json."""
    config = tiny_training_config(
        seed_dataset(24),
        tmp_path,
        max_caption_length=12,
        batch_size=8,
        num_epochs=1,
        log_interval=10,
        run_name="",
        warmup_steps=1,
        imagine_steps=0,
    )
    config.save(tmp_path / "config.json")
    return config


def names_the_run_writes(config: Config, elsewhere: Path) -> tuple[str, str]:
    """The decode memo's and the training image cache's file names, found without writing into
    the run's cache folder."""
    split = load_split(config.with_overrides({"cache_dir": elsewhere}))
    assert split.report.decode_memo is not None
    cache = cache_path(split.train, config.image_size, config.resize_mode, config.cache_dir)
    return split.report.decode_memo.name, cache.name


def train_killed_at(config_file: Path, fault: str) -> None:
    """`python -m mmlib train` in a subprocess, SIGKILLed at the fault point `fault`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", FAULT_VARIABLE: fault}
    args = ["train", "--config", str(config_file), "--run", "killed", "--no-imagine"]
    killed = subprocess.run(
        [sys.executable, "-m", "mmlib", *args], env=env, capture_output=True, text=True, check=False
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_run_killed_before_the_cache_rename_leaves_nothing_behind(
    tmp_path: Path, killed_run_config: Config
) -> None:
    memo, cache = names_the_run_writes(killed_run_config, tmp_path / "elsewhere")
    cache_dir = killed_run_config.cache_dir
    train_killed_at(tmp_path / "config.json", f"before_rename:{cache}")
    (left,) = leftovers(cache_dir)
    assert left.startswith(f".{cache}.") and (cache_dir / left).stat().st_size > 0
    args = ["train", "--config", str(tmp_path / "config.json"), "--run", "again", "--no-imagine"]
    assert main(args) == 0
    assert leftovers(cache_dir) == []
    assert (cache_dir / cache).is_file() and (cache_dir / memo).is_file()
