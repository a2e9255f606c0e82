"""Shared test setup: hypothesis profiles, a tiny dataset in the `seed` on-disk format, and the
small image files and records that the data tests draw."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import settings
from PIL import Image, ImageDraw

from mmlib.config import PRESETS, Config
from mmlib.data import synthetic
from mmlib.data.readers import Record

# `make test` (and so CI) sets HYPOTHESIS_PROFILE=ci: derandomised, so a failure reproduces.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

CAPTIONS = (
    "An engraving depicting a small ship beside a tall tower",
    "An engraving depicting a large ship under a crescent moon",
    "An engraving depicting two birds above a house",
    "An engraving depicting a tall tree beside a river",
)


@pytest.fixture
def seed_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Make a seed-layout folder (metadata JSON + 32x32 PNGs) with `n` records; returns it."""

    def make(n: int = 8, captions: Sequence[str] = CAPTIONS, name: str = "seed") -> Path:
        root = tmp_path / name
        images = root / "processed/engraving/resized"
        images.mkdir(parents=True)
        records = []
        for i in range(n):
            image = Image.new("RGB", (32, 32), (235, 225, 205))
            ImageDraw.Draw(image).line([(i, 0), (31 - i, 31)], fill=(40, 30, 20), width=2)
            image.save(images / f"engraving_{i:04d}.png")
            caption = captions[i % len(captions)]
            records.append({"id": i, "filename": f"engraving_{i:04d}.png", "caption": caption})
        metadata = root / "metadata/engraving_metadata.json"
        metadata.parent.mkdir(parents=True)
        metadata.write_text(json.dumps(records), encoding="utf-8")
        return root

    return make


def write_engraving(path: Path, size: tuple[int, int] = (32, 32), shade: int = 0) -> Path:
    """A small PNG: dark lines on a paper tone, varied by `shade`."""
    image = Image.new("RGB", size, (235, 225, 205))
    draw = ImageDraw.Draw(image)
    for x in range(shade % 5, size[0], 5):
        draw.line([(x, 0), (size[0] - x, size[1])], fill=(40, 30, 20))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_truncated_jpeg(path: Path) -> Path:
    """A JPEG whose header reads but whose data stops two thirds of the way through."""
    image = Image.effect_noise((64, 64), 60).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (`png_claiming`) at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_claiming(width, height))
    return path


def _outside_by_dots(folder: Path) -> str:
    write_engraving(folder.parent.parent / "outside.png")
    return "../../outside.png"


def _outside_absolute(folder: Path) -> str:
    return str(write_engraving(folder.parent / "elsewhere.png").absolute())


def _truncated(folder: Path) -> str:
    write_truncated_jpeg(folder / "img/cut.jpg")
    return "img/cut.jpg"


def _huge(folder: Path) -> str:
    write_png_header(folder / "img/huge.png", 10_000, 10_000)
    return "img/huge.png"


def _bomb(folder: Path) -> str:  # over twice PIL's limit: PIL itself refuses to open it
    write_png_header(folder / "img/bomb.png", 20_000, 20_000)
    return "img/bomb.png"


# Bad images, each a function that writes one beside or under a dataset folder and returns the
# file name the dataset gives it (`write_bad_dataset`).
BAD_IMAGES: dict[str, Callable[[Path], str]] = {
    "parent": _outside_by_dots,
    "absolute": _outside_absolute,
    "truncated": _truncated,
    "huge": _huge,
    "bomb": _bomb,
}


def write_bad_dataset(folder: Path, bad: Sequence[str], good: int = 2) -> Path:
    """A JSONL dataset in `folder`: `good` engravings, then one record per `BAD_IMAGES` name
    in `bad`, with that name as its id."""
    lines = []
    for index in range(good):
        write_engraving(folder / f"img/good_{index}.png", shade=index)
        lines.append({"file": f"img/good_{index}.png", "caption": f"a good engraving {index}"})
    for name in bad:
        lines.append({"id": name, "file": BAD_IMAGES[name](folder), "caption": f"a {name} one"})
    (folder / "d.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    return folder


def write_flickr8k(root: Path) -> Path:
    (root / "Images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (40, 30), (90, 120, 60)).save(root / "Images" / name)
    rows = ["image,caption"]
    rows += [f"a.jpg,A dog runs number {i} ." for i in range(5)]
    rows += [f'b.jpg,"A cat, sitting, number {i} ."' for i in range(5)]
    (root / "captions.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def make_records(root: Path, n: int, captions_per_record: int = 1) -> list[Record]:
    records = []
    for i in range(n):
        path = write_engraving(root / f"{i}.png", size=(24 + i, 20), shade=i)
        captions = tuple(
            f"image {i} caption {c} " + "word " * c for c in range(captions_per_record)
        )
        records.append(Record(str(i), path, captions))
    return records


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 synthetic engravings at 32x32, shared by the training tests."""
    out = tmp_path_factory.mktemp("data") / "synthetic"
    synthetic.generate(out, n=70, image_size=32, seed=1, workers=1, progress=False)
    return out


# A model with two layers of four heads and a latent larger than its width: the model and
# attention tests.
SMALL_MODEL = {
    "image_size": 32,
    "latent_dim": 48,
    "embedding_dim": 32,
    "num_heads": 4,
    "num_layers": 2,
    "text_encoder_layers": 1,
    "feedforward_dim": 64,
    "base_channels": 8,
    "max_caption_length": 12,
    "memory_tokens": 2,
    "dropout": 0.0,
}


TINY_MODEL = dict(PRESETS["tiny"])  # a copy: a test that changes it leaves the preset


def tiny_training_config(data_dir: Path, root: Path, **overrides: Any) -> Config:
    """A seconds-long training config of the tiny model on `data_dir`, writing under `root`
    (checkpoints/ and cache/); `overrides` change any field."""
    values = {
        **TINY_MODEL,
        "data_dir": data_dir,
        "checkpoint_dir": root / "checkpoints",
        "cache_dir": root / "cache",
        "batch_size": 16,
        "num_epochs": 4,
        "num_workers": 0,
        "log_interval": 1,
        "run_name": "tiny",
        "precision": "fp32",
        "warmup_steps": 2,
    }
    return Config(**{**values, **overrides})


@pytest.fixture
def tiny_config(synthetic_dataset: Path, tmp_path: Path) -> Callable[..., Config]:
    """A factory of seconds-long training configs on `synthetic_dataset`, writing to tmp_path."""

    def make(**overrides: Any) -> Config:
        return tiny_training_config(
            overrides.pop("data_dir", synthetic_dataset), tmp_path, **overrides
        )

    return make


@pytest.fixture(scope="session")
def tiny_run(synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny run folder (8 epochs on `synthetic_dataset`) with an `imagine.pt`, shared
    by the inference, demo and export tests; treat it as read-only."""
    from mmlib.inference.imagine import fit_run_imagination
    from mmlib.training.trainer import Trainer

    root = tmp_path_factory.mktemp("tiny-run")
    config = tiny_training_config(synthetic_dataset, root, num_epochs=8, log_interval=10)
    trainer = Trainer(config, log=lambda _line: None, progress=False)
    trainer.fit()
    fit_run_imagination(trainer.run_dir, config.checkpoint_dir, steps=60)
    return trainer.run_dir


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims `width` x `height` (a decompression-bomb header)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def write_untrained_run(run_dir: Path) -> Path:
    """An untrained tiny run folder in milliseconds: `config.json`, `tokenizer.json` with its
    `manifest.json`, `best.pt` and `imagine.pt`; for tests of loading and refusing, not of
    what a model writes."""
    from mmlib.checkpoint import BEST_FILE, CONFIG_FILE, save_checkpoint, save_run_tokenizer
    from mmlib.data.tokenizer import WordTokenizer
    from mmlib.inference.imagine import IMAGINE_FILE, Imagination
    from mmlib.model.multimodal import MultimodalModel

    config = Config(**TINY_MODEL, data_dir=run_dir / "no-data", run_name=run_dir.name)
    config.save(run_dir / CONFIG_FILE)
    tokenizer = WordTokenizer(100).build_vocab(CAPTIONS)
    save_run_tokenizer(tokenizer, run_dir)
    torch.manual_seed(0)
    model = MultimodalModel(config, len(tokenizer))
    save_checkpoint(model.state_dict(), run_dir / BEST_FILE)
    imagination = Imagination(config.embedding_dim, config.latent_dim)
    save_checkpoint(imagination.state_dict(), run_dir / IMAGINE_FILE)
    return run_dir


REAL_SAMPLES = Path(__file__).resolve().parents[1].parent / "shared/real-samples/flickr8k-200"


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """200 real Flickr8k photographs with 5 captions each (`../shared/real-samples`): skipped
    with the reason where absent (a user's machine), a failure where CI should have them."""
    if not REAL_SAMPLES.is_dir():
        message = f"real samples not present at {REAL_SAMPLES}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI runs beside ../shared/real-samples")
        pytest.skip(message)
    return REAL_SAMPLES


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def join_as_torchrun_process(rank: int, world_size: int, port: int) -> None:
    """Set the environment `torchrun` gives process `rank` (CPU, gloo, one thread each)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
