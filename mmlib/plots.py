"""Matplotlib figures for the course: samples, caption statistics, vocabulary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from mmlib.tokenizer import VocabularyChoice


def show_samples(
    images: torch.Tensor, captions: Sequence[str], columns: int = 4, width: float = 2.4
) -> Figure:
    """A grid of uint8 images [N, 3, H, W] with their captions underneath."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * width, rows * (width + 0.7)))
    for index, axis in enumerate(axes.flat if hasattr(axes, "flat") else [axes]):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index].permute(1, 2, 0).numpy())
            axis.set_title(_wrap(captions[index], 34), fontsize=8)
    figure.tight_layout()
    return figure


def plot_caption_lengths(lengths: Sequence[int], title: str = "Words per caption") -> Figure:
    """Histogram of caption lengths in words."""
    figure, axis = plt.subplots(figsize=(6, 3))
    if lengths:
        axis.hist(lengths, bins=range(min(lengths), max(lengths) + 2), align="left", rwidth=0.85)
    axis.set_xlabel("words")
    axis.set_ylabel("captions")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def plot_zipf(word_counts: Counter[str], annotate: int = 8) -> Figure:
    """Word frequency against rank on log-log axes (Zipf's law), with the top words named."""
    ranked = sorted(word_counts.values(), reverse=True)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.loglog(range(1, len(ranked) + 1), ranked, marker=".", linestyle="-")
    for rank, (word, count) in enumerate(word_counts.most_common(annotate), start=1):
        axis.annotate(word, (rank, count), fontsize=8, xytext=(4, 2), textcoords="offset points")
    axis.set_xlabel("rank")
    axis.set_ylabel("count in training captions")
    axis.set_title("Word frequencies (Zipf plot)")
    figure.tight_layout()
    return figure


def plot_oov(rows: Sequence[VocabularyChoice]) -> Figure:
    """Vocabulary size and validation OOV rate against `min_freq`."""
    figure, left = plt.subplots(figsize=(6, 3.5))
    min_freqs = [row.min_freq for row in rows]
    left.plot(min_freqs, [row.vocabulary for row in rows], marker="o", color="tab:blue")
    left.set_xlabel("min_freq")
    left.set_ylabel("vocabulary size", color="tab:blue")
    right = left.twinx()
    right.plot(min_freqs, [100 * row.oov_rate for row in rows], marker="s", color="tab:red")
    right.set_ylabel("validation OOV words (%)", color="tab:red")
    left.set_title("A higher min_freq: a smaller vocabulary, more <UNK>")
    figure.tight_layout()
    return figure


def _wrap(text: str, width: int) -> str:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + len(word) < width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def plot_step_losses(steps: Sequence[int], losses: dict[str, Sequence[float]]) -> Figure:
    """Each loss component against the optimizer step, on a log scale."""
    figure, axis = plt.subplots(figsize=(7, 3.5))
    for name, values in losses.items():
        axis.plot(steps, values, label=name)
    axis.set_yscale("log")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss (training batch)")
    axis.legend(loc="upper right")
    figure.tight_layout()
    return figure


def show_reconstructions(
    images: torch.Tensor,
    reconstructions: torch.Tensor,
    generated: Sequence[str],
    truth: Sequence[str],
    width: float = 2.4,
) -> Figure:
    """Validation images (top), their reconstructions (below) and generated vs true captions."""
    count = len(images)
    figure, axes = plt.subplots(2, count, figsize=(count * width, 2 * width + 1.6), squeeze=False)
    for column in range(count):
        for row, picture in enumerate((images[column], reconstructions[column])):
            axis = axes[row][column]
            axis.imshow(picture.permute(1, 2, 0).numpy())
            axis.axis("off")
        axes[0][column].set_title("true: " + _wrap(truth[column], 30), fontsize=7)
        axes[1][column].set_title("model: " + _wrap(generated[column], 30), fontsize=7)
    figure.tight_layout()
    return figure
