"""Tests for mmlib.model.multimodal: shapes, masks, the transformer really used, decoding, sizes."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_MODEL

from mmlib.config import Config
from mmlib.data.tokenizer import WordTokenizer
from mmlib.model.multimodal import CaptionDecoder, MultimodalModel, build_model, encoder_levels
from mmlib.tokens import END_ID, PAD_ID, START_ID

VOCAB = 20
SMALL = SMALL_MODEL
OVERFIT_CAPTIONS = (
    "a small ship beside a tall tower",
    "a large ship beside a small tower",
    "two birds above a house",
    "a tall tree beside a river under the sun",
    "a house under a crescent moon",
    "a small ship under the sun",
    "a church left of a tall tree",
    "a windmill",
)


def small_config(**overrides: object) -> Config:
    return Config(**{**SMALL, **overrides})


def small_model(seed: int = 0, **overrides: object) -> MultimodalModel:
    torch.manual_seed(seed)
    return build_model(small_config(**overrides), VOCAB).eval()


def images(batch: int, size: int = 32, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


def tokens(*rows: list[int], length: int = 10) -> torch.Tensor:
    """Rows of word ids wrapped as <START> words <END> <PAD>..."""
    out = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
    for i, words in enumerate(rows):
        ids = [START_ID, *words, END_ID]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


@pytest.mark.parametrize(
    ("size", "levels"), [(512, 5), (256, 5), (128, 5), (64, 4), (32, 3), (16, 2), (48, 3)]
)
def test_encoder_levels_keep_a_map_of_at_least_four_pixels(size: int, levels: int) -> None:
    assert encoder_levels(size) == levels
    assert size >> levels >= 4


@pytest.mark.parametrize(
    "config",
    [Config.preset("cpu-tiny"), small_config(), small_config(image_size=128)],
    ids=["cpu-tiny", "custom-32", "custom-128"],
)
def test_forward_shapes_and_ranges(config: Config) -> None:
    torch.manual_seed(0)
    model = build_model(config, VOCAB)
    size = config.image_size
    batch = tokens([5, 6, 7], [8], [9, 10, 11, 12, 13])
    out = model(images(3, size), batch)
    assert out.reconstruction.shape == (3, 3, size, size)
    assert out.reconstruction.abs().max() <= 1.0
    assert out.caption_logits.shape == (3, batch.shape[1] - 1, VOCAB)
    assert out.latent.shape == (3, config.latent_dim)
    for embedding in (out.image_embedding, out.text_embedding):
        assert embedding.shape == (3, config.embedding_dim)
        torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(3))
    assert out.logit_scale.shape == ()
    assert out.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_reconstruct_equals_the_forward_reconstruction() -> None:
    model = small_model()
    pictures = images(2)
    expected = model(pictures, tokens([5], [6])).reconstruction
    torch.testing.assert_close(model.reconstruct(pictures), expected)


def test_output_layer_has_exactly_the_vocabulary_passed_in() -> None:
    model = small_model()
    assert model.caption_decoder.output.out_features == VOCAB
    with pytest.raises(ValueError, match="vocab_size=4"):
        build_model(small_config(), 4)


def test_bad_inputs_are_named() -> None:
    model = small_model()
    with pytest.raises(ValueError, match="images: expected shape"):
        model(images(2, 64), tokens([5], [6]))
    with pytest.raises(ValueError, match="max_caption_length is 12"):
        model.encode_text(torch.ones(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match="max_length=13"):
        model.generate(images(1), max_length=13)


def test_caption_decoder_is_causal() -> None:
    model = small_model()
    before = tokens([5, 6, 7, 8, 9, 10])
    after = before.clone()
    after[0, 4] = 15
    logits_before = model(images(1), before).caption_logits
    logits_after = model(images(1), after).caption_logits
    # caption_logits[:, t] sees tokens[:, : t + 1]: positions 0-3 do not see token 4.
    torch.testing.assert_close(logits_before[:, :4], logits_after[:, :4])
    assert not torch.allclose(logits_before[:, 4:], logits_after[:, 4:])


@pytest.mark.parametrize("causal", [True, False])
def test_only_the_unmasked_decoder_reads_later_tokens(causal: bool) -> None:
    model = small_model(causal_caption_mask=causal)
    before = tokens([5, 6, 7, 8, 9, 10])
    logits_before = model(images(1), before).caption_logits
    for changed in range(1, logits_before.shape[1]):  # the fed tokens are before[:, :-1]
        after = before.clone()
        after[0, changed] = 15
        earlier_after = model(images(1), after).caption_logits[:, :changed]
        unchanged = torch.allclose(logits_before[:, :changed], earlier_after, atol=1e-6)
        assert unchanged == causal, f"token {changed} changed earlier logits: {not unchanged}"


def test_unmasked_decoder_keeps_the_padding_mask() -> None:
    model = small_model(causal_caption_mask=False)
    # Fed tokens[:, :-1]: <START> 5 6 7 <END>, then (padded) only <PAD>, which nobody reads.
    short, padded = tokens([5, 6, 7], length=6), tokens([5, 6, 7], length=12)
    logits_short = model(images(1), short).caption_logits
    logits_padded = model(images(1), padded).caption_logits
    torch.testing.assert_close(logits_short, logits_padded[:, :5])


def test_causal_mask_hides_later_positions() -> None:
    expected = torch.tensor([[False, True, True], [False, False, True], [False, False, False]])
    assert torch.equal(CaptionDecoder.causal_mask(3), expected)


def test_padding_does_not_change_logits_or_text_embeddings() -> None:
    model = small_model()
    short = tokens([5, 6, 7], length=5)
    padded = tokens([5, 6, 7], length=12)
    out_short, out_padded = model(images(1), short), model(images(1), padded)
    torch.testing.assert_close(out_short.caption_logits, out_padded.caption_logits[:, :4])
    torch.testing.assert_close(out_short.text_embedding, out_padded.text_embedding)


def test_logits_depend_on_earlier_context_and_on_the_image() -> None:
    """A bigram table (train_production.py's bug) would fail both: it sees only the previous
    token."""
    model = small_model()
    first, second = tokens([5, 6, 7, 8]), tokens([9, 6, 7, 8])
    picture = images(1)
    # Position 2 predicts from token 7 at input position 2; token 1 differs two steps back.
    logits_first = model(picture, first).caption_logits[0, 2]
    logits_second = model(picture, second).caption_logits[0, 2]
    assert (logits_first - logits_second).abs().max() > 1e-3
    other_picture = model(images(1, seed=2), first).caption_logits[0, 2]
    assert (logits_first - other_picture).abs().max() > 1e-3


def test_text_encoder_is_order_aware() -> None:
    captions = ["a small ship beside a large tower", "a large ship beside a small tower"]
    tokenizer = WordTokenizer().build_vocab(captions)
    torch.manual_seed(0)
    model = build_model(small_config(), len(tokenizer)).eval()
    first, second = model.encode_text(tokenizer.batch_encode(captions, 12))
    assert sorted(tokenizer.batch_encode(captions, 12)[0].tolist()) == sorted(
        tokenizer.batch_encode(captions, 12)[1].tolist()
    )
    assert (first - second).norm() > 1e-2


def test_generation_stops_at_end_and_pads_after() -> None:
    model = small_model()
    with torch.no_grad():
        model.caption_decoder.output.bias[END_ID] = 1e4
    for method in ("greedy", "beam"):
        out = model.generate(images(3), max_length=10, method=method)
        assert out.tolist() == [[START_ID, END_ID]] * 3
    with torch.no_grad():
        model.caption_decoder.output.bias[END_ID] = -1e4
    out = model.generate(images(3), max_length=7, method="beam")
    assert out.shape == (3, 7)
    assert not (out == END_ID).any()


def test_generate_restores_training_mode() -> None:
    model = small_model().train()
    model.generate(images(1), max_length=4)
    assert model.training


def test_generate_with_a_latent_replaces_only_the_latent() -> None:
    model = small_model().eval()
    pixels = images(3)
    own_latent = model.image_encoder(pixels)[0]
    assert torch.equal(model.generate(pixels, latent=own_latent), model.generate(pixels))
    memory = model.image_memory(pixels, latent=torch.zeros_like(own_latent))
    tokens_memory = model.caption_decoder.memory_tokens
    assert torch.equal(memory[:, tokens_memory:], model.image_memory(pixels)[:, tokens_memory:])
    assert not torch.allclose(
        memory[:, :tokens_memory], model.image_memory(pixels)[:, :tokens_memory]
    )


def test_overfits_eight_captions_to_exact_greedy_and_beam_reproduction() -> None:
    tokenizer = WordTokenizer().build_vocab(OVERFIT_CAPTIONS)
    targets = tokenizer.batch_encode(OVERFIT_CAPTIONS, 12)
    pictures = images(len(OVERFIT_CAPTIONS), seed=3)
    torch.manual_seed(0)
    model = build_model(small_config(), len(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(400):
        model.train()
        logits = model(pictures, targets).caption_logits
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), targets[:, 1:].flatten(), ignore_index=PAD_ID
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 24 and loss.item() < 0.05:
            break
    greedy = model.generate(pictures, max_length=12)
    assert tokenizer.batch_decode(greedy) == list(OVERFIT_CAPTIONS), f"after {step + 1} steps"
    # Rows end at their own <END>, then pad; the batch is as long as its longest caption.
    longest = max(len(caption.split()) for caption in OVERFIT_CAPTIONS) + 2
    assert greedy.shape == (len(OVERFIT_CAPTIONS), longest)
    torch.testing.assert_close(greedy, targets[:, :longest])
    beam = model.generate(pictures, max_length=12, method="beam", beam_width=4)
    torch.testing.assert_close(beam, greedy)
    torch.testing.assert_close(model.generate(pictures, 12, "beam", beam_width=1), greedy)


# "was": the count of the same part in train_production.py's model.
SEED_LARGE_PARTS = {
    "image_encoder": 9_585_488,  # was 7,742,272: same convs, a head that keeps the layout
    "image_decoder": 74_717_507,  # as it was, exactly
    "text_encoder": 10_452_992,  # new
    "caption_decoder": 27_825_216,  # was 26,248,256; + 4 memory tokens, spatial memory, norms
    "alignment_heads": 1_576_449,  # new: attention pool, two projections, temperature
    "total": 124_157_652,  # was 108,708,035
}


def test_seed_large_parameter_count() -> None:
    with torch.device("meta"):
        model = build_model(Config.preset("seed-large"), 8000)
    print(model.summary())
    assert model.parameter_summary() == SEED_LARGE_PARTS


def test_parameter_summary_accounts_for_every_parameter() -> None:
    counts = small_model().parameter_summary()
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert "total" in small_model().summary()
