"""Tests for mmlib.config: the earlier script's fields and defaults, validation, presets, JSON
(with configs saved before `precision` took over `use_amp`), devices, precision."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import mmlib.config
from mmlib.config import (
    PIL_PIXEL_LIMIT,
    PRECISIONS,
    PRESETS,
    SAVED_ORDER,
    Config,
    ConfigError,
    get_device,
    parse_override,
    resolve_device,
)

TRAIN_PRODUCTION_DEFAULTS = {
    "metadata_path": Path("data/metadata/engraving_metadata.json"),
    "images_dir": Path("data/processed/engraving/resized"),
    "checkpoint_dir": Path("checkpoints"),
    "latent_dim": 1024,
    "image_channels": 3,
    "vocab_size": 8000,
    "max_caption_length": 100,
    "embedding_dim": 512,
    "batch_size": 16,
    "num_epochs": 100,
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "precision": "auto",  # its use_amp=True
    "gradient_clip": 1.0,
    "image_loss_weight": 1.0,
    "caption_loss_weight": 1.0,
    "alignment_loss_weight": 0.5,
}


def test_train_production_fields_and_defaults() -> None:
    config = Config()
    for name, value in TRAIN_PRODUCTION_DEFAULTS.items():
        assert getattr(config, name) == value, name
    for name in ("num_workers", "pin_memory", "log_interval", "save_interval"):
        assert hasattr(config, name)


def test_attribute_style_use_as_in_train_production() -> None:
    config = Config()
    config.batch_size = 32
    config.learning_rate = 5e-4
    assert (config.batch_size, config.learning_rate) == (32, 5e-4)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("batch_size", 0, "batch_size=0 is out of range: allowed >= 1"),
        ("learning_rate", 0.0, "learning_rate=0.0 is out of range: allowed > 0.0"),
        ("learning_rate", float("nan"), "learning_rate=nan"),
        ("val_fraction", 0.9, "val_fraction=0.9 is out of range"),
        ("image_size", 100, "multiple of 16"),
        ("max_image_pixels", 0, "max_image_pixels=0 is out of range: allowed between 1 and"),
        ("max_image_pixels", 89_478_486, "max_image_pixels=89478486 is out of range"),
        ("device", "tpu", "device='tpu': allowed values are auto, cpu, cuda, mps"),
        ("imagine_steps", 20, "imagine_steps=20 is out of range: allowed 0 (off) or >= 40"),
        ("precision", "int8", "precision='int8'"),
        ("pin_memory", "maybe", "pin_memory='maybe': expected true or false"),
        ("causal_caption_mask", 1, "causal_caption_mask=1: expected true or false"),
        ("batch_size", 2.5, "batch_size=2.5: expected an integer"),
        ("batch_size", "many", "batch_size='many': expected an integer"),
        ("save_every_minutes", -1, "save_every_minutes=-1.0 is out of range: allowed >= 0.0"),
        ("save_every_minutes", float("inf"), "save_every_minutes=inf is out of range"),
        ("tokenizer", "sentencepiece", "tokenizer='sentencepiece': allowed values are word, bpe"),
        ("bpe_vocab_size", 100, "bpe_vocab_size=100 is out of range: allowed between 260 and"),
        ("bpe_vocab_size", "many", "bpe_vocab_size='many': expected an integer"),
    ],
)
def test_validation_names_field_value_and_range(name, value, message) -> None:
    config = Config()
    with pytest.raises(ConfigError) as info:
        setattr(config, name, value)
    assert message in str(info.value)
    with pytest.raises(ConfigError):
        Config(**{name: value})


def test_the_pixel_limit_stays_within_pils_own() -> None:
    assert PIL_PIXEL_LIMIT == Image.MAX_IMAGE_PIXELS
    assert 50_000_000 <= Config().max_image_pixels <= PIL_PIXEL_LIMIT


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown config field 'batchsize'"):
        Config().batchsize = 3  # type: ignore[attr-defined]


def test_strings_are_coerced_by_field_type() -> None:
    config = Config()
    config.batch_size = "32"
    config.pin_memory = "false"
    config.learning_rate = "5e-4"
    config.images_dir = "some/where"
    config.weight_decay = 0
    assert (config.batch_size, config.pin_memory, config.learning_rate) == (32, False, 5e-4)
    assert config.images_dir == Path("some/where")
    assert isinstance(config.weight_decay, float)


def test_presets() -> None:
    tiny = Config.preset("cpu-tiny")
    assert tiny.image_size == 64 and tiny.max_caption_length <= 32
    assert tiny.preset_name == "cpu-tiny"
    assert Config.preset("seed-large") == Config()
    assert Config.preset("base", batch_size=8).batch_size == 8
    assert set(PRESETS) >= {"cpu-tiny", "base", "seed-large"}
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*cpu-tiny"):
        Config.preset("huge")


def test_save_load_round_trip(tmp_path: Path) -> None:
    config = Config.preset("cpu-tiny", learning_rate=2e-3)
    path = config.save(tmp_path / "run" / "config.json")
    loaded = Config.load(path)
    assert loaded == config and loaded.preset_name == "cpu-tiny"
    assert json.loads(path.read_text())["learning_rate"] == 2e-3
    assert not list(path.parent.glob(".*tmp"))


def test_causal_caption_mask_round_trips_and_defaults_to_on_for_older_runs(
    tmp_path: Path,
) -> None:
    assert Config().causal_caption_mask is True
    unmasked = Config.preset("cpu-tiny", causal_caption_mask=False)
    path = unmasked.save(tmp_path / "config.json")
    assert json.loads(path.read_text())["causal_caption_mask"] is False
    assert Config.load(path) == unmasked
    older = {k: v for k, v in json.loads(path.read_text()).items() if k != "causal_caption_mask"}
    path.write_text(json.dumps(older))  # a run saved before the field existed
    assert Config.load(path).causal_caption_mask is True
    assert Config().with_overrides({"causal_caption_mask": "false"}).causal_caption_mask is False


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"batch_size": 16,,}')
    with pytest.raises(ConfigError, match=r"config.json: not valid JSON \(line 1, column 19\)"):
        Config.load(bad)
    bad.write_text('{"batch_size": -1}')
    with pytest.raises(ConfigError, match=r"config.json: batch_size=-1"):
        Config.load(bad)
    bad.write_text('{"batch_sise": 1}')
    with pytest.raises(ConfigError, match="unknown config field.*batch_sise"):
        Config.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "missing.json")


def test_cli_overrides() -> None:
    assert parse_override("batch-size=32") == ("batch_size", "32")
    with pytest.raises(ConfigError, match="expected FIELD=VALUE"):
        parse_override("batch_size")
    base = Config()
    config = base.with_overrides(dict([parse_override("batch_size=8"), ("pin_memory", "no")]))
    assert (config.batch_size, config.pin_memory) == (8, False)
    assert base.batch_size == 16  # the original is unchanged


def test_get_device_honours_config() -> None:
    assert get_device(Config(device="cpu")) == torch.device("cpu")
    auto = get_device(Config())
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            get_device(Config(device="cuda"))


def test_resolve_device_names_what_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("cpu:0") == torch.device("cpu", 0)
    for bogus in ("bogus", "cuda:", "cuda:x", "auto:1", "gpu"):
        with pytest.raises(ConfigError, match=f"device='{bogus}': allowed values are auto, cpu"):
            resolve_device(bogus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match="device='cuda:2': this machine has 2 CUDA GPU"):
        resolve_device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.parametrize("bf16", [True, False])
def test_precision_auto_is_bf16_on_cuda_as_the_card_allows(
    monkeypatch: pytest.MonkeyPatch, bf16
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    amp = Config()
    assert amp.resolve_precision("cuda") == ("bf16" if bf16 else "fp16")
    assert amp.resolve_precision(torch.device("cpu")) == "fp32"
    assert Config(precision="fp32").resolve_precision("cuda") == "fp32"
    assert Config.preset("cpu-tiny").resolve_precision("cuda") == "fp32"
    assert Config(precision="fp16").resolve_precision("cpu") == "fp16"
    assert amp.resolve_precision("cuda", "fp32") == "fp32"
    with pytest.raises(ConfigError, match="fp64"):
        amp.resolve_precision("cuda", "fp64")


def test_precision_without_a_card_to_ask_is_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Config().resolve_precision("cuda") == "bf16"


def _resolved_before(use_amp: bool, precision: str, device: str, bf16: bool) -> str:
    """`resolve_precision` as it was while `use_amp` was a field of its own."""
    if precision == "auto":
        if not use_amp or device != "cuda":
            return "fp32"
        precision = "bf16"
    return "fp16" if precision == "bf16" and not bf16 and device == "cuda" else precision


@pytest.mark.parametrize("use_amp", [True, False])
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("bf16", [True, False])
def test_a_config_json_with_use_amp_resolves_its_precision_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_amp: bool, precision: str, bf16: bool
) -> None:
    old = {**Config.preset("cpu-tiny").to_dict(), "use_amp": use_amp, "precision": precision}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    loaded = Config.load(path)
    assert "use_amp" not in loaded.to_dict() and loaded.preset_name == "cpu-tiny"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    for device in ("cpu", "cuda"):
        expected = _resolved_before(use_amp, precision, device, bf16)
        assert loaded.resolve_precision(device) == expected, device


def test_a_config_json_without_precision_and_use_amp_false_is_fp32(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"batch_size": 8, "use_amp": False}))
    assert Config.load(path).precision == "fp32"
    path.write_text(json.dumps({"batch_size": 8, "use_amp": True}))
    assert Config.load(path) == Config(batch_size=8)
    path.write_text(json.dumps({"use_amp": "maybe"}))
    with pytest.raises(ConfigError, match=r"config.json: use_amp='maybe': expected true or false"):
        Config.load(path)


def test_setting_use_amp_says_to_set_precision(tmp_path: Path, capsys) -> None:
    from mmlib.cli import build_parser, main, train_config

    with pytest.raises(ConfigError, match="precision=fp32 for use_amp=false"):
        Config().with_overrides({"use_amp": "false"})
    with pytest.raises(ConfigError, match="use_amp is now part of precision"):
        Config().use_amp = True  # type: ignore[attr-defined]
    assert main(["train", "--preset", "cpu-tiny", "--set", "use_amp=false"]) == 2
    assert "precision=fp32 for use_amp=false" in capsys.readouterr().err
    # Resuming a run whose config.json has use_amp reads it into precision.
    saved = {**Config.preset("base").to_dict(), "use_amp": False}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps(saved))
    argv = ["train", "--resume", "r", "--set", f"checkpoint_dir={tmp_path}"]
    assert train_config(build_parser().parse_args(argv)).precision == "fp32"


def test_fields_are_grouped_in_code_but_config_json_stays_flat_in_its_order(
    tmp_path: Path,
) -> None:
    written = json.loads(Config().save(tmp_path / "config.json").read_text())
    assert list(written) == list(SAVED_ORDER)  # as before the grouping, use_amp aside
    assert set(SAVED_ORDER) == {f.name for f in dataclasses.fields(Config)}
    assert all(not isinstance(value, dict) for value in written.values())
    assert "use_amp" not in written and written["precision"] == "auto"


def test_cross_field_consistency() -> None:
    config = Config(embedding_dim=96, num_heads=8)
    assert config.check_consistency() is config
    config = Config(embedding_dim=100, num_heads=8)
    with pytest.raises(ConfigError, match="embedding_dim=100 must be divisible by num_heads=8"):
        config.check_consistency()


def test_data_on_device_is_auto_on_cuda_with_one_process() -> None:
    config = Config()
    assert config.resolve_data_on_device("cuda") and not config.resolve_data_on_device("cpu")
    assert not config.resolve_data_on_device("cuda", world_size=2)
    config.data_on_device = "on"
    assert config.resolve_data_on_device("cpu")
    config.data_on_device = "off"
    assert not config.resolve_data_on_device("cuda")
    with pytest.raises(ConfigError, match="data_on_device='yes': allowed values are auto, on"):
        config.data_on_device = "yes"


def test_the_fast_path_is_auto_on_cuda_only_once_measured_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Config()
    assert not config.resolve_fast_path("cuda")  # the one GPU measurement had it slower
    monkeypatch.setattr(mmlib.config, "FAST_PATH_MEASURED_FASTER", True)
    assert config.resolve_fast_path("cuda") and config.resolve_fast_path(torch.device("cuda", 0))
    assert not config.resolve_fast_path("cpu") and not config.resolve_fast_path("mps")
    monkeypatch.setattr(mmlib.config, "FAST_PATH_MEASURED_FASTER", False)
    config.fast_path = "on"
    assert config.resolve_fast_path("cpu")
    config.fast_path = "off"
    assert not config.resolve_fast_path("cuda")
    with pytest.raises(ConfigError, match="fast_path='fast': allowed values are auto, on"):
        config.fast_path = "fast"


def test_the_vocabulary_limit_is_the_size_field_of_the_tokenizer_in_use(tmp_path: Path) -> None:
    assert Config().tokenizer == "word" and Config().bpe_vocab_size == 2000
    assert Config(vocab_size=500, bpe_vocab_size=900).vocabulary_limit == 500
    assert Config(tokenizer="bpe", vocab_size=500, bpe_vocab_size=900).vocabulary_limit == 900
    saved = Config(tokenizer="bpe").save(tmp_path / "config.json")
    assert Config.load(saved).tokenizer == "bpe"
    older = json.loads(saved.read_text())
    del older["tokenizer"], older["bpe_vocab_size"]  # a config.json written before BPE
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert Config.load(tmp_path / "older.json").tokenizer == "word"
