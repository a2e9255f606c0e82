"""Matplotlib figures for the course: samples, caption statistics, vocabulary, memory, curves."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, NullLocator, ScalarFormatter

from mmlib.data.tokenizer import VocabularyChoice
from mmlib.model.step import COMPONENTS
from mmlib.sizing.batch_size import GPUS, BatchSizeRow
from mmlib.sizing.gpu_calibration import GpuMargin
from mmlib.sizing.memory import GIB, MemoryEstimate

if TYPE_CHECKING:
    from mmlib.course.anatomy import TemperatureView
    from mmlib.evaluation.curves import RunHistory
    from mmlib.training.lr_find import LRFindResult

MemoryItem = MemoryEstimate | BatchSizeRow
_PART_LABELS = {
    "optimizer_state": "AdamW state",
    "autocast_copies": "autocast copies",
    "cudnn_workspace": "cuDNN workspace",
}


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


def plot_round_trip(
    images: torch.Tensor,
    prompts: Sequence[str],
    readings: Sequence[str],
    matched: Sequence[bool],
    title: str = "",
    columns: int = 4,
    width: float = 2.4,
) -> Figure:
    """Imagined uint8 images [N, 3, H, W], each under the prompt it was imagined from and the
    caption read back from it, framed green where the reading matched and red where it did not.
    The words every prompt and reading begin with are shown once, in the title."""
    if not len(images) == len(prompts) == len(readings) == len(matched):
        raise ValueError(
            f"{len(images)} images, {len(prompts)} prompts, {len(readings)} readings and "
            f"{len(matched)} matches: need one of each per image"
        )
    shared = _shared_opening([*prompts, *readings])
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(columns * width, rows * (width + 1.3)), squeeze=False
    )
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        if index >= len(images):
            axis.axis("off")
            continue
        colour = "tab:green" if matched[index] else "tab:red"
        axis.imshow(images[index].permute(1, 2, 0).numpy())
        for spine in axis.spines.values():
            spine.set(color=colour, linewidth=4)
        asked = _wrap("asked: " + " ".join(prompts[index].split()[shared:]), 36)
        read = _wrap("read: " + " ".join(readings[index].split()[shared:]), 36)
        verdict = "matched" if matched[index] else "MISSED"
        axis.set_title(f"{asked}\n{read}", fontsize=7.5)
        axis.set_xlabel(verdict, color=colour, fontsize=9, fontweight="bold")
    opening = " ".join(prompts[0].split()[:shared]) if shared else ""
    heading = f"{title}\n" if title else ""
    figure.suptitle(f"{heading}(every caption begins '{opening} ...')" if opening else title)
    figure.tight_layout()
    return figure


def _shared_opening(texts: Sequence[str]) -> int:
    """How many leading words all `texts` share (case-insensitive), one word always left."""
    split = [text.lower().split() for text in texts]
    shortest = min((len(words) for words in split), default=1)
    count = 0
    while count < shortest - 1 and len({words[count] for words in split}) == 1:
        count += 1
    return count


def plot_caption_lengths(lengths: Sequence[int], title: str = "Words per caption") -> Figure:
    """Histogram of caption lengths in words: one bar per whole word count, integer ticks."""
    figure, axis = plt.subplots(figsize=(6, 3))
    if lengths:
        axis.hist(lengths, bins=range(min(lengths), max(lengths) + 2), align="left", rwidth=0.85)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("words")
    axis.set_ylabel("captions")
    axis.set_title(title)
    figure.tight_layout()
    return figure


SPLIT_COLOURS = {"train": "#c8d3e0", "validation": "#e08a2c", "test": "#2c7a4b"}


def plot_split_map(
    train: Sequence[int], val: Sequence[int], test: Sequence[int], columns: int = 100
) -> Figure:
    """Every image of a data set as one cell, in index order, `columns` to a row, coloured by
    the split it falls in, each split's image count in the legend."""
    n = len(train) + len(val) + len(test)
    rows = max(1, math.ceil(n / columns))
    codes = torch.full((rows * columns,), float("nan"))
    for code, indices in enumerate((train, val, test)):
        codes[torch.as_tensor(list(indices), dtype=torch.long)] = float(code)
    figure, axis = plt.subplots(figsize=(7.5, 1.2 + 4.2 * rows / columns + 0.6))
    colours = ListedColormap(list(SPLIT_COLOURS.values()))
    axis.imshow(
        codes.view(rows, columns).numpy(), cmap=colours, vmin=-0.5, vmax=2.5, aspect="equal"
    )
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_xlabel(f"{n:,} images in index order, {columns} to a row")
    counts = (len(train), len(val), len(test))
    handles = [
        Patch(color=colour, label=f"{name}: {count:,}")
        for (name, colour), count in zip(SPLIT_COLOURS.items(), counts, strict=True)
    ]
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    figure.tight_layout()
    return figure


def plot_zipf(corpora: Mapping[str, Counter[str]], annotate: int = 8) -> Figure:
    """Word count against rank on log-log axes (Zipf's law), one line per named corpus. The
    first corpus's `annotate` top words are listed in a column, each joined to its point by a
    thin line: neighbouring ranks sit too close on a log axis for labels at the points."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, counts in corpora.items():
        ranked = sorted(counts.values(), reverse=True)
        axis.loglog(range(1, len(ranked) + 1), ranked, marker=".", markersize=4, label=name)
    first = next(iter(corpora.values()), Counter())
    top = sorted(first.items(), key=lambda item: (-item[1], item[0]))[:annotate]
    row_height = min(0.075, 0.9 / max(len(top), 1))
    for rank, (word, count) in enumerate(top, start=1):
        axis.annotate(
            f"{rank}. {word} ({count:,})",
            xy=(rank, count),
            xytext=(0.6, 0.95 - row_height * (rank - 1)),
            textcoords="axes fraction",
            fontsize=8,
            va="top",
            arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6},
        )
    axis.set_xlabel("rank (1 = the most frequent word)")
    axis.set_ylabel("count in training captions")
    axis.set_title("Word frequencies (Zipf plot)")
    axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return figure


def plot_oov(rows: Sequence[VocabularyChoice], chosen: int | None = None) -> Figure:
    """Vocabulary size and validation OOV rate against `min_freq` (log axis); `chosen` marks one
    `min_freq` of the rows with a dashed line and its two values."""
    figure, left = plt.subplots(figsize=(6.5, 3.8))
    min_freqs = [row.min_freq for row in rows]
    left.plot(min_freqs, [row.vocabulary for row in rows], marker="o", color="tab:blue")
    left.set_xscale("log")
    left.set_xticks(min_freqs, [str(value) for value in min_freqs])
    left.xaxis.set_minor_locator(NullLocator())
    left.set_xlabel("min_freq (log scale)")
    left.set_ylabel("vocabulary size (tokens)", color="tab:blue")
    right = left.twinx()
    right.plot(min_freqs, [100 * row.oov_rate for row in rows], marker="s", color="tab:red")
    right.set_ylabel("validation OOV words (%)", color="tab:red")
    right.set_ylim(bottom=0)
    left.set_ylim(bottom=0)
    title = "A higher min_freq: a smaller vocabulary, more <UNK>"
    if chosen is not None:
        row = next((row for row in rows if row.min_freq == chosen), None)
        if row is None:
            raise ValueError(f"chosen={chosen}: not a min_freq of the rows ({min_freqs})")
        left.axvline(chosen, color="0.4", linestyle="--", linewidth=1)
        title = (
            f"min_freq={chosen}: {row.vocabulary:,} tokens, "
            f"{100 * row.oov_rate:.1f}% of validation words <UNK>"
        )
    left.set_title(title, fontsize=10)
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


def plot_step_losses(steps: Sequence[int], losses: Mapping[str, Sequence[float]]) -> Figure:
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


def plot_learning_rate_trials(trials: Mapping[float, Sequence[float]], steps: int) -> Figure:
    """The training loss of each step (log scale) of runs that differ only in their learning
    rate (`trials`: rate -> losses of steps 1, 2, ...), one curve per rate labelled with it,
    the latest drawn thickest, on an axis of `steps` steps."""
    figure, axis = plt.subplots(figsize=(7, 3.8))
    for index, (rate, losses) in enumerate(trials.items()):
        latest = index == len(trials) - 1
        axis.plot(
            range(1, len(losses) + 1),
            losses,
            label=f"lr {rate:.1e}",
            linewidth=2.6 if latest else 1.2,
        )
    axis.set_yscale("log")
    for ticks in (axis.yaxis.set_major_formatter, axis.yaxis.set_minor_formatter):
        ticks(ScalarFormatter())  # 3, 4, 6, 10 rather than 3x10^0
    axis.set_xlim(0, steps + 1)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("training loss (total)")
    axis.set_title(f"{steps} steps per learning rate, everything else the same")
    if trials:
        axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return figure


def show_reconstructions(
    images: torch.Tensor,
    reconstructions: torch.Tensor,
    generated: Sequence[str],
    truth: Sequence[str],
    width: float = 2.4,
) -> Figure:
    """Images (top row, "original") above their reconstructions ("reconstruction"); each
    original is titled with its true caption and the caption the model generated from it (the
    captions are not read from the reconstructions)."""
    count = len(images)
    figure, axes = plt.subplots(2, count, figsize=(count * width, 2 * width + 2.2), squeeze=False)
    for column in range(count):
        for row, picture in enumerate((images[column], reconstructions[column])):
            axis = axes[row][column]
            axis.imshow(picture.permute(1, 2, 0).numpy())
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0][column].set_title(
            f"true: {_wrap(truth[column], 30)}\nmodel: {_wrap(generated[column], 30)}", fontsize=7
        )
    axes[0][0].set_ylabel("original\n(captioned)")
    axes[1][0].set_ylabel("reconstruction\n(from the latent)")
    figure.tight_layout()
    return figure


def plot_causal_mask(mask: torch.Tensor, words: Sequence[str]) -> Figure:
    """The caption decoder's causal mask [L, L] (True: hidden) over the decoder's input `words`:
    row t is the position predicting word t + 1, shaded where it may read."""
    if mask.shape != (len(words), len(words)):
        raise ValueError(f"mask {list(mask.shape)} does not match {len(words)} words")
    figure, axis = plt.subplots(figsize=(0.32 * len(words) + 2.5, 0.32 * len(words) + 1.5))
    axis.imshow((~mask).float().numpy(), cmap="Greens", vmin=0, vmax=1.5)
    axis.set_xticks(range(len(words)), words, rotation=90)
    axis.set_yticks(range(len(words)), words)
    axis.set_xlabel("key: the input word read")
    axis.set_ylabel("query: the position predicting the next word")
    axis.set_title("causal mask: green = may read (itself and earlier words)")
    figure.tight_layout()
    return figure


def plot_word_attention(
    image: torch.Tensor,
    words: Sequence[str],
    maps: torch.Tensor,
    latent_shares: Sequence[float] | torch.Tensor | None = None,
    title: str | None = None,
    columns: int = 6,
    width: float = 1.9,
) -> Figure:
    """Show, Attend and Tell's figure: a uint8 image [3, S, S] once per word of its caption, with
    the decoder's attention on the image grid while writing that word (`maps` [W, h, w]) shaded
    over it cell by cell, on one colour scale for every word. With `latent_shares`, each panel
    also gives the share of the word's attention that went to the latent tokens instead."""
    if len(words) != len(maps):
        raise ValueError(f"{len(words)} words but {len(maps)} maps")
    if not words:
        raise ValueError("no words to show")
    rows, used = -(-len(words) // columns), min(columns, len(words))
    figure, axes = plt.subplots(
        rows,
        used,
        figsize=(used * width + 1.2, rows * (width + 0.5) + 0.4),
        squeeze=False,
        layout="constrained",
    )
    size, top = image.shape[-1], float(maps.max())
    panels = list(axes.flat)
    for axis in panels[len(words) :]:
        figure.delaxes(axis)
    for index, axis in enumerate(panels[: len(words)]):
        axis.imshow(image.permute(1, 2, 0).numpy())
        shading = axis.imshow(
            maps[index].numpy(),
            cmap="inferno",
            alpha=0.6,
            vmin=0.0,
            vmax=top,
            extent=(0, size, size, 0),
            interpolation="nearest",
        )
        axis.set_title(words[index], fontsize=11)
        axis.set_xticks([])
        axis.set_yticks([])
        if latent_shares is not None:
            axis.set_xlabel(f"{float(latent_shares[index]):.0%} on latent tokens", fontsize=8)
    colour_bar = figure.colorbar(shading, ax=panels[: len(words)], shrink=0.9)
    colour_bar.set_label("share of the word's image attention, per cell")
    if title:
        figure.suptitle(_wrap(title, 110), fontsize=10)
    return figure


def _estimate(item: MemoryItem) -> MemoryEstimate:
    return item.estimate if isinstance(item, BatchSizeRow) else item


def _measured(item: MemoryItem) -> int | None:
    measurement = item.measurement if isinstance(item, BatchSizeRow) else None
    return None if measurement is None else measurement.peak_allocated


def _unit(largest: int) -> tuple[str, int]:
    return ("GiB", GIB) if largest >= GIB else ("MiB", 2**20)


def plot_memory_breakdown(items: Sequence[MemoryItem]) -> Figure:
    """One stacked bar per batch size: weights, gradients, AdamW state, activations, transient,
    autocast copies, then the GPU-only terms (hatched); a measured peak, where a row has one,
    as a black marker on its bar."""
    estimates = [_estimate(item) for item in items]
    parts = [{term.name: term.bytes for term in e.breakdown()} for e in estimates]
    names = list(dict.fromkeys(name for part in parts for name in part))
    gpu_only = {term.name for e in estimates for term in e.gpu_terms}
    unit, scale = _unit(max(e.total for e in estimates))
    figure, axis = plt.subplots(figsize=(8.5, 4))
    positions = range(len(estimates))
    bottoms = [0.0] * len(estimates)
    for name in names:
        heights = [part.get(name, 0) / scale for part in parts]
        label = _PART_LABELS.get(name, name) + (" (GPU only)" if name in gpu_only else "")
        hatch = "//" if name in gpu_only else None
        axis.bar(positions, heights, bottom=bottoms, label=label, hatch=hatch, width=0.6)
        bottoms = [bottom + height for bottom, height in zip(bottoms, heights, strict=True)]
    measured = [(x, _measured(item)) for x, item in zip(positions, items, strict=True)]
    shown = [(x, peak / scale) for x, peak in measured if peak is not None]
    if shown:
        xs, ys = zip(*shown, strict=True)
        axis.plot(xs, ys, "kD", linestyle="none", label="measured peak")
    first = estimates[0]
    axis.set_xticks(list(positions), [str(e.batch_size) for e in estimates])
    axis.set_xlabel("batch size")
    axis.set_ylabel(f"memory at the step's peak ({unit})")
    axis.set_title(f"{first.preset}, {first.precision}, estimated for {first.device_type}")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    return figure


def plot_memory_on_card(
    estimate: MemoryEstimate,
    card: str,
    card_gib: float,
    headroom: float = 0.1,
    margin: GpuMargin | None = None,
) -> Figure:
    """The estimate at one batch as a stacked bar (GiB) against a card's memory and its budget
    after headroom; with a recorded GPU margin, a second bar adds the shortfall it measured."""
    parts = [
        (term.name, term.bytes / GIB, term in estimate.gpu_terms) for term in estimate.breakdown()
    ]
    bars = ["estimate"]
    if margin is not None:
        bars.append("with the GPU margin")
    figure, axis = plt.subplots(figsize=(8, 4))
    bottom = 0.0
    for name, height, gpu_only in parts:
        label = _PART_LABELS.get(name, name) + (" (GPU only)" if gpu_only else "")
        axis.bar(
            range(len(bars)),
            [height] * len(bars),
            bottom=bottom,
            width=0.5,
            label=label,
            hatch="//" if gpu_only else None,
        )
        bottom += height
    top = bottom
    if margin is not None:
        shortfall = margin.total(estimate) / GIB - bottom
        axis.bar(
            [1],
            [shortfall],
            bottom=bottom,
            width=0.5,
            color="black",
            edgecolor="white",
            hatch="..",
            label=f"missed, as a GPU measured (allocation / {margin.shortfall:.2f})",
        )
        top = bottom + shortfall
    budget = card_gib * (1 - headroom)
    axis.axhline(card_gib, color="black", linewidth=1, label=f"{card}: {card_gib:g} GiB")
    budget_label = f"{1 - headroom:.0%} of it, the budget"
    axis.axhline(budget, color="black", linestyle="--", linewidth=1, label=budget_label)
    axis.set_ylim(0, max(card_gib, top) * 1.1)
    axis.set_xlim(-0.6, 1.6)
    axis.set_xticks(range(len(bars)), bars)
    axis.set_ylabel("memory at the step's peak (GiB)")
    axis.set_title(
        f"{estimate.preset}, {estimate.precision}, batch {estimate.batch_size} on {card}\n"
        f"estimate {bottom:.1f} GiB"
        + (f", with the GPU margin {top:.1f} GiB" if margin is not None else ""),
        fontsize=10,
    )
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    return figure


def plot_memory_vs_batch(items: Sequence[MemoryItem], cards: Mapping[str, float] = GPUS) -> Figure:
    """Estimated total (GiB) against the batch size on log axes, one line per preset and
    precision, measured peaks as markers, and a dashed line for each card's memory."""
    figure, axis = plt.subplots(figsize=(7, 4.5))

    def series(item: MemoryItem) -> str:
        estimate = _estimate(item)
        return f"{estimate.preset}, {estimate.precision}, for {estimate.device_type}"

    for label, group in groupby(sorted(items, key=series), key=series):
        points = sorted(group, key=lambda item: _estimate(item).batch_size)
        sizes = [_estimate(item).batch_size for item in points]
        line = axis.plot(sizes, [_estimate(p).total / GIB for p in points], "o-", label=label)[0]
        measured = [(b, _measured(p)) for b, p in zip(sizes, points, strict=True)]
        shown = [(b, peak / GIB) for b, peak in measured if peak is not None]
        if shown:
            xs, ys = zip(*shown, strict=True)
            axis.plot(xs, ys, "D", color=line.get_color(), label=f"{label}: measured")
    by_size: dict[float, list[str]] = {}
    for name, size in cards.items():
        by_size.setdefault(size, []).append(name)
    for size, names in sorted(by_size.items()):
        axis.axhline(size, color="gray", linestyle="--", linewidth=0.8)
        text = f"{' / '.join(names)} {size:g} GiB"
        axis.annotate(
            text,
            (1, size),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=8,
            color="gray",
        )
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    for scale_axis in (axis.xaxis, axis.yaxis):
        scale_axis.set_major_formatter(ScalarFormatter())
    axis.set_xlabel("batch size")
    axis.set_ylabel("estimated total (GiB)")
    axis.set_title("Training-step memory against the batch, and the cards")
    axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return figure


CURVE_SCALES = ("linear", "log")


def _check_curve_options(component: str | None, scale: str) -> None:
    if component is not None and component not in COMPONENTS:
        raise ValueError(f"component={component!r}: choose one of {', '.join(COMPONENTS)}")
    if scale not in CURVE_SCALES:
        raise ValueError(f"scale={scale!r}: choose one of {', '.join(CURVE_SCALES)}")


def _finite(values: Sequence[float]) -> list[float]:
    return [v if math.isfinite(v) else math.nan for v in values]


def _step_positions(steps: Sequence[dict[str, float]]) -> list[float]:
    """Each logged step as a fractional epoch: the k-th of n steps logged in epoch e sits at
    e - 1 + k / n, so steps and epoch-end val values share one x axis."""
    counts: Counter[int] = Counter(int(row.get("epoch", 1)) for row in steps)
    seen: Counter[int] = Counter()
    positions = []
    for row in steps:
        epoch = int(row.get("epoch", 1))
        seen[epoch] += 1
        positions.append(epoch - 1 + seen[epoch] / counts[epoch])
    return positions


def _best_epoch(history: RunHistory) -> int | None:
    rows = [row for row in history.epochs if math.isfinite(row.get("val_total", math.nan))]
    return None if not rows else int(min(rows, key=lambda row: row["val_total"])["epoch"])


def plot_curves(
    histories: Sequence[RunHistory],
    component: str = "total",
    scale: str = "linear",
    smoothing: float = 0.0,
    show_lr: bool = True,
) -> Figure:
    """Train and val loss of one component for each run, overlaid, against the epoch.

    Val (solid, circles) is the epoch-end value from `history.csv`; train (thinner) is the
    per-step loss from `steps.csv`, smoothed with a bias-corrected EMA (`smoothing` in [0, 1)),
    or, for a run without step rows, the epoch's running average drawn at mid-epoch. The best
    epoch (lowest val total) is marked with a star and a dotted line; the learning rate is on a
    second y axis (dashed).
    """
    from mmlib.evaluation.curves import ema

    _check_curve_options(component, scale)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing={smoothing}: must be in [0, 1)")
    figure, axis = plt.subplots(figsize=(8, 4.5))
    lr_axis = axis.twinx() if show_lr else None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, history in enumerate(histories):
        color = colors[index % len(colors)]
        epochs = history.epochs
        x_epochs = [row["epoch"] for row in epochs]
        steps = [row for row in history.steps if component in row]
        if steps:
            x_train = _step_positions(steps)
            train = ema(_finite([row[component] for row in steps]), smoothing)
            train_label = f"{history.name} train (steps)"
        else:
            x_train = [x - 0.5 for x in x_epochs]
            train = ema(_finite([row[f"train_{component}"] for row in epochs]), smoothing)
            train_label = f"{history.name} train (epoch mean)"
        axis.plot(x_train, train, color=color, alpha=0.55, linewidth=1, label=train_label)
        val = _finite([row[f"val_{component}"] for row in epochs])
        axis.plot(x_epochs, val, "o-", color=color, linewidth=2, label=f"{history.name} val")
        best = _best_epoch(history)
        if best is not None:
            best_value = val[x_epochs.index(best)]
            axis.plot([best], [best_value], "*", color=color, markersize=15, markeredgecolor="k")
            axis.axvline(best, color=color, linestyle=":", linewidth=1)
            axis.annotate(
                f"best {best}",
                (best, best_value),
                xytext=(4, 8),
                textcoords="offset points",
                fontsize=8,
                color=color,
            )
        if lr_axis is not None:
            source = history.steps if history.steps else epochs
            points = [
                (x, row["lr"])
                for x, row in zip(
                    _step_positions(source) if history.steps else x_epochs, source, strict=True
                )
                if "lr" in row
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                lr_axis.plot(xs, ys, "--", color=color, linewidth=0.8, alpha=0.7)
    axis.set_yscale(scale)
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"{component} loss")
    smoothed = f", train EMA {smoothing:g}" if smoothing else ""
    axis.set_title(f"{component} loss: train and val ({scale}{smoothed}); star: best val total")
    if lr_axis is not None:
        lr_axis.set_ylabel("learning rate (dashed)")
        lr_axis.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    if histories:  # below the plot: inside it, it hid the curves and stars at the right end
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    figure.tight_layout()
    return figure


def plot_components(history: RunHistory, scale: str = "log") -> Figure:
    """All four loss components of one run, train (dashed, epoch mean) and val (solid).

    On a log scale equal slopes mean equal *relative* progress, which is the fair comparison:
    the components' magnitudes differ by nature.
    """
    _check_curve_options(None, scale)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    x = [row["epoch"] for row in history.epochs]
    for index, component in enumerate(COMPONENTS):
        color = colors[index % len(colors)]
        train = _finite([row[f"train_{component}"] for row in history.epochs])
        val = _finite([row[f"val_{component}"] for row in history.epochs])
        axis.plot(x, train, "--", color=color, label=f"train {component}")
        axis.plot(x, val, "o-", color=color, label=f"val {component}")
    best = _best_epoch(history)
    if best is not None:
        axis.axvline(best, color="gray", linestyle=":", label=f"best epoch {best}")
    axis.set_yscale(scale)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.set_title(f"{history.name}: loss components ({scale})")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    return figure


def plot_lr_find(result: LRFindResult) -> Figure:
    """A learning-rate range test: the loss of each step and its smoothed curve against the
    learning rate (log axis), the suggested learning rate as a labelled vertical line."""
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(result.learning_rates, result.losses, color="tab:blue", alpha=0.35, label="loss")
    axis.plot(result.learning_rates, result.smoothed, color="tab:blue", label="smoothed loss")
    axis.axvline(result.suggested_lr, color="tab:red", linestyle="--", linewidth=1)
    axis.annotate(
        f"suggested lr {result.suggested_lr:.2g}",
        (result.suggested_lr, 0.97),
        xycoords=("data", "axes fraction"),
        xytext=(4, 0),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=9,
        color="tab:red",
    )
    axis.set_xscale("log")
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("total training loss")
    axis.set_title(
        f"Learning-rate range test: {result.steps} steps in {result.seconds:.1f} s\n"
        + _wrap(result.outcome(), 80),
        fontsize=10,
    )
    axis.legend(loc="upper left")
    figure.tight_layout()
    return figure


def plot_temperature(view: TemperatureView) -> Figure:
    """The image x caption cosine similarities of a batch (left) and the softmax over each
    image's row at the view's temperature (right, log colour scale, true pairs circled), with
    colour bars; the title gives the temperature, the alignment loss and its chance level."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
    similarities = left.imshow(view.similarities.cpu().numpy(), cmap="coolwarm", vmin=-1, vmax=1)
    figure.colorbar(similarities, ax=left, label="cosine similarity")
    # A log scale shows both ends: the uniform 1 / B of a high temperature and the one bright
    # cell per row of a low one.
    probabilities = right.imshow(
        view.probabilities.cpu().numpy(), cmap="viridis", norm=LogNorm(vmin=1e-3, vmax=1)
    )
    figure.colorbar(probabilities, ax=right, label="probability (log scale; rows sum to 1)")
    for axis in (left, right):
        axis.set_xlabel("caption")
        axis.set_ylabel("image")
    rows, columns = view.positives.cpu().nonzero(as_tuple=True)
    cell = (200 / view.batch_size) ** 2  # marker area in points^2, about one cell
    right.scatter(columns, rows, s=cell, facecolors="none", edgecolors="red", linewidths=0.8)
    left.set_title("cosine similarity of image i and caption j", fontsize=10)
    right.set_title(
        f"softmax over captions at T = {view.temperature:.3g}; red: true pairs", fontsize=10
    )
    figure.suptitle(
        f"temperature {view.temperature:.3g} (logit scale {1 / view.temperature:.3g}): "
        f"alignment loss {view.loss:.3f}\nchance level {view.chance:.3f} for a batch of "
        f"{view.batch_size} (a guess picks the right caption 1 time in {view.batch_size})"
    )
    return figure
