"""Progress bars: tqdm's redraws on a terminal, one summary line per bar in a log."""

from __future__ import annotations

import io
import sys
import types

import IPython
import pytest

from mmlib.progress import SummaryBar, is_live, progress_bar


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_bar_with_its_description_count_and_postfix() -> None:
    log = io.StringIO()
    for epoch in (1, 2):
        with progress_bar(total=50, desc=f"Epoch {epoch}/2", unit="batch", file=log) as bar:
            for _ in range(50):
                bar.update()
                bar.set_postfix(loss="2.5300")
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue()
    assert lines[0].startswith("Epoch 1/2: 50/50 batch in ")
    assert lines[1].startswith("Epoch 2/2: 50/50 batch in ") and lines[1].endswith(", loss=2.5300")


def test_a_bar_over_an_iterable_counts_it_and_writes_its_line_once_even_if_closed_again() -> None:
    log = io.StringIO()
    bar = progress_bar(range(7), desc="synthetic engravings", unit="img", file=log, leave=False)
    assert isinstance(bar, SummaryBar)
    assert list(bar) == list(range(7)) and log.getvalue().count("\n") == 1
    bar.close()
    assert log.getvalue().count("\n") == 1
    assert log.getvalue().startswith("synthetic engravings: 7/7 img in ")


def test_an_interrupted_bar_says_how_far_it_got() -> None:
    log = io.StringIO()
    try:
        with progress_bar(total=10, desc="Epoch 3/3", file=log, initial=4) as bar:
            bar.update(2)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert log.getvalue().startswith("Epoch 3/3: 6/10 it in ")


def test_a_terminal_gets_tqdms_redraws() -> None:
    terminal = Terminal()
    with progress_bar(total=3, desc="Decoding images", unit="img", file=terminal) as bar:
        assert not isinstance(bar, SummaryBar)
        for _ in range(3):
            bar.update()
    drawn = terminal.getvalue()
    assert drawn.count("\r") >= 2 and "Decoding images:   0%" in drawn
    assert "Decoding images: 100%" in drawn and "3/3" in drawn


def test_a_jupyter_kernel_keeps_its_live_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_live(io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    assert is_live(io.StringIO())


def test_a_disabled_bar_writes_nothing_anywhere() -> None:
    for stream in (io.StringIO(), Terminal()):
        with progress_bar(total=5, desc="fitting", file=stream, enabled=False) as bar:
            bar.update(5)
        assert stream.getvalue() == ""
