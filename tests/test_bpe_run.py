"""A run trained with the byte-level BPE tokenizer (`--set tokenizer=bpe`), end to end through
`mmlib.cli.main` in-process: train (with imagine.pt and metrics.json), caption, evaluate,
imagine, resume, the demo's callbacks, and export, which a BPE run is refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmlib.checkpoint import load_model
from mmlib.cli import main
from mmlib.data.tokenizer import BpeTokenizer, normalize
from mmlib.inference.predictor import Predictor, PromptError
from mmlib.serving.demo import DemoInputError, caption_image, embed_pool, imagine_image
from mmlib.serving.export import ExportError, export_run


def _train_argv(data: Path, root: Path) -> list[str]:
    """`train` of the tiny preset on `data` with the BPE tokenizer, 2 epochs, imagine.pt fitted
    in its fewest steps, everything written under `root`."""
    settings = {
        "tokenizer": "bpe",
        "bpe_vocab_size": 320,
        "checkpoint_dir": root / "checkpoints",
        "cache_dir": root / "cache",
        "image_size": 32,
        "batch_size": 16,
        "num_workers": 0,
        "imagine_steps": 40,
        "warmup_steps": 2,
        "precision": "fp32",
    }
    argv = ["train", "--preset", "tiny", "--data", str(data), "--epochs", "2", "--run", "bpe"]
    for name, value in settings.items():
        argv += ["--set", f"{name}={value}"]
    return [*argv, "--device", "cpu"]


@pytest.fixture(scope="module")
def bpe_run(synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny BPE run with `imagine.pt` and `metrics.json`; treat it as read-only."""
    root = tmp_path_factory.mktemp("bpe-run")
    assert main(_train_argv(synthetic_dataset, root)) == 0
    return root / "checkpoints" / "bpe"


@pytest.fixture
def image(synthetic_dataset: Path) -> Path:
    return next(synthetic_dataset.rglob("*.png"))


def test_training_writes_a_bpe_tokenizer_that_the_manifest_fingerprints(bpe_run: Path) -> None:
    assert json.loads((bpe_run / "tokenizer.json").read_text())["kind"] == "bpe"
    assert json.loads((bpe_run / "config.json").read_text())["tokenizer"] == "bpe"
    model, tokenizer, _ = load_model(bpe_run)
    assert isinstance(tokenizer, BpeTokenizer) and model.vocab_size == len(tokenizer) <= 320
    manifest = json.loads((bpe_run / "manifest.json").read_text())
    assert manifest["vocabulary_sha256"] == tokenizer.fingerprint()
    assert {"best.pt", "last.pt", "imagine.pt", "metrics.json"} <= {
        p.name for p in bpe_run.iterdir()
    }


def test_caption_writes_plain_words(
    bpe_run: Path, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["caption", str(bpe_run), str(image), "--device", "cpu"]) == 0
    path, caption = capsys.readouterr().out.strip().split("\t")
    assert path == str(image) and caption.split()
    assert caption == normalize(caption)  # words, no byte-level markers


def test_evaluate_scores_detokenized_words(
    bpe_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = shutil.copytree(bpe_run, tmp_path / "bpe")
    (run / "metrics.json").unlink()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0, capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert "bleu" in json.dumps(metrics).lower() and "recall" in capsys.readouterr().out


def test_imagine_takes_any_word_and_refuses_no_words(
    bpe_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "zebra.png"
    argv = ["imagine", str(bpe_run), "a zebra beside a ship", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.stat().st_size > 0
    predictor = Predictor.load(bpe_run, device="cpu")
    predictor.check_prompt("a qwzx")  # no word is unknown to a byte-level BPE
    with pytest.raises(PromptError, match="has no words"):
        predictor.check_prompt("!?")


def test_resume_adds_an_epoch_with_the_runs_own_tokenizer(
    bpe_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = shutil.copytree(bpe_run, tmp_path / "bpe")
    tokenizer_file = (run / "tokenizer.json").read_bytes()
    argv = ["train", "--resume", str(run), "--epochs", "3", "--no-imagine", "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 3  # the header, then epochs 1 to 3
    assert (run / "tokenizer.json").read_bytes() == tokenizer_file


def test_a_resume_cannot_change_the_tokenizer_kind(
    bpe_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = shutil.copytree(bpe_run, tmp_path / "bpe")
    argv = ["train", "--resume", str(run), "--epochs", "3", "--set", "tokenizer=word"]
    assert main([*argv, "--no-imagine", "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip()
    assert "tokenizer='word'" in error and "trained with the 'bpe' tokenizer" in error, error
    assert (run / "history.csv").read_text() == (bpe_run / "history.csv").read_text()


def test_export_of_a_bpe_run_is_refused_in_one_line(
    bpe_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported"
    argv = ["export", str(bpe_run), "--format", "torch-export", "--out", str(out)]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert str(bpe_run) in error and "'bpe' tokenizer" in error
    assert "whole words only" in error and "--set tokenizer=word" in error
    assert not out.exists() or not any(out.iterdir())  # nothing exported
    with pytest.raises(ExportError, match="'bpe' tokenizer"):
        export_run(bpe_run, "onnx", tmp_path / "onnx")


def test_the_demos_callbacks_caption_and_imagine(bpe_run: Path, image: Path) -> None:
    predictor = Predictor.load(bpe_run, device="cpu")
    pool = ["a ship beside a tower", "two birds above a house"]
    greedy, beam, rows = caption_image(predictor, str(image), pool, embed_pool(predictor, pool))
    assert greedy == predictor.caption([image])[0] and beam == normalize(beam)
    assert {row[0] for row in rows} == set(pool)
    assert imagine_image(predictor, "a zebra above a ship").mode == "RGB"
    with pytest.raises(DemoInputError, match="has no words"):
        imagine_image(predictor, "\U0001f6a2")
