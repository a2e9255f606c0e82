"""`WordTokenizer`: captions to word-level token ids and back, with the special ids fixed at
0-3 and words ranked by frequency, so a vocabulary built from the same captions gives the same
ids (what a checkpoint's embedding rows are tied to)."""

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

import torch

from mmlib.files import atomic_write_text, read_json
from mmlib.tokens import END_ID, PAD_ID, SPECIAL_TOKENS, START_ID, UNK, UNK_ID

FILE_FORMAT = "mmlib-tokenizer"
FILE_VERSION = 1

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


class WordTokenizer:
    """Word-level tokenizer: `<PAD>`=0, `<START>`=1, `<END>`=2, `<UNK>`=3, then words by frequency.

    `vocab_size` is a cap; `len(tokenizer)` is the real size after `build_vocab`.
    """

    pad_id, start_id, end_id, unk_id = PAD_ID, START_ID, END_ID, UNK_ID

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

    def encode(self, caption: str, max_length: int = 100) -> torch.Tensor:
        """`<START>` words `<END>`, padded to `max_length`; long captions are cut, `<END>` kept."""
        return torch.tensor(self._ids(caption, max_length), dtype=torch.long)

    def batch_encode(self, captions: Sequence[str], max_length: int = 100) -> torch.Tensor:
        """`encode` for many captions at once: a LongTensor [len(captions), max_length]."""
        rows = [self._ids(caption, max_length) for caption in captions]
        if not rows:
            return torch.empty(0, max_length, dtype=torch.long)
        return torch.tensor(rows, dtype=torch.long)

    def _ids(self, caption: str, max_length: int) -> list[int]:
        if max_length < 3:
            raise TokenizerError(f"max_length={max_length}: must be >= 3 (<START>, a word, <END>)")
        lookup = self.word2idx.get
        body = [lookup(word, self.unk_id) for word in words(caption)[: max_length - 2]]
        ids = [self.start_id, *body, self.end_id]
        return ids + [self.pad_id] * (max_length - len(ids))

    def decode(self, tokens: Iterable[int] | torch.Tensor) -> str:
        """Words up to the first `<END>`, skipping `<START>`/`<PAD>`; unknown ids read `<UNK>`."""
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        out: list[str] = []
        for token in ids:
            if token == self.end_id:
                break
            if token in (self.start_id, self.pad_id):
                continue
            out.append(self.idx2word[token] if 0 <= token < len(self) else UNK)
        return " ".join(out)

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
            "vocab_size": self.vocab_size,
            "min_freq": self.min_freq,
            "idx2word": self.idx2word,
            "word_counts": dict(self.most_common(len(self.word_counts))),
        }
        return atomic_write_text(path, json.dumps(payload, ensure_ascii=False))

    def load(self, path: str | os.PathLike[str]) -> WordTokenizer:
        """Read a file written by `save` into this tokenizer and return it (so both
        `WordTokenizer().load(path)` and `tokenizer.load(path)` read a file)."""
        payload = _read_payload(Path(path))
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


def _read_payload(path: Path) -> dict:
    """Parse and check a tokenizer file; every problem names the file and what is wrong."""
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
    return payload
