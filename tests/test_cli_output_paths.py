"""Every file a command writes goes through the atomic writer (issue 22): an output path with an
extension the command cannot write, under a file, on a full disk or a read-only mount is one line
naming the path and what to do, exit status 2, no traceback, and the file already there is
unchanged. `mmlib.cli.main` runs in-process; the full disk and the read-only mount are
simulated, as in tests/test_faults.py."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import write_untrained_run

from mmlib.cli import main
from mmlib.files import OutputPathError, check_output_file, check_output_folder
from mmlib.model.step import COMPONENTS

OLD = b"already written"


def _full_disk(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _read_only(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.EROFS, "Read-only file system")


# The fault each case simulates: (module, attribute) -> replacement.
FAULTS: dict[str, tuple[object, str, Callable[..., None]]] = {
    "full": (os, "replace", _full_disk),
    "read-only": (tempfile, "mkstemp", _read_only),
}


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An untrained run `{run}` with a history (for curves), a file `{root}/a-file`, and the
    outputs `{root}/old.png`, `{root}/old.pdf` already written."""
    root = tmp_path_factory.mktemp("output-paths")
    run = write_untrained_run(root / "run")
    header = "epoch," + ",".join(f"{s}_{c}" for s in ("train", "val") for c in COMPONENTS)
    rows = [f"{epoch}," + ",".join(["1.0"] * 2 * len(COMPONENTS)) for epoch in (1, 2)]
    (run / "history.csv").write_text("\n".join([header, *rows]) + "\n")
    for name in ("a-file", "old.png", "old.pdf"):
        (root / name).write_bytes(OLD)
    return {"root": str(root), "run": str(run)}


IMAGINE = ["imagine", "{run}", "a ship"]
CURVES = ["curves", "{run}"]
EXPORT = ["export", "{run}", "--format", "torch-export"]

# Each case: argv ({root}, {run}: the fixture's), the simulated fault or "", then the words the
# one line must hold (beside data synth's progress bar): the path or option, and what to do.
CASES: dict[str, tuple[list[str], str, list[str]]] = {
    "imagine --out without extension": (
        [*IMAGINE, "--out", "{root}/noext"],
        "",
        ["--out", "noext: no file extension", ".png, .jpg, .jpeg"],
    ),
    "imagine --out x.txt": (
        [*IMAGINE, "--out", "{root}/x.txt"],
        "",
        ["x.txt: unknown file extension '.txt'", "end the name with one of .png, .jpg"],
    ),
    "curves --out x.xyz": (
        [*CURVES, "--out", "{root}/x.xyz"],
        "",
        ["x.xyz: unknown file extension '.xyz'", ".png, .pdf, .svg"],
    ),
    "curves --out under a file": (
        [*CURVES, "--out", "{root}/a-file/c.png"],
        "",
        ["a-file is a file, not a folder", "choose another path"],
    ),
    "export --out under a file": (
        [*EXPORT, "--out", "{root}/a-file/exp"],
        "",
        ["--out", "a-file is a file, not a folder", "choose another path"],
    ),
    "export --out a file": (
        [*EXPORT, "--out", "{root}/a-file"],
        "",
        ["--out", "a-file is a file, not a folder"],
    ),
    "data synth --out under a file": (
        ["data", "synth", "--n", "2", "--test-n", "0", "--out", "{root}/a-file/syn"],
        "",
        ["--out", "a-file is a file, not a folder", "choose another path"],
    ),
    "imagine --out on a full disk": (
        [*IMAGINE, "--out", "{root}/old.png"],
        "full",
        ["old.png: cannot write", "the disk is full", "previous old.png", "unchanged"],
    ),
    "imagine --out on a read-only mount": (
        [*IMAGINE, "--out", "{root}/old.png"],
        "read-only",
        ["cannot write", "read-only", "choose another --out"],
    ),
    "curves --out on a full disk": (
        [*CURVES, "--out", "{root}/old.pdf"],
        "full",
        ["old.pdf: cannot write", "the disk is full", "unchanged"],
    ),
    "curves --out on a read-only mount": (
        [*CURVES, "--out", "{root}/old.pdf"],
        "read-only",
        ["cannot write", "read-only", "choose another --out"],
    ),
    "data synth --out on a read-only mount": (
        ["data", "synth", "--n", "2", "--test-n", "0", "--out", "{root}/syn"],
        "read-only",
        ["syn: cannot write", "read-only", "choose another --out"],
    ),
    "data synth --out on a full disk": (
        ["data", "synth", "--n", "2", "--test-n", "0", "--image-size", "16", "--out", "{root}/syn"],
        "full",
        ["synth_00000", ".png: cannot write", "the disk is full"],
    ),
    "export on a read-only mount": (
        [*EXPORT, "--out", "{root}/exp"],
        "read-only",
        ["exp: cannot write", "read-only", "choose another --out"],
    ),
}


def _run(argv: list[str]) -> int:
    """`main(argv)`'s exit status; argparse's refusals exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize(("command", "fault", "words"), CASES.values(), ids=CASES.keys())
def test_an_unwritable_output_is_one_line_and_status_2(
    command: list[str],
    fault: str,
    words: list[str],
    where: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if fault:
        monkeypatch.setattr(*FAULTS[fault])
    status = _run([part.format(**where) for part in command])
    monkeypatch.undo()
    captured = capsys.readouterr()
    lines = [line for line in captured.err.strip().splitlines() if " img in " not in line]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), captured
    assert all(word in lines[0] for word in words), lines
    assert "Traceback" not in captured.err and "[Errno" not in captured.err
    root = Path(where["root"])
    assert all((root / name).read_bytes() == OLD for name in ("a-file", "old.png", "old.pdf"))
    assert not [path for path in root.rglob("*.tmp")], "a temporary file was left behind"


def test_imagine_into_proc_names_what_failed_without_a_raw_errno(
    where: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["imagine", where["run"], "a ship", "--out", "/proc/x.png"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: /proc: cannot write") and "choose another --out" in error
    assert "[Errno" not in error and len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["x.jpg", "x.JPEG", "x.png"])
def test_imagine_writes_the_format_its_extension_names(
    name: str, where: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "new" / name
    assert main(["imagine", where["run"], "a ship", "--out", str(out)]) == 0
    magic = b"\x89PNG" if name.endswith("png") else b"\xff\xd8\xff"
    assert out.read_bytes().startswith(magic)


def test_curves_writes_a_pdf(where: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "curves.pdf"
    assert main(["curves", where["run"], "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")


def test_check_output_file_refuses_before_any_write(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(OLD)
    refusals = {
        tmp_path: "a folder; give a file name in it, e.g.",
        tmp_path / "x": "no file extension; end the name with one of .png, .pdf",
        tmp_path / "x.PNGX": "unknown file extension '.PNGX'",
        tmp_path / "a-file/deeper/x.png": f"{tmp_path / 'a-file'} is a file, not a folder",
    }
    for path, words in refusals.items():
        with pytest.raises(OutputPathError, match="--plot") as raised:
            check_output_file(path, "--plot", (".png", ".pdf"))
        assert words in str(raised.value)
    made = check_output_file(tmp_path / "new/folder/X.PDF", "--plot", (".png", ".pdf"))
    assert made.parent.is_dir() and list(made.parent.iterdir()) == []


def test_check_output_folder_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(OLD)
    for path in (tmp_path / "a-file", tmp_path / "a-file/sub"):
        with pytest.raises(OutputPathError, match="a-file is a file, not a folder"):
            check_output_folder(path, "out_dir")
    assert check_output_folder(tmp_path / "new/sub", "out_dir").is_dir()
    assert list((tmp_path / "new/sub").iterdir()) == []


def test_synthetic_images_are_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmlib.data import synthetic

    monkeypatch.setattr(os, "replace", _full_disk)
    with pytest.raises(OSError, match="synth_000000.png: cannot write"):
        synthetic.generate(tmp_path / "syn", n=1, image_size=16, workers=1, progress=False)
    monkeypatch.undo()
    assert not list((tmp_path / "syn").rglob("*.png")) and not list(tmp_path.rglob("*.tmp"))
