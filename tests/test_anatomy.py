"""Tests for mmlib.course.anatomy: stage shapes, the losses at initialisation, the temperature."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL

from mmlib.config import Config
from mmlib.course.anatomy import (
    EmbeddedBatch,
    caption_prediction,
    chance_level,
    embed_batch,
    format_initial_losses,
    format_stages,
    initial_losses,
    loss_at,
    similarity_matrix,
    softmax_at,
    stage_shapes,
    temperature_view,
)
from mmlib.data.dataset import CaptionDataset, make_loader
from mmlib.data.images import build_image_cache
from mmlib.data.sources import load_split
from mmlib.data.tokenizer import WordTokenizer
from mmlib.model.losses import LossWeights, alignment_chance, compute_losses, same_caption_mask
from mmlib.model.multimodal import MultimodalModel, build_model, encoder_channels

Batch = tuple[Config, int, torch.Tensor, torch.Tensor]


@pytest.fixture(scope="module")
def course_batch(synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """The course preset, its vocabulary size and one real training batch (the loader's first),
    on the synthetic course data."""
    config = Config.preset(
        "cpu-tiny", data_dir=synthetic_dataset, cache_dir=tmp_path_factory.mktemp("cache")
    )
    train = load_split(config).train
    tokenizer = WordTokenizer(config.vocab_size).build_vocab(
        [caption for record in train for caption in record.captions], config.min_freq
    )
    images = build_image_cache(train, config.image_size, config.resize_mode, progress=False)
    dataset = CaptionDataset(train, images, tokenizer, config.max_caption_length)
    batch = next(iter(make_loader(dataset, config.batch_size, shuffle=True, seed=config.seed)))
    return config, len(tokenizer), batch["images"], batch["tokens"]


def untrained(config: Config, vocab_size: int, seed: int = 0) -> MultimodalModel:
    torch.manual_seed(seed)
    return build_model(config, vocab_size)


def tiny_model(vocab_size: int = 30) -> MultimodalModel:
    return untrained(Config(**TINY_MODEL, dropout=0.0), vocab_size)


def tiny_batch(captions: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.rand(len(captions), 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = torch.zeros(len(captions), 8, dtype=torch.long)
    for row, words in enumerate(captions):
        tokens[row, : len(words) + 2] = torch.tensor([1, *words, 2])
    return images * 2 - 1, tokens


# --------------------------------------------------------------------------- shapes


def test_stage_shapes_follow_the_batch(course_batch: Batch) -> None:
    config, vocab, images, tokens = course_batch
    model = untrained(config, vocab)
    shapes = {stage.name: stage.shape for stage in stage_shapes(model, images, tokens)}
    batch, length = tokens.shape
    channels, cells = encoder_channels(config)[-1], model.image_encoder.feature_size
    assert shapes == {
        "input images": tuple(images.shape),
        "input tokens": (batch, length),
        "image encoder: feature map": (batch, channels, cells, cells),
        "image encoder: latent": (batch, config.latent_dim),
        "image decoder: reconstruction": tuple(images.shape),
        "caption decoder: memory": (batch, config.memory_tokens + cells**2, config.embedding_dim),
        "caption decoder: logits (fed tokens[:, :-1])": (batch, length - 1, vocab),
        "text encoder: pooled": (batch, config.embedding_dim),
        "image embedding head": (batch, config.embedding_dim),
        "text embedding head": (batch, config.embedding_dim),
        "logit scale": (),
    }


def test_stage_parameters_count_every_parameter_once_and_match_the_summary() -> None:
    model = tiny_model()
    stages = stage_shapes(model, *tiny_batch([[5, 6], [7]]))
    summary = model.parameter_summary()
    by_part = {part: 0 for part in summary if part != "total"}
    for stage in stages:
        if stage.part:
            by_part[stage.part] += stage.parameters
    assert by_part == {part: count for part, count in summary.items() if part != "total"}
    assert sum(stage.parameters for stage in stages) == summary["total"]
    covered = [name for stage in stages for path in stage.modules for name in names(model, path)]
    assert sorted(covered) == sorted(name for name, _ in model.named_parameters())


def names(model: MultimodalModel, path: str) -> list[str]:
    """The parameter names under a submodule's path, or the path of a parameter itself."""
    try:
        module = model.get_submodule(path)
    except AttributeError:
        return [path]
    return [f"{path}.{name}" for name, _ in module.named_parameters()]


def test_stage_shapes_leave_no_hooks_and_keep_the_training_mode() -> None:
    model = tiny_model().train()
    stage_shapes(model, *tiny_batch([[5], [6]]))
    assert model.training
    assert not any(module._forward_hooks for module in model.modules())


def test_format_stages_prints_counts_with_separators_and_the_total(course_batch: Batch) -> None:
    config, vocab, images, tokens = course_batch
    model = untrained(config, vocab)
    table = format_stages(stage_shapes(model, images[:2], tokens[:2]))
    total = model.parameter_summary()["total"]
    assert total > 1_000_000 and table.splitlines()[-1].split()[-1] == f"{total:,}"
    assert f"{model.parameter_summary()['image_decoder']:,}" in table
    assert "[2, 3, 64, 64]" in table and "[] (scalar)" in table


# --------------------------------------------------------------------------- loss at init


def test_caption_prediction_is_ln_v_plus_half_the_initial_logit_variance() -> None:
    model = tiny_model(vocab_size=500)
    log_v, predicted = caption_prediction(model)
    width = model.caption_decoder.output.in_features
    assert log_v == pytest.approx(math.log(500))
    # The variance it assumes: logits of the initial output layer for a LayerNorm output.
    hidden = torch.nn.functional.layer_norm(torch.randn(4000, width), (width,))
    with torch.no_grad():
        variance = model.caption_decoder.output(hidden).var(dim=1).mean()
    assert predicted - log_v == pytest.approx(float(variance) / 2, rel=0.1)


@pytest.mark.parametrize("vocab", [None, 2000], ids=["course-vocabulary", "vocabulary-2000"])
def test_initial_losses_are_predicted_within_five_percent(
    course_batch: Batch, vocab: int | None
) -> None:
    config, course_vocab, images, tokens = course_batch
    model = untrained(config, vocab or course_vocab)
    losses = initial_losses(model, images, tokens, LossWeights.from_config(config))
    assert list(losses) == ["image", "caption", "alignment", "total"]
    for loss in losses.values():
        assert abs(loss.ratio - 1) < 0.05, format_initial_losses(losses)
    with torch.no_grad():
        model.eval()
        measured = compute_losses(model(images, tokens), images, tokens, config)
    assert losses["total"].measured == pytest.approx(float(measured.total))
    assert losses["caption"].measured == pytest.approx(float(measured.caption))


def test_the_alignment_prediction_counts_duplicate_captions(course_batch: Batch) -> None:
    config, vocab, images, tokens = course_batch
    repeated_images, repeated_tokens = images[:16].repeat(4, 1, 1, 1), tokens[:16].repeat(4, 1)
    model = untrained(config, vocab)
    weights = LossWeights.from_config(config)
    alignment = initial_losses(model, repeated_images, repeated_tokens, weights)["alignment"]
    assert abs(alignment.ratio - 1) < 0.05, alignment
    assert abs(alignment.measured / math.log(64) - 1) > 0.2  # ln B ignores the duplicates


def test_the_alignment_prediction_follows_the_starting_temperature(course_batch: Batch) -> None:
    config, vocab, images, tokens = course_batch
    model = untrained(config, vocab)
    with torch.no_grad():
        model.log_logit_scale.fill_(math.log(40.0))
    alignment = initial_losses(model, images, tokens, LossWeights.from_config(config))["alignment"]
    chance = float(alignment_chance(same_caption_mask(tokens)))
    assert abs(alignment.ratio - 1) < 0.05, alignment
    assert alignment.measured / chance - 1 > 0.05  # the chance level alone is too low here


def test_initial_losses_keep_the_training_mode_and_format_as_a_table() -> None:
    model = tiny_model().train()
    losses = initial_losses(model, *tiny_batch([[5, 6], [7], [8, 9]]), LossWeights())
    assert model.training
    table = format_initial_losses(losses)
    assert table.splitlines()[0].split() == ["loss", "predicted", "measured", "ratio", "how"]
    assert "ln V + sigma^2 / 2 = ln 30" in table and "non-pad targets" in table


# --------------------------------------------------------------------------- temperature


def embedded(captions: list[list[int]]) -> tuple[MultimodalModel, EmbeddedBatch]:
    model = tiny_model()
    return model, embed_batch(model, *tiny_batch(captions))


def test_similarity_matrix_is_each_image_against_each_caption() -> None:
    model = tiny_model().eval()
    images, tokens = tiny_batch([[5], [6, 7], [8]])
    similarities = similarity_matrix(model, images, tokens)
    with torch.no_grad():
        expected = model.encode_image(images) @ model.encode_text(tokens).T
    torch.testing.assert_close(similarities, expected)
    assert similarities.shape == (3, 3)


def test_loss_at_the_model_temperature_is_the_training_alignment_loss() -> None:
    model, batch = embedded([[5], [6, 7], [5], [8]])
    images, tokens = tiny_batch([[5], [6, 7], [5], [8]])
    with torch.no_grad():
        model.eval()
        alignment = compute_losses(model(images, tokens), images, tokens, LossWeights()).alignment
    assert batch.temperature == pytest.approx(0.07)
    assert loss_at(batch, batch.temperature) == pytest.approx(float(alignment), rel=1e-5)


def test_a_lower_temperature_sharpens_the_softmax() -> None:
    _, batch = embedded([[5], [6, 7], [8], [9], [10]])
    similarities = batch.similarities
    for temperature in (0.01, 0.1, 1.0):
        rows = softmax_at(similarities, temperature).sum(dim=1)
        torch.testing.assert_close(rows, torch.ones(5))
    sharp, flat = softmax_at(similarities, 1e-4), softmax_at(similarities, 1e4)
    assert torch.equal(sharp.argmax(1), similarities.argmax(1)) and sharp.max(1).values.min() > 0.99
    torch.testing.assert_close(flat, torch.full((5, 5), 0.2), atol=1e-4, rtol=0)
    assert loss_at(batch, 1e4) == pytest.approx(chance_level(batch), abs=1e-4)
    with pytest.raises(ValueError, match="temperature=0"):
        softmax_at(similarities, 0)


def test_the_chance_level_grows_with_the_batch_and_falls_with_duplicates() -> None:
    _, batch = embedded([[5], [6], [7], [8], [9], [10], [5], [5]])
    assert chance_level(batch.first(2)) == pytest.approx(math.log(2))
    assert chance_level(batch.first(6)) == pytest.approx(math.log(6))
    # 8 rows, "5" three times: 3 rows cost ln 8 - ln 3, 5 rows ln 8.
    assert chance_level(batch) == pytest.approx(math.log(8) - 3 / 8 * math.log(3))


def test_temperature_view_shows_the_first_pairs_at_a_temperature() -> None:
    _, batch = embedded([[5], [6], [5], [8], [9]])
    view = temperature_view(batch, 0.5, 3)
    assert (view.batch_size, view.temperature, view.chance_probability) == (3, 0.5, 1 / 3)
    torch.testing.assert_close(view.similarities, batch.similarities[:3, :3])
    torch.testing.assert_close(view.probabilities, softmax_at(batch.similarities[:3, :3], 0.5))
    assert view.positives.tolist() == [
        [True, False, True],
        [False, True, False],
        [True, False, True],
    ]
    assert view.loss == pytest.approx(loss_at(batch.first(3), 0.5))
    assert view.chance == pytest.approx(math.log(3) - 2 / 3 * math.log(2))
    with pytest.raises(ValueError, match="between 2 and 5"):
        temperature_view(batch, 0.5, 6)
