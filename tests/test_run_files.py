"""Run files validated on load (issue 22): a damaged `config.json`, `tokenizer.json`,
`manifest.json`, `history.csv`, `metrics.json`, `best.pt`, `last.pt` or `imagine.pt` is one line
naming the file, the entry and what to do, exit status 2, and the run folder left byte for byte
as it was; a run whose vocabulary cannot be checked is refused until `trust-vocabulary` records
it; a run stopped mid-epoch resumes only with the batch size its position counts in."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import tiny_training_config, write_engraving, write_untrained_run

from mmlib.checkpoint import (
    CheckpointError,
    check_training_state,
    load_checkpoint,
    load_model,
    model_state,
    save_checkpoint,
)
from mmlib.cli import main
from mmlib.config import Config, ConfigError
from mmlib.evaluation.metrics import load_metrics
from mmlib.files import read_json, read_json_object
from mmlib.training.trainer import Callback, Trainer, TrainingError


class StopAtStep(Callback):
    """Ask the trainer to stop after optimizer step `step` (as Ctrl-C would)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, step: int, losses: dict[str, float] | None) -> None:
        if step == self.step:
            trainer.request_stop()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, synthetic_dataset: Path) -> Path:
    """`untrained` (`write_untrained_run`, on the synthetic data) and `stopped` (batch 16,
    stopped after 2 of its 3 batches: `last.pt` holds a position), with `history.csv` and
    `metrics.json`, and an image to caption; treat them as read-only."""
    root = tmp_path_factory.mktemp("run-files")
    untrained = write_untrained_run(root / "checkpoints/untrained")
    config = Config.load(untrained / "config.json").with_overrides({"data_dir": synthetic_dataset})
    config.save(untrained / "config.json")
    (untrained / "metrics.json").write_text(json.dumps({"bleu4": 0.5}))
    config = tiny_training_config(
        synthetic_dataset, root, num_epochs=2, log_interval=10, run_name="stopped", imagine_steps=0
    )
    Trainer(config, callbacks=[StopAtStep(2)], log=lambda _line: None, progress=False).fit()
    shutil.copy(root / "checkpoints/stopped/history.csv", untrained / "history.csv")
    write_engraving(root / "image.png")
    return root


def _replace(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(data)


def _config_field(**values: object) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        written = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**written, **values}))

    return edit


def _save(name: str, value: object) -> Callable[[Path], None]:
    return lambda run: save_checkpoint(value, run / name)


def _last(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        state = load_checkpoint(run / "last.pt")
        edit(state)
        save_checkpoint(state, run / "last.pt")

    return change


def _permuted_without_manifest(run: Path) -> None:
    payload = json.loads((run / "tokenizer.json").read_text())
    payload["idx2word"] = [*payload["idx2word"][:4], *payload["idx2word"][:3:-1]]
    (run / "tokenizer.json").write_text(json.dumps(payload))
    (run / "manifest.json").unlink()


NOT_UTF8 = b'{"seed": "\xff\xfe"}'
CAPTION = ["caption", "{run}", "{root}/image.png"]
RESUME = ["train", "--resume", "{run}", "--epochs", "3", "--no-imagine"]
HUGE = 10**9

# Each case: the run it copies, what it damages, the command, the words its one line must hold.
CASES = [
    pytest.param(
        "untrained",
        _replace("config.json", NOT_UTF8),
        CAPTION,
        ["config.json: not UTF-8 text", "put back the run's own config.json", "train the run"],
        id="config.json not UTF-8, caption",
    ),
    pytest.param(
        "untrained",
        _replace("config.json", pickle.dumps({"seed": 1})),
        CAPTION,
        ["config.json: not UTF-8 text (byte 0 is 0x80)", "put back the run's own config.json"],
        id="config.json a pickle, caption",
    ),
    pytest.param(
        "untrained",
        _config_field(latent_dim=HUGE),
        CAPTION,
        ["config.json: latent_dim=1000000000", "put back the run's own config.json"],
        id="config.json huge latent_dim, caption",
    ),
    pytest.param(
        "untrained",
        _config_field(latent_dim=0),
        CAPTION,
        ["config.json: latent_dim=0 is out of range", "put back the run's own config.json"],
        id="config.json latent_dim 0, caption",
    ),
    pytest.param(
        "untrained",
        _config_field(num_heads=3),
        CAPTION,
        ["config.json: embedding_dim=32 must be divisible by num_heads=3", "put back"],
        id="config.json heads not dividing the width, caption",
    ),
    pytest.param(
        "untrained",
        _replace("history.csv", b"epoch,train_total\n1,\xff\n"),
        ["curves", "{run}", "--out", "{root}/curves.png"],
        ["history.csv: not UTF-8 text", "put back the run's own file"],
        id="history.csv not UTF-8, curves",
    ),
    pytest.param(
        "untrained",
        _replace("metrics.json", NOT_UTF8),
        ["evaluate", "{run}"],
        ["metrics.json: not UTF-8 text", "delete it", "python -m mmlib evaluate"],
        id="metrics.json not UTF-8, evaluate",
    ),
    pytest.param(
        "untrained",
        _replace("metrics.json", b"[]"),
        ["evaluate", "{run}"],
        ["metrics.json: holds a JSON array, not an object", "python -m mmlib evaluate"],
        id="metrics.json an array, evaluate",
    ),
    pytest.param(
        "untrained",
        _save("best.pt", [1, 2]),
        CAPTION,
        ["best.pt holds a list, not model weights", "train the run again"],
        id="best.pt a list, caption",
    ),
    pytest.param(
        "untrained",
        _save("best.pt", torch.zeros(3)),
        CAPTION,
        ["best.pt holds a Tensor, not model weights", "another checkpoint of the run"],
        id="best.pt a tensor, caption",
    ),
    pytest.param(
        "untrained",
        _save("best.pt", {"model": 5}),
        CAPTION,
        ["best.pt: 'model' holds 5, not model weights", "train the run again"],
        id="best.pt model 5, caption",
    ),
    pytest.param(
        "untrained",
        _save("imagine.pt", [1, 2]),
        ["imagine", "{run}", "a ship", "--out", "{root}/ship.png"],
        ["imagine.pt holds a list, not model weights", "python -m mmlib fit-imagine"],
        id="imagine.pt a list, imagine",
    ),
    pytest.param(
        "untrained",
        _permuted_without_manifest,
        CAPTION,
        ["manifest.json: not found", "python -m mmlib trust-vocabulary"],
        id="no manifest.json, caption",
    ),
    pytest.param(
        "stopped",
        _last(lambda state: state.pop("optimizer")),
        RESUME,
        ["last.pt: no 'optimizer' entry", "delete", "to start the run again"],
        id="last.pt without optimizer, resume",
    ),
    pytest.param(
        "stopped",
        _last(lambda state: state["position"].pop("sums")),
        RESUME,
        ["last.pt: 'position': no 'sums' entry", "to start the run again"],
        id="last.pt truncated position, resume",
    ),
    pytest.param(
        "stopped",
        _last(lambda state: state.update(epoch="two")),
        RESUME,
        ["last.pt: 'epoch' is 'two', expected an integer", "to start the run again"],
        id="last.pt epoch 'two', resume",
    ),
    pytest.param(
        "stopped",
        lambda run: None,
        [*RESUME, "--batch-size", "32"],
        ["stopped in the middle of epoch 1, after 2 batches of 16", "--batch-size 16 (not 32)"],
        id="batch size changed mid-epoch, resume",
    ),
    pytest.param(
        "stopped",
        lambda run: (run / "manifest.json").unlink(),
        RESUME,
        ["manifest.json: not found", "python -m mmlib trust-vocabulary"],
        id="no manifest.json, resume",
    ),
]


def _contents(run: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(run.iterdir())}


@pytest.mark.parametrize(("source", "damage", "argv", "words"), CASES)
def test_a_damaged_run_file_is_one_line_and_nothing_is_written(
    runs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    damage: Callable[[Path], None],
    argv: list[str],
    words: list[str],
) -> None:
    run = Path(shutil.copytree(runs / "checkpoints" / source, tmp_path / source))
    damage(run)
    before = _contents(run)
    capsys.readouterr()
    assert main([part.format(run=run, root=runs) for part in argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in err
    assert _contents(run) == before


# ------------------------------------------------------------------ files.read_json


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (None, "x.json: not found; do this"),
        (b"\x80abc", "x.json: not UTF-8 text (byte 0 is 0x80), so not the JSON file"),
        (b'{"a": ', "x.json: not valid JSON (line 1, column 7): Expecting value; do this"),
    ],
    ids=["missing", "not UTF-8", "not JSON"],
)
def test_read_json_names_the_file_what_is_wrong_and_what_to_do(
    tmp_path: Path, data: bytes | None, says: str
) -> None:
    path = tmp_path / "x.json"
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(ConfigError) as refused:
        read_json(path, "do this", ConfigError)
    assert str(refused.value).startswith(str(tmp_path)) and says in str(refused.value)
    assert str(refused.value).endswith("do this") and "\n" not in str(refused.value)


def test_read_json_object_refuses_other_json_values(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": [1]}')
    assert read_json(path, "") == {"a": [1]} == read_json_object(path, "")
    path.write_text("[]")
    with pytest.raises(ValueError, match=r"x.json: holds a JSON array, not an object; fix it$"):
        read_json_object(path, "fix it")
    with pytest.raises(ValueError, match=r"cannot be read \(Is a directory\); fix it"):
        read_json_object(tmp_path, "fix it")


# ------------------------------------------------------------------ checkpoint validation


def test_model_state_takes_best_pt_or_the_model_of_last_pt() -> None:
    weights = {"layer.weight": torch.zeros(2)}
    assert model_state(weights, "best.pt") is weights
    assert model_state({"model": weights, "epoch": 1}, "last.pt") is weights
    with pytest.raises(CheckpointError, match=r"best.pt: 'layer' is not a named tensor"):
        model_state({"layer": [1.0]}, "best.pt")
    with pytest.raises(CheckpointError, match="best.pt holds an empty dict"):
        model_state({}, "best.pt")


def test_a_trained_last_pt_passes_and_a_negative_step_does_not(runs: Path) -> None:
    last = runs / "checkpoints/stopped/last.pt"
    state = check_training_state(load_checkpoint(last), last)
    assert state["position"]["batch_size"] == 16 and state["position"]["batches_done"] == 2
    state["global_step"] = -1
    with pytest.raises(CheckpointError, match="'global_step' is -1, expected >= 0"):
        check_training_state(state, last)


def test_metrics_json_figures_of_the_wrong_kind_are_refused(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"bleu4": "high"}))
    with pytest.raises(CheckpointError, match=r"bleu4='high' is not a figure .* evaluate"):
        load_metrics(tmp_path)


# ------------------------------------------------------------------ batch size on resume


def test_the_batch_size_may_change_when_a_run_resumes_at_an_epoch_end(
    runs: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(runs / "checkpoints/stopped", tmp_path / "ended"))
    config = Config.load(run / "config.json").with_overrides({"checkpoint_dir": tmp_path})
    with pytest.raises(TrainingError, match="after 2 batches of 16"):
        Trainer(config.with_overrides({"batch_size": 32}), resume=run)
    assert Trainer(config, resume=run).config.batch_size == 16
    _last(lambda state: state.update(position=None))(run)
    assert Trainer(config.with_overrides({"batch_size": 32}), resume=run).config.batch_size == 32


def test_a_position_saved_before_it_held_the_batch_size_is_read_in_config_json(
    runs: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(runs / "checkpoints/stopped", tmp_path / "older"))
    _last(lambda state: state["position"].pop("batch_size"))(run)
    config = Config.load(run / "config.json").with_overrides({"checkpoint_dir": tmp_path})
    with pytest.raises(TrainingError, match="after 2 batches of 16; resume it with --batch"):
        Trainer(config.with_overrides({"batch_size": 32}), resume=run)


# ------------------------------------------------------------------ trust-vocabulary


def test_trust_vocabulary_shows_captions_then_records_the_vocabulary(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(runs / "checkpoints/untrained", tmp_path / "old"))
    (run / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="trust-vocabulary"):
        load_model(run)
    assert main(["trust-vocabulary", str(run), "--images", "2"]) == 0
    out = capsys.readouterr().out
    assert "Captions of 2 validation image(s)" in out and out.count("  reference: ") == 2
    assert f"wrote {run / 'manifest.json'}: if the captions above are garbled" in out
    load_model(run)  # verified now
    assert main(["trust-vocabulary", str(run)]) == 0
    assert "already records this vocabulary; nothing written" in capsys.readouterr().out


def test_trust_vocabulary_never_overwrites_a_manifest_that_disagrees(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(runs / "checkpoints/untrained", tmp_path / "swapped"))
    _permuted_without_manifest(run)
    shutil.copy(runs / "checkpoints/untrained/manifest.json", run / "manifest.json")
    before = _contents(run)
    assert main(["trust-vocabulary", str(run)]) == 2
    assert "put back the run's own tokenizer.json" in capsys.readouterr().err
    assert _contents(run) == before
