"""Captions to token ids and back, with the special ids fixed at 0-3 (`mmlib.tokens`), in two
kinds behind one interface (`Tokenizer`): `WordTokenizer`, whole words ranked by frequency, and
`BpeTokenizer`, a byte-level BPE trained on the captions (Hugging Face `tokenizers`). Both are
deterministic, so the same captions always give the same ids (what a checkpoint's embedding rows
are tied to); `tokenizer.json` records the kind (a file without one is word-level)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from mmlib.config import MIN_BPE_VOCABULARY, TOKENIZER_KINDS, Config
from mmlib.files import atomic_write_text, read_json
from mmlib.tokens import END_ID, PAD_ID, SPECIAL_TOKENS, START_ID, UNK, UNK_ID

# Hugging Face `tokenizers` parallelises in threads; a DataLoader worker forked after that warns
# and turns it off, so it stays off here (captions are short: threads save nothing).
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import tokenizers  # noqa: E402 - after the setting above

FILE_FORMAT = "mmlib-tokenizer"
FILE_VERSION = 1
PERCENTILES = (50, 90, 95, 99, 100)
CUT_ADVICE_SHARE = 0.01  # of training captions cut by max_caption_length: STEP 2 then advises

# A word is a run of letters or digits, optionally joined by inner apostrophes or hyphens
# ("don't", "well-known"); every other character separates words.
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


class TokenizerError(ValueError):
    """A tokenizer file is malformed, or the tokenizer is used before it has a vocabulary."""


def normalize(text: str) -> str:
    """The one normalisation used everywhere: NFKC, lower case, punctuation removed."""
    return " ".join(words(text))


def words(text: str) -> list[str]:
    """The words of `text` after normalisation."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).lower())
    return _WORD.findall(folded)


@dataclass(frozen=True)
class Coverage:
    """How much of a caption set the vocabulary covers."""

    words: int
    oov_words: int
    captions: int
    captions_with_oov: int

    @property
    def oov_rate(self) -> float:
        """Share of words that map to `<UNK>`."""
        return self.oov_words / self.words if self.words else 0.0

    @property
    def coverage(self) -> float:
        """Share of words that are in the vocabulary."""
        return 1.0 - self.oov_rate


class Tokenizer(Protocol):
    """What the model, the losses, training, evaluation and inference need of a tokenizer:
    `WordTokenizer` and `BpeTokenizer` both are one."""

    kind: ClassVar[str]
    pad_id: ClassVar[int]
    start_id: ClassVar[int]
    end_id: ClassVar[int]
    unk_id: ClassVar[int]

    def __len__(self) -> int: ...

    def token_ids(self, caption: str) -> list[int]: ...

    def encode(self, caption: str, max_length: int = 100) -> torch.Tensor: ...

    def batch_encode(self, captions: Sequence[str], max_length: int = 100) -> torch.Tensor: ...

    def decode(self, tokens: Iterable[int] | torch.Tensor) -> str: ...

    def batch_decode(self, tokens: torch.Tensor) -> list[str]: ...

    def token_text(self, token: int) -> str: ...

    def unknown_words(self, caption: str) -> list[str]: ...

    def fingerprint(self) -> str: ...

    def summary(self, top: int = 3) -> str: ...

    def save(self, path: str | os.PathLike[str]) -> Path: ...


def framed(body: Sequence[int], max_length: int) -> list[int]:
    """`<START>` body `<END>`, padded to `max_length`; a long body is cut, `<END>` kept."""
    if max_length < 3:
        raise TokenizerError(f"max_length={max_length}: must be >= 3 (<START>, a word, <END>)")
    ids = [START_ID, *body[: max_length - 2], END_ID]
    return ids + [PAD_ID] * (max_length - len(ids))


def _stacked(rows: list[list[int]], max_length: int) -> torch.Tensor:
    """Rows of ids as a LongTensor [len(rows), max_length]."""
    if not rows:
        return torch.empty(0, max_length, dtype=torch.long)
    return torch.tensor(rows, dtype=torch.long)


def _caption_ids(tokens: Iterable[int] | torch.Tensor) -> list[int]:
    """The ids of a caption: up to the first `<END>`, without `<START>` and `<PAD>`."""
    ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
    if END_ID in ids:
        ids = ids[: ids.index(END_ID)]
    return [token for token in ids if token not in (START_ID, PAD_ID)]


class WordTokenizer:
    """Word-level tokenizer: `<PAD>`=0, `<START>`=1, `<END>`=2, `<UNK>`=3, then words by frequency.

    `vocab_size` is a cap; `len(tokenizer)` is the real size after `build_vocab`.
    """

    kind: ClassVar[str] = "word"
    pad_id: ClassVar[int] = PAD_ID
    start_id: ClassVar[int] = START_ID
    end_id: ClassVar[int] = END_ID
    unk_id: ClassVar[int] = UNK_ID

    def __init__(self, vocab_size: int = 8000) -> None:
        if vocab_size <= len(SPECIAL_TOKENS):
            raise TokenizerError(f"vocab_size={vocab_size}: must be > {len(SPECIAL_TOKENS)}")
        self.vocab_size = vocab_size
        self.min_freq = 1
        self.word_counts: Counter[str] = Counter()
        self._set_words([])

    def _set_words(self, vocabulary: Sequence[str]) -> None:
        self.idx2word: list[str] = [*SPECIAL_TOKENS, *vocabulary]
        self.word2idx: dict[str, int] = {word: i for i, word in enumerate(self.idx2word)}

    def __len__(self) -> int:
        return len(self.idx2word)

    @property
    def is_built(self) -> bool:
        """Whether the tokenizer has any words beyond the special tokens."""
        return len(self) > len(SPECIAL_TOKENS)

    def build_vocab(self, captions: Iterable[str], min_freq: int = 1) -> WordTokenizer:
        """Keep the `vocab_size - 4` most frequent words seen at least `min_freq` times.

        Ties are broken alphabetically, so the same captions always give the same ids.
        """
        if min_freq < 1:
            raise TokenizerError(f"min_freq={min_freq}: must be >= 1")
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(words(caption))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [word for word, count in ranked if count >= min_freq]
        self.word_counts = counts
        self.min_freq = min_freq
        self._set_words(kept[: self.vocab_size - len(SPECIAL_TOKENS)])
        return self

    def token_ids(self, caption: str) -> list[int]:
        """The ids of the caption's words, all of them, unknown ones `<UNK>` (no special ids)."""
        lookup = self.word2idx.get
        return [lookup(word, self.unk_id) for word in words(caption)]

    def encode(self, caption: str, max_length: int = 100) -> torch.Tensor:
        """`<START>` words `<END>`, padded to `max_length`; long captions are cut, `<END>` kept."""
        return torch.tensor(framed(self.token_ids(caption), max_length), dtype=torch.long)

    def batch_encode(self, captions: Sequence[str], max_length: int = 100) -> torch.Tensor:
        """`encode` for many captions at once: a LongTensor [len(captions), max_length]."""
        return _stacked([framed(self.token_ids(c), max_length) for c in captions], max_length)

    def decode(self, tokens: Iterable[int] | torch.Tensor) -> str:
        """Words up to the first `<END>`, skipping `<START>`/`<PAD>`; unknown ids read `<UNK>`."""
        return " ".join(self.token_text(token) for token in _caption_ids(tokens))

    def token_text(self, token: int) -> str:
        """The word of id `token`; `<UNK>` for an id outside the vocabulary."""
        return self.idx2word[token] if 0 <= token < len(self) else UNK

    def unknown_words(self, caption: str) -> list[str]:
        """The caption's words outside the vocabulary (they read as `<UNK>`)."""
        return [word for word in words(caption) if word not in self.word2idx]

    def batch_decode(self, tokens: torch.Tensor) -> list[str]:
        """`decode` for each row of a [B, L] tensor."""
        return [self.decode(row) for row in tokens]

    # --- inspection ---
    def most_common(self, n: int = 10) -> list[tuple[str, int]]:
        """The `n` most frequent words of the captions the vocabulary was built from."""
        return sorted(self.word_counts.items(), key=lambda item: (-item[1], item[0]))[:n]

    def coverage(self, captions: Iterable[str]) -> Coverage:
        """How many words (and captions) of `captions` fall outside the vocabulary."""
        total = oov = n_captions = with_oov = 0
        for caption in captions:
            caption_words = words(caption)
            missing = sum(1 for word in caption_words if word not in self.word2idx)
            total += len(caption_words)
            oov += missing
            n_captions += 1
            with_oov += missing > 0
        return Coverage(total, oov, n_captions, with_oov)

    def fingerprint(self) -> str:
        """SHA-256 of the ids' words in order: what a model's embedding rows are tied to."""
        return hashlib.sha256(json.dumps(self.idx2word, ensure_ascii=False).encode()).hexdigest()

    def summary(self, top: int = 3) -> str:
        """The "Vocabulary built" report the Trainer prints at STEP 2."""
        return (
            "✓ Vocabulary built:\n"
            f"  Total tokens: {len(self)}\n"
            f"  Unique words added: {len(self) - len(SPECIAL_TOKENS)}\n"
            f"  Most common: {self.most_common(top)}"
        )

    # --- persistence ---
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a versioned JSON file, atomically (`mmlib.files`)."""
        payload = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "min_freq": self.min_freq,
            "idx2word": self.idx2word,
            "word_counts": dict(self.most_common(len(self.word_counts))),
        }
        return atomic_write_text(path, json.dumps(payload, ensure_ascii=False))

    def load(self, path: str | os.PathLike[str]) -> WordTokenizer:
        """Read a file written by `save` into this tokenizer and return it (so both
        `WordTokenizer().load(path)` and `tokenizer.load(path)` read a file)."""
        path = Path(path)
        return self.read(_read_payload(path, self.kind), path)

    def read(self, payload: dict[str, Any], path: Path) -> WordTokenizer:
        """Take the vocabulary of a word-level file's checked `payload` (`path` for errors)."""
        _check_word_payload(payload, path)
        self.vocab_size = payload["vocab_size"]
        self.min_freq = payload["min_freq"]
        self.word_counts = Counter(payload["word_counts"])
        self._set_words(payload["idx2word"][len(SPECIAL_TOKENS) :])
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WordTokenizer:
        """A tokenizer loaded from `path`."""
        return cls().load(path)


# The earlier script's name for it, kept so code written against that script keeps working.
ProductionTokenizer = WordTokenizer


class BpeTokenizer:
    """Byte-level BPE (Hugging Face `tokenizers`) trained on normalised captions: the special
    tokens at ids 0-3 as `WordTokenizer`'s, then the 256 bytes, then merges by frequency.

    Every word is some sequence of tokens, so no word is unknown; `decode` gives normalised
    words, as `WordTokenizer` does, so metrics compare the two kinds' captions alike.
    `vocab_size` is a cap; `len(tokenizer)` is the real size after `build_vocab`.
    """

    kind: ClassVar[str] = "bpe"
    pad_id: ClassVar[int] = PAD_ID
    start_id: ClassVar[int] = START_ID
    end_id: ClassVar[int] = END_ID
    unk_id: ClassVar[int] = UNK_ID

    def __init__(self, vocab_size: int = 2000) -> None:
        if vocab_size < MIN_BPE_VOCABULARY:
            raise TokenizerError(
                f"vocab_size={vocab_size}: a byte-level BPE needs >= {MIN_BPE_VOCABULARY} "
                f"({len(SPECIAL_TOKENS)} special tokens and 256 bytes)"
            )
        self.vocab_size = vocab_size
        self._hf = _byte_level(tokenizers.models.BPE())
        self._hf.add_special_tokens(list(SPECIAL_TOKENS))

    def __len__(self) -> int:
        return self._hf.get_vocab_size()

    @property
    def is_built(self) -> bool:
        """Whether the tokenizer has been trained (it has tokens beyond the special ones)."""
        return len(self) > len(SPECIAL_TOKENS)

    def build_vocab(self, captions: Iterable[str]) -> BpeTokenizer:
        """Train on the normalised `captions`: the same captions always give the same ids."""
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        self._hf = _byte_level(tokenizers.models.BPE())
        self._hf.train_from_iterator((normalize(caption) for caption in captions), trainer)
        return self

    def token_ids(self, caption: str) -> list[int]:
        """The ids of the normalised caption's tokens, all of them (no special ids)."""
        return self._hf.encode(normalize(caption), add_special_tokens=False).ids

    def encode(self, caption: str, max_length: int = 100) -> torch.Tensor:
        """`<START>` tokens `<END>`, padded to `max_length`; long captions are cut (between
        tokens, so maybe inside a word), `<END>` kept."""
        return torch.tensor(framed(self.token_ids(caption), max_length), dtype=torch.long)

    def batch_encode(self, captions: Sequence[str], max_length: int = 100) -> torch.Tensor:
        """`encode` for many captions at once: a LongTensor [len(captions), max_length]."""
        texts = [normalize(caption) for caption in captions]
        encoded = self._hf.encode_batch(texts, add_special_tokens=False)
        return _stacked([framed(e.ids, max_length) for e in encoded], max_length)

    def decode(self, tokens: Iterable[int] | torch.Tensor) -> str:
        """The normalised words up to the first `<END>`, skipping `<START>`/`<PAD>`: what the
        bytes spell, without the pieces of characters and the punctuation a model can write;
        `<UNK>` and ids outside the vocabulary read `<UNK>`, as a word of their own."""
        pieces: list[str] = []
        run: list[int] = []
        for token in [*_caption_ids(tokens), UNK_ID]:  # the last one ends the last run
            if len(SPECIAL_TOKENS) <= token < len(self):
                run.append(token)
                continue
            pieces += [normalize(self._hf.decode(run)), UNK]
            run = []
        return " ".join(" ".join(pieces[:-1]).split())

    def batch_decode(self, tokens: torch.Tensor) -> list[str]:
        """`decode` for each row of a [B, L] tensor."""
        return [self.decode(row) for row in tokens]

    def token_text(self, token: int) -> str:
        """The text of id `token` (a word or a piece of one); `<UNK>` outside the vocabulary."""
        if 0 <= token < len(SPECIAL_TOKENS):
            return SPECIAL_TOKENS[token]
        return (self._hf.decode([token]).strip() if token < len(self) else "") or UNK

    def unknown_words(self, caption: str) -> list[str]:
        """None: byte-level BPE spells every word with its tokens."""
        return []

    def fingerprint(self) -> str:
        """SHA-256 of the tokens by id and the merges: what a model's embedding rows are tied
        to (a word-level fingerprint hashes its words alone, so the two never match)."""
        model = json.loads(self._hf.to_str())["model"]
        tokens = [self._hf.id_to_token(i) for i in range(len(self))]
        content = {"kind": self.kind, "tokens": tokens, "merges": model["merges"]}
        return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()

    def summary(self, top: int = 3) -> str:
        """The "Vocabulary built" report the Trainer prints at STEP 2."""
        texts = [self._hf.decode([token]).strip() for token in range(MIN_BPE_VOCABULARY, len(self))]
        longest = sorted(texts, key=lambda text: (-len(text), text))[:top]
        return (
            "✓ Vocabulary built (byte-level BPE):\n"
            f"  Total tokens: {len(self)}\n"
            f"  Merges learned: {max(0, len(self) - MIN_BPE_VOCABULARY)}\n"
            f"  Longest tokens: {longest}"
        )

    # --- persistence ---
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a versioned JSON file with the BPE model inside, atomically (`mmlib.files`)."""
        payload = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "bpe": json.loads(self._hf.to_str()),
        }
        return atomic_write_text(path, json.dumps(payload, ensure_ascii=False))

    def load(self, path: str | os.PathLike[str]) -> BpeTokenizer:
        """Read a file written by `save` into this tokenizer and return it."""
        path = Path(path)
        return self.read(_read_payload(path, self.kind), path)

    def read(self, payload: dict[str, Any], path: Path) -> BpeTokenizer:
        """Take the BPE model of a BPE file's checked `payload` (`path` for errors)."""
        vocab_size, model = payload.get("vocab_size"), payload.get("bpe")
        if not isinstance(vocab_size, int) or vocab_size < MIN_BPE_VOCABULARY:
            raise TokenizerError(f"{path}: vocab_size={vocab_size!r} must be >= 260")
        try:
            hf = tokenizers.Tokenizer.from_str(json.dumps(model))
        except Exception as error:  # noqa: BLE001 - the library's own error types vary
            raise TokenizerError(
                f"{path}: its 'bpe' entry is not a tokenizers model ({error}); put back the "
                "run's own tokenizer.json"
            ) from error
        if [hf.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] != list(SPECIAL_TOKENS):
            raise TokenizerError(f"{path}: ids 0-3 must be {', '.join(SPECIAL_TOKENS)}")
        self.vocab_size, self._hf = vocab_size, hf
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BpeTokenizer:
        """A tokenizer loaded from `path`."""
        return cls().load(path)


def _byte_level(model: tokenizers.models.Model) -> tokenizers.Tokenizer:
    """A tokenizer of `model` that splits on spaces into bytes, a space before every word."""
    hf = tokenizers.Tokenizer(model)
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=True)
    hf.decoder = tokenizers.decoders.ByteLevel()
    return hf


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """The tokenizer a `tokenizer.json` holds, of the kind it records (none: word-level)."""
    path = Path(path)
    payload = _read_payload(path)
    if payload["kind"] == BpeTokenizer.kind:
        return BpeTokenizer().read(payload, path)
    return WordTokenizer().read(payload, path)


def build_tokenizer(config: Config, captions: Sequence[str]) -> Tokenizer:
    """The tokenizer of `config.tokenizer`'s kind, built from the training `captions`:
    word-level with `vocab_size` and `min_freq`, or BPE with `bpe_vocab_size`."""
    if config.tokenizer == BpeTokenizer.kind:
        return BpeTokenizer(config.bpe_vocab_size).build_vocab(captions)
    return WordTokenizer(config.vocab_size).build_vocab(captions, config.min_freq)


def caption_length_percentiles(
    tokenizer: Tokenizer, captions: Sequence[str], percentiles: Sequence[float] = PERCENTILES
) -> dict[float, int]:
    """Tokens per caption, `<START>` and `<END>` included (what `max_caption_length` must hold
    for a caption not to be cut), at each of `percentiles`: BPE's are longer than words'."""
    return _percentiles(_token_lengths(tokenizer, captions), percentiles)


def _token_lengths(tokenizer: Tokenizer, captions: Sequence[str]) -> np.ndarray:
    """Tokens per caption, `<START>` and `<END>` included."""
    if not captions:
        raise TokenizerError("caption_length_percentiles: no captions to measure")
    return np.array([len(tokenizer.token_ids(caption)) + 2 for caption in captions])


def _percentiles(lengths: np.ndarray, percentiles: Sequence[float]) -> dict[float, int]:
    values = np.percentile(lengths, percentiles, method="higher")
    return {p: int(v) for p, v in zip(percentiles, values, strict=True)}


def caption_length_report(tokenizer: Tokenizer, captions: Sequence[str], max_length: int) -> str:
    """STEP 2's lines on the training captions' lengths in tokens of this tokenizer's kind,
    the share `max_length` (`max_caption_length`) cuts and, where it cuts more than
    `CUT_ADVICE_SHARE` of them, the 99th percentile to set instead."""
    token_lengths = _token_lengths(tokenizer, captions)  # one tokenization of every caption
    lengths = _percentiles(token_lengths, PERCENTILES)
    cut = int((token_lengths > max_length).sum())
    share = cut / len(captions)
    report = (
        f"  Tokens per caption (<START> and <END> included): median {lengths[50]}, 99% within "
        f"{lengths[99]}, longest {lengths[100]}; max_caption_length={max_length} cuts {cut} of "
        f"{len(captions)} training captions ({share:.1%})"
    )
    if share > CUT_ADVICE_SHARE:
        report += (
            f"\n  ! {share:.1%} of the captions lose their last {tokenizer.kind} tokens: set "
            f"max_caption_length={lengths[99]} (their 99th percentile) to keep 99% whole"
        )
    return report


def caption_lengths(captions: Iterable[str]) -> list[int]:
    """Words per caption after normalisation (tokens per caption are these + 2)."""
    return [len(words(caption)) for caption in captions]


@dataclass(frozen=True)
class VocabularyChoice:
    """What one (min_freq, vocab_size) choice gives on held-out captions."""

    min_freq: int
    vocab_size: int
    vocabulary: int
    oov_rate: float
    captions_with_oov: float


def oov_table(
    train_captions: Sequence[str],
    val_captions: Sequence[str],
    min_freqs: Iterable[int] = (1, 2, 3, 5, 10, 20),
    vocab_size: int = 8000,
) -> list[VocabularyChoice]:
    """Vocabulary size and validation OOV rate for each `min_freq`, built on training captions."""
    rows = []
    for min_freq in min_freqs:
        tokenizer = WordTokenizer(vocab_size).build_vocab(train_captions, min_freq)
        coverage = tokenizer.coverage(val_captions)
        share = coverage.captions_with_oov / coverage.captions if coverage.captions else 0.0
        vocabulary = len(tokenizer)
        rows.append(VocabularyChoice(min_freq, vocab_size, vocabulary, coverage.oov_rate, share))
    return rows


def _read_payload(path: Path, kind: str | None = None) -> dict[str, Any]:
    """Parse a tokenizer file and check what every kind shares (format, version, kind; of kind
    `kind` if given); every problem names the file and what is wrong."""
    remedy = (
        "not a valid tokenizer file, it may be truncated: put back the run's own, or rebuild it "
        "with build_vocab() and save() again"
    )
    payload = read_json(path, remedy, TokenizerError)
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise TokenizerError(f"{path}: not an mmlib tokenizer file (no format={FILE_FORMAT!r})")
    if payload.get("version") != FILE_VERSION:
        raise TokenizerError(
            f"{path}: tokenizer file version {payload.get('version')!r} is not supported "
            f"(this mmlib reads version {FILE_VERSION})"
        )
    found = payload.setdefault("kind", "word")  # files written before BPE are word-level
    if found not in TOKENIZER_KINDS:
        raise TokenizerError(
            f"{path}: tokenizer kind {found!r} is unknown (known: {', '.join(TOKENIZER_KINDS)})"
        )
    if kind is not None and found != kind:
        raise TokenizerError(
            f"{path}: a {found} tokenizer, not a {kind} one; read it with "
            "mmlib.data.tokenizer.load_tokenizer, which reads either kind"
        )
    return payload


def _check_word_payload(payload: dict[str, Any], path: Path) -> None:
    """Check a word-level file's vocabulary and counts; errors name the file."""
    vocabulary = payload.get("idx2word")
    vocab_size = payload.get("vocab_size")
    if not isinstance(vocabulary, list) or not all(isinstance(w, str) for w in vocabulary):
        raise TokenizerError(f"{path}: 'idx2word' must be a list of strings")
    if tuple(vocabulary[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise TokenizerError(f"{path}: ids 0-3 must be {', '.join(SPECIAL_TOKENS)}")
    if len(set(vocabulary)) != len(vocabulary):
        raise TokenizerError(f"{path}: 'idx2word' repeats a word")
    if not isinstance(vocab_size, int) or len(vocabulary) > vocab_size:
        raise TokenizerError(
            f"{path}: vocab_size={vocab_size!r} is inconsistent with {len(vocabulary)} tokens"
        )
    counts = payload.get("word_counts")
    min_freq = payload.get("min_freq")
    if not isinstance(counts, dict) or not isinstance(min_freq, int) or min_freq < 1:
        raise TokenizerError(f"{path}: 'word_counts' and 'min_freq' are missing or malformed")
    bad = [f"{w!r}: {c!r}" for w, c in counts.items() if type(c) is not int or c < 1][:3]
    if bad:
        raise TokenizerError(
            f"{path}: 'word_counts' must map words to counts >= 1, found {', '.join(bad)}; "
            "use the run's own tokenizer.json, or rebuild it with build_vocab() and save()"
        )
