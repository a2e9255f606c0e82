"""The command line: `python -m mmlib data synth | data check`."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmlib.cli import error_line, main


def test_data_synth_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    command = ["data", "synth", "--out", str(out), "--n", "12", "--test-n", "3", "--image-size"]
    assert main([*command, "32"]) == 0
    assert "12 synthetic engravings and 3 test images (32x32, seed 42)" in capsys.readouterr().out
    records = json.loads((out / "metadata/engraving_metadata.json").read_text())
    assert [record.get("split") for record in records] == [None] * 12 + ["test"] * 3
    assert main(["data", "check", str(out)]) == 0
    report = capsys.readouterr().out
    assert "usable records: 15 (15 images, 15 captions" in report and "skipped: 0" in report


def test_bad_input_is_one_clear_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "metadata.json"
    broken.write_text('[{"id": 0, "filename": "a.png", "caption": "a ship"},]')
    assert main(["data", "check", str(broken), "--format", "seed", "--images", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "metadata.json" in error and "line 1" in error
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--n", "0"]) == 2
    assert "--n=0" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mmlib", "data", "check", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "nothing" in result.stderr and "Traceback" not in result.stderr


def test_train_command_line_builds_the_config() -> None:
    from mmlib.cli import build_parser, train_config

    args = build_parser().parse_args(
        ["train", "--preset", "cpu-tiny", "--epochs", "3", "--lr", "2e-3", "--run", "try"]
        + ["--set", "warmup_steps=7", "--set", "dropout=0"]
    )
    config = train_config(args)
    assert (config.num_epochs, config.learning_rate, config.run_name) == (3, 2e-3, "try")
    assert (config.warmup_steps, config.dropout, config.image_size) == (7, 0.0, 64)
    assert config.imagine_steps == 4000
    no_imagine = build_parser().parse_args(["train", "--no-imagine"])
    assert train_config(no_imagine).imagine_steps == 0


def test_train_resume_of_a_missing_run_is_a_clear_error(tmp_path, capsys) -> None:
    code = main(["train", "--resume", "nope", "--set", f"checkpoint_dir={tmp_path}"])
    assert code == 2 and "no run 'nope'" in capsys.readouterr().err


def test_resume_starts_from_the_runs_own_config(tmp_path) -> None:
    from mmlib.cli import build_parser, train_config
    from mmlib.config import Config

    Config.preset("cpu-tiny", num_epochs=30, learning_rate=3e-3).save(tmp_path / "r/config.json")
    argv = ["train", "--resume", "r", "--set", f"checkpoint_dir={tmp_path}"]
    config = train_config(build_parser().parse_args(argv))
    assert (config.num_epochs, config.learning_rate) == (30, 3e-3)
    more = build_parser().parse_args(["train", "--resume", str(tmp_path / "r"), "--epochs", "40"])
    assert train_config(more).num_epochs == 40


def test_an_error_about_a_path_is_one_line_without_a_raw_errno() -> None:
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/no/such.png")
    assert error_line(missing) == "/no/such.png: no such file or directory; check the path"
    assert "Errno" not in error_line(FileExistsError(errno.EEXIST, "File exists", "out"))
    assert error_line(ValueError("first line\n  second line\n")) == "first line second line"
