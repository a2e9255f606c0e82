"""mmlib.inference on a trained tiny run: inputs, captioning, retrieval, imagining, sampling,
and the `caption` / `imagine` / `fit-imagine` commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmlib.checkpoint import CheckpointError
from mmlib.cli import main
from mmlib.data import build_image_cache, load_split, to_pixels, to_uint8
from mmlib.export_runtime import imagine_noise
from mmlib.inference import (
    IMAGINE_FILE,
    LatentFlow,
    LatentGaussian,
    Predictor,
    SampledPairs,
    fit_imagination,
    imagine_pixels,
    load_images,
    train_flow,
)


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
    assert agree.subject_agreement() == 0.5


def test_latent_gaussian_fits_mean_and_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[1.0, 0.0], [0.8, 0.3]])
    latents = torch.randn(4000, 2, generator=generator) @ mixing.T + torch.tensor([2.0, -1.0])
    prior = LatentGaussian(2).fit(latents)
    samples = prior.sample(4000, torch.Generator().manual_seed(1))
    assert torch.allclose(samples.mean(0), torch.tensor([2.0, -1.0]), atol=0.05)
    assert torch.allclose(torch.cov(samples.T), mixing @ mixing.T, atol=0.05)


def test_fit_imagination_lowers_the_flow_loss_and_leaves_the_model_alone(
    predictor: Predictor,
) -> None:
    model = predictor.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train = load_split(predictor.config).train
    images = build_image_cache(train, 32, progress=False)
    latents = predictor.latents(images)
    embeddings = predictor.embed_captions([r.captions[0] for r in train])

    def loss(steps: int) -> float:
        flow = fit_imagination(
            Predictor(model, predictor.tokenizer, predictor.config), train, images, steps, seed=0
        ).flow
        with torch.no_grad():
            losses = [
                flow.loss(latents, flow.condition(embeddings), torch.Generator().manual_seed(s))
                for s in range(20)
            ]
        return float(torch.stack(losses).mean())

    assert loss(150) < 0.8 * loss(1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="pair up"):
        fit_imagination(predictor, train[:2], images[:3])


def test_latent_flow_coordinates_are_whitened_principal_components() -> None:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(500, 3, generator=generator) @ torch.randn(3, 6, generator=generator)
    flow = LatentFlow(embedding_dim=4, latent_dim=6, components=3)
    flow.fit_normalisation(latents + 2.0, torch.randn(500, 4, generator=generator))
    coordinates = flow.coordinates(latents + 2.0)
    assert torch.allclose(torch.cov(coordinates.T), torch.eye(3), atol=1e-3)
    assert torch.allclose(flow.latents(coordinates), latents + 2.0, atol=1e-3)  # rank 3: lossless


def test_train_flow_learns_which_cluster_a_condition_means() -> None:
    generator = torch.Generator().manual_seed(0)
    side = torch.randint(2, (2000,), generator=generator).float() * 2 - 1  # -1 or +1
    latents = side[:, None] * torch.tensor([3.0, 3.0]) + 0.3 * torch.randn(
        2000, 2, generator=generator
    )
    embeddings = torch.stack([side, -side], dim=1)
    torch.manual_seed(0)
    flow = train_flow(LatentFlow(2, 2, components=2, hidden=64, blocks=2), latents, embeddings, 600)
    noise = torch.randn(200, 2, generator=generator)
    with torch.no_grad():
        right = flow.sample(torch.tensor([[1.0, -1.0]]).expand(200, 2), noise)
        left = flow.sample(torch.tensor([[-1.0, 1.0]]).expand(200, 2), noise)
    assert (right.sum(1) > 0).float().mean() > 0.95 and (left.sum(1) < 0).float().mean() > 0.95
    assert torch.allclose(right.mean(0), torch.tensor([3.0, 3.0]), atol=0.6)


def test_imagine_pixels_keeps_the_best_aligned_candidate(predictor: Predictor) -> None:
    model, flow = predictor.model, predictor.imagination.flow
    text = predictor.embed_captions(["two birds above a house", "a small ship"])
    noise = torch.from_numpy(imagine_noise(2, 4, flow.components, seed=1))
    with torch.no_grad():
        best = imagine_pixels(model, flow, text, noise)
        each = torch.stack(
            [imagine_pixels(model, flow, text, noise[:, c : c + 1]) for c in range(4)]
        )
        scores = torch.einsum(
            "cbe,be->cb", torch.stack([model.encode_image(x) for x in each]), text
        )
    chosen = each[scores.argmax(0), torch.arange(2)]
    assert torch.allclose(best, chosen, atol=1e-6)
    assert not torch.allclose(each[0], each[1])  # the candidates do differ


def test_imagine_noise_rows_depend_only_on_seed_and_position() -> None:
    noise = imagine_noise(3, 2, 5, seed=4)
    assert noise.shape == (3, 2, 5) and noise.dtype == np.float32
    np.testing.assert_array_equal(imagine_noise(1, 2, 5, seed=4), noise[:1])
    assert not np.array_equal(imagine_noise(1, 2, 5, seed=5), noise[:1])
    with pytest.raises(ValueError, match="candidates"):
        imagine_noise(1, 0, 5)


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
