"""Faults during training: a process killed at chosen points (through the test-only
MMLIB_FAULT_AT hook, `mmlib.files.fault_point`) resumes with `--resume` to the same history as
an uninterrupted run and leaves no temporary file; a full disk, a file-size limit or a read-only
folder is one line naming the path and what to do, and the previous files survive."""

from __future__ import annotations

import csv
import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL

from mmlib.checkpoint import load_checkpoint, save_checkpoint
from mmlib.cli import main
from mmlib.config import Config
from mmlib.data.tokenizer import WordTokenizer
from mmlib.files import FAULT_VARIABLE, WriteError
from mmlib.training.trainer import WALL_CLOCK_COLUMNS, Trainer

# 63 training samples at batch 16: 3 optimizer steps per epoch, 6 in all; last.pt is written
# at every step (save_every_minutes as good as 0), so a kill at step N resumes after step N.
FAULT_RUN = {
    **TINY_MODEL,
    "batch_size": 16,
    "num_epochs": 2,
    "num_workers": 0,
    "log_interval": 1,
    "precision": "fp32",
    "warmup_steps": 2,
    "imagine_steps": 0,
    "save_every_minutes": 1e-6,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, synthetic_dataset: Path) -> Path:
    """A folder with `config.json` (the fault runs' config) and `checkpoints/straight`, the
    uninterrupted run the others are compared with; treat it as read-only."""
    root = tmp_path_factory.mktemp("faults")
    config = Config(
        **FAULT_RUN,
        data_dir=synthetic_dataset,
        checkpoint_dir=root / "checkpoints",
        cache_dir=root / "cache",
        run_name="straight",
    )
    config.save(root / "config.json")
    Trainer(config, log=lambda _line: None, progress=False).fit()
    return root


def train_command(runs: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mmlib", "train", *args, "--no-imagine"]


def run_in_subprocess(
    runs: Path, args: list[str], fault: str = "", preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m mmlib train ARGS` with as many threads as this process (same arithmetic)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), FAULT_VARIABLE: fault}
    return subprocess.run(
        train_command(runs, *args),
        cwd=runs,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec,
        check=False,
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [
            {k: v for k, v in row.items() if k not in WALL_CLOCK_COLUMNS}
            for row in csv.DictReader(handle)
        ]


def temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp"))


def assert_same_as_straight(runs: Path, run: Path) -> None:
    straight = runs / "checkpoints/straight"
    for name in ("history.csv", "steps.csv"):
        assert read_rows(run / name) == read_rows(straight / name), name
    ours, theirs = (load_checkpoint(r / "last.pt")["model"] for r in (run, straight))
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


# (fault point, the temporary file the kill leaves, what the resume says)
KILLS = [
    ("step:2", None, "Resumed {run} at epoch 1, step 2"),
    ("before_rename:last.pt", ".last.pt.", "{run}/last.pt was never written"),
    ("before_rename:history.csv", ".history.csv.", "Resumed {run} at epoch 1, step 1"),
    ("before_rename:best.pt", ".best.pt.", "Resumed {run} at epoch 1, step 2"),
]


@pytest.mark.parametrize(("fault", "leftover", "says"), KILLS, ids=[k[0] for k in KILLS])
def test_a_run_killed_at_a_fault_point_resumes_to_the_same_history(
    runs: Path, capsys: pytest.CaptureFixture[str], fault: str, leftover: str | None, says: str
) -> None:
    name = fault.replace(":", "-")
    run = runs / "checkpoints" / name
    killed = run_in_subprocess(runs, ["--config", "config.json", "--run", name], fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = temporaries(run)
    assert [n for n in left if n.startswith(leftover)] if leftover else left == []
    assert main(["train", "--resume", str(run), "--no-imagine"]) == 0
    out = capsys.readouterr().out
    assert says.format(run=run) in out
    if leftover:
        assert f"Removed 1 temporary file(s) of interrupted saves: {left[0]}" in out
    assert_same_as_straight(runs, run)
    assert temporaries(run) == []


def continued(runs: Path, name: str) -> Path:
    """A copy of the straight run, to continue to a third epoch."""
    return Path(shutil.copytree(runs / "checkpoints/straight", runs / "checkpoints" / name))


def assert_previous_files_survive(run: Path) -> None:
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert load_checkpoint(run / "best.pt").keys()
    assert temporaries(run) == []


def test_a_file_size_limit_during_training_is_one_line_and_last_pt_survives(runs: Path) -> None:
    run = continued(runs, "size-limit")
    limit = ((run / "best.pt").stat().st_size + (run / "last.pt").stat().st_size) // 2

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = run_in_subprocess(runs, ["--resume", str(run), "--epochs", "3"], "", limit_file_size)
    assert result.returncode == 2
    last_line = result.stderr[result.stderr.rindex("error: ") :]  # after an unfinished tqdm bar
    assert last_line.count("\n") == 1
    assert last_line.startswith(f"error: {run}/last.pt: cannot write (File too large)")
    assert "ulimit -f" in last_line and f"--resume {run}" in last_line
    assert "Traceback" not in result.stderr
    assert_previous_files_survive(run)


def test_a_full_disk_during_training_is_one_line_and_last_pt_survives(
    runs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = continued(runs, "full-disk")
    replace = os.replace

    def full_disk(source: str, target: str) -> None:
        if Path(target).name == "last.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(os, "replace", full_disk)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-imagine"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith(f"error: {run}/last.pt: cannot write (No space left on device)")
    assert "free some space" in error[-1] and f"--resume {run}" in error[-1]
    assert_previous_files_survive(run)


@pytest.mark.parametrize(
    ("folder", "field"), [("checkpoints/readonly", "checkpoint_dir"), ("cache", "cache_dir")]
)
def test_an_unwritable_folder_is_one_line_before_the_data_is_loaded(
    runs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    folder: str,
    field: str,
) -> None:
    mkstemp = tempfile.mkstemp

    def read_only(*args: object, dir: str | None = None, **kwargs: object) -> tuple[int, str]:
        if Path(dir or ".") == runs / folder:
            raise OSError(errno.EROFS, "Read-only file system", dir)
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    config = str(runs / "config.json")
    assert main(["train", "--config", config, "--run", "readonly", "--no-imagine"]) == 2
    captured = capsys.readouterr()
    assert "STEP 1" not in captured.out
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {runs / folder}: cannot write (Read-only file system)")
    assert f"set {field}" in captured.err


WRITERS: dict[str, Callable[[Path], object]] = {
    "config.json": lambda path: Config().save(path),
    "tokenizer.json": lambda path: WordTokenizer(10).build_vocab(["a ship"]).save(path),
    "last.pt": lambda path: save_checkpoint({"w": torch.ones(2)}, path),
}


@pytest.mark.parametrize("name", WRITERS)
def test_every_run_file_writer_is_fsynced_atomic_and_leaves_nothing_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    path.write_text("previous")
    synced: list[int] = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or fsync(fd))

    def full_disk(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(WriteError, match=f"{name}: cannot write .No space left on device."):
        WRITERS[name](path)
    assert synced and path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_run_files_get_the_umask_s_mode(runs: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (runs / "checkpoints/straight").iterdir()}
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)
