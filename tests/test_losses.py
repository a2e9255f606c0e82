"""Tests for mmlib.model.losses: each loss on known inputs, and the weighted sum."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmlib.config import Config
from mmlib.model.losses import (
    LossWeights,
    alignment_chance,
    alignment_loss,
    caption_loss,
    compute_losses,
    perceptual_loss,
    reconstruction_loss,
    same_caption_mask,
)
from mmlib.model.multimodal import build_model
from mmlib.tokens import PAD_ID


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=generator), dim=-1)


def test_reconstruction_loss_is_mse_in_minus_one_to_one() -> None:
    target = torch.rand(2, 3, 8, 8) * 2 - 1
    output = torch.tanh(torch.randn(2, 3, 8, 8))
    assert reconstruction_loss(target, target).item() == 0.0
    expected = ((output - target) ** 2).mean()
    torch.testing.assert_close(reconstruction_loss(output, target), expected)


def test_reconstruction_loss_rejects_bad_shapes_and_ranges() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_loss(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"expected \[-1, 1\]"):
        reconstruction_loss(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 255.0))


def test_caption_loss_ignores_padding() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    targets = torch.tensor([[7, 8, 2, 0, 0], [9, 2, 0, 0, 0]])
    loss = caption_loss(logits, targets)
    real = targets != PAD_ID
    torch.testing.assert_close(loss, F.cross_entropy(logits[real], targets[real]))
    changed = logits.clone()
    changed[~real] = 100.0
    torch.testing.assert_close(caption_loss(changed, targets), loss)
    with pytest.raises(ValueError, match="do not match"):
        caption_loss(logits, targets[:, :4])


def test_alignment_loss_is_near_zero_for_aligned_and_log_b_for_random() -> None:
    emb = unit(16, 64)
    assert alignment_loss(emb, emb, 100.0).item() < 1e-3
    batch = 64
    random_loss = alignment_loss(unit(batch, 256, seed=1), unit(batch, 256, seed=2), 1.0)
    assert random_loss.item() == pytest.approx(math.log(batch), abs=0.05)


@pytest.mark.parametrize(
    "rows",
    [
        [[1, 5, 2], [1, 6, 2], [1, 7, 2], [1, 8, 2]],  # distinct: ln 4
        [[1, 5, 2], [1, 5, 2], [1, 7, 2], [1, 5, 2], [1, 9, 2]],  # a caption three times
        [[1, 5, 2], [1, 5, 2]],  # a partial batch of one caption twice: 0
    ],
)
def test_alignment_chance_is_the_loss_when_all_logits_are_equal(rows: list[list[int]]) -> None:
    tokens = torch.tensor(rows)
    same = same_caption_mask(tokens)
    embeddings = torch.randn(len(rows), 8, generator=torch.Generator().manual_seed(0))
    at_chance = alignment_loss(embeddings, embeddings.flip(0), 0.0, same)  # every logit 0
    assert alignment_chance(same).item() == pytest.approx(at_chance.item(), abs=1e-6)
    counts = [rows.count(row) for row in rows]
    expected = sum(math.log(len(rows) / k) for k in counts) / len(rows)
    assert alignment_chance(same).item() == pytest.approx(expected, abs=1e-6)


def test_alignment_loss_is_symmetric_and_trains_the_temperature() -> None:
    image, text = unit(8, 32, seed=1), unit(8, 32, seed=2)
    scale = torch.tensor(10.0, requires_grad=True)
    loss = alignment_loss(image, text, scale)
    torch.testing.assert_close(loss, alignment_loss(text, image, scale))
    loss.backward()
    assert scale.grad is not None and scale.grad != 0


def test_identical_captions_count_as_positives() -> None:
    tokens = torch.tensor([[1, 5, 2], [1, 5, 2], [1, 6, 2], [1, 7, 2]])
    same = same_caption_mask(tokens)
    assert same.tolist() == [
        [True, True, False, False],
        [True, True, False, False],
        [False, False, True, False],
        [False, False, False, True],
    ]
    text = unit(4, 16)
    text[1] = text[0]  # identical captions have identical text embeddings
    image = text.clone()
    # Plain CLIP cannot tell rows 0 and 1 apart: log 2 on 2 of 4 rows, in both directions.
    assert alignment_loss(image, text, 100.0).item() == pytest.approx(math.log(2) / 2, abs=1e-3)
    assert alignment_loss(image, text, 100.0, same).item() < 1e-3
    with pytest.raises(ValueError, match=r"expected \[4, 4\]"):
        alignment_loss(image, text, 100.0, same[:3])


def test_loss_weights_come_from_the_config_fields_of_their_names() -> None:
    assert LossWeights.from_config(Config()) == LossWeights(1.0, 1.0, 0.5, 0.0)
    config = Config(
        image_loss_weight=2.0,
        caption_loss_weight=3.0,
        alignment_loss_weight=0.25,
        perceptual_loss_weight=0.5,
    )
    assert LossWeights.from_config(config) == LossWeights(2.0, 3.0, 0.25, 0.5)


@pytest.fixture
def batch() -> tuple[Config, torch.Tensor, torch.Tensor]:
    config = Config(
        image_size=16,
        latent_dim=16,
        embedding_dim=16,
        num_heads=2,
        num_layers=1,
        text_encoder_layers=1,
        feedforward_dim=32,
        base_channels=4,
        max_caption_length=8,
        image_loss_weight=2.0,
        caption_loss_weight=0.5,
        alignment_loss_weight=0.25,
    )
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    tokens = torch.tensor([[1, 5, 6, 2, 0], [1, 5, 6, 2, 0], [1, 7, 2, 0, 0], [1, 8, 9, 9, 2]])
    return config, images, tokens


def test_compute_losses_reports_each_component_and_their_weighted_sum(
    batch: tuple[Config, torch.Tensor, torch.Tensor],
) -> None:
    config, images, tokens = batch
    torch.manual_seed(0)
    model = build_model(config, 10)
    output = model(images, tokens)
    losses = compute_losses(output, images, tokens, config)
    torch.testing.assert_close(
        losses.total, 2.0 * losses.image + 0.5 * losses.caption + 0.25 * losses.alignment
    )
    torch.testing.assert_close(losses.image, reconstruction_loss(output.reconstruction, images))
    torch.testing.assert_close(losses.caption, caption_loss(output.caption_logits, tokens[:, 1:]))
    # By default identical token rows (0 and 1) are positives for each other.
    explicit = alignment_loss(
        output.image_embedding, output.text_embedding, output.logit_scale, same_caption_mask(tokens)
    )
    torch.testing.assert_close(losses.alignment, explicit)
    assert set(losses.as_dict()) == {"total", "image", "caption", "alignment"}
    assert all(value.shape == () for value in losses.as_dict().values())
    losses.total.backward()
    assert model.log_logit_scale.grad is not None


def test_compute_losses_accepts_loss_weights(
    batch: tuple[Config, torch.Tensor, torch.Tensor],
) -> None:
    config, images, tokens = batch
    torch.manual_seed(0)
    output = build_model(config, 10)(images, tokens)
    losses = compute_losses(output, images, tokens, LossWeights(image=0.0, caption=1.0))
    torch.testing.assert_close(losses.total, losses.caption + 0.5 * losses.alignment)


def test_perceptual_term_adds_feature_distance_and_trains_only_the_decoder(
    batch: tuple[Config, torch.Tensor, torch.Tensor],
) -> None:
    config, images, tokens = batch
    config.perceptual_loss_weight = 3.0
    torch.manual_seed(0)
    model = build_model(config, 10)
    output = model(images, tokens)
    features = model.image_encoder(images)[1]
    torch.testing.assert_close(output.image_features, features)
    torch.testing.assert_close(
        output.reconstruction_features, model.image_encoder(output.reconstruction)[1]
    )
    losses = compute_losses(output, images, tokens, config)
    expected = reconstruction_loss(output.reconstruction, images) + 3.0 * perceptual_loss(output)
    torch.testing.assert_close(losses.image, expected)
    assert perceptual_loss(output) > 0

    assert output.image_features.grad_fn is None  # the target is fixed
    # Through the feature extractor, gradient reaches the reconstruction, not the encoder's
    # weights (they still learn through the latent, as for the pixel loss).
    pixels = output.reconstruction.detach().requires_grad_()
    F.mse_loss(model._fixed_features(pixels), features.detach()).backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.image_encoder.parameters())


def test_perceptual_loss_needs_a_model_built_for_it(
    batch: tuple[Config, torch.Tensor, torch.Tensor],
) -> None:
    config, images, tokens = batch
    output = build_model(config, 10)(images, tokens)
    assert output.image_features is None and output.reconstruction_features is None
    with pytest.raises(ValueError, match="perceptual_loss_weight=0"):
        compute_losses(output, images, tokens, LossWeights(perceptual=1.0))
