"""No silent wrong results, no runaway allocation (issue 22): a non-finite or out-of-range number,
a data path given that does not exist, a size past its cap, or a first training step the
estimate says the device cannot hold is one line naming the option or field and what to do, exit
status 2, no traceback, and nothing written. `mmlib.cli.main` runs in-process."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import TINY_MODEL, write_untrained_run
from PIL import Image

from mmlib.cli import main
from mmlib.config import Config
from mmlib.sizing import batch_size
from mmlib.sizing.memory import estimate_memory

MIB = 2**20


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An untrained run `{run}`, an image `{root}/good.png`, an images folder `{root}/images`, a
    config `{root}/huge.json` with a 100,000,000-wide latent and `{root}/tiny.json` (a tiny
    model writing under `{root}/checkpoints`)."""
    root = tmp_path_factory.mktemp("numbers")
    run = write_untrained_run(root / "run")
    Image.new("RGB", (40, 30), (90, 120, 60)).save(root / "good.png")
    (root / "images").mkdir()
    (root / "huge.json").write_text(json.dumps({"latent_dim": 100_000_000}))
    tiny = Config(**TINY_MODEL, checkpoint_dir=root / "checkpoints", imagine_steps=0)
    tiny.save(root / "tiny.json")
    return {"root": str(root), "run": str(run)}


CAPTION = ["caption", "{run}", "{root}/good.png", "--beam", "3"]
TRAIN = ["train", "--config", "{root}/tiny.json"]

# Each case: argv ({root}, {run}: the fixture's), then the words its one line must hold.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "caption --length-penalty nan": (
        [*CAPTION, "--length-penalty", "nan"],
        ["--length-penalty", "nan: out of range: allowed [0, 5]"],
    ),
    "caption --length-penalty inf": (
        [*CAPTION, "--length-penalty", "inf"],
        ["--length-penalty", "inf: out of range: allowed [0, 5]"],
    ),
    "caption --length-penalty -1": (
        [*CAPTION, "--length-penalty", "-1"],
        ["--length-penalty", "allowed [0, 5]"],
    ),
    "caption --length-penalty long": (
        [*CAPTION, "--length-penalty", "long"],
        ["--length-penalty", "expected a number in [0, 5]"],
    ),
    "caption --beam 100000": (
        ["caption", "{run}", "{root}/good.png", "--beam", "100000"],
        ["--beam", "100000: must be <= 64"],
    ),
    "size-batch --headroom nan": (
        ["size-batch", "--headroom", "nan"],
        ["--headroom", "allowed [0, 1)"],
    ),
    "size-batch --headroom 1": (["size-batch", "--headroom", "1"], ["--headroom", "[0, 1)"]),
    "train --lr nan": ([*TRAIN, "--lr", "nan"], ["--lr", "nan: out of range: allowed (0, 10]"]),
    "train --lr inf": ([*TRAIN, "--lr", "inf"], ["--lr", "allowed (0, 10]"]),
    "train --lr 0": ([*TRAIN, "--lr", "0"], ["--lr", "allowed (0, 10]"]),
    "data synth --image-size 30000": (
        ["data", "synth", "--image-size", "30000", "--out", "{root}/syn"],
        ["--image-size", "30000: must be <= 4096"],
    ),
    "train --metadata that does not exist": (
        [*TRAIN, "--metadata", "{root}/some/typo/meta.json"],
        ["--metadata", "typo/meta.json: no such file", "check the path"],
    ),
    "train --set metadata_path that does not exist": (
        [*TRAIN, "--set", "metadata_path={root}/typo.json"],
        ["--metadata", "typo.json: no such file"],
    ),
    "train --images that does not exist": (
        [*TRAIN, "--images", "{root}/typo-images"],
        ["--images", "typo-images: no such folder", "check the path"],
    ),
    "train --images without metadata": (
        [*TRAIN, "--images", "{root}/images"],
        ["--images", "no metadata at", "pass --metadata"],
    ),
    "train --set latent_dim=100000000": (
        [*TRAIN, "--set", "latent_dim=100000000"],
        ["latent_dim=100000000 is out of range", "between 1 and 65536"],
    ),
    "train --set embedding_dim=100000": (
        [*TRAIN, "--set", "embedding_dim=100000"],
        ["embedding_dim=100000", "between 1 and 65536"],
    ),
    "train --set vocab_size=10000000": (
        [*TRAIN, "--set", "vocab_size=10000000"],
        ["vocab_size=10000000", "between 5 and 1000000"],
    ),
    "train --set feedforward_dim=1000000": (
        [*TRAIN, "--set", "feedforward_dim=1000000"],
        ["feedforward_dim=1000000", "between 1 and 262144"],
    ),
    "train --config with a huge latent": (
        ["train", "--config", "{root}/huge.json"],
        ["huge.json: latent_dim=100000000 is out of range", "65536"],
    ),
}


def _run(argv: list[str]) -> int:
    """`main(argv)`'s exit status; argparse's refusals exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize(("command", "words"), CASES.values(), ids=CASES.keys())
def test_a_bad_number_or_path_is_one_line_and_status_2(
    command: list[str],
    words: list[str],
    where: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(where["root"])  # no data/metadata here: the default falls back
    status = _run([part.format(**where) for part in command])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and not captured.out and "Traceback" not in captured.err, captured
    if lines[0].startswith("usage:"):  # argparse's refusal: its usage, then one error line
        assert lines[-1].startswith("python -m mmlib"), lines
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(word in lines[-1] for word in words), lines
    root = Path(where["root"])
    assert not (root / "checkpoints").exists() and not (root / "syn").exists()


def _affine_estimate(
    config: Config, batch: int, precision: str | None = None, device_type: str = "cuda"
) -> Any:
    """A stand-in for `estimate_memory`: 1 MiB a sample."""
    return SimpleNamespace(total=batch * MIB)


def test_training_refuses_a_first_step_past_the_device_memory(
    where: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(batch_size, "available_memory", lambda device: 10 * MIB)
    monkeypatch.setattr(batch_size, "estimate_memory", _affine_estimate)
    status = _run(["train", "--config", f"{where['root']}/tiny.json", "--batch-size", "64"])
    error = capsys.readouterr().err
    assert status == 2 and len(error.strip().splitlines()) == 1, error
    assert error.startswith("error: batch_size=64: the first training step needs an estimated")
    assert "cpu has 0.0 GiB available" in error and "set batch_size=10 (the largest" in error
    assert not (Path(where["root"]) / "checkpoints").exists()


def test_the_check_is_skipped_where_the_quick_bound_fits_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the estimate ran")

    monkeypatch.setattr(batch_size, "estimate_memory", never)
    config = Config(**TINY_MODEL)
    bound = batch_size.quick_memory_bound(config, 16)
    monkeypatch.setattr(batch_size, "available_memory", lambda device: 2 * bound)
    batch_size.check_memory_fits(config, torch.device("cpu"), 16)
    monkeypatch.setattr(batch_size, "available_memory", lambda device: None)
    batch_size.check_memory_fits(config, torch.device("cpu"), 16)


@pytest.mark.parametrize(("model", "batch"), [("cpu-tiny", 1), ("tiny", 16)])
def test_the_quick_bound_is_above_the_estimate(model: str, batch: int) -> None:
    config = Config(**TINY_MODEL) if model == "tiny" else Config.preset(model)
    estimate = estimate_memory(config, batch, device_type="cpu").total
    assert estimate <= batch_size.quick_memory_bound(config, batch) <= 8 * estimate


def test_beam_width_is_capped_in_the_library_too(where: dict[str, str]) -> None:
    from mmlib.inference.predictor import Predictor

    predictor = Predictor.load(where["run"])
    with pytest.raises(ValueError, match="beam_width=65: must be from 1 to 64"):
        predictor.caption([Path(where["root"]) / "good.png"], "beam", beam_width=65)
