"""A run folder written before the split into sub-packages (commit 358dcaa, mmlib 0.1;
tests/fixtures/README.md has the command) still loads with today's code: `caption`,
`evaluate`, `train --resume`, `fit-imagine` + `imagine` and `export`, each through
`mmlib.cli.main` in-process on a copy in tmp_path."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from mmlib.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD_RUN = FIXTURES / "run-0.1"
OLD_DATA = FIXTURES / "run-0.1-data"
OLD_FILES = {"config.json", "tokenizer.json", "manifest.json", "best.pt", "last.pt"}


def _epochs(run: Path) -> list[int]:
    with (run / "history.csv").open(newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the old run and its data in tmp_path, the run pointed at the copied data.

    No command offers a flag for the data of a run's own split (`evaluate --data` evaluates on
    every record of another set instead), so the copy's config.json gets the copied data folder
    as its `data_dir`; every other field stays as 0.1 wrote it. The working directory is
    tmp_path, so the run's relative `cache_dir` ("cache") lands there too."""
    run = shutil.copytree(OLD_RUN, tmp_path / "run-0.1")
    data = shutil.copytree(OLD_DATA, tmp_path / "run-0.1-data")
    config = json.loads((run / "config.json").read_text())
    assert config["data_dir"] == "run-0.1-data"  # as the fixture was written
    config["data_dir"] = str(data)
    (run / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    monkeypatch.chdir(tmp_path)
    return run


def test_the_fixture_is_a_whole_small_run() -> None:
    assert OLD_FILES | {"history.csv", "steps.csv"} <= {p.name for p in OLD_RUN.iterdir()}
    assert _epochs(OLD_RUN) == [1]
    size = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert size < 400_000, f"tests/fixtures is {size} bytes: keep the old run small"


def test_caption(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = next((run.parent / "run-0.1-data").rglob("*.png"))
    assert main(["caption", str(run), str(image), "--device", "cpu"]) == 0
    output = capsys.readouterr()
    path, caption = output.out.strip().split("\t")
    assert path == str(image) and caption.split(), output
    assert "error" not in output.err


def test_captions_are_the_ones_the_code_before_the_tokenizer_protocol_wrote(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (FIXTURES / "run-0.1-captions.tsv").read_text().splitlines()
    expected = dict(line.split("\t") for line in lines)
    images = sorted((run.parent / "run-0.1-data").rglob("*.png"))[: len(expected)]
    assert [image.name for image in images] == list(expected)
    assert main(["caption", str(run), *map(str, images), "--device", "cpu"]) == 0
    written = dict(line.split("\t") for line in capsys.readouterr().out.strip().splitlines())
    assert {Path(path).name: caption for path, caption in written.items()} == expected


def test_evaluate(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not (run / "metrics.json").exists()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0, capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics, "evaluate wrote an empty metrics.json"
    assert "validation" in json.dumps(metrics)  # the run's own split, from its data_dir
    assert "recall" in capsys.readouterr().out


def test_train_resume_adds_one_epoch(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    last = (run / "last.pt").read_bytes()
    code = main(["train", "--resume", str(run), "--epochs", "2", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert _epochs(run) == [1, 2]
    assert (run / "last.pt").read_bytes() != last
    assert json.loads((run / "config.json").read_text())["num_epochs"] == 2


def test_fit_imagine_then_imagine(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit-imagine", str(run), "--device", "cpu", "--steps", "40"]) == 0
    assert (run / "imagine.pt").is_file()
    out = run.parent / "ship.png"
    code = main(["imagine", str(run), "a ship", "--device", "cpu", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 0


def test_export_torch_export(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run.parent / "exported"
    code = main(["export", str(run), "--format", "torch-export", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert {"image_encoder.pt2", "caption_step.pt2", "manifest.json", "runtime.py"} <= names
    assert json.loads((out / "tokenizer.json").read_text()) == json.loads(
        (run / "tokenizer.json").read_text()
    )
