"""Plots return figures that show what they claim."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.text import Text

from mmlib.course.plots import (
    plot_caption_lengths,
    plot_learning_rate_trials,
    plot_memory_breakdown,
    plot_memory_on_card,
    plot_memory_vs_batch,
    plot_oov,
    plot_split_map,
    plot_step_losses,
    plot_zipf,
    show_reconstructions,
    show_samples,
)
from mmlib.data.tokenizer import oov_table
from mmlib.evaluation.curves import RunHistory
from mmlib.sizing.batch_size import BatchSizeRow
from mmlib.sizing.gpu_calibration import gpu_margin
from mmlib.sizing.memory import GIB, MemoryEstimate, MemoryMeasurement, MemoryTerm

matplotlib.use("Agg")


def test_show_samples_titles_each_image() -> None:
    images = torch.randint(0, 255, (5, 3, 16, 16), dtype=torch.uint8)
    figure = show_samples(images, [f"caption {i}" for i in range(5)], columns=3)
    titled = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titled == [f"caption {i}" for i in range(5)] and len(figure.axes) == 6
    with pytest.raises(ValueError, match="5 images but 2 captions"):
        show_samples(images, ["a", "b"])


def test_caption_length_histogram_counts_every_caption() -> None:
    figure = plot_caption_lengths([3, 3, 5])
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert sum(heights) == 3 and max(heights) == 2
    figure.canvas.draw()
    for axis in (figure.axes[0].xaxis, figure.axes[0].yaxis):  # whole words, whole captions
        assert all(tick == int(tick) for tick in axis.get_majorticklocs())


def test_split_map_colours_each_image_by_its_split() -> None:
    figure = plot_split_map([0, 2, 4], [1], [3], columns=4)
    cells = np.asarray(figure.axes[0].images[0].get_array(), dtype=float)
    assert cells.shape == (2, 4)
    assert cells[0].tolist() == [0.0, 1.0, 0.0, 2.0] and cells[1, 0] == 0.0
    assert np.isnan(cells[1, 1:]).all()  # no image there
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["train: 3", "validation: 1", "test: 1"]


def test_zipf_plot_is_rank_ordered_with_one_line_per_corpus() -> None:
    figure = plot_zipf({"real": Counter({"a": 10, "ship": 4, "tower": 7}), "other": Counter(a=3)})
    axis = figure.axes[0]
    assert [list(line.get_ydata()) for line in axis.lines] == [[10, 7, 4], [3]]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["real", "other"]


def test_zipf_labels_do_not_overlap() -> None:
    # neighbouring ranks with nearly equal counts: labels placed at their points overlapped
    counts = Counter({f"word{rank}": 1000 - rank for rank in range(30)})
    figure = plot_zipf({"captions": counts}, annotate=8)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [Text.get_window_extent(label, renderer) for label in figure.axes[0].texts]
    assert len(boxes) == 8
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_oov_plot_has_both_series_on_a_log_axis_and_marks_the_choice() -> None:
    rows = oov_table(["a ship", "a ship", "a tower"], ["a tower"], min_freqs=(1, 2))
    figure = plot_oov(rows)
    assert [list(ax.lines[0].get_ydata()) for ax in figure.axes] == [[7, 6], [0.0, 50.0]]
    assert figure.axes[0].get_xscale() == "log"
    assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == ["1", "2"]
    marked = plot_oov(rows, chosen=2).axes[0]
    assert list(marked.lines[-1].get_xdata()) == [2, 2]
    assert marked.get_title() == "min_freq=2: 6 tokens, 50.0% of validation words <UNK>"
    with pytest.raises(ValueError, match="chosen=3"):
        plot_oov(rows, chosen=3)


def test_step_losses_plot_one_line_per_component() -> None:
    figure = plot_step_losses([1, 2, 3], {"total": [3.0, 2.0, 1.0], "image": [0.3, 0.2, 0.1]})
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.lines] == ["total", "image"]
    assert axis.get_yscale() == "log"


def test_learning_rate_trials_one_labelled_curve_per_rate_the_latest_thickest() -> None:
    figure = plot_learning_rate_trials({1e-3: [5.0, 4.0, 3.0], 1.0: [5.0, 50.0, 40.0]}, steps=3)
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.lines] == ["lr 1.0e-03", "lr 1.0e+00"]
    assert list(axis.lines[1].get_xdata()) == [1, 2, 3]
    assert list(axis.lines[1].get_ydata()) == [5.0, 50.0, 40.0]
    assert axis.lines[1].get_linewidth() > axis.lines[0].get_linewidth()
    assert axis.get_yscale() == "log"


def test_reconstructions_are_labelled_apart_from_the_captioned_originals() -> None:
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    figure = show_reconstructions(images, images, ["a ship", "a tower"], ["a ship", "a house"])
    originals, reconstructions = figure.axes[:2], figure.axes[2:]
    assert [axis.get_title() for axis in originals] == [
        "true: a ship\nmodel: a ship",
        "true: a house\nmodel: a tower",
    ]
    assert [axis.get_title() for axis in reconstructions] == ["", ""]
    assert originals[0].get_ylabel().startswith("original")
    assert reconstructions[0].get_ylabel().startswith("reconstruction")


def _estimate(
    batch_size: int, device_type: str = "cuda", preset: str = "seed-large"
) -> MemoryEstimate:
    """A hand-made estimate: 1 GiB of weights, activations that grow with the batch."""
    terms = (MemoryTerm("cuda_context", GIB // 2, "allowance"),) if device_type == "cuda" else ()
    return MemoryEstimate(
        preset=preset,
        batch_size=batch_size,
        precision="bf16" if device_type == "cuda" else "fp32",
        device_type=device_type,
        vocab_size=100,
        weights=GIB,
        gradients=GIB,
        optimizer_state=2 * GIB,
        activations=batch_size * GIB // 8,
        transient=GIB // 4,
        autocast_copies=GIB // 2 if device_type == "cuda" else 0,
        gpu_terms=terms,
    )


def test_memory_breakdown_stacks_every_part_per_batch() -> None:
    estimates = [_estimate(8), _estimate(16)]
    figure = plot_memory_breakdown(estimates)
    axis = figure.axes[0]
    labels = [container.get_label() for container in axis.containers]
    assert labels == [
        "weights",
        "gradients",
        "AdamW state",
        "activations",
        "transient",
        "autocast copies",
        "cuDNN workspace",
        "cuda_context (GPU only)",
    ]
    stacks = zip(*axis.containers, strict=True)
    tops = [max(bar.get_y() + bar.get_height() for bar in stack) for stack in stacks]
    assert tops == [pytest.approx(e.total / GIB) for e in estimates]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["8", "16"]
    assert "GiB" in axis.get_ylabel() and axis.containers[-1][0].get_hatch() == "//"


def test_memory_breakdown_marks_measured_peaks_in_mib() -> None:
    small = replace(
        _estimate(8, "cpu"),
        weights=2**20,
        gradients=0,
        optimizer_state=0,
        activations=0,
        transient=0,
    )
    measured = MemoryMeasurement(8, "cpu", "fp32", 2**21, None, 10.0, "profiler")
    rows = [BatchSizeRow(8, small, measured, "h100", 80 * GIB, True)]
    axis = plot_memory_breakdown(rows).axes[0]
    assert len(axis.containers) == 5 and "MiB" in axis.get_ylabel()
    marker = axis.lines[0]
    assert marker.get_label() == "measured peak" and list(marker.get_ydata()) == [2.0]


def test_memory_vs_batch_has_a_line_per_series_and_per_card_size() -> None:
    items = [_estimate(b) for b in (32, 8, 16)] + [_estimate(8, "cpu", "cpu-tiny")]
    axis = plot_memory_vs_batch(items, cards={"small": 4, "a": 80, "b": 80}).axes[0]
    series = [line for line in axis.lines if line.get_label()[0] != "_"]
    assert [line.get_label() for line in series] == [
        "cpu-tiny, fp32, for cpu",
        "seed-large, bf16, for cuda",
    ]
    assert list(series[1].get_xdata()) == [8, 16, 32]
    assert list(series[1].get_ydata()) == [e.total / GIB for e in (items[1], items[2], items[0])]
    card_lines = [line for line in axis.lines if line.get_linestyle() == "--"]
    assert sorted(line.get_ydata()[0] for line in card_lines) == [4, 80]
    assert sorted(text.get_text() for text in axis.texts) == ["a / b 80 GiB", "small 4 GiB"]


def test_plot_lr_find_marks_the_suggestion_on_a_log_axis() -> None:
    from mmlib.course.plots import plot_lr_find
    from mmlib.training.lr_find import LRFindResult

    lrs = [1e-5 * 10 ** (i / 4) for i in range(17)]
    losses = [5.0 - 0.2 * i if i < 12 else 3.0 + (i - 11) for i in range(17)]
    result = LRFindResult(lrs, losses, losses, 1e-3, 17, 1.5, True)
    figure = plot_lr_find(result)
    axis = figure.axes[0]
    assert axis.get_xscale() == "log"
    assert [line.get_label() for line in axis.get_lines()][:2] == ["loss", "smoothed loss"]
    assert any(list(line.get_xdata()) == [1e-3, 1e-3] for line in axis.get_lines())
    assert any("suggested lr 0.001" in text.get_text() for text in axis.texts)
    assert "17 steps" in axis.get_title()
    title = axis.get_title().replace("\n", " ")
    assert "the raw loss rose 3x, from 2.8 at lr 0.0056 to 8 at lr 0.1" in title  # the raw curve
    assert "stopped on divergence after 17 steps" in title


def _history(name: str = "run", steps: bool = True) -> RunHistory:
    from pathlib import Path

    from mmlib.config import Config
    from mmlib.evaluation.curves import RunHistory

    epochs = [
        {
            "epoch": e,
            **{
                f"{s}_{c}": 2.0 / e + (0.1 if s == "val" else 0)
                for s in ("train", "val")
                for c in ("total", "image", "caption", "alignment")
            },
            "lr": 1e-3,
        }
        for e in range(1, 5)
    ]
    epochs[2]["val_total"] = 0.1  # best epoch 3
    rows = (
        [
            {
                "step": i,
                "epoch": 1 + (i - 1) // 3,
                "total": 3.0 / i,
                "image": 1.0,
                "caption": 1.0,
                "alignment": 1.0,
                "lr": 1e-3 * i / 12,
            }
            for i in range(1, 13)
        ]
        if steps
        else []
    )
    return RunHistory(name, Path(name), epochs, rows, Config())


def test_plot_curves_overlays_runs_marks_best_and_shows_lr() -> None:
    from mmlib.course.plots import plot_curves

    figure = plot_curves([_history("a"), _history("b", steps=False)], scale="log", smoothing=0.5)
    loss_axis, lr_axis = figure.axes
    assert loss_axis.get_yscale() == "log"
    labels = [line.get_label() for line in loss_axis.get_lines()]
    assert {"a train (steps)", "a val", "b train (epoch mean)", "b val"} <= set(labels)
    stars = [line for line in loss_axis.get_lines() if line.get_marker() == "*"]
    assert [tuple(line.get_xdata()) for line in stars] == [(3,), (3,)]
    assert len(lr_axis.get_lines()) == 2
    train = next(line for line in loss_axis.get_lines() if line.get_label() == "a train (steps)")
    assert list(train.get_xdata())[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert train.get_ydata()[0] == pytest.approx(3.0)  # bias-corrected EMA starts at the data
    assert len(plot_curves([_history()], show_lr=False).axes) == 1


def test_plot_curves_rejects_unknown_options() -> None:
    from mmlib.course.plots import plot_curves

    with pytest.raises(ValueError, match="component='loss'"):
        plot_curves([_history()], component="loss")
    with pytest.raises(ValueError, match="scale='symlog'"):
        plot_curves([_history()], scale="symlog")


def test_plot_components_draws_train_and_val_of_each() -> None:
    from mmlib.course.plots import plot_components

    figure = plot_components(_history())
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    for component in ("total", "image", "caption", "alignment"):
        assert f"train {component}" in labels and f"val {component}" in labels
    assert figure.axes[0].get_yscale() == "log"
    assert all(float(tick).is_integer() for tick in figure.axes[0].get_xticks())  # whole epochs


def test_plot_temperature_shows_similarities_and_softmax_with_labels() -> None:
    from mmlib.course.anatomy import EmbeddedBatch, temperature_view
    from mmlib.course.plots import plot_temperature

    embeddings = torch.nn.functional.normalize(
        torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=1
    )
    same = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]], dtype=torch.bool)
    view = temperature_view(EmbeddedBatch(embeddings, embeddings, same, 0.07), 0.1, 4)
    figure = plot_temperature(view)
    left, right, *bars = figure.axes
    assert [(a.get_xlabel(), a.get_ylabel()) for a in (left, right)] == [("caption", "image")] * 2
    assert [bar.get_ylabel() for bar in bars] == [
        "cosine similarity",
        "probability (log scale; rows sum to 1)",
    ]
    assert torch.allclose(torch.from_numpy(left.images[0].get_array().data), view.similarities)
    assert torch.allclose(torch.from_numpy(right.images[0].get_array().data), view.probabilities)
    circled = right.collections[0].get_offsets().tolist()
    assert sorted(map(tuple, circled)) == [(0, 0), (0, 3), (1, 1), (2, 2), (3, 0), (3, 3)]
    title = figure._suptitle.get_text()
    assert "temperature 0.1 " in title and f"alignment loss {view.loss:.3f}" in title
    assert "batch of 4" in title


def test_plot_causal_mask_shades_what_each_position_may_read() -> None:
    from mmlib.course.plots import plot_causal_mask
    from mmlib.model.multimodal import CaptionDecoder

    words = ["<START>", "an", "engraving"]
    figure = plot_causal_mask(CaptionDecoder.causal_mask(3), words)
    axis = figure.axes[0]
    readable = torch.from_numpy(axis.images[0].get_array().data)
    assert readable.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert [label.get_text() for label in axis.get_yticklabels()] == words
    with pytest.raises(ValueError, match="does not match 2 words"):
        plot_causal_mask(CaptionDecoder.causal_mask(3), words[:2])


def test_plot_round_trip_marks_each_match_and_miss() -> None:
    from mmlib.course.plots import plot_round_trip

    images = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    prompts = [
        "An engraving depicting a ship",
        "An engraving depicting a tower",
        "An engraving depicting two birds",
    ]
    readings = [
        "an engraving depicting a ship",
        "an engraving depicting a house",
        "an engraving depicting a bird",
    ]
    figure = plot_round_trip(
        images, prompts, readings, [True, False, False], title="sample", columns=2
    )
    axes = [axis for axis in figure.axes if axis.images]
    assert len(axes) == 3
    assert [axis.get_xlabel() for axis in axes] == ["matched", "MISSED", "MISSED"]
    assert axes[1].get_title() == "asked: a tower\nread: a house"
    assert matplotlib.colors.to_hex(
        axes[1].spines["left"].get_edgecolor()
    ) == matplotlib.colors.to_hex("tab:red")
    assert (
        figure._suptitle.get_text() == "sample\n(every caption begins 'An engraving depicting ...')"
    )
    with pytest.raises(ValueError, match="3 images, 2 prompts"):
        plot_round_trip(images, prompts[:2], readings, [True] * 3)


def test_memory_on_card_adds_the_measured_shortfall_above_the_estimate() -> None:
    estimate = _estimate(8)
    margin = gpu_margin("seed-large", "bf16")
    assert margin is not None
    axis = plot_memory_on_card(estimate, "h100", 80, 0.1, margin).axes[0]
    stacks = zip(*axis.containers[:-1], strict=True)
    tops = [max(bar.get_y() + bar.get_height() for bar in stack) for stack in stacks]
    assert tops == [pytest.approx(estimate.total / GIB)] * 2
    missed = axis.containers[-1][0]
    assert missed.get_y() + missed.get_height() == pytest.approx(margin.total(estimate) / GIB)
    assert sorted(line.get_ydata()[0] for line in axis.lines) == [pytest.approx(72), 80]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["estimate", "with the GPU margin"]
    alone = plot_memory_on_card(estimate, "h100", 80).axes[0]
    assert [t.get_text() for t in alone.get_xticklabels()] == ["estimate"]
