"""Tests for mmlib.data.tokenizer: the special ids, vocabulary, encoding, coverage and files."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mmlib.data.tokenizer import (
    END_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    START_ID,
    UNK_ID,
    ProductionTokenizer,
    TokenizerError,
    WordTokenizer,
    caption_lengths,
    normalize,
    oov_table,
    words,
)

CAPTIONS = [
    "An engraving depicting a small ship beside a tall tower.",
    "An engraving depicting a large ship under a crescent moon!",
    "An engraving depicting two birds above a house",
]


@pytest.fixture
def tokenizer() -> WordTokenizer:
    return WordTokenizer(vocab_size=8000).build_vocab(CAPTIONS)


def test_a_built_vocabulary_keeps_the_special_ids_that_encoding_uses(
    tokenizer: WordTokenizer,
) -> None:
    # Fixed ids: every saved checkpoint's embedding rows 0-3 were trained with them.
    assert [tokenizer.word2idx[t] for t in SPECIAL_TOKENS] == [PAD_ID, START_ID, END_ID, UNK_ID]
    assert [PAD_ID, START_ID, END_ID, UNK_ID] == [0, 1, 2, 3]
    ids = tokenizer.encode("a ship sailing", max_length=8).tolist()
    assert ids[0] == START_ID and ids[3] == UNK_ID and ids[4] == END_ID
    assert ids[5:] == [PAD_ID] * 3


def test_vocabulary_strips_punctuation_like_encode(tokenizer: WordTokenizer) -> None:
    assert "tower" in tokenizer.word2idx and "tower." not in tokenizer.word2idx
    assert "moon" in tokenizer.word2idx and "moon!" not in tokenizer.word2idx
    assert "<UNK>" not in tokenizer.decode(tokenizer.encode("A TALL Tower."))


def test_vocabulary_ranked_by_frequency_then_alphabet(tokenizer: WordTokenizer) -> None:
    # "a" appears 5 times, then "an", "depicting", "engraving" 3 times each (alphabetical).
    assert tokenizer.idx2word[4:8] == ["a", "an", "depicting", "engraving"]
    assert tokenizer.most_common(2) == [("a", 5), ("an", 3)]


def test_vocab_size_is_a_cap_and_len_is_real_size() -> None:
    tok = WordTokenizer(vocab_size=6).build_vocab(CAPTIONS)
    assert len(tok) == 6
    assert len(WordTokenizer(vocab_size=8000).build_vocab(["one two"])) == 6


def test_min_freq_drops_rare_words() -> None:
    tok = WordTokenizer().build_vocab(CAPTIONS, min_freq=3)
    assert set(tok.idx2word[4:]) == {"a", "an", "depicting", "engraving"}


def test_encode_layout_start_words_end_padding(tokenizer: WordTokenizer) -> None:
    ids = tokenizer.encode("An engraving depicting a woman", max_length=10)
    assert ids.dtype == torch.long and ids.shape == (10,)
    assert ids[0] == 1 and ids[6] == 2 and ids[7:].tolist() == [0, 0, 0]
    assert ids[5] == tokenizer.unk_id  # "woman" is not in the vocabulary


def test_truncation_keeps_end(tokenizer: WordTokenizer) -> None:
    ids = tokenizer.encode(" ".join(["a"] * 50), max_length=8)
    assert ids.tolist() == [1, 4, 4, 4, 4, 4, 4, 2]


def test_decode_stops_at_end(tokenizer: WordTokenizer) -> None:
    ship = tokenizer.word2idx["ship"]
    assert tokenizer.decode([1, ship, 2, ship, ship]) == "ship"
    assert tokenizer.decode(torch.tensor([ship, 0, ship])) == "ship ship"
    assert tokenizer.decode([ship, 10_000]) == "ship <UNK>"


def test_batch_encode_stacks_encode(tokenizer: WordTokenizer) -> None:
    batch = tokenizer.batch_encode(CAPTIONS, max_length=20)
    assert batch.shape == (3, 20)
    for row, caption in zip(batch, CAPTIONS, strict=True):
        assert torch.equal(row, tokenizer.encode(caption, max_length=20))
    assert tokenizer.batch_decode(batch)[0] == normalize(CAPTIONS[0])
    assert tokenizer.batch_encode([], max_length=7).shape == (0, 7)


def test_max_length_too_small_is_an_error(tokenizer: WordTokenizer) -> None:
    with pytest.raises(TokenizerError, match="max_length=2"):
        tokenizer.encode("a", max_length=2)


def test_coverage_counts_oov_words_and_captions(tokenizer: WordTokenizer) -> None:
    cov = tokenizer.coverage(["a ship", "a woman in a dress", ""])
    assert (cov.words, cov.oov_words, cov.captions, cov.captions_with_oov) == (7, 3, 3, 1)
    assert cov.oov_rate == pytest.approx(3 / 7)
    assert cov.coverage == pytest.approx(4 / 7)


def test_summary_names_counts(tokenizer: WordTokenizer) -> None:
    text = tokenizer.summary()
    assert f"Total tokens: {len(tokenizer)}" in text
    assert f"Unique words added: {len(tokenizer) - 4}" in text


def test_save_load_round_trip(tokenizer: WordTokenizer, tmp_path) -> None:
    path = tokenizer.save(tmp_path / "tokenizer.json")
    loaded = WordTokenizer()
    assert loaded.load(path) is loaded  # `tokenizer.load(path)` style as well as `from_file`
    assert loaded.idx2word == tokenizer.idx2word
    assert loaded.most_common(3) == tokenizer.most_common(3)
    assert torch.equal(loaded.encode(CAPTIONS[1]), tokenizer.encode(CAPTIONS[1]))
    assert WordTokenizer.from_file(path).idx2word == tokenizer.idx2word
    assert not list(tmp_path.glob(".*tmp*"))


def test_the_earlier_name_is_the_same_class_and_reads_a_saved_file(tmp_path) -> None:
    assert ProductionTokenizer is WordTokenizer
    saved = {  # a tokenizer.json as `save` writes it (format version 1)
        "format": "mmlib-tokenizer",
        "version": 1,
        "vocab_size": 8000,
        "min_freq": 1,
        "idx2word": [*SPECIAL_TOKENS, "a", "ship"],
        "word_counts": {"a": 2, "ship": 1},
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(saved))
    for loaded in (ProductionTokenizer.from_file(path), WordTokenizer().load(path)):
        assert loaded.idx2word == saved["idx2word"] and loaded.most_common(1) == [("a", 2)]
        assert loaded.encode("A ship, a boat", max_length=7).tolist() == [1, 4, 5, 4, 3, 2, 0]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(format="other"), "not an mmlib tokenizer"),
        (lambda p: p.update(version=99), "version 99"),
        (lambda p: p.update(idx2word=["<PAD>", "a"]), "ids 0-3"),
        (lambda p: p.update(idx2word=[*SPECIAL_TOKENS, "a", "a"]), "repeats"),
        (lambda p: p.update(vocab_size=5), "inconsistent"),
        (lambda p: p.pop("word_counts"), "word_counts"),
        (lambda p: p["word_counts"].update(ship="many"), "counts >= 1, found 'ship': 'many'"),
        (lambda p: p["word_counts"].update(ship=1.5), "counts >= 1, found 'ship': 1.5"),
        (lambda p: p["word_counts"].update(ship=0), "counts >= 1, found 'ship': 0"),
    ],
)
def test_load_rejects_inconsistent_files(tokenizer, tmp_path, mutate, message) -> None:
    path = tokenizer.save(tmp_path / "tokenizer.json")
    payload = json.loads(path.read_text())
    mutate(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises(TokenizerError, match=message) as info:
        WordTokenizer().load(path)
    assert str(path) in str(info.value)


def test_fingerprint_follows_the_ids_words_in_order(tokenizer, tmp_path) -> None:
    path = tokenizer.save(tmp_path / "tokenizer.json")
    assert WordTokenizer.from_file(path).fingerprint() == tokenizer.fingerprint()
    payload = json.loads(path.read_text())
    payload["idx2word"] = [*SPECIAL_TOKENS, *payload["idx2word"][:3:-1]]  # same words, new ids
    path.write_text(json.dumps(payload))
    assert WordTokenizer.from_file(path).fingerprint() != tokenizer.fingerprint()


def test_load_rejects_truncated_and_missing_files(tokenizer, tmp_path) -> None:
    path = tokenizer.save(tmp_path / "tokenizer.json")
    path.write_text(path.read_text()[:40])
    with pytest.raises(TokenizerError, match="truncated"):
        WordTokenizer().load(path)
    with pytest.raises(TokenizerError, match="not found"):
        WordTokenizer().load(tmp_path / "missing.json")


def test_normalize_examples() -> None:
    assert normalize("An Engraving, depicting: a WOMAN.") == "an engraving depicting a woman"
    assert normalize("ﬁne  half-timbered  house's") == "fine half-timbered house's"
    assert words("«Sun» & moon") == ["sun", "moon"]


# --- properties ---
text_strategy = st.text(max_size=60)
word_strategy = st.sampled_from(["ship", "tower", "a", "small", "moon", "two", "birds", "an"])


@given(text_strategy)
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@given(st.lists(word_strategy, max_size=12), st.integers(min_value=3, max_value=40))
def test_round_trip_for_in_vocabulary_text(word_list: list[str], max_length: int) -> None:
    tok = WordTokenizer().build_vocab(["ship tower a small moon two birds an"])
    text = " ".join(word_list)
    ids = tok.encode(text, max_length=max_length)
    assert ids.shape == (max_length,)
    if len(word_list) < max_length - 2:
        assert tok.decode(ids) == normalize(text)


@given(text_strategy, st.integers(min_value=3, max_value=30))
def test_encode_length_is_always_max_length(text: str, max_length: int) -> None:
    tok = WordTokenizer().build_vocab(CAPTIONS)
    ids = tok.encode(text, max_length=max_length)
    assert ids.shape == (max_length,)
    assert tok.end_id in ids.tolist()


def test_caption_lengths_count_normalised_words() -> None:
    assert caption_lengths(["An engraving, depicting!", "", "a b c d"]) == [3, 0, 4]


def test_oov_table_grows_oov_with_min_freq() -> None:
    train = ["a ship", "a tower", "a ship"]
    rows = oov_table(train, ["a ship", "a tower", "a bird"], min_freqs=(1, 2, 3))
    assert [r.vocabulary for r in rows] == [4 + 3, 4 + 2, 4 + 1]
    assert [r.oov_rate for r in rows] == pytest.approx([1 / 6, 2 / 6, 3 / 6])
    assert [r.captions_with_oov for r in rows] == pytest.approx([1 / 3, 2 / 3, 1.0])
    capped = oov_table(train, ["a tower"], min_freqs=(1,), vocab_size=6)[0]
    assert capped.vocabulary == 6 and capped.oov_rate == pytest.approx(0.5)
