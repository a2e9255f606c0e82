"""Tests for mmlib.inference.attention (and its Predictor method and figure): the recorded
cross-attention is the decoder's own, leaves its output alone, sits on the right grid cells, and the
inside-the-box share counts the right cells."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
import torch
from conftest import SMALL_MODEL

from mmlib.config import Config
from mmlib.course.plots import plot_word_attention
from mmlib.data.images import build_image_cache, to_pixels
from mmlib.data.sources import load_split
from mmlib.data.tokenizer import WordTokenizer
from mmlib.inference.attention import (
    AttentionMaps,
    CaptionAttention,
    attention_maps,
    box_coverage,
    caption_attention,
    measure_subject_attention,
    subject_attention_share,
)
from mmlib.inference.predictor import Predictor
from mmlib.model.multimodal import MultimodalModel, build_model
from mmlib.tokens import END_ID, PAD_ID, START_ID

matplotlib.use("Agg")

SMALL = {**SMALL_MODEL, "dropout": 0.1}  # eval mode must switch dropout off
CAPTIONS = ["a small ship beside a tall tower", "two birds above a house under the sun"]


@pytest.fixture(scope="module")
def tokenizer() -> WordTokenizer:
    return WordTokenizer().build_vocab(CAPTIONS)


@pytest.fixture(scope="module")
def model(tokenizer: WordTokenizer) -> MultimodalModel:
    torch.manual_seed(0)
    return build_model(Config(**SMALL), len(tokenizer))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randint(0, 256, (2, 3, 32, 32), generator=torch.Generator().manual_seed(1)).byte()


def _tokens(tokenizer: WordTokenizer) -> torch.Tensor:
    return tokenizer.batch_encode(CAPTIONS, SMALL["max_caption_length"])


def test_shapes_and_every_row_is_a_distribution(
    model: MultimodalModel, tokenizer: WordTokenizer, images: torch.Tensor
) -> None:
    tokens = _tokens(tokenizer)
    maps = attention_maps(model, to_pixels(images), tokens)
    side = model.image_encoder.feature_size
    memory = SMALL["memory_tokens"] + side * side
    positions = tokens.shape[1] - 1
    assert maps.grid == (side, side) and side > 1
    assert maps.weights.shape == (2, SMALL["num_layers"], SMALL["num_heads"], positions, memory)
    assert maps.combined.shape == (2, positions, memory)
    assert maps.spatial.shape == (2, positions, side, side)
    assert maps.latent_share.shape == (2, positions)
    ones = torch.ones(2, positions)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(maps.weights.shape[:-1]))
    torch.testing.assert_close(maps.combined.sum(-1), ones)
    torch.testing.assert_close(maps.spatial.sum((-2, -1)), ones)
    assert bool(((maps.latent_share > 0) & (maps.latent_share < 1)).all())


@pytest.mark.parametrize("norm_first", [True, False])
def test_taking_the_maps_leaves_the_logits_and_the_model_unchanged(
    norm_first: bool, tokenizer: WordTokenizer, images: torch.Tensor
) -> None:
    torch.manual_seed(0)
    model = build_model(Config(**SMALL), len(tokenizer))
    for layer in model.caption_decoder.decoder.layers:
        layer.norm_first = norm_first
    model.train()
    tokens, pixels = _tokens(tokenizer), to_pixels(images)
    maps = attention_maps(model, pixels, tokens)
    assert model.training  # the mode is restored
    layers = model.caption_decoder.decoder.layers
    assert all(not layer.multihead_attn._forward_hooks for layer in layers)  # hooks removed
    model.eval()
    with torch.no_grad():
        assert torch.equal(maps.logits, model(pixels, tokens).caption_logits)


def test_the_weights_are_the_first_layers_cross_attention_at_each_position(
    model: MultimodalModel, tokenizer: WordTokenizer, images: torch.Tensor
) -> None:
    """Recomputed by hand for layer 0 (pre-norm): self-attention, then the cross-attention's
    weights over the memory, query t = input token t, which predicts token t + 1."""
    tokens, pixels = _tokens(tokenizer), to_pixels(images)
    maps = attention_maps(model, pixels, tokens)
    model.eval()
    decoder, layer = model.caption_decoder, model.caption_decoder.decoder.layers[0]
    inputs = tokens[:, :-1]
    with torch.no_grad():
        memory = model.image_memory(pixels)
        x = decoder.embed(inputs)
        causal = torch.ones(inputs.shape[1], inputs.shape[1], dtype=torch.bool).triu(1)
        x = x + layer._sa_block(layer.norm1(x), causal, inputs == PAD_ID, True)
        _, expected = layer.multihead_attn(
            layer.norm2(x), memory, memory, average_attn_weights=False
        )
    torch.testing.assert_close(maps.weights[:, 0], expected)


def test_spatial_puts_memory_cells_row_by_row_after_the_latent_tokens() -> None:
    """Memory index memory_tokens + row * w + column is grid cell (row, column)."""
    latent, rows, cols = 3, 2, 4
    weights = torch.zeros(1, 1, 1, 2, latent + rows * cols)
    weights[0, 0, 0, 0, latent + 1 * cols + 2] = 0.5  # cell (1, 2)
    weights[0, 0, 0, 0, 0] = 0.5  # a latent token
    weights[0, 0, 0, 1, latent + 0 * cols + 3] = 1.0  # cell (0, 3)
    maps = AttentionMaps(weights, torch.zeros(1, 2, 5), latent, (rows, cols))
    expected = torch.zeros(1, 2, rows, cols)
    expected[0, 0, 1, 2] = expected[0, 1, 0, 3] = 1.0
    torch.testing.assert_close(maps.spatial, expected)
    torch.testing.assert_close(maps.latent_share, torch.tensor([[0.5, 0.0]]))


def test_combined_is_the_mean_over_every_layer_and_head() -> None:
    weights = torch.zeros(1, 2, 2, 1, 1 + 4)
    for index, (layer, head) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        weights[0, layer, head, 0, 1 + index] = 1.0  # each on its own cell
    maps = AttentionMaps(weights, torch.zeros(1, 1, 5), 1, (2, 2))
    torch.testing.assert_close(maps.combined, torch.tensor([[[0.0, 0.25, 0.25, 0.25, 0.25]]]))


def test_box_coverage_counts_cells_partly_inside_by_the_part_inside() -> None:
    grid = (4, 4)
    lower_middle = box_coverage([(0.25, 0.5, 0.75, 1.0)], grid)
    expected = torch.zeros(4, 4)
    expected[2:, 1:3] = 1.0
    torch.testing.assert_close(lower_middle, expected)
    left_column = box_coverage([(0.0, 0.0, 0.25, 1.0)], grid)  # x is the column, y the row
    assert left_column[:, 0].tolist() == [1.0] * 4 and float(left_column[:, 1:].sum()) == 0.0
    straddling = box_coverage([(0.125, 0.0, 0.375, 0.125)], grid)
    expected = torch.zeros(4, 4)
    expected[0, 0] = expected[0, 1] = 0.25
    torch.testing.assert_close(straddling, expected)
    overlapping = box_coverage([(0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)], grid)
    assert float(overlapping.mean()) == pytest.approx(0.25 + 0.25 - 0.0625)  # union, not sum
    assert float(box_coverage([(-0.2, 0.9, 0.1, 1.3)], grid).mean()) == pytest.approx(0.01)


def _caption(words: list[str], maps: torch.Tensor, latent: list[float]) -> CaptionAttention:
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    return CaptionAttention(image, " ".join(words), words, maps, torch.tensor(latent))


def test_measure_subject_attention_on_hand_made_maps() -> None:
    """The ship (bottom-left quarter) gets all of "ship"'s attention in cell (3, 0), bottom left:
    a transposed or flipped grid would put it outside. "tower" attends evenly, so its inside
    share is its box's area; "moon" names a kind the scene lacks; "a" is no subject."""
    scene = {
        "subjects": [
            {"kind": "ship", "box": [0.0, 0.5, 0.5, 1.0]},
            {"kind": "tower", "box": [0.75, 0.25, 1.0, 1.0]},
        ]
    }
    ship = torch.zeros(4, 4)
    ship[3, 0] = 1.0
    even = torch.full((4, 4), 1 / 16)
    caption = _caption(
        ["a", "ship", "beside", "a", "tower", "moon"],
        torch.stack([even, ship, even, even, even, even]),
        [0.9, 0.2, 0.9, 0.9, 0.4, 0.5],
    )
    result = measure_subject_attention([caption], [scene])
    assert result.words == 2 and result.absent == 1
    assert result.inside_share == pytest.approx((1.0 + 0.1875) / 2)
    assert result.area_share == pytest.approx((0.25 + 0.1875) / 2)
    assert result.latent_share == pytest.approx((0.2 + 0.4) / 2)
    assert "2 subject words" in str(result)
    with pytest.raises(ValueError, match="nothing to measure"):
        measure_subject_attention([_caption(["a"], even[None], [0.5])], [scene])


def test_subject_attention_share_on_synthetic_records(synthetic_dataset: Path) -> None:
    """End to end on reference captions: each subject is named once, and measured."""
    overrides = {"data_dir": synthetic_dataset, "val_fraction": 0.2, "max_caption_length": 32}
    config = Config(**{**SMALL, **overrides})
    records = load_split(config).val[:6]
    tokenizer = WordTokenizer().build_vocab(r.captions[0] for r in records)
    torch.manual_seed(0)
    model = build_model(config, len(tokenizer))
    images = build_image_cache(records, 32, progress=False, workers=1)
    result = subject_attention_share(model, tokenizer, records, images, "reference", batch_size=4)
    subjects = sum(len(record.attributes["scene"]["subjects"]) for record in records)
    assert result.absent == 0 and result.words == subjects
    assert 0.0 < result.inside_share < 1.0 and 0.0 < result.area_share < 1.0
    assert 0.0 < result.latent_share < 1.0
    bare = [type(records[0])(records[0].id, records[0].image_path, records[0].captions)]
    with pytest.raises(ValueError, match="expected 'generated' or 'reference'"):
        subject_attention_share(model, tokenizer, records, images, "references")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no 'scene'"):
        subject_attention_share(model, tokenizer, bare, images[:1])


def test_caption_attention_pairs_each_word_with_the_position_that_predicts_it(
    model: MultimodalModel, tokenizer: WordTokenizer, images: torch.Tensor
) -> None:
    word = tokenizer.word2idx
    tokens = torch.tensor(
        [
            [START_ID, word["ship"], PAD_ID, word["tower"], END_ID, word["sun"], PAD_ID],
            [START_ID, word["two"], word["birds"], END_ID, PAD_ID, PAD_ID, PAD_ID],
        ]
    )
    found = caption_attention(model, tokenizer, images, tokens)
    maps = attention_maps(model, to_pixels(images), tokens)
    assert [item.words for item in found] == [["ship", "tower"], ["two", "birds"]]
    assert [item.caption for item in found] == tokenizer.batch_decode(tokens)
    torch.testing.assert_close(found[0].maps, maps.spatial[0, [0, 2]])
    torch.testing.assert_close(found[1].latent_shares, maps.latent_share[1, [0, 1]])
    assert torch.equal(found[1].image, images[1])


def test_predictor_caption_attention_follows_its_greedy_captions(
    model: MultimodalModel, tokenizer: WordTokenizer, images: torch.Tensor
) -> None:
    predictor = Predictor(model, tokenizer, Config(**SMALL))
    found = predictor.caption_attention(images, batch_size=1)
    assert [item.caption for item in found] == predictor.caption(images)
    side = model.image_encoder.feature_size
    for item in found:
        assert item.maps.shape == (len(item.words), side, side)
        assert item.caption == " ".join(item.words)


def test_plot_word_attention_has_one_panel_per_word_on_one_scale() -> None:
    maps = torch.rand(7, 4, 4)
    maps /= maps.sum((-2, -1), keepdim=True)
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    words = ["an", "engraving", "depicting", "a", "small", "ship", "beside"]
    figure = plot_word_attention(image, words, maps, torch.rand(7), title="a caption", columns=4)
    panels = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in panels] == words
    overlays = [axis.images[1] for axis in panels]
    assert {overlay.get_clim() for overlay in overlays} == {(0.0, float(maps.max()))}
    assert len(figure.axes) == len(words) + 1  # the panels and one colour bar
    with pytest.raises(ValueError, match="7 words but 6 maps"):
        plot_word_attention(image, words, maps[:6])
