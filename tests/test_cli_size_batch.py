"""The `python -m mmlib size-batch` command: the table, the recommendation, clear errors."""

from __future__ import annotations

import pytest

from mmlib.cli import main


def test_size_batch_prints_the_table_and_a_recommendation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["size-batch", "--preset", "cpu-tiny", "--gpu", "2", "--batch-sizes", "8,64"]
    assert main([*argv, "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu-tiny, fp32, vocabulary 8,000, estimated for cuda; card 2 GB")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["8"], ["64"])]
    assert [row[0] for row in rows] == ["8", "64"] and all(row[-1] in ("yes", "no") for row in rows)
    assert "not measured on a GPU" in out
    assert "recommended batch_size for 2 GB with 10% headroom: " in out


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
