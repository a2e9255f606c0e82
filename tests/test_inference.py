"""mmlib.inference.predictor on a trained tiny run: inputs, captioning, retrieval, imagining,
sampling, and the `caption` / `imagine` commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmlib.checkpoint import CheckpointError
from mmlib.cli import main
from mmlib.data.images import to_pixels, to_uint8
from mmlib.data.sources import load_split
from mmlib.data.synthetic import subjects_in_caption
from mmlib.inference.imagine import IMAGINE_FILE
from mmlib.inference.predictor import Agreement, Predictor, SampledPairs, load_images


@pytest.fixture(scope="module")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor.load(tiny_run)


@pytest.fixture(scope="module")
def val_paths(predictor: Predictor) -> list[Path]:
    return [record.image_path for record in load_split(predictor.config).val]


def test_load_images_accepts_paths_pil_and_tensors(val_paths: list[Path]) -> None:
    from_path = load_images(val_paths[:1], 32)
    pil = Image.open(val_paths[0])
    tensor = from_path[0]
    batch = load_images([val_paths[0], pil, tensor, tensor.float() / 255], 32)
    assert batch.dtype == torch.uint8 and batch.shape == (4, 3, 32, 32)
    assert all(torch.equal(image, from_path[0]) for image in batch)
    assert load_images(from_path, 32).shape == (1, 3, 32, 32)  # a batch tensor
    wide = load_images([torch.zeros(3, 10, 40, dtype=torch.uint8)], 32)
    assert wide.shape == (1, 3, 32, 32)


def test_load_images_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_images([tmp_path / "missing.png"], 32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_images([torch.full((3, 8, 8), 2.0)], 32)
    with pytest.raises(ValueError, match="got none"):
        load_images([], 32)


def test_pixels_round_trip() -> None:
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    pixels = to_pixels(images)
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert torch.equal(to_uint8(pixels), images)
    floats = images.float()
    to_pixels(floats)
    assert torch.equal(floats, images.float())  # the input is never scaled in place


def test_caption_matches_the_model_greedy_and_beam(
    predictor: Predictor, val_paths: list[Path]
) -> None:
    pixels = predictor.pixels(val_paths)
    expected = predictor.tokenizer.batch_decode(predictor.model.generate(pixels))
    assert predictor.caption(val_paths, batch_size=3) == expected
    beam = predictor.model.generate(pixels, method="beam", beam_width=3)
    assert predictor.caption(val_paths, "beam", beam_width=3) == (
        predictor.tokenizer.batch_decode(beam)
    )


def test_retrieve_ranks_by_cosine_similarity_both_ways(
    predictor: Predictor, val_paths: list[Path]
) -> None:
    captions = [r.captions[0] for r in load_split(predictor.config).val]
    matches = predictor.retrieve(val_paths, captions, k=3)
    similarity = predictor.embed_images(val_paths) @ predictor.embed_captions(captions).T
    assert len(matches) == len(val_paths) and all(len(row) == 3 for row in matches)
    for row, scores in zip(matches, similarity, strict=True):
        assert row[0].index == int(scores.argmax()) and row[0].item == captions[row[0].index]
        assert row[0].score == pytest.approx(float(scores.max()), abs=1e-5)
        assert [m.score for m in row] == sorted((m.score for m in row), reverse=True)
    to_images = predictor.retrieve(captions[:2], val_paths, k=2)
    assert to_images[0][0].item == int(similarity[:, 0].argmax())


def test_embed_captions_rejects_a_bare_string(predictor: Predictor) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        predictor.embed_captions("a ship")


def test_imagine_gives_images_and_is_deterministic(predictor: Predictor) -> None:
    images = predictor.imagine(["An engraving depicting a small ship", "two birds"])
    assert images.dtype == torch.uint8 and images.shape == (2, 3, 32, 32)
    assert torch.equal(images[:1], predictor.imagine("An engraving depicting a small ship"))
    assert not torch.equal(images[:1], predictor.imagine("An engraving depicting a small ship", 1))


def test_sample_pairs_and_their_agreement(predictor: Predictor) -> None:
    pairs = predictor.sample_pairs(5, seed=3)
    assert pairs.images.shape == (5, 3, 32, 32) and len(pairs.captions) == len(pairs.readings) == 5
    assert torch.equal(pairs.images, predictor.sample_pairs(5, seed=3).images)
    agree = SampledPairs(pairs.images[:2], ["a small ship", "two birds"], ["a ship", "a bird"])
    assert agree.subject_agreement(subjects_in_caption) == Agreement(0.5, 2, 2)
    # Empty captions and readings name nothing: they are not counted as agreeing.
    empty = SampledPairs(pairs.images[:3], ["", "a ship", ""], ["", "a ship", "a bird"])
    assert empty.subject_agreement(subjects_in_caption) == Agreement(1.0, 1, 3)
    nothing = SampledPairs(pairs.images[:1], [""], [""])
    assert nothing.subject_agreement(subjects_in_caption) == Agreement(None, 0, 1)


def test_a_run_without_imagine_file_says_how_to_fit_it(tiny_run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_run, tmp_path / "run")
    (copy / IMAGINE_FILE).unlink()
    bare = Predictor.load(copy)
    with pytest.raises(CheckpointError, match="fit-imagine"):
        bare.imagine("a ship")
    (copy / IMAGINE_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="imagine.pt"):
        Predictor.load(copy)


def test_caption_and_imagine_commands(
    tiny_run: Path, val_paths: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["caption", str(tiny_run), str(val_paths[0]), "--beam", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{val_paths[0]}\t")
    out = tmp_path / "ship.png"
    assert main(["imagine", str(tiny_run), "a small ship", "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    assert main(["caption", str(tiny_run), str(tmp_path / "nope.png")]) == 2
    assert "nope.png" in capsys.readouterr().err
