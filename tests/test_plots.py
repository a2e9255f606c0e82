"""Plots return figures that show what they claim."""

from __future__ import annotations

from collections import Counter

import matplotlib
import pytest
import torch

from mmlib.plots import (
    plot_caption_lengths,
    plot_oov,
    plot_step_losses,
    plot_zipf,
    show_reconstructions,
    show_samples,
)
from mmlib.tokenizer import oov_table

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


def test_zipf_plot_is_rank_ordered() -> None:
    figure = plot_zipf(Counter({"a": 10, "ship": 4, "tower": 7}))
    line = figure.axes[0].lines[0]
    assert list(line.get_ydata()) == [10, 7, 4]


def test_oov_plot_has_both_series() -> None:
    rows = oov_table(["a ship", "a ship", "a tower"], ["a tower"], min_freqs=(1, 2))
    figure = plot_oov(rows)
    assert [list(ax.lines[0].get_ydata()) for ax in figure.axes] == [[7, 6], [0.0, 50.0]]


def test_step_losses_plot_one_line_per_component() -> None:
    figure = plot_step_losses([1, 2, 3], {"total": [3.0, 2.0, 1.0], "image": [0.3, 0.2, 0.1]})
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.lines] == ["total", "image"]
    assert axis.get_yscale() == "log"


def test_reconstructions_show_truth_and_model_captions() -> None:
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    figure = show_reconstructions(images, images, ["a ship", "a tower"], ["a ship", "a house"])
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["true: a ship", "true: a house", "model: a ship", "model: a tower"]
