"""Tests for mmlib.data.tokenizer: the special ids, vocabulary, encoding, coverage and files, of
the word-level tokenizer and, through one parametrised suite, of both kinds (word and BPE)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mmlib.config import Config
from mmlib.data.tokenizer import (
    END_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    START_ID,
    UNK_ID,
    BpeTokenizer,
    ProductionTokenizer,
    Tokenizer,
    TokenizerError,
    WordTokenizer,
    build_tokenizer,
    caption_length_percentiles,
    caption_length_report,
    caption_lengths,
    load_tokenizer,
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


# --- both kinds, one suite: what the model, the losses and the run files rely on ---
KINDS = ("word", "bpe")


def built(kind: str, captions: Sequence[str] = CAPTIONS) -> Tokenizer:
    """A tokenizer of `kind` built on `captions` (a small BPE: 300 tokens at most)."""
    config = Config(tokenizer=kind, bpe_vocab_size=300)
    return build_tokenizer(config, captions)


@pytest.mark.parametrize("kind", KINDS)
def test_either_kind_keeps_the_special_ids_the_model_and_losses_share(kind: str) -> None:
    tok = built(kind)
    assert tok.kind == kind and (tok.pad_id, tok.start_id, tok.end_id, tok.unk_id) == (0, 1, 2, 3)
    assert [tok.token_text(i) for i in range(4)] == list(SPECIAL_TOKENS)
    ids = tok.encode("a ship", max_length=12).tolist()
    end = ids.index(END_ID)
    assert ids[0] == START_ID and ids.count(END_ID) == 1 and set(ids[end + 1 :]) == {PAD_ID}
    assert all(i >= len(SPECIAL_TOKENS) for i in ids[1:end])
    assert len(tok) > len(SPECIAL_TOKENS)


@pytest.mark.parametrize("kind", KINDS)
def test_either_kind_round_trips_to_normalised_words(kind: str) -> None:
    tok = built(kind)
    for caption in CAPTIONS:
        assert tok.decode(tok.encode(caption, max_length=40)) == normalize(caption)
    batch = tok.batch_encode(CAPTIONS, max_length=40)
    assert tok.batch_decode(batch) == [normalize(c) for c in CAPTIONS]
    for row, caption in zip(batch, CAPTIONS, strict=True):
        assert torch.equal(row, tok.encode(caption, max_length=40))
    assert tok.batch_encode([], max_length=7).shape == (0, 7)


@pytest.mark.parametrize("kind", KINDS)
def test_either_kind_decodes_unknown_ids_as_unk_and_stops_at_end(kind: str) -> None:
    tok = built(kind)
    ship = tok.token_ids("ship")
    assert tok.decode([START_ID, *ship, END_ID, *ship]) == "ship"
    assert tok.decode([*ship, PAD_ID, 10_000]) == "ship <UNK>"
    assert tok.decode([UNK_ID, *ship]) == "<UNK> ship"


@pytest.mark.parametrize("kind", KINDS)
def test_either_kind_truncates_keeping_end(kind: str) -> None:
    tok = built(kind)
    text = " ".join(["engraving"] * 50)
    ids = tok.encode(text, max_length=8).tolist()
    assert len(ids) == 8 and ids[0] == START_ID and ids[-1] == END_ID
    assert normalize(text).startswith(tok.decode(ids))
    with pytest.raises(TokenizerError, match="max_length=2"):
        tok.encode("a", max_length=2)


def test_unknown_words_are_the_word_level_ones_only() -> None:
    caption = "An engraving depicting a zebra, éléphant"
    assert built("word").unknown_words(caption) == ["zebra", "éléphant"]
    bpe = built("bpe")
    assert bpe.unknown_words(caption) == []
    assert bpe.decode(bpe.encode(caption, max_length=60)) == normalize(caption)
    assert UNK_ID not in bpe.encode(caption, max_length=60).tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_either_kind_saves_its_kind_and_loads_unchanged(kind: str, tmp_path) -> None:
    tok = built(kind)
    path = tok.save(tmp_path / "tokenizer.json")
    assert json.loads(path.read_text())["kind"] == kind
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tok) and len(loaded) == len(tok)
    assert loaded.fingerprint() == tok.fingerprint()
    assert torch.equal(loaded.batch_encode(CAPTIONS, 30), tok.batch_encode(CAPTIONS, 30))
    assert type(tok).from_file(path).fingerprint() == tok.fingerprint()
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("kind", KINDS)
def test_either_kind_fingerprints_its_vocabulary(kind: str) -> None:
    tok = built(kind)
    assert built(kind).fingerprint() == tok.fingerprint()  # the same captions, the same ids
    assert built(kind, [*CAPTIONS, "a lighthouse"]).fingerprint() != tok.fingerprint()
    assert built("word").fingerprint() != built("bpe").fingerprint()


def test_a_file_without_kind_is_word_level(tokenizer: WordTokenizer, tmp_path) -> None:
    path = tokenizer.save(tmp_path / "tokenizer.json")
    payload = json.loads(path.read_text())
    del payload["kind"]  # as every tokenizer.json written before BPE
    path.write_text(json.dumps(payload))
    loaded = load_tokenizer(path)
    assert isinstance(loaded, WordTokenizer) and loaded.fingerprint() == tokenizer.fingerprint()


def test_each_class_refuses_the_other_kinds_file_and_unknown_kinds(tmp_path) -> None:
    bpe_path = built("bpe").save(tmp_path / "bpe.json")
    with pytest.raises(TokenizerError, match="a bpe tokenizer, not a word one.*load_tokenizer"):
        WordTokenizer.from_file(bpe_path)
    word_path = built("word").save(tmp_path / "word.json")
    with pytest.raises(TokenizerError, match="a word tokenizer, not a bpe one"):
        BpeTokenizer.from_file(word_path)
    payload = json.loads(word_path.read_text())
    word_path.write_text(json.dumps({**payload, "kind": "sentencepiece"}))
    with pytest.raises(TokenizerError, match="kind 'sentencepiece' is unknown"):
        load_tokenizer(word_path)


def _rename_pad(payload: dict) -> None:
    """Id 0 of a BPE file's model becomes `<BLANK>`, not `<PAD>`."""
    payload["bpe"]["added_tokens"][0]["content"] = "<BLANK>"
    vocab = payload["bpe"]["model"]["vocab"]
    vocab["<BLANK>"] = vocab.pop("<PAD>")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(bpe={"model": "none"}), "not a tokenizers model"),
        (lambda p: p.update(vocab_size=10), "vocab_size=10"),
        (_rename_pad, "ids 0-3"),
    ],
)
def test_a_bpe_file_is_checked(tmp_path, mutate, message) -> None:
    path = built("bpe").save(tmp_path / "tokenizer.json")
    payload = json.loads(path.read_text())
    mutate(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises(TokenizerError, match=message) as info:
        load_tokenizer(path)
    assert str(path) in str(info.value)


def test_bpe_needs_room_for_the_bytes_and_reports_what_it_learned() -> None:
    with pytest.raises(TokenizerError, match=">= 260"):
        BpeTokenizer(vocab_size=100)
    assert not BpeTokenizer().is_built
    tok = built("bpe")
    assert tok.is_built and len(tok) <= 300
    assert f"Total tokens: {len(tok)}" in tok.summary()
    assert f"Merges learned: {len(tok) - 260}" in tok.summary()


def test_build_tokenizer_follows_the_config() -> None:
    word = build_tokenizer(Config(vocab_size=6, min_freq=1), CAPTIONS)
    assert isinstance(word, WordTokenizer) and len(word) == 6
    bpe = build_tokenizer(Config(tokenizer="bpe", bpe_vocab_size=270), CAPTIONS)
    assert isinstance(bpe, BpeTokenizer) and bpe.vocab_size == 270 and len(bpe) == 270


def test_caption_length_percentiles_count_tokens_of_the_kind_in_use() -> None:
    captions = ["a ship", "a tall tower", "an engraving depicting two birds above a house"]
    word = caption_length_percentiles(built("word"), captions, percentiles=(0, 50, 100))
    assert word == {0: 4, 50: 5, 100: 10}  # words + <START> + <END>
    bpe = built("bpe")
    lengths = sorted(len(bpe.token_ids(c)) + 2 for c in captions)
    assert caption_length_percentiles(bpe, captions, percentiles=(0, 100)) == {
        0: lengths[0],
        100: lengths[-1],
    }
    long_words = ["lighthouse embankment"]  # pieces of words: more tokens than words
    assert caption_length_percentiles(bpe, long_words)[100] > 2 + 2
    with pytest.raises(TokenizerError, match="no captions"):
        caption_length_percentiles(bpe, [])


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_caption_length_report_advises_the_99th_percentile_when_over_1_percent_is_cut(
    kind: str,
) -> None:
    tokenizer = built(kind)
    captions = ["a ship"] * 98 + ["an engraving depicting two birds above a house"] * 2
    longest = len(tokenizer.token_ids(captions[-1])) + 2
    fits = caption_length_report(tokenizer, captions, max_length=longest)
    assert f"max_caption_length={longest} cuts 0 of 100 training captions (0.0%)" in fits
    assert "!" not in fits
    cuts = caption_length_report(tokenizer, captions, max_length=longest - 1)
    assert "cuts 2 of 100 training captions (2.0%)" in cuts
    p99 = caption_length_percentiles(tokenizer, captions)[99]
    assert f"lose their last {kind} tokens: set max_caption_length={p99}" in cuts
    assert p99 == longest  # 2 captions of 100 are above the 98th percentile, not the 99th


def test_bpe_decodes_what_a_model_writes_to_plain_words() -> None:
    tok = built("bpe")
    ship, broken = tok.token_ids("ship"), tok.token_ids("é")[:1]  # half of a character
    exclaim = tok.token_ids("!")  # normalised away in captions, but a model can write it
    assert exclaim == [] and tok.decode([*ship, *broken, *ship]) == "ship ship"
    assert tok.decode([*ship, 4]) == "ship"  # id 4 is the byte "!"
    assert tok.token_text(ship[0]) == "ship" and tok.token_text(10_000) == "<UNK>"
