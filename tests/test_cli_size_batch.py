"""The `python -m mmlib size-batch` command: the table, the recommendation, clear errors."""

from __future__ import annotations

import pytest

from mmlib.cli import main
from mmlib.config import Config
from mmlib.sizing import gpu_calibration
from mmlib.sizing.batch_size import recommend_batch_size
from mmlib.sizing.gpu_calibration import GpuMargin, GpuMeasurement


def test_size_batch_prints_the_table_and_a_recommendation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["size-batch", "--preset", "cpu-tiny", "--gpu", "2", "--batch-sizes", "8,64"]
    assert main([*argv, "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu-tiny, fp32, vocabulary 8,000, estimated for cuda; card 2 GiB")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["8"], ["64"])]
    assert [row[0] for row in rows] == ["8", "64"] and all(row[-1] in ("yes", "no") for row in rows)
    assert "not measured on a GPU" in out
    assert "recommended batch_size for 2 GiB with 10% headroom: " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpu", "titan"], "unknown GPU 'titan': known cards are rtx3090"),
        (["--gpu", "0.01"], "even batch_size=1 needs"),
    ],
)
def test_size_batch_errors_are_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["size-batch", "--preset", "cpu-tiny", "--batch-sizes", "1", *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_size_batch_rejects_bad_batch_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["size-batch", "--batch-sizes", "8,x"])
    assert exited.value.code == 2 and "expected integers" in capsys.readouterr().err


def test_size_batch_applies_and_names_the_recorded_gpu_margin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = GpuMeasurement(
        "NVIDIA A100", "2.5", "cpu-tiny", "fp32", 8, 2.0, None, 1.0, None, "2026-01-01", "", ""
    )
    margin = GpuMargin(0.5, record, 1, today=False)
    monkeypatch.setattr(gpu_calibration, "config_margin", lambda *_: margin)
    argv = ["size-batch", "--preset", "cpu-tiny", "--precision", "fp32", "--gpu", "2"]
    assert main([*argv, "--batch-sizes", "8"]) == 0
    out = capsys.readouterr().out
    best = int(out.split("recommended batch_size for 2 GiB with 10% headroom: ")[1].split()[0])
    config = Config.preset("cpu-tiny")
    assert best == recommend_batch_size(config, 2, precision="fp32", margin=margin)
    assert best < recommend_batch_size(config, 2, precision="fp32")
    assert "cpu-tiny, fp32: uncalibrated on GPUs; on an NVIDIA A100 (torch 2.5" in out
