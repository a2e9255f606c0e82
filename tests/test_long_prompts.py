"""A prompt an error quotes is cut to a readable length (issue 22): a megabyte of caption is one
short line, not a megabyte of error."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_untrained_run

from mmlib.cli import main
from mmlib.files import QUOTED_LIMIT, quoted

MEGABYTE = 1_000_000


def test_a_short_text_is_quoted_whole_and_a_long_one_cut() -> None:
    assert quoted("a ship") == "'a ship'"
    assert quoted("x" * QUOTED_LIMIT) == repr("x" * QUOTED_LIMIT)
    assert quoted("zq " * 50) == repr(("zq " * 50)[:QUOTED_LIMIT]) + "... (150 characters)"


@pytest.mark.parametrize(
    ("caption", "says"),
    [("zqx " * (MEGABYTE // 4), "none of its words"), ("!?" * (MEGABYTE // 2), "has no words")],
    ids=["unknown words", "no words"],
)
def test_imagine_with_a_megabyte_caption_is_one_short_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caption: str, says: str
) -> None:
    run = write_untrained_run(tmp_path / "run")
    assert main(["imagine", str(run), caption, "--out", str(tmp_path / "out.png")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and len(error) < 300, error[:400]
    assert error.startswith(f"error: caption {caption[:QUOTED_LIMIT]!r}... (1,000,000 characters)")
    assert says in error
    assert not (tmp_path / "out.png").exists()
