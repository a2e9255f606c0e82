"""ipywidgets panels over mmlib functions; they hold no logic of their own."""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display
from torchvision.transforms.v2.functional import to_pil_image

from mmlib.config import PRESETS, Config
from mmlib.course import plots
from mmlib.course.anatomy import EmbeddedBatch, temperature_view
from mmlib.course.plots import plot_step_losses
from mmlib.data.sources import split_indices
from mmlib.data.tokenizer import Tokenizer, oov_table
from mmlib.model.step import COMPONENTS
from mmlib.sizing.batch_size import GPUS, recommend_batch_size
from mmlib.sizing.gpu_calibration import GpuMargin, config_margin, margin_note
from mmlib.sizing.memory import (
    GIB,
    PRECISIONS,
    TABLE_BATCHES,
    EstimateTable,
    MemoryEstimate,
    estimate_table,
)
from mmlib.training.trainer import Callback

if TYPE_CHECKING:
    from mmlib.evaluation.curves import RunHistory
    from mmlib.inference.predictor import CaptionSubjects, Predictor


@dataclass
class Panel:
    """A widget box plus handles to its controls and its result view (for tests and notebooks)."""

    box: widgets.Box
    controls: dict[str, widgets.Widget] = field(default_factory=dict)
    result: widgets.Widget | None = None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


def _on_change(controls: Sequence[widgets.Widget], update: Callable[[], None]) -> None:
    for control in controls:
        control.observe(lambda _change: update(), names="value")
    update()


def _slider(
    kind: type[widgets.Widget],
    description: str,
    *,
    label_width: str | None = None,
    teach: bool = False,
    **options: Any,
) -> widgets.Widget:
    """A `kind` slider that reports its value once released, not while dragged; `teach` marks
    it as the cell's teaching control."""
    if label_width is not None:
        options["style"] = {"description_width": label_width}
    slider = kind(description=description, continuous_update=False, **options)
    return slider.add_class("mmlib-teach") if teach else slider


def sample_browser(images: torch.Tensor, captions: Sequence[str]) -> Panel:
    """A slider over uint8 images [N, 3, H, W] that shows each one with its caption."""
    index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="sample")
    picture = widgets.Image(format="png", width=256, height=256)
    caption = widgets.Label()

    def update() -> None:
        png = io.BytesIO()
        to_pil_image(images[index.value]).save(png, format="PNG")
        picture.value = png.getvalue()
        caption.value = captions[index.value]

    _on_change([index], update)
    return Panel(widgets.VBox([index, picture, caption]), {"index": index}, caption)


def split_panel(n: int, val_fraction: float, seed: int, most_test_fraction: float = 0.3) -> Panel:
    """A `test_fraction` slider over a data set of `n` images without a test split of its own:
    `plots.plot_split_map` of `data.split_indices` at that fraction, redrawn on every move (the
    validation cells stay put; the test cells are taken from training)."""
    test_fraction = _slider(
        widgets.FloatSlider,
        "test_fraction",
        label_width="100px",
        teach=True,
        value=0.1,
        min=0.0,
        max=most_test_fraction,
        step=0.05,
    )
    figure_view = widgets.Output().add_class("mmlib-teach-figure")

    def update() -> None:
        train, val, test = split_indices(n, val_fraction, seed, test_fraction.value)
        figure_view.clear_output(wait=True)
        with figure_view:
            figure = plots.plot_split_map(train, val, test)
            display(figure)
            plt.close(figure)

    _on_change([test_fraction], update)
    return Panel(
        widgets.VBox([test_fraction, figure_view]), {"test_fraction": test_fraction}, figure_view
    )


def vocabulary_explorer(
    train_captions: Sequence[str],
    val_captions: Sequence[str],
    max_min_freq: int = 50,
    max_vocab_size: int = 8000,
    curve: Sequence[int] = (1, 2, 3, 5, 10, 20, 50),
) -> Panel:
    """Sliders for `min_freq` (the teaching control) and `vocab_size`: the vocabulary and
    validation OOV rate they give, and `plots.plot_oov` over the `curve` min_freqs with the
    slider's value marked, redrawn on every move."""
    min_freq = _slider(widgets.IntSlider, "min_freq", teach=True, value=1, min=1, max=max_min_freq)
    vocab_size = _slider(
        widgets.IntSlider, "vocab_size", value=max_vocab_size, min=5, max=max_vocab_size
    )
    result = widgets.HTML()
    figure_view = widgets.Output()
    figure_view.add_class("mmlib-teach-figure")

    def update() -> None:
        min_freqs = sorted({*curve, min_freq.value})
        rows = oov_table(train_captions, val_captions, min_freqs, vocab_size.value)
        row = rows[min_freqs.index(min_freq.value)]
        result.value = (
            f"vocabulary: <b>{row.vocabulary}</b> tokens · validation OOV words: "
            f"<b>{100 * row.oov_rate:.2f}%</b> · captions with an OOV word: "
            f"<b>{100 * row.captions_with_oov:.1f}%</b>"
        )
        figure_view.clear_output(wait=True)
        with figure_view:
            figure = plots.plot_oov(rows, chosen=min_freq.value)
            display(figure)
            plt.close(figure)

    _on_change([min_freq, vocab_size], update)
    controls = {"min_freq": min_freq, "vocab_size": vocab_size}
    return Panel(widgets.VBox([min_freq, vocab_size, result, figure_view]), controls, result)


def token_inspector(tokenizer: Tokenizer, max_length: int = 32) -> Panel:
    """A text box that shows the token ids and the decoded text of what you type."""
    text = widgets.Text(
        value="An engraving depicting a small ship", description="caption", layout={"width": "80%"}
    )
    result = widgets.HTML()

    def update() -> None:
        ids = tokenizer.encode(text.value, max_length=max_length).tolist()
        shown = " ".join(
            f"{tokenizer.token_text(i)}<sub>{i}</sub>" for i in ids if i != tokenizer.pad_id
        )
        result.value = (
            f"<code>{shown}</code><br>ids: <code>{ids}</code><br>"
            f"decoded: <i>{tokenizer.decode(ids)}</i>"
        )

    _on_change([text], update)
    return Panel(widgets.VBox([text, result]), {"text": text}, result)


def config_panel(base: Config | None = None) -> Panel:
    """Controls for the main hyperparameters; `panel.result.value` shows the Config they build.

    Read the Config with `config_from_panel(panel)`; each control maps to one `Config` field.
    """
    base = base or Config.preset("cpu-tiny")
    style = {"description_width": "150px"}
    latent_dims = [64, 128, 256, 512, 1024]
    # The presets the controls can show: not the tests' `tiny`, whose latent_dim is smaller.
    presets = [name for name in PRESETS if Config.preset(name).latent_dim in latent_dims]
    controls: dict[str, widgets.Widget] = {
        "preset": widgets.Dropdown(options=presets, value="cpu-tiny", description="preset"),
        "batch_size": widgets.IntSlider(value=base.batch_size, min=4, max=256, step=4),
        "learning_rate": widgets.FloatLogSlider(
            value=base.learning_rate, base=10, min=-5, max=-1, step=0.1, readout_format=".1e"
        ),
        "num_epochs": widgets.IntSlider(value=base.num_epochs, min=1, max=100),
        "image_loss_weight": widgets.FloatSlider(value=base.image_loss_weight, min=0, max=10),
        "perceptual_loss_weight": widgets.FloatSlider(
            value=base.perceptual_loss_weight, min=0, max=5
        ),
        "caption_loss_weight": widgets.FloatSlider(value=base.caption_loss_weight, min=0, max=3),
        "alignment_loss_weight": widgets.FloatSlider(
            value=base.alignment_loss_weight, min=0, max=3
        ),
        "latent_dim": widgets.Dropdown(options=latent_dims, value=base.latent_dim),
    }
    for name, control in controls.items():
        control.description, control.style = name, style
        control.layout.width = "520px"
    result = widgets.HTML()

    def load_preset(change: dict[str, Any]) -> None:
        preset = Config.preset(change["new"])
        for name, control in controls.items():
            if name != "preset":
                control.value = getattr(preset, name)

    controls["preset"].observe(load_preset, names="value")

    def update() -> None:
        config = config_from_panel(Panel(widgets.VBox(), controls))
        preset = Config.preset(config.preset_name).to_dict()
        changed = {name: value for name, value in config.to_dict().items() if value != preset[name]}
        arguments = "".join(f", {name}={value!r}" for name, value in changed.items())
        result.value = f"<code>Config.preset({config.preset_name!r}{arguments})</code>"

    _on_change(list(controls.values()), update)
    return Panel(widgets.VBox([*controls.values(), result]), controls, result)


def config_from_panel(panel: Panel) -> Config:
    """The Config that a `config_panel` describes: its preset with the controls' values."""
    values = {name: control.value for name, control in panel.controls.items()}
    return Config.preset(values.pop("preset"), **values)


def memory_panel(
    config: Config | str = "seed-large",
    headroom: float = 0.1,
    batch_sizes: Sequence[int] = TABLE_BATCHES,
    estimated: Mapping[str, EstimateTable] | None = None,
) -> Panel:
    """The teaching control: a batch-size slider (with a precision dropdown) that redraws the
    step's memory as stacked bars against the card, with the shortfall a GPU measured where one
    is recorded; a card dropdown (it sets the memory slider, in GiB) and the recommended batch.

    Each precision is estimated once, at `batch_sizes`, and interpolated between them
    (`EstimateTable`): the first look at a precision takes a few estimates, every move after
    it is instant. `estimated` gives tables already made, by precision.
    """
    sized = Config.preset(config) if isinstance(config, str) else config
    estimates = _memory_estimates(sized, batch_sizes, estimated)
    controls = _memory_controls(sized, batch_sizes)
    memory_gb, precision, batch = controls["memory_gb"], controls["precision"], controls["batch"]
    result = widgets.HTML()
    figure_view = widgets.Output()
    figure_view.add_class("mmlib-teach-figure")

    def update() -> None:
        table, margin = estimates(precision.value)
        figure_view.clear_output(wait=True)
        with figure_view:
            figure = plots.plot_memory_on_card(
                table(batch.value), controls["card"].value, memory_gb.value, headroom, margin
            )
            display(figure)
            plt.close(figure)
        result.value = _recommendation(
            sized, table, margin, memory_gb.value, headroom, precision.value
        )

    _on_change([memory_gb, precision, batch], update)
    box = widgets.VBox([*controls.values(), result, figure_view])
    return Panel(box, controls, result)


def _memory_estimates(
    sized: Config, batch_sizes: Sequence[int], estimated: Mapping[str, EstimateTable] | None
) -> Callable[[str], tuple[EstimateTable, GpuMargin | None]]:
    """By precision, made once each: the step's memory table (`estimated`'s, else estimated at
    `batch_sizes`) and the margin a GPU measured for it."""
    known = dict(estimated or {})

    @functools.cache
    def estimates(precision: str) -> tuple[EstimateTable, GpuMargin | None]:
        table = known.get(precision) or estimate_table(sized, precision, "cuda", batch_sizes)
        return table, config_margin(sized, precision, table)

    return estimates


def _memory_controls(sized: Config, batch_sizes: Sequence[int]) -> dict[str, widgets.Widget]:
    """The card dropdown (it sets the memory slider, in GiB), the memory slider, the precision
    dropdown and the batch-size slider (the teaching control)."""
    first = next(iter(GPUS))
    style = {"description_width": "90px"}
    card = widgets.Dropdown(options=list(GPUS), value=first, description="card", style=style)
    memory_gb = _slider(
        widgets.FloatSlider,
        "memory (GiB)",
        label_width="90px",
        value=GPUS[first],
        min=0.5,
        max=160,
        step=0.5,
    )
    precision = widgets.Dropdown(
        options=list(PRECISIONS),
        value=sized.resolve_precision("cuda"),
        description="precision",
        style=style,
    )
    batch = _slider(
        widgets.IntSlider,
        "batch size",
        label_width="90px",
        teach=True,
        value=min(64, batch_sizes[-1]),
        min=8,
        max=min(1024, batch_sizes[-1]),
        step=8,
    )

    def pick_card(change: dict[str, Any]) -> None:
        memory_gb.value = GPUS[change["new"]]

    card.observe(pick_card, names="value")
    return {"card": card, "memory_gb": memory_gb, "precision": precision, "batch": batch}


def _recommendation(
    sized: Config,
    table: EstimateTable,
    margin: GpuMargin | None,
    memory_gb: float,
    headroom: float,
    precision: str,
) -> str:
    """The batch size recommended for `memory_gb` GiB, as HTML, or why none fits."""
    try:
        best = recommend_batch_size(
            sized,
            memory_gb,
            headroom,
            max_batch=table.batch_sizes[-1],
            estimate=table,
            margin=margin,
        )
    except ValueError as error:
        return f"<b>does not fit</b>: {error}"
    note = margin_note(sized.preset_name, precision, margin)
    return _recommendation_html(table(best), memory_gb, headroom, note)


def _recommendation_html(
    estimate: MemoryEstimate, memory_gb: float, headroom: float, note: str
) -> str:
    return (
        f"{estimate.preset}, {estimate.precision}: recommended batch_size "
        f"<b>{estimate.batch_size}</b> for {memory_gb:g} GiB with {headroom:.0%} headroom "
        f"(estimated total {estimate.total / GIB:.2f} GiB before the margin)<br>"
        f"<small>{note}</small>"
    )


class LiveLossPlot(Callback):
    """A training callback that redraws the running losses in a widget on every logged step."""

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self.output = widgets.Output()
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}

    def on_step_end(self, trainer: Any, step: int, losses: dict[str, float] | None) -> None:
        if losses is None:
            return
        self.steps.append(step)
        for name, value in losses.items():
            self.losses.setdefault(name, []).append(value)
        if len(self.steps) % self.every == 0:
            self.redraw()

    def redraw(self) -> None:
        """Draw the current curves into `self.output`."""
        self.output.clear_output(wait=True)
        with self.output:
            figure = plot_step_losses(self.steps, self.losses)
            display(figure)
            plt.close(figure)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.output._repr_mimebundle_(**kwargs)


def learning_rate_panel(
    trial: Callable[[float], Sequence[float]],
    steps: int,
    learning_rate: float = 1e-3,
    trials: dict[float, list[float]] | None = None,
) -> Panel:
    """A learning-rate slider (log scale) and a button that runs `trial(rate)` (the training
    losses of `steps` steps, e.g. `mmlib.course.learning_rate_trial`) and overlays its curve on
    the earlier ones (`plots.plot_learning_rate_trials`). One trial runs at the start value.

    `panel.result` says what the latest trial did; `trials` (pass a dict to read them) gets
    each rate tried with its losses."""
    rate = _slider(
        widgets.FloatLogSlider,
        "learning rate",
        label_width="90px",
        teach=True,
        value=learning_rate,
        base=10,
        min=-5,
        max=0,
        step=0.5,
        readout_format=".1e",
    )
    run = widgets.Button(description=f"train {steps} steps", icon="play").add_class(
        "mmlib-teach-run"
    )
    result = widgets.HTML()
    figure_view = widgets.Output().add_class("mmlib-teach-figure")
    trials = {} if trials is None else trials

    def train(_button: widgets.Button | None = None) -> None:
        run.disabled = True
        result.value = f"training {steps} steps at lr {rate.value:.1e} ..."
        started = time.perf_counter()
        losses = list(trial(rate.value))
        seconds = time.perf_counter() - started
        trials.pop(rate.value, None)  # a rate tried again is redrawn as the latest
        trials[rate.value] = losses
        result.value = (
            f"lr {rate.value:.1e}: loss {losses[0]:.3g} at step 1, {losses[-1]:.3g} at step "
            f"{len(losses)} ({seconds:.1f} s)"
        )
        figure_view.clear_output(wait=True)
        with figure_view:
            figure = plots.plot_learning_rate_trials(trials, steps)
            display(figure)
            plt.close(figure)
        run.disabled = False

    run.on_click(train)
    train()
    controls = {"learning_rate": rate, "run": run}
    return Panel(widgets.VBox([widgets.HBox([rate, run]), result, figure_view]), controls, result)


def curves_panel(histories: Sequence[RunHistory]) -> Panel:
    """Choose runs, component, scale and smoothing; `panel.result` (an Output) shows
    `plot_curves` of the chosen runs."""
    names: list[str] = []
    for history in histories:
        name, copy = history.name, 2
        while name in names:  # two runs with one folder name (different checkpoint dirs)
            name, copy = f"{history.name} ({copy})", copy + 1
        names.append(name)
    by_name = dict(zip(names, histories, strict=True))
    style = {"description_width": "90px"}
    controls: dict[str, widgets.Widget] = {
        "runs": widgets.SelectMultiple(
            options=names, value=tuple(names), description="runs", rows=min(6, len(names) or 1)
        ),
        "component": widgets.Dropdown(
            options=list(COMPONENTS), value="total", description="component"
        ),
        "scale": widgets.ToggleButtons(
            options=list(plots.CURVE_SCALES), value="linear", description="scale"
        ),
        "smoothing": _slider(
            widgets.FloatSlider, "smoothing", teach=True, value=0.0, min=0.0, max=0.95, step=0.05
        ),
    }
    for control in controls.values():
        control.style = style
    result = widgets.Output()
    result.add_class("mmlib-teach-figure")

    def update() -> None:
        result.clear_output(wait=True)
        chosen = [by_name[name] for name in controls["runs"].value]
        with result:
            if not chosen:
                print("select at least one run")
                return
            figure = plots.plot_curves(
                chosen,
                component=controls["component"].value,
                scale=controls["scale"].value,
                smoothing=controls["smoothing"].value,
            )
            display(figure)
            plt.close(figure)

    _on_change(list(controls.values()), update)
    return Panel(widgets.VBox([*controls.values(), result]), controls, result)


def _png(image: torch.Tensor, size: int) -> bytes:
    """A uint8 image [3, H, W] as PNG bytes, scaled to `size` pixels with nearest neighbours."""
    png = io.BytesIO()
    to_pil_image(image).resize((size, size), resample=0).save(png, format="PNG")
    return png.getvalue()


def imagine_panel(
    predictor: Predictor,
    caption: str = "",
    size: int = 256,
    subjects: CaptionSubjects | None = None,
) -> Panel:
    """Type a caption (Enter): the image imagined from it, and what the captioner reads in it;
    a caption the model cannot read (`Predictor.check_prompt`) gets its message instead. With
    `subjects` (a caption grammar), it also says whether the reading names the caption's
    subjects, and says plainly when the imagined image missed them."""
    from mmlib.evaluation.metrics import same_subjects
    from mmlib.inference.predictor import PromptError

    text = widgets.Text(
        value=caption,
        placeholder="An engraving depicting ...",
        description="caption",
        continuous_update=False,
        layout=widgets.Layout(width="90%"),
    )
    picture = widgets.Image(format="png", width=size, height=size)
    reading = widgets.Label()

    def update() -> None:
        if not text.value.strip():
            reading.value = "type a caption and press Enter"
            return
        try:
            image = predictor.imagine(text.value)
        except PromptError as error:
            reading.value = str(error)
            return
        picture.value = _png(image[0], size)
        read = predictor.caption(image)[0]
        reading.value = "the captioner reads: " + read
        if subjects is None:
            return
        if same_subjects(read, text.value, subjects):
            reading.value += " (it names your caption's subjects: a match)"
        else:
            reading.value += " (NOT your caption's subjects: this imagined image missed them)"

    _on_change([text], update)
    return Panel(widgets.VBox([text, picture, reading]), {"caption": text}, reading)


def round_trip_panel(
    predictor: Predictor,
    prompts: Sequence[str],
    subjects: CaptionSubjects,
    seed: int = 0,
    most_candidates: int = 16,
) -> Panel:
    """A slider over how many candidates `Predictor.imagine` draws per prompt (it keeps the
    best aligned one): the prompts imagined and read back (`metrics.imagine_round_trip`), drawn
    by `plots.plot_round_trip` with each match or miss, redrawn on every move."""
    from mmlib.evaluation.metrics import imagine_round_trip

    candidates = _slider(
        widgets.IntSlider,
        "candidates",
        label_width="90px",
        teach=True,
        value=1,
        min=1,
        max=most_candidates,
    )
    figure_view = widgets.Output().add_class("mmlib-teach-figure")

    def update() -> None:
        trip = imagine_round_trip(predictor, prompts, subjects, seed, candidates.value)
        drawn = "one candidate" if trip.candidates == 1 else f"best of {trip.candidates} candidates"
        figure_view.clear_output(wait=True)
        with figure_view:
            figure = plots.plot_round_trip(
                trip.images,
                trip.prompts,
                trip.readings,
                trip.matched,
                title=f"{drawn}: {sum(trip.matched)} of {len(trip.matched)} read back with their "
                "prompt's subjects",
            )
            display(figure)
            plt.close(figure)

    _on_change([candidates], update)
    return Panel(widgets.VBox([candidates, figure_view]), {"candidates": candidates}, figure_view)


def temperature_panel(batch: EmbeddedBatch) -> Panel:
    """A temperature slider (log scale, starting at the model's own) and a batch-size slider
    over an embedded batch: `plots.plot_temperature` of the first pairs at that temperature,
    redrawn on every move, and the alignment loss against its chance level (`panel.result`)."""
    temperature = _slider(
        widgets.FloatLogSlider,
        "temperature",
        label_width="90px",
        teach=True,
        value=batch.temperature,
        base=10,
        min=-3,
        max=1,
        step=0.05,
        readout_format=".3g",
    )
    size = _slider(
        widgets.IntSlider, "batch size", label_width="90px", value=len(batch), min=2, max=len(batch)
    )
    result = widgets.HTML()
    figure_view = widgets.Output()
    figure_view.add_class("mmlib-teach-figure")

    def update() -> None:
        view = temperature_view(batch, temperature.value, size.value)
        result.value = (
            f"temperature <b>{view.temperature:.3g}</b> · alignment loss <b>{view.loss:.3f}</b>"
            f" · chance level {view.chance:.3f} for {view.batch_size} pairs"
            f" (a guess is right 1 time in {view.batch_size})"
        )
        figure_view.clear_output(wait=True)
        with figure_view:
            figure = plots.plot_temperature(view)
            display(figure)
            plt.close(figure)

    _on_change([temperature, size], update)
    controls = {"temperature": temperature, "batch_size": size}
    return Panel(widgets.VBox([temperature, size, result, figure_view]), controls, result)
