"""Bad input on the command line: one line that names the file or field and what to do, exit
status 2, never a traceback (issue 16). `mmlib.cli.main` runs in-process on an untrained run."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import png_claiming, write_untrained_run
from PIL import Image

from mmlib.cli import main

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


class _RunsCode:
    """A pickle payload: unpickling it would create the file `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 100, 50)).save(buffer, "JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def _edit_tokenizer(run: Path, edit: str) -> None:
    path = run / "tokenizer.json"
    payload = json.loads(path.read_text())
    if edit == "counts":
        payload["word_counts"] = {word: "many" for word in payload["word_counts"]}
    else:  # the same words under other ids
        payload["idx2word"] = [*payload["idx2word"][:4], *payload["idx2word"][:3:-1]]
    path.write_text(json.dumps(payload))


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The run folders and input files the table's `{names}` stand for."""
    root = tmp_path_factory.mktemp("bad-input")
    run = write_untrained_run(root / "run")
    for name in ("counts", "permuted", "evil"):
        shutil.copytree(run, root / name)
    _edit_tokenizer(root / "counts", "counts")
    _edit_tokenizer(root / "permuted", "permuted")
    torch.save({"model": _RunsCode(root / "payload-ran")}, root / "evil/best.pt")
    files = {
        "notes.txt": b"not an image\n",
        "notes.png": b"not an image\n",
        "empty.png": b"",
        "random.png": os.urandom(2000),
        "cut.jpg": _truncated_jpeg(),
        "bomb.png": png_claiming(20000, 20000),
        "a-file": b"",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    Image.new("RGB", (40, 30), (90, 120, 60)).save(root / "good.png")
    return {"root": str(root), "run": str(run)}


# Each case: argv ({root}: the fixture's folder, {run}: its run), then the words its one line must
# hold: the path or field, and what to do.
CASES = {
    "caption a text file": (
        ["caption", "{run}", "{root}/notes.txt"],
        ["notes.txt: not a readable image", "PNG or JPEG"],
    ),
    "caption a text file named .png": (
        ["caption", "{run}", "{root}/notes.png"],
        ["notes.png: not a readable image", "PNG or JPEG"],
    ),
    "caption an empty .png": (
        ["caption", "{run}", "{root}/empty.png"],
        ["empty.png: not a readable image", "empty file", "PNG or JPEG"],
    ),
    "caption random bytes": (
        ["caption", "{run}", "{root}/random.png"],
        ["random.png: not a readable image", "PNG or JPEG"],
    ),
    "caption a truncated JPEG": (
        ["caption", "{run}", "{root}/cut.jpg"],
        ["cut.jpg: not a readable image", "complete PNG or JPEG"],
    ),
    "caption a 20000x20000 header": (
        ["caption", "{run}", "{root}/bomb.png"],
        ["bomb.png: the image claims 400,000,000 pixels", "limit", "downscale it"],
    ),
    "caption --device bogus": (
        ["caption", "{run}", "{root}/good.png", "--device", "bogus"],
        ["device='bogus'", "allowed values are auto, cpu, cuda, cuda:N, mps"],
    ),
    "caption --device cuda without a GPU": pytest.param(
        ["caption", "{run}", "{root}/good.png", "--device", "cuda"],
        ["device='cuda'", "no CUDA GPU", "use device='auto' or 'cpu'"],
        marks=NO_GPU,
    ),
    "evaluate --device cuda without a GPU": pytest.param(
        ["evaluate", "{run}", "--device", "cuda"],
        ["device='cuda'", "no CUDA GPU", "use device='auto' or 'cpu'"],
        marks=NO_GPU,
    ),
    "evaluate --device bogus": (
        ["evaluate", "{run}", "--device", "bogus"],
        ["device='bogus'", "allowed values"],
    ),
    "imagine --device cuda:x": (
        ["imagine", "{run}", "ship", "--device", "cuda:x", "--out", "{root}/out.png"],
        ["device='cuda:x'", "allowed values"],
    ),
    "fit-imagine --steps 0": (
        ["fit-imagine", "{run}", "--steps", "0"],
        ["steps=0", "at least 40 steps"],
    ),
    "fit-imagine --steps -5": (
        ["fit-imagine", "{run}", "--steps", "-5"],
        ["steps=-5", "at least 40"],
    ),
    "fit-imagine --steps 20": (
        ["fit-imagine", "{run}", "--steps", "20"],
        ["steps=20", "at least 40"],
    ),
    "demo --port 99999": (
        ["demo", "{run}", "--port", "99999"],
        ["port 99999", "allowed 1 to 65535", "another --port"],
    ),
    "demo --port -1": (["demo", "{run}", "--port", "-1"], ["port -1", "allowed 1 to 65535"]),
    "tokenizer.json with non-integer counts": (
        ["caption", "{root}/counts", "{root}/good.png"],
        ["counts/tokenizer.json: 'word_counts'", "'many'", "the run's own tokenizer.json"],
    ),
    "tokenizer.json whose vocabulary was permuted": (
        ["caption", "{root}/permuted", "{root}/good.png"],
        ["permuted/tokenizer.json", "permuted/manifest.json", "put back the run's own"],
    ),
    "best.pt that runs code when unpickled": (
        ["caption", "{root}/evil", "{root}/good.png"],
        ["evil/best.pt: the file holds code (exec)", "will not run"],
    ),
    'imagine ""': (
        ["imagine", "{run}", "", "--out", "{root}/out.png"],
        ["caption '' has no words", "type a caption"],
    ),
    'imagine "   "': (
        ["imagine", "{run}", "   ", "--out", "{root}/out.png"],
        ["caption '   ' has no words", "type a caption"],
    ),
    "imagine an emoji-only caption": (
        ["imagine", "{run}", "\U0001f6a2\U0001f319", "--out", "{root}/out.png"],
        ["has no words", "type a caption"],
    ),
    "imagine words the vocabulary lacks": (
        ["imagine", "{run}", "xyzzy", "--out", "{root}/out.png"],
        ["'xyzzy'", "vocabulary", "type a caption"],
    ),
    "imagine --out under a file": (
        ["imagine", "{run}", "ship", "--out", "{root}/a-file/x.png"],
        ["a-file is a file, not a folder", "choose another path"],
    ),
    "imagine --out a folder": (
        ["imagine", "{run}", "ship", "--out", "{root}"],
        ["a folder", "give a file name"],
    ),
    "caption --beam -1": (
        ["caption", "{run}", "{root}/good.png", "--beam", "-1"],
        ["--beam", "-1: must be >= 1"],
    ),
    "caption --beam 0": (
        ["caption", "{run}", "{root}/good.png", "--beam", "0"],
        ["--beam", "0: must be >= 1"],
    ),
    "caption --beam wide": (
        ["caption", "{run}", "{root}/good.png", "--beam", "wide"],
        ["--beam", "expected an integer >= 1"],
    ),
}


def _argv(command: list[str], where: dict[str, str]) -> list[str]:
    return [part.format(**where) for part in command]


def _run(argv: list[str]) -> int:
    """`main(argv)`'s exit status; argparse's refusals exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.filterwarnings("error")  # no warning line either
@pytest.mark.parametrize(("command", "words"), CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_and_status_2(
    command: str, words: list[str], where: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = _run(_argv(command, where))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and not captured.out, captured
    if lines[0].startswith("usage:"):  # argparse's refusal: its usage, then one error line
        assert lines[-1].startswith("python -m mmlib"), lines
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(word in lines[-1] for word in words), lines
    assert not any(advice in captured.err for advice in ("weights_only", "safe_globals"))
    assert not (Path(where["root"]) / "payload-ran").exists()
