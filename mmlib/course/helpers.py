"""What the course notebooks share: working from the project root, and one trained model."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from mmlib.checkpoint import (
    BEST_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    load_model,
    load_run_tokenizer,
)
from mmlib.config import Config
from mmlib.data.dataset import CaptionDataset
from mmlib.data.images import build_image_cache, to_pixels, to_uint8
from mmlib.data.sources import load_split
from mmlib.evaluation.metrics import caption_bits_per_word
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import REPORTED, MicroBatch, TrainingStep, make_optimizer
from mmlib.pipeline import train_and_evaluate
from mmlib.training.setup import prepare_run
from mmlib.training.trainer import Callback, Trainer

COURSE_PRESET = "cpu-tiny"
# The course model's smaller sibling: cpu-tiny's data, losses, optimizer and schedule at 32x32
# pixels with narrower, shallower layers (0.75 M parameters against 6.3 M), so that 50 steps take
# seconds on one CPU thread. No warm-up: the learning rate you pick acts from the first step.
SIBLING = {
    "image_size": 32,
    "base_channels": 16,
    "latent_dim": 128,
    "embedding_dim": 128,
    "feedforward_dim": 256,
    "num_layers": 1,
    "text_encoder_layers": 1,
    "batch_size": 32,
    "warmup_steps": 0,
}
LEARNING_RATE_TRIAL_STEPS = 50
TOKENIZER_TRIAL_STEPS = 150
REAL_SAMPLE = Path("../shared/real-samples/flickr8k-200")  # beside the project root, not in it
REAL_SAMPLE_VARIABLE = "MMLIB_REAL_SAMPLES"  # overrides REAL_SAMPLE's path (tests set it absent)
# The engravings with five captions each by different annotators (`make data` writes them): the
# tokenizer lesson's long tail. The course model trains on `data/synthetic`'s one-caption grammar.
ANNOTATORS_DATA = Path("data/annotators")


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding `pyproject.toml` and `mmlib/`.

    Falls back to `start` itself, so the course also runs from a plain folder of your own.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mmlib").is_dir():
            return folder
    return here


def enter_project_root() -> Path:
    """Change to the project root, so `Config`'s relative paths (`data/...`) mean the same in
    notebooks (which Jupyter starts in `notebooks/`) as on the command line."""
    root = project_root()
    os.chdir(root)
    return root


def ensure_run(config: Config) -> Path:
    """A run folder with all `config.num_epochs` epochs in its history: loaded if a previous call
    (or session) finished it, else trained afresh, quietly. Notebooks use it for short runs."""
    run_dir = Path(config.checkpoint_dir) / (config.run_name or config.preset_name)
    history = run_dir / HISTORY_FILE
    if history.is_file() and len(history.read_text().splitlines()) == config.num_epochs + 1:
        return run_dir
    Trainer(prepare_run(config), log=_quiet, progress=False).fit()
    return run_dir


def _quiet(_line: str) -> None:
    pass


class _StopAfter(Callback):
    """Asks the trainer to stop once it has taken `steps` optimizer steps, and notes when each
    step ended (`perf_counter` seconds)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.ends: list[float] = []

    def on_step_end(self, trainer: Trainer, step: int, losses: dict[str, float] | None) -> None:
        self.ends.append(time.perf_counter())
        if step >= self.steps:
            trainer.request_stop()


def train_steps(config: Config, steps: int) -> Trainer:
    """A quiet `Trainer` after `steps` optimizer steps of `config`, every step's losses in its
    `steps` list: the notebooks' short demonstrations (it writes its run folder as usual)."""
    return _timed_steps(config, steps)[0]


def _timed_steps(config: Config, steps: int) -> tuple[Trainer, float]:
    """`train_steps`, with the mean seconds per step after the first (which pays for warm-up)."""
    if steps < 1:
        raise ValueError(f"steps={steps}: must be at least 1")
    stop = _StopAfter(steps)
    trainer = Trainer(
        prepare_run(config.with_overrides({"log_interval": 1})),
        callbacks=[stop],
        log=_quiet,
        progress=False,
    )
    trainer.fit()
    ends = stop.ends
    return trainer, (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else float("nan")


def sibling_config(**overrides: object) -> Config:
    """The course model's smaller sibling: `COURSE_PRESET` with `SIBLING`, then `overrides`."""
    return Config.preset(COURSE_PRESET, **{**SIBLING, **overrides})


def learning_rate_trial(
    learning_rate: float, config: Config | None = None, steps: int = LEARNING_RATE_TRIAL_STEPS
) -> list[float]:
    """The total training loss of each of `steps` steps of `config` (default: the sibling, into
    `checkpoints/lr-trial/`, rewritten by every trial) at `learning_rate`."""
    config = (config or sibling_config(run_name="lr-trial")).with_overrides(
        {"learning_rate": learning_rate}
    )
    return [row["total"] for row in train_steps(config, steps).steps]


@dataclass(frozen=True)
class TokenizerTrial:
    """A short training of the course model's sibling with one kind of tokenizer."""

    kind: str
    vocabulary: int  # tokens, special ones included
    parameters: int  # of the whole model; the vocabulary's rows are 3 x embedding_dim each
    seconds_per_step: float
    bits_per_word: float  # the validation captions' teacher-forced loss, per word


def tokenizer_trial(
    kind: str, steps: int = TOKENIZER_TRIAL_STEPS, config: Config | None = None
) -> TokenizerTrial:
    """Train `config` (default: the sibling, into `checkpoints/tokenizer-<kind>/`) for `steps`
    steps with a `kind` tokenizer ("word" or "bpe"); measure its time per step and its caption
    loss in bits per word (`caption_bits_per_word`) on every validation caption."""
    config = (config or sibling_config(run_name=f"tokenizer-{kind}")).with_overrides(
        {"tokenizer": kind}
    )
    trainer, seconds = _timed_steps(config, steps)
    batches = _every_caption(trainer.val_set, batch_size=128)
    return TokenizerTrial(
        kind=kind,
        vocabulary=len(trainer.tokenizer),
        parameters=sum(p.numel() for p in trainer.model.parameters()),
        seconds_per_step=seconds,
        bits_per_word=caption_bits_per_word(trainer.model, trainer.tokenizer, batches),
    )


def _every_caption(dataset: CaptionDataset, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """(pixels, tokens) batches of every caption of `dataset`, each with its record's image."""
    record_of_row = torch.repeat_interleave(torch.arange(len(dataset.records)), dataset.counts)
    for rows in torch.split(torch.arange(len(record_of_row)), batch_size):
        yield to_pixels(dataset.images[record_of_row[rows]]), dataset.tokens[rows]


def ensure_course_run(config: Config | None = None) -> Path:
    """The course model's run folder, training it first (as `make train`) if it is missing."""
    config = config or Config.preset(COURSE_PRESET)
    run_dir = Path(config.checkpoint_dir) / (config.run_name or config.preset_name)
    if not ((run_dir / BEST_FILE).is_file() and (run_dir / METRICS_FILE).is_file()):
        run_dir, _ = train_and_evaluate(prepare_run(config))
    return run_dir


def course_model_config(run_dir: str | os.PathLike[str]) -> Config:
    """The config of the model a run trained: its `config.json` with `vocab_size` (or
    `bpe_vocab_size`, for a BPE run) set to its tokenizer's size (the config's is only an upper
    bound; the course's 34 words, not 8,000)."""
    run_dir = Path(run_dir)
    config = Config.load(run_dir / CONFIG_FILE)
    field = "vocab_size" if config.tokenizer == "word" else "bpe_vocab_size"
    return config.with_overrides({field: len(load_run_tokenizer(run_dir))})


def fit_batches(
    config: Config, vocab_size: int, batches: Sequence[MicroBatch], steps: int
) -> tuple[MultimodalModel, list[dict[str, float]]]:
    """A new model of `config` (seeded as the Trainer seeds it) after `steps` fp32 steps of
    the one training step over `batches` in turn, at the config's learning rate without a
    schedule, in eval mode; with each step's losses (`REPORTED`). How fast a model learns a few
    batches by heart: the notebooks' demonstrations of what helps or leaks."""
    if steps < 1 or not batches:
        raise ValueError(f"steps={steps}, {len(batches)} batches: need at least one of each")
    torch.manual_seed(config.seed)
    model = MultimodalModel(config, vocab_size)
    step = TrainingStep(model, make_optimizer(model, config, "cpu"), config, "fp32")
    losses = [step([batches[i % len(batches)]]).means.tolist() for i in range(steps)]
    return model.eval(), [dict(zip(REPORTED, row, strict=True)) for row in losses]


@dataclass(frozen=True)
class ValidationExamples:
    """Validation images, the model's reconstructions (both uint8 [N, C, H, W]) and captions."""

    images: torch.Tensor
    reconstructions: torch.Tensor
    generated: list[str]
    truth: list[str]


def validation_examples(
    run: str | Path, count: int = 6, checkpoint_dir: str | Path = "checkpoints"
) -> ValidationExamples:
    """The first `count` validation images of a run with its reconstructions and greedy captions."""
    model, tokenizer, config = load_model(run, checkpoint_dir)
    records = load_split(config).val[:count]
    images = build_image_cache(records, config.image_size, config.resize_mode, progress=False)
    pixels = to_pixels(images)
    return ValidationExamples(
        images=images,
        reconstructions=to_uint8(model.reconstruct(pixels)),
        generated=tokenizer.batch_decode(model.generate(pixels)),
        truth=[record.captions[0] for record in records],
    )


@dataclass(frozen=True)
class CaptionSample:
    """Training and validation captions of one data set, split by image, and where they are from."""

    name: str
    train: list[str]
    val: list[str]
    message: str


def long_tail_captions(config: Config, folder: Path = REAL_SAMPLE) -> CaptionSample:
    """Deprecated (0.1's name, kept until 0.3): `real_sample_captions`, or where the sample is
    absent the captions of `config`'s own data, with a message that says so."""
    warnings.warn(
        "long_tail_captions is deprecated and goes in 0.3: use real_sample_captions (None where "
        "the sample is absent) and the captions of your own data",
        DeprecationWarning,
        stacklevel=2,
    )
    sample = real_sample_captions(config, folder)
    if sample is not None:
        return sample
    split = load_split(config)
    return CaptionSample(
        "own captions",
        [caption for record in split.train for caption in record.captions],
        [caption for record in split.val for caption in record.captions],
        f"No real captioned sample at {folder}: the captions of {config.data_dir} instead",
    )


def real_sample_folder() -> Path:
    """Where the optional real captioned sample is: `$MMLIB_REAL_SAMPLES`, else `REAL_SAMPLE`."""
    return Path(os.environ.get(REAL_SAMPLE_VARIABLE) or REAL_SAMPLE)


def real_sample_captions(config: Config, folder: Path | None = None) -> CaptionSample | None:
    """The optional Flickr8k sample at `folder` (default `real_sample_folder()`, relative to the
    project root), split by image as a run splits; None where the folder is absent."""
    folder = real_sample_folder() if folder is None else folder
    if not folder.is_dir():
        return None
    split = load_split(config.with_overrides({"data_dir": folder}))
    train_captions = [caption for record in split.train for caption in record.captions]
    val_captions = [caption for record in split.val for caption in record.captions]
    return CaptionSample(
        "Flickr8k sample",
        train_captions,
        val_captions,
        f"Real captions at {folder}: Flickr8k photographs, {len(split.train)} to train on "
        f"({len(train_captions):,} captions), {len(split.val)} to validate "
        f"({len(val_captions):,} captions)",
    )
