"""CIDEr-D (Vedantam et al. 2015): consensus of a caption with its image's reference captions.

Each caption becomes tf-idf weighted n-gram vectors (n = 1..4), the document frequencies counted
over the images' reference sets (an n-gram's document is an image); a caption scores the cosine
of its vectors with each reference's, its counts clipped at the reference's, times a Gaussian
penalty on the length difference (sigma 6), averaged over n and over the references, times 10.
This is the CIDEr-D of pycocoevalcap (its `Cider` scorer, which clips and penalises), on text
already normalised into space-separated words.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

MAX_N = 4
SIGMA = 6.0
SCALE = 10.0

NGram = tuple[str, ...]


def ngram_counts(words: Sequence[str], max_n: int = MAX_N) -> Counter[NGram]:
    """How often each n-gram of 1..`max_n` words occurs in `words`."""
    return Counter(
        tuple(words[i : i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1)
    )


def document_frequencies(references: Sequence[Sequence[Counter[NGram]]]) -> Counter[NGram]:
    """For each n-gram, the number of images with a reference caption that holds it."""
    frequencies: Counter[NGram] = Counter()
    for image in references:
        frequencies.update({ngram for counts in image for ngram in counts})
    return frequencies


def tfidf(
    counts: Counter[NGram], frequencies: Counter[NGram], images: int, max_n: int = MAX_N
) -> list[dict[NGram, float]]:
    """A caption's tf-idf weights, one dict per n-gram length (index n - 1); an n-gram that no
    reference holds counts as held by one image."""
    vectors: list[dict[NGram, float]] = [{} for _ in range(max_n)]
    for ngram, count in counts.items():
        idf = math.log(images) - math.log(max(1, frequencies[ngram]))
        vectors[len(ngram) - 1][ngram] = count * idf
    return vectors


def clipped_cosine(caption: dict[NGram, float], reference: dict[NGram, float]) -> float:
    """The cosine of two tf-idf vectors of one n-gram length, each of the caption's weights
    clipped at the reference's; 0 where either vector is zero."""
    dot = 0.0
    for ngram, weight in caption.items():
        theirs = reference.get(ngram, 0.0)
        dot += min(weight, theirs) * theirs
    norms = _norm(caption) * _norm(reference)
    return dot / norms if norms else 0.0


def _norm(vector: dict[NGram, float]) -> float:
    return math.sqrt(sum(weight * weight for weight in vector.values()))


def length_penalty(caption_words: int, reference_words: int, sigma: float = SIGMA) -> float:
    """The Gaussian penalty on the difference in length, 1 for captions of equal length."""
    return math.exp(-((caption_words - reference_words) ** 2) / (2 * sigma**2))


def cider_d_scores(
    captions: Sequence[str], references: Sequence[Sequence[str]], max_n: int = MAX_N
) -> list[float]:
    """CIDEr-D of each caption against its image's references (normalised, space-separated
    words); the document frequencies come from all of `references`."""
    if len(captions) != len(references):
        raise ValueError(f"{len(captions)} captions for {len(references)} reference sets")
    if any(not group for group in references):
        raise ValueError("every caption needs at least one reference")
    reference_words = [[r.split() for r in group] for group in references]
    reference_counts = [[ngram_counts(r, max_n) for r in group] for group in reference_words]
    frequencies = document_frequencies(reference_counts)
    scores = []
    for caption, group, counts in zip(captions, reference_words, reference_counts, strict=True):
        words = caption.split()
        own = tfidf(ngram_counts(words, max_n), frequencies, len(captions), max_n)
        total = 0.0
        for reference, reference_ngrams in zip(group, counts, strict=True):
            theirs = tfidf(reference_ngrams, frequencies, len(captions), max_n)
            cosines = sum(clipped_cosine(a, b) for a, b in zip(own, theirs, strict=True))
            total += cosines * length_penalty(len(words), len(reference))
        scores.append(SCALE * total / max_n / len(group))
    return scores


def cider_d(captions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus CIDEr-D: the mean of `cider_d_scores` (0 for no captions)."""
    scores = cider_d_scores(captions, references)
    return sum(scores) / len(scores) if scores else 0.0
