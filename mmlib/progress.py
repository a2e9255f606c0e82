"""Progress bars: live in a terminal or a notebook, one summary line each in a log.

tqdm redraws its bar about ten times a second; in a file or a CI log every redraw stays, so a
training run leaves hundreds of kilobytes of `Epoch 4/18:  35%|...` lines. `progress_bar`
gives the live `tqdm.auto` bar where someone watches it (a terminal, a Jupyter kernel's widget)
and otherwise a bar that draws nothing while it runs and writes one line when it closes.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm


class _Discard(io.TextIOBase):
    """A stream that drops what tqdm draws."""

    def write(self, text: str) -> int:
        return len(text)


class SummaryBar(text_tqdm):
    """A tqdm bar that draws nothing while it runs and writes one line to `stream` when it
    closes: its description, count, time, rate and postfix."""

    def __init__(self, *args: Any, stream: TextIO, **kwargs: Any) -> None:
        self._stream = stream
        # An infinite interval: tqdm never formats a redraw that would be dropped anyway.
        super().__init__(*args, file=_Discard(), mininterval=float("inf"), **kwargs)

    def summary(self) -> str:
        """`desc: n/total unit in 12.3s (4.56 unit/s), postfix`."""
        seconds = self._time() - self.start_t
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        line = f"{count} {self.unit} in {seconds:.1f}s"
        if seconds > 0:
            line += f" ({self.n / seconds:.3g} {self.unit}/s)"
        if self.desc:
            line = f"{self.desc}: {line}"
        return f"{line}, {self.postfix}" if self.postfix else line

    def close(self) -> None:
        if not self.disable:  # tqdm's close sets disable: the line is written once
            self._stream.write(self.summary() + "\n")
            self._stream.flush()
        super().close()


def is_live(stream: TextIO) -> bool:
    """Whether someone watches `stream` redraw: a terminal, or any stream in a Jupyter kernel
    (where tqdm.auto draws a widget instead)."""
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except ValueError:  # a closed stream
        return False
    return _in_jupyter_kernel()


def _in_jupyter_kernel() -> bool:
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    return hasattr(get_ipython(), "kernel")


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
    file: TextIO | None = None,
    **kwargs: Any,
) -> text_tqdm:
    """A tqdm bar over `iterable` (or updated by hand up to `total`) on `file` (stderr by
    default): live where `is_live`, else a `SummaryBar`; nothing at all unless `enabled`.
    `kwargs` go to tqdm (`leave`, `initial`, ...); a `SummaryBar` writes its line either way."""
    stream = sys.stderr if file is None else file
    if enabled and not is_live(stream):
        return SummaryBar(iterable, desc=desc, total=total, unit=unit, stream=stream, **kwargs)
    return auto_tqdm(
        iterable, desc=desc, total=total, unit=unit, file=stream, disable=not enabled, **kwargs
    )
