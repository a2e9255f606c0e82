"""Tests for mmlib.course.helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import write_untrained_run

from mmlib.checkpoint import load_run_tokenizer
from mmlib.config import Config
from mmlib.course.helpers import (
    course_model_config,
    enter_project_root,
    fit_batches,
    project_root,
    train_steps,
)
from mmlib.model.step import REPORTED

ROOT = Path(__file__).resolve().parents[1]


def test_project_root_is_found_from_a_subfolder() -> None:
    assert project_root(ROOT / "notebooks") == ROOT
    assert project_root(ROOT) == ROOT


def test_project_root_falls_back_to_the_start(tmp_path: Path) -> None:
    assert project_root(tmp_path) == tmp_path.resolve()


def test_enter_project_root_changes_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "notebooks")
    assert enter_project_root() == ROOT
    assert Path.cwd() == ROOT


def test_ensure_course_run_trains_once(monkeypatch, tmp_path) -> None:
    from mmlib.config import Config
    from mmlib.course import helpers as course

    calls: list[Config] = []

    def fake_train(prepared):
        config = prepared.config  # the helper resolves the run (prepare_run) first
        run = Path(config.checkpoint_dir) / config.run_name
        run.mkdir(parents=True)
        (run / "best.pt").write_bytes(b"")
        (run / "metrics.json").write_text("{}")
        calls.append(config)
        return run, None

    monkeypatch.setattr(course, "train_and_evaluate", fake_train)
    config = Config.preset("cpu-tiny", checkpoint_dir=tmp_path, run_name="course")
    assert course.ensure_course_run(config) == tmp_path / "course"
    assert course.ensure_course_run(config) == tmp_path / "course"
    assert len(calls) == 1


def test_validation_examples_of_a_trained_run(tiny_config) -> None:
    from mmlib.course.helpers import validation_examples
    from mmlib.training.trainer import Trainer

    config = tiny_config(num_epochs=1)
    Trainer(config, log=lambda _line: None, progress=False).fit()
    examples = validation_examples("tiny", count=3, checkpoint_dir=config.checkpoint_dir)
    assert examples.images.shape == examples.reconstructions.shape == (3, 3, 32, 32)
    assert examples.reconstructions.dtype == examples.images.dtype
    assert len(examples.generated) == len(examples.truth) == 3
    assert all(caption.startswith("An engraving") for caption in examples.truth)
    assert not torch.equal(examples.images, examples.reconstructions)


def test_ensure_run_trains_once_then_loads(tiny_config, monkeypatch) -> None:
    from mmlib.course import helpers as course

    config = tiny_config(num_epochs=2)
    run = course.ensure_run(config)
    assert len((run / "history.csv").read_text().splitlines()) == 3
    monkeypatch.setattr(course, "Trainer", lambda *a, **k: pytest.fail("trained again"))
    assert course.ensure_run(config) == run
    monkeypatch.undo()
    longer = config.with_overrides({"num_epochs": 3})  # an unfinished history trains again
    calls = []
    monkeypatch.setattr(course.Trainer, "fit", lambda self: calls.append(self) or [])
    course.ensure_run(longer)
    assert len(calls) == 1


def test_train_steps_stops_after_the_steps_and_logs_each(tiny_config) -> None:
    trainer = train_steps(tiny_config(num_epochs=3), steps=3)
    assert [row["step"] for row in trainer.steps] == [1, 2, 3]
    assert trainer.global_step == 3 and trainer.stopped
    with pytest.raises(ValueError, match="steps=0"):
        train_steps(tiny_config(), steps=0)


def test_fit_batches_learns_the_batches_it_is_given(tiny_config) -> None:
    config = tiny_config()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, config.image_size, config.image_size, generator=generator) * 2 - 1
    tokens = torch.tensor([[1, 5, 6, 2], [1, 6, 5, 2], [1, 7, 2, 0], [1, 5, 7, 2]])
    model, losses = fit_batches(config, 8, [(images, tokens)], steps=20)
    assert len(losses) == 20 and set(losses[0]) == {*REPORTED}
    assert losses[-1]["total"] < 0.5 * losses[0]["total"]
    assert not model.training
    again, same_losses = fit_batches(config, 8, [(images, tokens)], steps=20)
    assert same_losses == losses  # seeded as the Trainer seeds its model
    with pytest.raises(ValueError, match="steps=0"):
        fit_batches(config, 8, [(images, tokens)], steps=0)


def test_the_sibling_is_the_course_model_smaller_with_its_losses() -> None:
    from mmlib.config import Config
    from mmlib.course.helpers import COURSE_PRESET, sibling_config
    from mmlib.model.multimodal import MultimodalModel

    sibling, course = sibling_config(learning_rate=0.01), Config.preset(COURSE_PRESET)
    assert sibling.learning_rate == 0.01 and sibling.warmup_steps == 0
    assert sibling.image_size < course.image_size and sibling.embedding_dim < course.embedding_dim
    weights = ("image_loss_weight", "caption_loss_weight", "perceptual_loss_weight")
    assert [getattr(sibling, w) for w in weights] == [getattr(course, w) for w in weights]
    size = {
        c.image_size: MultimodalModel(c, 34).parameter_summary()["total"] for c in (sibling, course)
    }
    assert size[sibling.image_size] * 5 < size[course.image_size]


def test_learning_rate_trial_trains_each_step_at_the_rate_given(tiny_config) -> None:
    from mmlib.course.helpers import learning_rate_trial

    low = learning_rate_trial(1e-3, tiny_config(), steps=4)
    assert len(low) == 4 and low == learning_rate_trial(1e-3, tiny_config(), steps=4)
    high = learning_rate_trial(1.0, tiny_config(), steps=4)
    assert high[0] == low[0]  # step 1's loss is measured before the first update
    assert high[1] > low[1]  # a rate 1000x higher overshoots at once


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_tokenizer_trial_trains_the_kind_asked_and_scores_bits_per_word(tiny_config, kind) -> None:
    from mmlib.course.helpers import tokenizer_trial
    from mmlib.data.tokenizer import load_tokenizer

    config = tiny_config(bpe_vocab_size=300, run_name=f"trial-{kind}")
    trial = tokenizer_trial(kind, steps=3, config=config)
    tokenizer = load_tokenizer(config.checkpoint_dir / f"trial-{kind}" / "tokenizer.json")
    assert (trial.kind, tokenizer.kind, trial.vocabulary) == (kind, kind, len(tokenizer))
    assert trial.seconds_per_step > 0 and 0 < trial.bits_per_word < 100
    embedding_rows = 3 * config.embedding_dim * trial.vocabulary  # two embeddings and the output
    assert trial.parameters > embedding_rows
    assert tokenizer_trial(kind, steps=3, config=config).bits_per_word == trial.bits_per_word


def test_real_sample_captions_reads_a_flickr8k_folder_split_by_image(tiny_config, tmp_path) -> None:
    from conftest import write_flickr8k

    from mmlib.course.helpers import real_sample_captions

    folder = write_flickr8k(tmp_path / "flickr")
    sample = real_sample_captions(tiny_config(val_fraction=0.5), folder)
    assert sample is not None
    assert (sample.name, len(sample.train), len(sample.val)) == ("Flickr8k sample", 5, 5)
    dogs = {"dog" in caption for caption in sample.train + sample.val}
    assert dogs == {True, False} and len({"dog" in c for c in sample.train}) == 1  # by image
    assert "1 to train on (5 captions), 1 to validate (5 captions)" in sample.message


def test_real_sample_is_optional_and_its_path_comes_from_the_environment(
    tiny_config, tmp_path, monkeypatch
) -> None:
    from conftest import write_flickr8k

    from mmlib.course.helpers import (
        REAL_SAMPLE,
        REAL_SAMPLE_VARIABLE,
        real_sample_captions,
        real_sample_folder,
    )

    monkeypatch.delenv(REAL_SAMPLE_VARIABLE, raising=False)
    assert real_sample_folder() == REAL_SAMPLE
    monkeypatch.setenv(REAL_SAMPLE_VARIABLE, str(tmp_path / "absent"))
    assert real_sample_folder() == tmp_path / "absent"
    assert real_sample_captions(tiny_config()) is None
    monkeypatch.setenv(REAL_SAMPLE_VARIABLE, str(write_flickr8k(tmp_path / "flickr")))
    sample = real_sample_captions(tiny_config(val_fraction=0.5))
    assert sample is not None and len(sample.train) == 5


def test_long_tail_captions_is_deprecated_and_falls_back_to_the_own_captions(
    tiny_config, tmp_path
) -> None:
    from conftest import write_flickr8k

    from mmlib.course.helpers import long_tail_captions

    with pytest.warns(DeprecationWarning, match="real_sample_captions"):
        sample = long_tail_captions(tiny_config(), tmp_path / "absent")
    assert sample.name == "own captions" and sample.train and sample.val
    assert sample.message.startswith(f"No real captioned sample at {tmp_path / 'absent'}")
    with pytest.warns(DeprecationWarning):
        real = long_tail_captions(tiny_config(val_fraction=0.5), write_flickr8k(tmp_path / "f"))
    assert real.name == "Flickr8k sample"


def test_course_model_config_takes_the_vocabulary_of_the_run(tmp_path: Path) -> None:
    run = write_untrained_run(tmp_path / "run")
    config = course_model_config(run)
    words = len(load_run_tokenizer(run))
    assert config.vocab_size == words < Config.load(run / "config.json").vocab_size
