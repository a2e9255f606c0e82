"""`python -m mmlib curves`: the plot, the summary table and each run's diagnosis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mmlib.cli import main
from mmlib.config import Config
from mmlib.train import Trainer


def test_curves_writes_plot_and_prints_summary_and_findings(
    tiny_config: Callable[..., Config], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(num_epochs=2)
    Trainer(config, log=lambda _line: None, progress=False).fit()
    capsys.readouterr()
    out = tmp_path / "plots" / "curves.png"
    args = ["curves", "latest", "--out", str(out), "--checkpoint-dir", str(config.checkpoint_dir)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "best val" in printed and "tiny" in printed
    assert "insufficient data" in printed and f"wrote {out}" in printed
    missing = ["curves", "nope", "--checkpoint-dir", str(config.checkpoint_dir)]
    assert main(missing) == 2
    assert capsys.readouterr().err.startswith("error: no run 'nope'")
