"""Widget panels: nbval never moves a slider, so these tests do."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL
from PIL import Image

from mmlib.config import Config
from mmlib.course import widgets as widgets_module
from mmlib.course.widgets import (
    LiveLossPlot,
    config_from_panel,
    config_panel,
    imagine_panel,
    memory_panel,
    sample_browser,
    split_panel,
    token_inspector,
    vocabulary_explorer,
)
from mmlib.data.tokenizer import BpeTokenizer, WordTokenizer
from mmlib.sizing import memory
from mmlib.sizing.batch_size import recommend_batch_size
from mmlib.sizing.gpu_calibration import GpuMargin, GpuMeasurement
from mmlib.sizing.memory import GIB, estimate_table

TRAIN = ["a ship", "a tower", "a ship beside a tower", "a bird"]
VAL = ["a ship", "a horse", "a bird"]


def test_sample_browser_follows_the_slider() -> None:
    images = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    images[2] = 255
    panel = sample_browser(images, ["first", "second", "third"])
    assert panel.result.value == "first"
    first_png = bytes(panel.box.children[1].value)
    panel.controls["index"].value = 2
    assert panel.result.value == "third"
    assert bytes(panel.box.children[1].value) != first_png
    assert first_png.startswith(b"\x89PNG")


def test_split_panel_redraws_the_split_at_the_test_fraction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmlib.course import plots
    from mmlib.data.sources import split_indices

    real, drawn = plots.plot_split_map, []

    def recording(train: Any, val: Any, test: Any) -> Any:
        drawn.append((train, val, test))
        return real(train, val, test)

    monkeypatch.setattr(plots, "plot_split_map", recording)
    panel = split_panel(200, 0.1, seed=3)
    assert "mmlib-teach" in panel.controls["test_fraction"]._dom_classes  # the browser check's
    assert "mmlib-teach-figure" in panel.result._dom_classes
    assert [len(part) for part in drawn[-1]] == [160, 20, 20]
    panel.controls["test_fraction"].value = 0.25
    assert drawn[-1] == split_indices(200, 0.1, 3, 0.25)
    assert drawn[-1][1] == drawn[0][1]  # validation does not move


def test_vocabulary_explorer_updates_oov_rate() -> None:
    panel = vocabulary_explorer(TRAIN, VAL)
    assert "vocabulary: <b>9</b>" in panel.result.value
    assert "OOV words: <b>16.67%</b>" in panel.result.value  # "horse" is 1 word of 6
    panel.controls["min_freq"].value = 2  # keeps "a", "ship", "tower"
    assert "vocabulary: <b>7</b>" in panel.result.value
    assert "OOV words: <b>33.33%</b>" in panel.result.value
    panel.controls["vocab_size"].value = 5  # room for "a" only
    assert "vocabulary: <b>5</b>" in panel.result.value
    small = vocabulary_explorer(TRAIN, VAL, max_min_freq=3, max_vocab_size=40)
    assert (small.controls["min_freq"].max, small.controls["vocab_size"].value) == (3, 40)


def test_vocabulary_explorer_redraws_the_oov_curve_at_the_slider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmlib.course import plots

    real, drawn = plots.plot_oov, []

    def recording(rows: Any, chosen: int | None = None) -> Any:
        drawn.append(([row.min_freq for row in rows], chosen))
        return real(rows, chosen)

    monkeypatch.setattr(plots, "plot_oov", recording)
    panel = vocabulary_explorer(TRAIN, VAL, max_min_freq=4, curve=(1, 2))
    assert drawn == [([1, 2], 1)]
    panel.controls["min_freq"].value = 3  # a value off the curve is added to it and marked
    assert drawn[-1] == ([1, 2, 3], 3)
    figure = panel.box.children[-1]
    assert "mmlib-teach" in panel.controls["min_freq"]._dom_classes
    assert "mmlib-teach-figure" in figure._dom_classes


def test_token_inspector_shows_ids_of_typed_text() -> None:
    tokenizer = WordTokenizer().build_vocab(TRAIN)
    panel = token_inspector(tokenizer, max_length=8)
    panel.controls["text"].value = "A ship, a HORSE"
    ship = tokenizer.word2idx["ship"]
    assert f"ids: <code>[1, 4, {ship}, 4, 3, 2, 0, 0]</code>" in panel.result.value
    assert "decoded: <i>a ship a &lt;UNK&gt;</i>" in panel.result.value or (
        "decoded: <i>a ship a <UNK></i>" in panel.result.value
    )


def test_token_inspector_shows_the_pieces_of_a_bpe() -> None:
    tokenizer = BpeTokenizer(vocab_size=280).build_vocab(TRAIN)
    panel = token_inspector(tokenizer, max_length=40)
    panel.controls["text"].value = "A ship, a HORSE"
    pieces = [tokenizer.token_text(i) for i in tokenizer.token_ids("a ship a horse")]
    assert all(f"{piece}<sub>" in panel.result.value for piece in pieces)
    assert "decoded: <i>a ship a horse</i>" in panel.result.value


def test_config_panel_builds_the_config_it_shows() -> None:
    panel = config_panel()
    assert config_from_panel(panel) == Config.preset("cpu-tiny")
    assert panel.result.value == "<code>Config.preset('cpu-tiny')</code>"
    panel.controls["learning_rate"].value = 3e-3
    panel.controls["alignment_loss_weight"].value = 1.0
    config = config_from_panel(panel)
    assert (config.learning_rate, config.alignment_loss_weight) == (3e-3, 1.0)
    assert panel.result.value == (
        "<code>Config.preset('cpu-tiny', learning_rate=0.003, alignment_loss_weight=1.0)</code>"
    )
    panel.controls["preset"].value = "base"  # loads the preset's own values into the controls
    assert panel.controls["batch_size"].value == Config.preset("base").batch_size
    assert config_from_panel(panel) == Config.preset("base")


def test_live_loss_plot_records_logged_steps_only() -> None:
    plot = LiveLossPlot(every=100)
    plot.on_step_end(None, 1, None)
    plot.on_step_end(None, 2, {"total": 2.0, "caption": 1.5})
    plot.on_step_end(None, 3, {"total": 1.0, "caption": 0.5})
    assert plot.steps == [2, 3] and plot.losses == {"total": [2.0, 1.0], "caption": [1.5, 0.5]}
    plot.redraw()  # draws without a kernel too


def test_memory_panel_recommends_from_one_table_per_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real, asked = memory.estimate_memory, []

    def counted(config: Config, batch_size: int, *args: Any, **kwargs: Any) -> Any:
        asked.append(batch_size)
        return real(config, batch_size, *args, **kwargs)

    monkeypatch.setattr(memory, "estimate_memory", counted)
    config = Config(**{**TINY_MODEL, "vocab_size": 50, "max_caption_length": 16})
    panel = memory_panel(config, batch_sizes=(1, 8, 64))
    assert panel.controls["precision"].value == "bf16" and asked == [1, 8, 64]
    assert "recommended batch_size <b>64</b> for 24 GiB" in panel.result.value  # the table's top
    table = estimate_table(config, "bf16", batch_sizes=(1, 8, 64))
    budget_gb = (table(20).total + 2**10) / 0.9 / GIB
    panel.controls["memory_gb"].value = budget_gb
    best = recommend_batch_size(config, budget_gb, max_batch=64, estimate=table)
    assert best in (19, 20) and f"batch_size <b>{best}</b>" in panel.result.value
    assert f"(estimated total {table(best).total / GIB:.2f} GiB before" in panel.result.value
    assert "uncalibrated on GPUs; no GPU measurement is recorded" in panel.result.value
    panel.controls["precision"].value = "fp32"
    panel.controls["precision"].value = "bf16"
    assert asked[3:] == [1, 8, 64, 1, 8, 64]  # the test's table, then fp32's; bf16 is cached
    panel.controls["card"].value = "h200"
    assert panel.controls["memory_gb"].value == 141 and "for 141 GiB" in panel.result.value
    panel.controls["memory_gb"].value = 0.5  # less than the CUDA context allowance
    assert panel.result.value.startswith("<b>does not fit</b>: even batch_size=1")


def test_curves_panel_redraws_with_the_chosen_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from mmlib.course import plots
    from mmlib.course.widgets import curves_panel
    from mmlib.evaluation.curves import RunHistory

    real, calls = plots.plot_curves, []

    def recording(histories: Any, **kwargs: Any) -> Any:
        calls.append(([h.name for h in histories], kwargs))
        return real(histories, **kwargs)

    monkeypatch.setattr(plots, "plot_curves", recording)
    row = {
        f"{s}_{c}": 1.0
        for s in ("train", "val")
        for c in ("total", "image", "caption", "alignment")
    }
    runs = [
        RunHistory(name, Path(name), [{"epoch": 1, **row}, {"epoch": 2, **row}], [], Config())
        for name in ("a", "b")
    ]
    panel = curves_panel(runs)
    assert set(panel.controls) == {"runs", "component", "scale", "smoothing"}
    assert "mmlib-teach" in panel.controls["smoothing"]._dom_classes  # the browser check's control
    assert "mmlib-teach-figure" in panel.result._dom_classes
    assert calls[-1] == (["a", "b"], {"component": "total", "scale": "linear", "smoothing": 0.0})
    panel.controls["runs"].value = ("b",)
    panel.controls["component"].value = "caption"
    panel.controls["scale"].value = "log"
    panel.controls["smoothing"].value = 0.9
    assert calls[-1] == (["b"], {"component": "caption", "scale": "log", "smoothing": 0.9})
    count = len(calls)
    panel.controls["runs"].value = ()
    assert len(calls) == count  # nothing chosen: a message, no plot


def test_imagine_panel_draws_what_is_typed(tiny_run) -> None:
    from mmlib.inference.predictor import Predictor

    predictor = Predictor.load(tiny_run)
    panel = imagine_panel(predictor, size=64)
    assert panel.result.value == "type a caption and press Enter"
    panel.controls["caption"].value = "\U0001f6a2\U0001f319"  # emoji only, as the CLI refuses
    assert "has no words: type a caption" in panel.result.value
    panel.controls["caption"].value = "An engraving depicting a small ship"
    assert panel.result.value.startswith("the captioner reads: ")
    picture = panel.box.children[1].value
    expected = predictor.imagine("An engraving depicting a small ship")[0]
    assert Image.open(io.BytesIO(picture)).size == (64, 64)
    assert torch.equal(
        torch.from_numpy(np.array(Image.open(io.BytesIO(picture)).resize((32, 32), 0))),
        expected.permute(1, 2, 0),
    )


def test_temperature_panel_redraws_with_the_temperature_and_batch_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmlib.course import plots
    from mmlib.course.anatomy import EmbeddedBatch, loss_at
    from mmlib.course.widgets import temperature_panel

    real, drawn = plots.plot_temperature, []

    def recording(view: Any) -> Any:
        drawn.append(view)
        return real(view)

    monkeypatch.setattr(plots, "plot_temperature", recording)
    generator = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(6, 8, generator=generator), dim=1)
    text = torch.nn.functional.normalize(
        image + 0.3 * torch.randn(6, 8, generator=generator), dim=1
    )
    batch = EmbeddedBatch(image, text, torch.eye(6, dtype=torch.bool), 0.07)
    panel = temperature_panel(batch)
    assert set(panel.controls) == {"temperature", "batch_size"}
    assert "mmlib-teach" in panel.controls["temperature"]._dom_classes
    assert "mmlib-teach-figure" in panel.box.children[-1]._dom_classes
    assert (drawn[-1].temperature, drawn[-1].batch_size) == (pytest.approx(0.07), 6)
    assert f"alignment loss <b>{loss_at(batch, 0.07):.3f}</b>" in panel.result.value
    panel.controls["temperature"].value = 1.0
    assert drawn[-1].temperature == 1.0 and drawn[-1].loss > drawn[0].loss  # softer, higher loss
    assert f"alignment loss <b>{loss_at(batch, 1.0):.3f}</b>" in panel.result.value
    panel.controls["batch_size"].value = 3
    assert drawn[-1].batch_size == 3 and drawn[-1].probabilities.shape == (3, 3)
    assert "chance level 1.099 for 3 pairs (a guess is right 1 time in 3)" in panel.result.value


def test_learning_rate_panel_overlays_a_curve_per_rate_on_each_click(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmlib.course import plots
    from mmlib.course.widgets import learning_rate_panel

    real, drawn = plots.plot_learning_rate_trials, []

    def recording(trials: dict[float, list[float]], steps: int) -> Any:
        drawn.append({rate: list(losses) for rate, losses in trials.items()})
        return real(trials, steps)

    def trial(rate: float) -> list[float]:
        return [10.0 - rate * step for step in range(4)]

    monkeypatch.setattr(plots, "plot_learning_rate_trials", recording)
    trials: dict[float, list[float]] = {}
    panel = learning_rate_panel(trial, steps=4, learning_rate=1e-2, trials=trials)
    rate, run = panel.controls["learning_rate"], panel.controls["run"]
    assert "mmlib-teach" in rate._dom_classes and "mmlib-teach-run" in run._dom_classes
    assert list(drawn[-1]) == [pytest.approx(1e-2)]  # the start value is trained at once
    assert panel.result.value.startswith("lr 1.0e-02: loss 10 at step 1, 9.97 at step 4 (")
    rate.value = 1e-1
    assert len(drawn) == 1  # moving the slider alone trains nothing
    run.click()
    assert list(drawn[-1]) == [pytest.approx(1e-2), pytest.approx(1e-1)]
    assert panel.result.value.startswith("lr 1.0e-01: loss 10 at step 1, 9.7 at step 4 (")
    assert drawn[-1] == trials and not run.disabled


def test_imagine_panel_says_when_the_reading_misses_the_caption(tiny_run) -> None:
    from mmlib.inference.predictor import Predictor

    predictor = Predictor.load(tiny_run)
    caption = "An engraving depicting a small ship"
    every_caption_alike = imagine_panel(predictor, caption, size=64, subjects=lambda _c: {})
    assert every_caption_alike.result.value.endswith("(it names your caption's subjects: a match)")
    # The reading is lower case, so a grammar that reads the capital A tells them apart.
    capital = imagine_panel(predictor, caption, size=64, subjects=lambda c: {"A": c[0] == "A"})
    assert capital.result.value.endswith(
        "NOT your caption's subjects: this imagined image missed them)"
    )
    assert imagine_panel(predictor, caption, size=64).result.value.count("(") == 0


def test_round_trip_panel_redraws_with_the_candidates(
    tiny_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmlib.course import plots
    from mmlib.course.widgets import round_trip_panel
    from mmlib.data.synthetic import subjects_in_caption
    from mmlib.evaluation.metrics import imagine_round_trip
    from mmlib.inference.predictor import Predictor

    real, titles = plots.plot_round_trip, []

    def recording(images: Any, prompts: Any, readings: Any, matched: Any, **kwargs: Any) -> Any:
        titles.append((images, kwargs["title"]))
        return real(images, prompts, readings, matched, **kwargs)

    monkeypatch.setattr(plots, "plot_round_trip", recording)
    predictor = Predictor.load(tiny_run)
    prompts = ["An engraving depicting a small ship", "An engraving depicting a tall tower"]
    panel = round_trip_panel(predictor, prompts, subjects_in_caption, seed=5)
    assert "mmlib-teach" in panel.controls["candidates"]._dom_classes  # the browser check's control
    assert "mmlib-teach-figure" in panel.result._dom_classes
    assert titles[-1][1].startswith("one candidate: ")
    panel.controls["candidates"].value = 3
    expected = imagine_round_trip(predictor, prompts, subjects_in_caption, seed=5, candidates=3)
    assert torch.equal(titles[-1][0], expected.images)
    assert (
        titles[-1][1]
        == f"best of 3 candidates: {sum(expected.matched)} of 2 read back with their prompt's "
        "subjects"
    )


def test_memory_panel_batch_slider_redraws_the_bars_with_the_recorded_margin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmlib.course import plots

    real, drawn = plots.plot_memory_on_card, []

    def recording(estimate: Any, *args: Any) -> Any:
        drawn.append((estimate.batch_size, estimate.precision, args[-1]))
        return real(estimate, *args)

    monkeypatch.setattr(plots, "plot_memory_on_card", recording)
    record = GpuMeasurement(
        "H100", "2.11", "p", "bf16", 64, 4.0, None, 3.0, None, "2026-01-01", "", ""
    )
    margin = GpuMargin(0.5, record, 1, today=False)
    monkeypatch.setattr(widgets_module, "config_margin", lambda *_: margin)
    config = Config(**{**TINY_MODEL, "vocab_size": 50, "max_caption_length": 16})
    panel = memory_panel(config, batch_sizes=(1, 8, 64))
    slider = panel.controls["batch"]
    assert "mmlib-teach" in slider._dom_classes
    assert "mmlib-teach-figure" in panel.box.children[-1]._dom_classes
    assert drawn == [(slider.value, "bf16", margin)]
    slider.value -= slider.step
    panel.controls["precision"].value = "fp32"
    assert [d[:2] for d in drawn[1:]] == [(56, "bf16"), (56, "fp32")]
    assert "the estimate of that day was 0.50 of max_memory_allocated" in panel.result.value


def test_memory_panel_uses_the_tables_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(**{**TINY_MODEL, "vocab_size": 50, "max_caption_length": 16})
    table = estimate_table(config, "bf16", batch_sizes=(1, 8, 64))

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("estimated again")

    monkeypatch.setattr(memory, "estimate_memory", refuse)
    panel = memory_panel(config, batch_sizes=(1, 8, 64), estimated={"bf16": table})
    assert "recommended batch_size <b>64</b>" in panel.result.value
