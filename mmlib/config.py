"""`Config`: every hyperparameter of a run, validated on assignment, saved as a flat
`config.json`; and the presets."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from mmlib.files import atomic_write_text, read_json_object


class ConfigError(ValueError):
    """A configuration value is out of range, of the wrong type, or unknown."""


DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DATA_FORMATS = ("auto", "seed", "flickr8k", "jsonl", "csv", "coco", "sidecar")
RESIZE_MODES = ("pad", "crop")
TOKENIZER_KINDS = ("word", "bpe")  # mmlib.data.tokenizer: WordTokenizer, BpeTokenizer
# A byte-level BPE vocabulary holds the 4 special tokens and the 256 bytes before any merge.
MIN_BPE_VOCABULARY = 260
# PIL's Image.MAX_IMAGE_PIXELS: above it PIL warns of a decompression bomb (and at twice it
# refuses the file), so max_image_pixels stays at or under it and PIL never has to.
PIL_PIXEL_LIMIT = 89_478_485
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192  # 67 MP (a 61 MP camera frame passes); 192 MiB as RGB
AUTO = (
    "auto"  # batch_size="auto": the Trainer picks one (mmlib.sizing.batch_size.resolve_batch_size)
)
# Fitting imagine.pt: its flow's one-cycle schedule warms up over 5% of the steps and divides by
# that share less one step (`mmlib.inference.imagine.train_flow`), so it needs 2 / 0.05 = 40 steps.
MIN_IMAGINE_STEPS = 40
# Caps on the sizes that allocate, far past any sane run, so a typo (latent_dim=100000000 asked
# for 51 GB) is refused at once: widths, vocabulary words.
MAX_WIDTH = 65_536
MAX_VOCABULARY = 1_000_000
# Whether fast_path="auto" compiles on CUDA. The one GPU measurement (an H100, seed-large at
# batch 16; docs/sizing-and-several-gpus.md) had the plain fp32 step faster, 27.6 against 24.9
# steps/s for bf16, channels_last, fused AdamW and torch.compile; set it once `make gpu-check`
# measures the fast path faster.
FAST_PATH_MEASURED_FASTER = False
CONFIG_REMEDY = "correct it (a config.json that Config.save writes is a JSON object of fields)"
# Setting `use_amp`, a field `precision` took over, says what to set instead; a config.json
# that still has it loads (`Config.from_dict` reads it into `precision`).
USE_AMP_REMEDY = (
    "use_amp is now part of precision: set precision=fp32 for use_amp=false, "
    "precision=auto (bf16 on CUDA, fp32 elsewhere) for use_amp=true"
)


def _int_range(low: int, high: int | None = None) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}={value!r}: expected an integer")
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"{name}={value!r} is out of range: allowed {allowed}")

    return check


def _float_range(
    low: float, high: float | None = None, *, low_open: bool = False
) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}={value!r}: expected a number")
        too_low = value <= low if low_open else value < low
        too_high = high is not None and value > high
        if not math.isfinite(value) or too_low or too_high:
            bound = f"> {low}" if low_open else f">= {low}"
            allowed = bound if high is None else f"{bound} and <= {high}"
            raise ConfigError(f"{name}={value!r} is out of range: allowed {allowed}")

    return check


def _choice(options: Iterable[str]) -> Callable[[str, Any], None]:
    options = tuple(options)

    def check(name: str, value: Any) -> None:
        if value not in options:
            raise ConfigError(f"{name}={value!r}: allowed values are {', '.join(options)}")

    return check


def _zero_or_at_least(low: int) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}={value!r}: expected an integer")
        if value != 0 and value < low:
            raise ConfigError(f"{name}={value!r} is out of range: allowed 0 (off) or >= {low}")

    return check


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r}: expected true or false")


def _path(name: str, value: Any) -> None:
    if not isinstance(value, Path):
        raise ConfigError(f"{name}={value!r}: expected a path")


def _optional_path(name: str, value: Any) -> None:
    if value is not None:
        _path(name, value)


def _run_name(name: str, value: Any) -> None:
    if not isinstance(value, str) or value in (".", "..") or "/" in value or "\\" in value:
        raise ConfigError(f"{name}={value!r}: expected a folder name without slashes")


def _batch_size(name: str, value: Any) -> None:
    if value != AUTO:
        _int_range(1)(name, value)


def _image_size(name: str, value: Any) -> None:
    _int_range(16, 4096)(name, value)
    if value % 16:
        raise ConfigError(f"{name}={value!r}: must be a multiple of 16 (the encoder halves it)")


_VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    "metadata_path": _path,
    "images_dir": _path,
    "checkpoint_dir": _path,
    "data_dir": _optional_path,
    "data_format": _choice(DATA_FORMATS),
    "synthetic_dir": _path,
    "cache_dir": _path,
    "max_image_pixels": _int_range(1, PIL_PIXEL_LIMIT),
    "image_size": _image_size,
    "resize_mode": _choice(RESIZE_MODES),
    "latent_dim": _int_range(1, MAX_WIDTH),
    "image_channels": _int_range(1, 4),
    "vocab_size": _int_range(5, MAX_VOCABULARY),
    "min_freq": _int_range(1),
    "tokenizer": _choice(TOKENIZER_KINDS),
    "bpe_vocab_size": _int_range(MIN_BPE_VOCABULARY, MAX_VOCABULARY),
    "max_caption_length": _int_range(3, 4096),
    "embedding_dim": _int_range(1, MAX_WIDTH),
    "batch_size": _batch_size,
    "num_epochs": _int_range(1),
    "learning_rate": _float_range(0.0, 10.0, low_open=True),
    "weight_decay": _float_range(0.0, 1.0),
    "precision": _choice(PRECISIONS),
    "data_on_device": _choice(("auto", "on", "off")),
    "fast_path": _choice(("auto", "on", "off")),
    "gradient_clip": _float_range(0.0),
    "image_loss_weight": _float_range(0.0),
    "caption_loss_weight": _float_range(0.0),
    "alignment_loss_weight": _float_range(0.0),
    "perceptual_loss_weight": _float_range(0.0),
    "num_workers": _int_range(0, 256),
    "pin_memory": _boolean,
    "log_interval": _int_range(1),
    "save_interval": _int_range(1),
    "seed": _int_range(0, 2**32 - 1),
    "val_fraction": _float_range(0.0, 0.5, low_open=True),
    "test_fraction": _float_range(0.0, 0.5),
    "device": _choice(DEVICES),
    "base_channels": _int_range(4, 1024),
    "num_heads": _int_range(1, 64),
    "num_layers": _int_range(1, 48),
    "text_encoder_layers": _int_range(1, 48),
    "feedforward_dim": _int_range(1, 4 * MAX_WIDTH),
    "memory_tokens": _int_range(1, 256),
    "dropout": _float_range(0.0, 0.9),
    "causal_caption_mask": _boolean,
    "augment_max_shift": _int_range(0, 64),
    "warmup_steps": _int_range(0),
    "grad_accum_steps": _int_range(1, 4096),
    "keep_checkpoints": _int_range(0),
    "save_every_minutes": _float_range(0.0),
    "early_stopping_patience": _int_range(0),
    "imagine_steps": _zero_or_at_least(MIN_IMAGINE_STEPS),
    "run_name": _run_name,
}


# The order of `to_dict`'s keys (config.json, the config panel's code, `config_differences`)
# and of field listings in messages: the fields' order before they were grouped by concern, so
# saved files and printed outputs stay as they were. A field not named here comes after these.
SAVED_ORDER = tuple(
    """
    metadata_path images_dir checkpoint_dir latent_dim image_channels vocab_size
    max_caption_length embedding_dim batch_size num_epochs learning_rate weight_decay
    gradient_clip image_loss_weight caption_loss_weight alignment_loss_weight num_workers
    pin_memory log_interval save_interval image_size seed val_fraction test_fraction device
    precision data_on_device fast_path data_dir data_format resize_mode min_freq synthetic_dir
    cache_dir max_image_pixels base_channels num_heads num_layers text_encoder_layers
    feedforward_dim memory_tokens dropout causal_caption_mask augment_max_shift
    perceptual_loss_weight warmup_steps grad_accum_steps keep_checkpoints save_every_minutes
    early_stopping_patience imagine_steps run_name preset_name tokenizer bpe_vocab_size
    """.split()
)


@dataclass
class Config:
    """Hyperparameters of a run, grouped by concern: data, model, losses, optimisation, and the
    run with its hardware. The defaults are the "seed-large" preset.

    Every assignment is validated, so `config.batch_size = 0` fails at once with a message
    naming the field, the value and the allowed range. `config.json` (`to_dict`) is flat, its
    keys in `SAVED_ORDER`.
    """

    # --- data: where the captioned images are, how they become tensors, the splits ---
    metadata_path: Path = Path("data/metadata/engraving_metadata.json")
    images_dir: Path = Path("data/processed/engraving/resized")
    data_dir: Path | None = None  # a dataset folder in any supported format; None: the paths above
    data_format: str = "auto"
    synthetic_dir: Path = Path("data/synthetic")
    cache_dir: Path = Path("data/cache")
    # Images with more pixels (width x height, read from the header before any decoding) are
    # skipped and named in the data report; at most PIL_PIXEL_LIMIT.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    image_size: int = 512
    image_channels: int = 3
    resize_mode: str = "pad"  # how non-square images become square: pad or centre-crop
    # Training images move by up to this many pixels (edges repeated); 0: no augmentation.
    augment_max_shift: int = 0
    # "word": whole words (`vocab_size` of the most frequent seen `min_freq` times, others
    # <UNK>); "bpe": byte-level BPE trained on the training captions (`bpe_vocab_size` at most,
    # no unknown words)
    tokenizer: str = "word"
    vocab_size: int = 8000  # at most: the tokenizer keeps the most frequent training words
    min_freq: int = 1
    bpe_vocab_size: int = 2000
    max_caption_length: int = 100
    val_fraction: float = 0.1
    # Images held out for the final figures only, for data without a test split of their own
    # (the synthetic set has one). 0 keeps every existing split and takes no training images
    # from small data sets; evaluation then reports on validation and says so.
    test_fraction: float = 0.0
    # --- model: the sizes of its parts ---
    latent_dim: int = 1024
    embedding_dim: int = 512
    base_channels: int = 64  # image encoder widths: base x (1, 2, 4, 8, 8, ...)
    num_heads: int = 8
    num_layers: int = 4  # caption decoder layers
    text_encoder_layers: int = 2
    feedforward_dim: int = 2048
    memory_tokens: int = 4  # cross-attention memory tokens derived from the image latent
    dropout: float = 0.1
    # The caption decoder's causal mask: position t reads tokens up to t only. False lets every
    # position read the whole caption, the answer included (the course shows why that fails).
    causal_caption_mask: bool = True
    # --- losses: how much each term counts (`mmlib.model.losses.LossWeights`) ---
    image_loss_weight: float = 1.0
    caption_loss_weight: float = 1.0
    alignment_loss_weight: float = 0.5
    # Adds this x the mean squared difference between the image encoder's feature maps of the
    # reconstruction and of the image (encoder weights held fixed for it) to the image loss:
    # reconstructions keep what the encoder sees (small birds, the moon), not just pixel means.
    perceptual_loss_weight: float = 0.0
    # --- optimisation ---
    batch_size: int | str = 16  # or "auto" (AUTO)
    grad_accum_steps: int = 1
    num_epochs: int = 100
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 0  # linear warm-up before the cosine decay
    gradient_clip: float = 1.0
    early_stopping_patience: int = 0  # epochs without a better val loss before stopping; 0: off
    # --- the run and its hardware: seed, device, precision, loading, files, logging ---
    seed: int = 42  # the split, the initial weights and the batch order
    device: str = "auto"
    precision: str = "auto"  # "auto": bf16 on CUDA, fp32 elsewhere (`resolve_precision`)
    # The training set on the device as uint8, batches made there (`mmlib.data.DeviceLoader`,
    # the same batches as the DataLoader's): "auto" on CUDA with one process, "on", "off".
    data_on_device: str = "auto"
    # channels_last, tokens padded to max_caption_length and torch.compile in the training step
    # (`mmlib.model.step.TrainingStep`); "auto" is off until a GPU run measures it faster
    # (`FAST_PATH_MEASURED_FASTER`), "on", "off". bf16 (`precision`) and fused AdamW are CUDA's
    # defaults either way.
    fast_path: str = "auto"
    num_workers: int = 4
    pin_memory: bool = True
    checkpoint_dir: Path = Path("checkpoints")
    run_name: str = ""  # folder under checkpoint_dir; "" means the preset's name
    log_interval: int = 10  # optimizer steps between the rows of steps.csv
    save_interval: int = 1  # epochs between epoch_NNN.pt files
    # The newest epoch_NNN.pt files kept (older ones are removed as training goes); 0: none.
    keep_checkpoints: int = 3
    # last.pt is also written during an epoch, at the first optimizer step this many minutes after
    # it was last written, so a crash loses at most that much of a long epoch; 0: at epoch ends
    # only. Minutes, not steps: a seed-large last.pt is about 1.5 GB.
    save_every_minutes: float = 15.0
    # Steps that fitting imagine.pt (text -> image) may take after training (`python -m mmlib
    # train`, `make train`); fewer on a small data set (`mmlib.inference.fit_steps`), at least
    # MIN_IMAGINE_STEPS; 0 skips it.
    imagine_steps: int = 4000
    preset_name: str = field(default="custom", compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "preset_name":
            if name == "use_amp":
                raise ConfigError(USE_AMP_REMEDY)
            if name not in _VALIDATORS:
                raise ConfigError(f"unknown config field {name!r}; known fields: {_field_list()}")
            value = _coerce(name, value)
            _VALIDATORS[name](name, value)
        object.__setattr__(self, name, value)

    # --- presets ---
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Config:
        """A config from a named preset (see `PRESETS`), with optional field overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
        config = cls(**{**PRESETS[name], **overrides})
        config.preset_name = name
        return config

    # --- conversion and persistence ---
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings), its keys in `SAVED_ORDER`."""
        out: dict[str, Any] = {}
        for name in _field_names():
            value = getattr(self, name)
            out[name] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> Config:
        """A config from a dict such as `to_dict` returns; unknown keys are an error.

        A `use_amp` key (config.json files from before `precision` took it over) is read into
        `precision`, resolving as it did: false with precision "auto" is "fp32"; true is what
        "auto" is.
        """
        values = dict(data)
        if "use_amp" in values:
            use_amp = values.pop("use_amp")
            if not isinstance(use_amp, bool):
                raise ConfigError(f"{source}: use_amp={use_amp!r}: expected true or false")
            if not use_amp and values.get("precision", "auto") == "auto":
                values["precision"] = "fp32"
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown config field(s) {', '.join(unknown)}; "
                f"known fields: {_field_list()}"
            )
        preset_name = values.pop("preset_name", "custom")
        try:
            config = cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None
        config.preset_name = preset_name
        return config

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the config as JSON, atomically (`mmlib.files`)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str], remedy: str = CONFIG_REMEDY) -> Config:
        """Read a config saved with `save`, validated as a whole; errors name the file and the
        field, and end with `remedy` (what to do)."""
        data = read_json_object(path, remedy, ConfigError)
        try:
            config = cls.from_dict(data, source=str(path))
        except ConfigError as error:
            raise ConfigError(f"{error}; {remedy}") from None
        try:
            return config.check_consistency()
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}; {remedy}") from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """A copy with fields replaced; string values (from a CLI) are parsed by field type."""
        config = dataclasses.replace(self)
        config.preset_name = self.preset_name
        for name, value in overrides.items():
            setattr(config, name.replace("-", "_"), value)
        return config

    def resolve_data_on_device(self, device: torch.device | str, world_size: int = 1) -> bool:
        """Whether training keeps its data on `device` (`data_on_device`; "auto": on CUDA).
        Several processes read their shares through a DataLoader either way."""
        if world_size > 1 or self.data_on_device == "off":
            return False
        return self.data_on_device == "on" or torch.device(device).type == "cuda"

    def resolve_fast_path(self, device: torch.device | str) -> bool:
        """Whether the training step runs channels_last, padded and compiled (`fast_path`;
        "auto": on CUDA once `FAST_PATH_MEASURED_FASTER`; compiling takes minutes on a CPU)."""
        if self.fast_path == "auto":
            return FAST_PATH_MEASURED_FASTER and torch.device(device).type == "cuda"
        return self.fast_path == "on"

    @property
    def vocabulary_limit(self) -> int:
        """The most tokens the tokenizer of this config's kind can have: `vocab_size` for
        word-level, `bpe_vocab_size` for BPE (the output layer is never larger)."""
        return self.vocab_size if self.tokenizer == "word" else self.bpe_vocab_size

    def check_consistency(self) -> Config:
        """Checks that involve several fields (single fields are checked on assignment)."""
        if self.embedding_dim % self.num_heads:
            raise ConfigError(
                f"embedding_dim={self.embedding_dim} must be divisible by "
                f"num_heads={self.num_heads}"
            )
        return self

    def resolve_precision(self, device: torch.device | str, precision: str | None = None) -> str:
        """fp32, bf16 or fp16: what training, the memory estimate and the batch-size finder use
        on a device of `device`'s type.

        `precision` (if given) replaces the config's. "auto" is bf16 on CUDA and fp32 elsewhere.
        bf16 (auto's or asked for) on a card without it (`supports_bf16`) is fp16, which the
        Trainer scales and says so. Without a card to ask (an estimate for a card on a machine
        without one), bf16 is assumed, as every card in `mmlib.sizing.batch_size.GPUS` has it.
        """
        wanted = self.precision if precision is None else precision
        if wanted not in PRECISIONS:
            raise ConfigError(f"precision={wanted!r}: allowed values are {', '.join(PRECISIONS)}")
        if wanted == "auto":
            if torch.device(device).type != "cuda":
                return "fp32"
            wanted = "bf16"
        return "fp16" if wanted == "bf16" and not supports_bf16(device) else wanted


PRESETS: dict[str, dict[str, Any]] = {
    # The course on a laptop CPU: small images, short captions; `make train` in about 9 minutes.
    # No dropout, 18 epochs and the caption loss counted twice (more of the shared encoder's
    # gradient for what the caption needs) reach the course's subject-match target; the image
    # loss x5 and the perceptual term x1 keep small subjects in reconstructions and imagined
    # images. fp32 on a GPU too, as in the CPU runs behind the course's figures. The
    # measurements behind each value: docs/coming-from-train-production.md.
    "cpu-tiny": {
        "image_size": 64,
        "latent_dim": 256,
        "embedding_dim": 256,
        "base_channels": 32,
        "num_heads": 4,
        "num_layers": 2,
        "text_encoder_layers": 2,
        "feedforward_dim": 512,
        "memory_tokens": 4,
        "max_caption_length": 32,
        "batch_size": 64,
        "num_epochs": 18,
        "dropout": 0.0,
        "caption_loss_weight": 2.0,
        "image_loss_weight": 5.0,
        "perceptual_loss_weight": 1.0,
        "warmup_steps": 50,
        "num_workers": 0,
        "precision": "fp32",
    },
    # One 24 GB card.
    "base": {
        "image_size": 256,
        "latent_dim": 512,
        "embedding_dim": 384,
        "max_caption_length": 48,
        "batch_size": 32,
        "num_epochs": 40,
    },
    # `Config`'s defaults: the dimensions of the engraving model this library replaces.
    "seed-large": {},
    # The tests' model and `bench/gpu_check.py --tiny`'s: its model and input sizes only, small
    # enough that a run trains in seconds on a CPU.
    "tiny": {
        "image_size": 32,
        "latent_dim": 32,
        "embedding_dim": 32,
        "base_channels": 8,
        "num_heads": 2,
        "num_layers": 1,
        "text_encoder_layers": 1,
        "feedforward_dim": 64,
        "memory_tokens": 2,
        "max_caption_length": 32,
    },
}
# Your own captioned images (docs/your-own-data.md): cpu-tiny's and base's models at a lower
# learning rate with a heavier alignment loss, which keep a real set's image and caption
# embeddings apart (at lr 1e-3 with alignment 0.5 they collapse to one point).
# The synthetic course keeps its own values, which meet its targets (the measurements:
# docs/coming-from-train-production.md).
REAL_CAPTIONS = {"learning_rate": 5e-4, "alignment_loss_weight": 1.0}
PRESETS["own-cpu"] = {**PRESETS["cpu-tiny"], **REAL_CAPTIONS}
PRESETS["own-gpu"] = {**PRESETS["base"], **REAL_CAPTIONS}  # not yet measured on a GPU


def supports_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes in bf16 natively: a CUDA card from Ampere on (an RTX 3090 or
    A100, not a V100 or T4, where torch would emulate it slowly); any other device, and a CUDA
    device on a machine without one (an estimate for it), are taken to."""
    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        return True
    return torch.cuda.is_bf16_supported(including_emulation=False)


def parse_override(text: str) -> tuple[str, str]:
    """Split a CLI override "field=value" into its parts, with a clear error otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"override {text!r}: expected FIELD=VALUE, for example batch_size=32")
    return name.strip().replace("-", "_"), value.strip()


def get_device(config: Config | None = None) -> torch.device:
    """The device to run on, honouring `config.device` (auto: CUDA, then MPS, then CPU)."""
    return resolve_device("auto" if config is None else config.device)


def resolve_device(wanted: str | torch.device) -> torch.device:
    """A device by name: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps, checked to
    exist on this machine; anything else is a ConfigError that says what is allowed."""
    name = str(wanted)
    kind, colon, index = name.partition(":")
    if kind not in DEVICES or (colon and (kind == "auto" or not index.isdigit())):
        raise ConfigError(f"device={name!r}: allowed values are auto, cpu, cuda, cuda:N, mps")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if kind == "cuda" and not cuda:
        raise ConfigError(f"device={name!r} but no CUDA GPU is visible; use device='auto' or 'cpu'")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"device={name!r}: this machine has {count} CUDA GPU(s), cuda:0 first")
    if kind == "mps" and not mps:
        raise ConfigError(f"device={name!r} but MPS is not available; use device='auto' or 'cpu'")
    return torch.device(name)


def _field_names() -> list[str]:
    """`Config`'s field names in `SAVED_ORDER`; any other field after them, as declared."""
    ranks = {name: rank for rank, name in enumerate(SAVED_ORDER)}
    return sorted((f.name for f in fields(Config)), key=lambda name: ranks.get(name, len(ranks)))


def _field_list() -> str:
    return ", ".join(_field_names())


def _coerce(name: str, value: Any) -> Any:
    """Turn CLI/JSON/widget values into the field's type; leave anything else to validation."""
    kind = _FIELD_TYPES[name]
    if kind in ("Path", "Path | None"):
        if value is None or value == "" or value == "None":
            return None if kind == "Path | None" else value
        return Path(value) if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(value, str):
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    text = value.strip()
    if kind == "int | str" and text == AUTO:
        return text
    try:
        if kind in ("int", "int | str"):
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        expected = {"int": "an integer", "int | str": 'an integer or "auto"'}.get(kind, "a number")
        raise ConfigError(f"{name}={value!r}: expected {expected}") from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r}: expected true or false")
    return text


_FIELD_TYPES = {f.name: str(f.type) for f in fields(Config)}
