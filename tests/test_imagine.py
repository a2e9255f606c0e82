"""mmlib.inference.imagine: the latent flow and prior, fitting them, and imagining through them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmlib.checkpoint import load_model
from mmlib.config import MIN_IMAGINE_STEPS, Config, ConfigError
from mmlib.data.images import build_image_cache
from mmlib.data.sources import load_split
from mmlib.data.tokenizer import WordTokenizer
from mmlib.inference.export_runtime import imagine_noise
from mmlib.inference.imagine import (
    MIN_FIT_STEPS,
    LatentFlow,
    LatentGaussian,
    caption_embeddings,
    fit_imagination,
    fit_steps,
    image_latents,
    imagine_pixels,
    load_imagination,
    train_flow,
)
from mmlib.model.multimodal import MultimodalModel


@pytest.fixture(scope="module")
def trained(tiny_run: Path) -> tuple[MultimodalModel, WordTokenizer, Config]:
    return load_model(tiny_run)


def test_latent_gaussian_fits_mean_and_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[1.0, 0.0], [0.8, 0.3]])
    latents = torch.randn(4000, 2, generator=generator) @ mixing.T + torch.tensor([2.0, -1.0])
    prior = LatentGaussian(2).fit(latents)
    samples = prior.sample(4000, torch.Generator().manual_seed(1))
    assert torch.allclose(samples.mean(0), torch.tensor([2.0, -1.0]), atol=0.05)
    assert torch.allclose(torch.cov(samples.T), mixing @ mixing.T, atol=0.05)


def test_fit_imagination_lowers_the_flow_loss_and_leaves_the_model_alone(
    trained: tuple[MultimodalModel, WordTokenizer, Config],
) -> None:
    model, tokenizer, config = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train = load_split(config).train
    images = build_image_cache(train, 32, progress=False)
    latents = image_latents(model, images)
    embeddings = caption_embeddings(model, tokenizer, [r.captions[0] for r in train])

    def loss(flow: LatentFlow) -> float:
        with torch.no_grad():
            losses = [
                flow.loss(latents, flow.condition(embeddings), torch.Generator().manual_seed(s))
                for s in range(20)
            ]
        return float(torch.stack(losses).mean())

    untrained = LatentFlow(config.embedding_dim, config.latent_dim)
    untrained.fit_normalisation(latents, embeddings)
    fitted = fit_imagination(model, tokenizer, train, images, 150, seed=0).flow
    assert loss(fitted) < 0.8 * loss(untrained)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="pair up"):
        fit_imagination(model, tokenizer, train[:2], images[:3])
    with pytest.raises(ConfigError, match=f"steps=20: .* at least {MIN_IMAGINE_STEPS} steps"):
        fit_imagination(model, tokenizer, train, images, 20)  # the schedule would divide by 0


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


def test_imagine_pixels_keeps_the_best_aligned_candidate(
    tiny_run: Path, trained: tuple[MultimodalModel, WordTokenizer, Config]
) -> None:
    model, tokenizer, config = trained
    flow = load_imagination(tiny_run, config).flow
    text = caption_embeddings(model, tokenizer, ["two birds above a house", "a small ship"])
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


def test_fit_steps_scale_with_the_pairs_within_the_bounds() -> None:
    assert fit_steps(4627, 4000) == 4000  # the course: the steps the flow was tuned at
    assert fit_steps(900, 4000) == 779  # 200 images x 5 captions, 180 of them training
    assert fit_steps(10, 4000) == MIN_FIT_STEPS
    assert fit_steps(10**6, 4000) == 4000
    assert fit_steps(900, 300) == 300 and fit_steps(900, 0) == 0
