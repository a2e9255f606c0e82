"""`python -m mmlib curves`: the plot, the summary table and each run's diagnosis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mmlib.cli import main
from mmlib.config import Config
from mmlib.model.step import COMPONENTS
from mmlib.training.trainer import Trainer


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


def _write_run(folder: Path, learning_rate: float, alignment: list[float]) -> None:
    """A run folder without training: its config, and a history whose alignment follows
    `alignment` while image and caption improve."""
    folder.mkdir(parents=True)
    Config(run_name=folder.name, learning_rate=learning_rate).save(folder / "config.json")
    lines = ["epoch," + ",".join(f"{s}_{c}" for s in ("train", "val") for c in COMPONENTS)]
    for epoch, align in enumerate(alignment, start=1):
        image, caption = 0.5 * 0.8**epoch, 2.0 * 0.8**epoch
        values = [image + caption + align, image, caption, align] * 2
        lines.append(f"{epoch}," + ",".join(f"{v:.6f}" for v in values))
    (folder / "history.csv").write_text("\n".join(lines) + "\n")


def test_curves_names_the_one_config_difference_as_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_run(tmp_path / "base", 1e-3, [3.0 * 0.8**epoch for epoch in range(8)])
    _write_run(tmp_path / "fast", 2e-2, [4.1] * 8)  # alignment stalls: "component stalled"
    args = ["curves", "base", "fast", "--out", str(tmp_path / "c.png")]
    assert main([*args, "--checkpoint-dir", str(tmp_path)]) == 0
    fast = capsys.readouterr().out.split("\nfast (")[1]
    assert "cause from comparison: learning_rate is the only config difference from base" in fast
    assert "component stalled" in fast
    assert "alignment_loss_weight" not in fast  # alone, the diagnosis guessed this weight
