"""Reading loss curves: load run histories, smooth them, summarise runs and diagnose problems.

A run folder's `history.csv` has one row per epoch (train running averages, val losses in eval
mode, the learning rate, the epoch's wall-clock time) and `steps.csv` one row per logged
optimizer step. `diagnose` turns a history into `Finding`s, each with its evidence (epochs and
values) and a plain-words action; every threshold it uses is a module constant below.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmlib.checkpoint import (
    HISTORY_FILE,
    STEPS_FILE,
    TOKENIZER_FILE,
    CheckpointError,
    load_run_config,
    resolve_run,
)
from mmlib.config import Config
from mmlib.model.step import COMPONENTS

REQUIRED_HISTORY_COLUMNS = ("epoch", *(f"{s}_{c}" for s in ("train", "val") for c in COMPONENTS))

# Too short: fewer than `patience + MIN_EPOCHS_BEYOND_PATIENCE` epochs gives "insufficient data".
MIN_EPOCHS_BEYOND_PATIENCE = 2
# Divergence: a loss above this factor times its best value so far (or a non-finite loss).
DIVERGENCE_FACTOR = 3.0
# Plateau: val total improves by less than this share over the last `patience` epochs.
PLATEAU_REL_IMPROVEMENT = 0.01
# Learning rate too high, epochs: in the first EARLY_SHARE of the epochs, a loss (train or val
# total) rises by more than EPOCH_SPIKE_REL over the epoch before at least LR_HIGH_MIN_SPIKES times.
EARLY_SHARE = 0.5
EPOCH_SPIKE_REL = 0.10
LR_HIGH_MIN_SPIKES = 2
# Learning rate too high, steps: in the first EARLY_SHARE of the logged steps, the step total is
# above STEP_SPIKE_FACTOR times the logged step before it at least STEP_MIN_SPIKES times (batch
# noise in healthy course runs stays under 2x).
STEP_SPIKE_FACTOR = 2.0
STEP_MIN_SPIKES = 3
# Learning rate too low: only against an LR range test, the configured rate below
# lr_suggestion / LR_LOW_FACTOR.
LR_LOW_FACTOR = 10.0
# Learning rate too high, against an LR range test: above lr_suggestion * LR_HIGH_FACTOR. The
# suggestion is already the steepest-descent point of a few dozen steps on fresh weights, near the
# top of what a whole run tolerates (many more steps, Adam's moments grown); a working rate sits
# within a small factor of it, so 3x above is flagged. 10x let notebook 06's 2e-2 run (4.3x its
# suggestion, alignment collapsed to chance) pass.
LR_HIGH_FACTOR = 3.0
# Alignment at chance with no LR range test to go by: the advice divides the rate by this. A rate
# that collapses the embeddings is many times too high (notebook 06's 5e-2 is 11x its range test's
# suggestion): 2-3x lower still stayed above that suggestion's LR_HIGH_FACTOR flag.
AT_CHANCE_LR_CUT = 10.0
# Component stalled: over the last `patience` epochs a component's val loss improves by less than
# COMPONENT_STALL_REL of its own value while another improves by more than COMPONENT_IMPROVE_REL
# of its own value (relative progress only: magnitudes differ between components).
COMPONENT_STALL_REL = 0.01
COMPONENT_IMPROVE_REL = 0.05
# Val far below train: val total below (1 - VAL_BELOW_TRAIN_REL) times `train_eval_total`
# (train loss re-evaluated in eval mode), on average over the last `patience` epochs.
VAL_BELOW_TRAIN_REL = 0.2

# The alignment loss is "at chance" while above this share of its chance level (the loss of a
# model that cannot tell the batch's images apart), for the last `patience` epochs.
CHANCE_SHARE = 0.9
NO_FINDINGS = "no findings: the curves look healthy"

# Comparing runs: a run is worse than the best run when its best val total is above
# (1 + WORSE_REL) times the best run's. Config fields that say where a run writes or how it logs
# are not differences between the runs' training.
WORSE_REL = 0.05
BOOKKEEPING_FIELDS = frozenset(
    {
        "run_name",
        "checkpoint_dir",
        "cache_dir",
        "num_workers",
        "pin_memory",
        "log_interval",
        "save_interval",
        "keep_checkpoints",
        "save_every_minutes",
        "imagine_steps",
    }
)


class HistoryError(CheckpointError):
    """A run's history files are missing or cannot be read."""


@dataclass(frozen=True)
class RunHistory:
    """One run's epoch rows (`history.csv`), step rows (`steps.csv`) and config."""

    name: str
    path: Path
    epochs: list[dict[str, float]]
    steps: list[dict[str, float]]
    config: Config


@dataclass(frozen=True)
class Finding:
    """A diagnosis: its kind, what was seen, the numbers behind it, and what to try."""

    kind: str
    message: str
    evidence: dict[str, Any]
    action: str


# ---------------------------------------------------------------------------------- loading


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, float]]:
    if not path.is_file():
        raise HistoryError(f"{path}: file not found (the run has not finished an epoch yet?)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise HistoryError(
            f"{path}: not UTF-8 text (byte {error.start}), so not the CSV file the run wrote; put "
            "back the run's own file (last.pt holds the same rows), or leave the run out"
        ) from None
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in required if column not in header]
        if missing:
            raise HistoryError(f"{path}: malformed, missing column(s) {', '.join(missing)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            row: dict[str, float] = {}
            for key, text in raw.items():
                if key is None or text is None:
                    raise HistoryError(f"{path}: malformed, line {line} has the wrong field count")
                if text == "":
                    continue
                try:
                    row[key] = float(text)
                except ValueError:
                    raise HistoryError(
                        f"{path}: malformed, line {line}: {key}={text!r} is not a number"
                    ) from None
            missing = [column for column in required if column not in row]
            if missing:
                raise HistoryError(f"{path}: malformed, line {line} lacks {', '.join(missing)}")
            rows.append(row)
    return rows


def load_history(
    run: str | os.PathLike[str], checkpoint_dir: str | os.PathLike[str] = "checkpoints"
) -> RunHistory:
    """A run's history from a run folder, a run name under `checkpoint_dir`, or `latest`.

    `history.csv` and `config.json` are required; a run without `steps.csv` gets no step rows.
    Missing or malformed files raise `HistoryError` (a `CheckpointError`) naming the file.
    """
    path = resolve_run(run, checkpoint_dir)
    config = load_run_config(path)
    epochs = _read_csv(path / HISTORY_FILE, REQUIRED_HISTORY_COLUMNS)
    steps_file = path / STEPS_FILE
    steps = _read_csv(steps_file, ("step", "total")) if steps_file.is_file() else []
    return RunHistory(path.name, path, epochs, steps, config)


def load_histories(
    runs: Sequence[str | os.PathLike[str]], checkpoint_dir: str | os.PathLike[str] = "checkpoints"
) -> list[RunHistory]:
    """`load_history` of each run, in order."""
    if isinstance(runs, str | os.PathLike):
        runs = [runs]
    return [load_history(run, checkpoint_dir) for run in runs]


# ---------------------------------------------------------------------------------- smoothing


def ema(values: Sequence[float], smoothing: float) -> list[float]:
    """Exponential moving average with Adam-style bias correction.

    `m_t = s * m_{t-1} + (1 - s) * x_t`, reported as `m_t / (1 - s**t)`: the average starts at
    the first value instead of at zero, so a constant stays constant. `smoothing` 0 returns the
    values unchanged.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing={smoothing}: must be in [0, 1)")
    if smoothing == 0.0:
        return [float(v) for v in values]
    average, weight, out = 0.0, 1.0, []
    for value in values:
        average = smoothing * average + (1.0 - smoothing) * float(value)
        weight *= smoothing
        out.append(average / (1.0 - weight))
    return out


def smoothed_relative_gap(
    reference: Sequence[float], other: Sequence[float], smoothing: float, burn_in: int
) -> float:
    """The largest relative difference between two per-step loss curves, each smoothed by
    `ema`: max over the steps from `burn_in` on of |other - reference| / |reference|.

    The steps before `burn_in` are left out: there the loss falls fastest, so a one-step
    offset between the runs reads as a large relative difference.
    """
    if len(other) != len(reference):
        raise ValueError(f"other has {len(other)} steps, reference {len(reference)}")
    if not 0 <= burn_in < len(reference):
        raise ValueError(f"burn_in={burn_in}: must be in [0, {len(reference)}) (the steps)")
    pairs = zip(ema(reference, smoothing), ema(other, smoothing), strict=True)
    return max(abs(b - a) / abs(a) for a, b in list(pairs)[burn_in:])


# ---------------------------------------------------------------------------------- summary


def _parameters(history: RunHistory) -> int | None:
    """Parameter count, built on the meta device (no memory, no weights); None if not possible."""
    try:
        import torch

        from mmlib.data.tokenizer import load_tokenizer
        from mmlib.model.multimodal import MultimodalModel

        tokenizer = load_tokenizer(history.path / TOKENIZER_FILE)
        with torch.device("meta"):
            model = MultimodalModel(history.config, len(tokenizer))
        return sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - a summary column, never a reason to fail
        return None


def summary_rows(histories: Sequence[RunHistory]) -> list[dict[str, Any]]:
    """Per run: epochs, best val total and its epoch, final train/val totals, mean seconds per
    epoch, and the parameter count (None where the run's tokenizer or model cannot be built)."""
    rows = []
    for history in histories:
        epochs = history.epochs
        finite = [row for row in epochs if math.isfinite(row["val_total"])]
        best = min(finite, key=lambda row: row["val_total"]) if finite else None
        times = [row["epoch_time_s"] for row in epochs if "epoch_time_s" in row]
        last = epochs[-1] if epochs else {}
        rows.append(
            {
                "run": history.name,
                "epochs": len(epochs),
                "best_val_total": best["val_total"] if best else math.nan,
                "best_epoch": int(best["epoch"]) if best else None,
                "final_train_total": last.get("train_total", math.nan),
                "final_val_total": last.get("val_total", math.nan),
                "seconds_per_epoch": sum(times) / len(times) if times else math.nan,
                "learning_rate": history.config.learning_rate,
                "parameters": _parameters(history),
            }
        )
    return rows


def summary_table(histories: Sequence[RunHistory]) -> str:
    """`summary_rows` as a fixed-width text table."""
    header = (
        "run",
        "epochs",
        "best val",
        "best epoch",
        "final train",
        "final val",
        "s/epoch",
        "lr",
        "parameters",
    )
    lines = []
    for row in summary_rows(histories):
        parameters = row["parameters"]
        lines.append(
            (
                row["run"],
                str(row["epochs"]),
                f"{row['best_val_total']:.4f}",
                "-" if row["best_epoch"] is None else str(row["best_epoch"]),
                f"{row['final_train_total']:.4f}",
                f"{row['final_val_total']:.4f}",
                f"{row['seconds_per_epoch']:.1f}",
                f"{row['learning_rate']:.1e}",
                "unknown" if parameters is None else f"{parameters:,}",
            )
        )
    widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        pairs = zip(cells, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(pairs))

    text = [line(cells) for cells in (header, *lines)]
    return "\n".join([text[0], "  ".join("-" * w for w in widths), *text[1:]])


# ---------------------------------------------------------------------------------- diagnosis


def _series(rows: Sequence[dict[str, float]], key: str) -> list[float]:
    return [row.get(key, math.nan) for row in rows]


def _epoch_numbers(rows: Sequence[dict[str, float]]) -> list[int]:
    return [int(row.get("epoch", index + 1)) for index, row in enumerate(rows)]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def diagnose(
    history: RunHistory | Sequence[dict[str, float]],
    *,
    lr_suggestion: float | None = None,
    patience: int = 3,
    learning_rate: float | None = None,
    steps: Sequence[dict[str, float]] | None = None,
) -> list[Finding]:
    """Findings about a run's curves; a clean, decreasing curve gives none.

    `history` is a `RunHistory` or its epoch rows (`history.csv` columns). `steps` (default:
    the run's `steps.csv` rows) adds step-level evidence of a too-high learning rate.
    `learning_rate` (default: the run's config, else the largest `lr` logged) is compared with
    `lr_suggestion` (from `lr_find`) only: a smooth decline alone never says "too low".
    Divergence (a non-finite loss, a step loss far above its start, an epoch's loss far above
    its best) is flagged from the first epoch; the findings that need a trend (plateau,
    overfitting, a learning rate too high from its curves) need `patience + 2` epochs, and fewer
    add "insufficient data".
    """
    if patience < 1:
        raise ValueError(f"patience={patience}: must be >= 1")
    if isinstance(history, RunHistory):
        epochs = list(history.epochs)
        steps = history.steps if steps is None else steps
        if learning_rate is None:
            learning_rate = history.config.learning_rate
        weights = {
            "image": history.config.image_loss_weight,
            "caption": history.config.caption_loss_weight,
            "alignment": history.config.alignment_loss_weight,
        }
    else:
        epochs = list(history)
        weights = {}
    steps = list(steps or [])
    if learning_rate is None:
        logged = [row["lr"] for row in epochs if "lr" in row]
        learning_rate = max(logged) if logged else None

    divergence = _divergence(epochs, steps)  # never too early to call
    findings: list[Finding] = [divergence] if divergence else []
    needed = patience + MIN_EPOCHS_BEYOND_PATIENCE
    if len(epochs) < needed:
        findings.append(
            Finding(
                "insufficient data",
                f"only {len(epochs)} epoch(s); at least {needed} are needed to judge the trends "
                f"(plateau, overfitting; patience {patience} + {MIN_EPOCHS_BEYOND_PATIENCE})",
                {"epochs": len(epochs), "needed": needed},
                "train for more epochs before drawing conclusions about trends",
            )
        )
        return findings

    too_high = _lr_too_high(epochs, steps) or _lr_above_suggestion(learning_rate, lr_suggestion)
    if too_high:
        findings.append(too_high)
    too_low = _lr_too_low(learning_rate, lr_suggestion)
    if too_low:
        findings.append(too_low)
    if divergence:
        return findings  # the numbers after a blow-up say nothing about fitting
    overfitting = _overfitting(epochs, patience)
    if overfitting:
        findings.append(overfitting)
    else:
        plateau = _plateau(epochs, patience)
        if plateau:
            findings.append(plateau)
    findings.extend(_stalled_components(epochs, patience, weights))
    at_chance = _alignment_at_chance(epochs, patience, learning_rate, lr_suggestion)
    if at_chance:
        findings.append(at_chance)
    below = _val_below_train(epochs, patience)
    if below:
        findings.append(below)
    return findings


def _divergence(epochs: list[dict[str, float]], steps: list[dict[str, float]]) -> Finding | None:
    numbers = _epoch_numbers(epochs)
    for index, row in enumerate(epochs):
        bad = {
            key: value
            for key, value in row.items()
            if (key.startswith(("train_", "val_"))) and not math.isfinite(value)
        }
        if bad:
            return Finding(
                "divergence",
                f"non-finite loss at epoch {numbers[index]}: "
                + ", ".join(f"{k}={v}" for k, v in bad.items()),
                {"epoch": numbers[index], "values": bad},
                "lower the learning rate (try 3-10x lower), keep gradient clipping on, and "
                "check the data for broken samples",
            )
    for step in steps:
        bad = {k: v for k, v in step.items() if k in COMPONENTS and not math.isfinite(v)}
        if bad:
            return Finding(
                "divergence",
                f"non-finite loss at step {int(step.get('step', -1))} (epoch "
                f"{int(step.get('epoch', -1))}): " + ", ".join(f"{k}={v}" for k, v in bad.items()),
                {"step": int(step.get("step", -1)), "epoch": int(step.get("epoch", -1)), **bad},
                "lower the learning rate (try 3-10x lower), keep gradient clipping on, and "
                "check the data for broken samples",
            )
    exploded = _exploding_step(steps)
    if exploded:
        return exploded
    for key in ("val_total", "train_total"):
        values = _series(epochs, key)
        for index in range(1, len(values)):
            best = min(values[:index])
            if best > 0 and values[index] > DIVERGENCE_FACTOR * best:
                best_epoch = numbers[values.index(best)]
                return Finding(
                    "divergence",
                    f"{key} jumped to {_fmt(values[index])} at epoch {numbers[index]}, "
                    f"{values[index] / best:.1f}x its best {_fmt(best)} (epoch {best_epoch})",
                    {
                        "column": key,
                        "epoch": numbers[index],
                        "value": values[index],
                        "best": best,
                        "best_epoch": best_epoch,
                        "factor": values[index] / best,
                    },
                    "lower the learning rate (try 3-10x lower) or lengthen the warmup; resume "
                    f"from the best checkpoint (epoch {best_epoch}) rather than the last",
                )
    return None


def _exploding_step(steps: list[dict[str, float]]) -> Finding | None:
    """A logged step whose total loss exceeds `DIVERGENCE_FACTOR` x the first logged step's:
    training that works never climbs that far above where it started, even within epoch 1."""
    logged = [row for row in steps if math.isfinite(row.get("total", math.nan))]
    if not logged or logged[0]["total"] <= 0:
        return None
    start = logged[0]
    for row in logged[1:]:
        if row["total"] > DIVERGENCE_FACTOR * start["total"]:
            step, epoch = int(row.get("step", -1)), int(row.get("epoch", -1))
            factor = row["total"] / start["total"]
            return Finding(
                "divergence",
                f"the step loss rose to {_fmt(row['total'])} at step {step} (epoch {epoch}), "
                f"{factor:.1f}x its first logged value {_fmt(start['total'])} "
                f"(step {int(start.get('step', -1))})",
                {"step": step, "epoch": epoch, "value": row["total"], "factor": factor},
                "lower the learning rate (try 3-10x lower) or lengthen the warmup",
            )
    return None


def _lr_too_high(epochs: list[dict[str, float]], steps: list[dict[str, float]]) -> Finding | None:
    numbers = _epoch_numbers(epochs)
    early = max(2, math.ceil(len(epochs) * EARLY_SHARE))
    spikes = []
    for key in ("train_total", "val_total"):
        values = _series(epochs, key)[:early]
        for index in range(1, len(values)):
            if values[index] > values[index - 1] * (1 + EPOCH_SPIKE_REL):
                spikes.append((key, numbers[index], values[index - 1], values[index]))
    step_spikes = []
    totals = [row["total"] for row in steps if "total" in row]
    early_steps = max(2, math.ceil(len(totals) * EARLY_SHARE))
    for index in range(1, min(early_steps, len(totals))):
        if totals[index] > STEP_SPIKE_FACTOR * totals[index - 1]:
            row = steps[index]
            step_spikes.append((int(row.get("step", index)), totals[index - 1], totals[index]))
    by_epochs = len(spikes) >= LR_HIGH_MIN_SPIKES
    by_steps = len(step_spikes) >= STEP_MIN_SPIKES
    if not (by_epochs or by_steps):
        return None
    parts = []
    if by_epochs:
        parts.append(
            f"in the first {early} epochs the loss rose by more than {EPOCH_SPIKE_REL:.0%} "
            f"{len(spikes)} times ("
            + "; ".join(f"{k} epoch {e}: {_fmt(a)} -> {_fmt(b)}" for k, e, a, b in spikes[:4])
            + ")"
        )
    if by_steps:
        parts.append(
            f"in the first {early_steps} logged steps the loss jumped above {STEP_SPIKE_FACTOR:g}x "
            f"the step before {len(step_spikes)} times ("
            + "; ".join(f"step {s}: {_fmt(a)} -> {_fmt(b)}" for s, a, b in step_spikes[:4])
            + ")"
        )
    return Finding(
        "learning rate too high",
        "early spikes or oscillation: " + "; and ".join(parts),
        {
            "epoch_spikes": [
                {"column": k, "epoch": e, "before": a, "after": b} for k, e, a, b in spikes
            ],
            "step_spikes": [{"step": s, "before": a, "value": b} for s, a, b in step_spikes],
        },
        "lower the learning rate (try 3x lower) or use a longer warmup; run lr_find to pick one",
    )


def _lr_above_suggestion(
    learning_rate: float | None, lr_suggestion: float | None
) -> Finding | None:
    if lr_suggestion is None or learning_rate is None:
        return None
    if learning_rate <= lr_suggestion * LR_HIGH_FACTOR:
        return None
    return Finding(
        "learning rate too high",
        f"learning_rate {learning_rate:.2e} is {learning_rate / lr_suggestion:.1f}x above the "
        f"LR range test's suggestion {lr_suggestion:.2e}",
        {"learning_rate": learning_rate, "lr_suggestion": lr_suggestion},
        f"try a learning rate closer to {lr_suggestion:.1e}",
    )


def _lr_too_low(learning_rate: float | None, lr_suggestion: float | None) -> Finding | None:
    if lr_suggestion is None or learning_rate is None:
        return None
    if learning_rate >= lr_suggestion / LR_LOW_FACTOR:
        return None
    return Finding(
        "learning rate too low",
        f"learning_rate {learning_rate:.2e} is {lr_suggestion / learning_rate:.0f}x below the "
        f"LR range test's suggestion {lr_suggestion:.2e}",
        {"learning_rate": learning_rate, "lr_suggestion": lr_suggestion},
        f"try a learning rate closer to {lr_suggestion:.1e}; the run may converge in fewer epochs",
    )


def _overfitting(epochs: list[dict[str, float]], patience: int) -> Finding | None:
    numbers = _epoch_numbers(epochs)
    train, val = _series(epochs, "train_total"), _series(epochs, "val_total")
    for start in range(len(epochs) - patience):
        window = range(start + 1, start + patience + 1)
        if all(val[i] > val[i - 1] and train[i] < train[i - 1] for i in window):
            last = start + patience
            return Finding(
                "overfitting",
                f"from epoch {numbers[start]} val total rose for {patience} epochs "
                f"({_fmt(val[start])} -> {_fmt(val[last])} at epoch {numbers[last]}) while train "
                f"total fell ({_fmt(train[start])} -> {_fmt(train[last])})",
                {
                    "from_epoch": numbers[start],
                    "to_epoch": numbers[last],
                    "val_total": {numbers[i]: val[i] for i in range(start, last + 1)},
                    "train_total": {numbers[i]: train[i] for i in range(start, last + 1)},
                },
                f"keep the checkpoint of epoch {numbers[start]} (best.pt), stop earlier "
                "(early stopping), or regularise: more data or augmentation, dropout, weight decay",
            )
    return None


def _plateau(epochs: list[dict[str, float]], patience: int) -> Finding | None:
    numbers = _epoch_numbers(epochs)
    val = _series(epochs, "val_total")
    before, recent = min(val[:-patience]), min(val[-patience:])
    if before <= 0:
        return None
    improvement = (before - recent) / before
    if improvement >= PLATEAU_REL_IMPROVEMENT:
        return None
    first = numbers[-patience]
    return Finding(
        "plateau",
        f"val total {_relative_change(improvement, 2)} over the last {patience} epochs "
        f"(epochs {first}-{numbers[-1]}: best {_fmt(recent)}, before: best {_fmt(before)}), "
        f"under {PLATEAU_REL_IMPROVEMENT:.0%}",
        {
            "from_epoch": first,
            "to_epoch": numbers[-1],
            "best_before": before,
            "best_recent": recent,
            "relative_improvement": improvement,
        },
        "training has converged at this setting: stop here, or to go further try a learning-rate "
        "decay, a larger model, or more data",
    )


def _alignment_at_chance(
    epochs: list[dict[str, float]],
    patience: int,
    learning_rate: float | None = None,
    lr_suggestion: float | None = None,
) -> Finding | None:
    """The training alignment (in eval mode where recorded) stuck near its chance level."""
    for split in ("train_eval", "train"):
        losses = _series(epochs, f"{split}_alignment")
        chances = _series(epochs, f"{split}_alignment_chance")
        if not all(math.isfinite(value) for value in losses + chances):
            continue  # a history written before the chance level was recorded, or broken
        last = list(zip(losses[-patience:], chances[-patience:], strict=True))
        if not all(chance > 0 and loss >= CHANCE_SHARE * chance for loss, chance in last):
            return None
        numbers = _epoch_numbers(epochs)
        loss, chance = last[-1]
        return Finding(
            "alignment at chance",
            f"{split} alignment {_fmt(loss)} at epoch {numbers[-1]} is {loss / chance:.0%} of its "
            f"chance level {_fmt(chance)} (the loss when no image can be told from another), "
            f"and above {CHANCE_SHARE:.0%} of it for the last {patience} epochs: the model does "
            "not use the images to match captions",
            {"split": split, "epoch": numbers[-1], "alignment": loss, "chance": chance},
            _at_chance_action(learning_rate, lr_suggestion),
        )
    return None


def _at_chance_action(learning_rate: float | None, lr_suggestion: float | None) -> str:
    """What to do about an alignment at chance: a learning rate to try, from the LR range test
    where there is one, else `AT_CHANCE_LR_CUT` times lower."""
    collapse = "a high one collapses the image and caption embeddings to one point"
    if lr_suggestion is not None:
        target = (
            f"towards the LR range test's suggestion {lr_suggestion:.1e}, and below "
            f"{lr_suggestion * LR_HIGH_FACTOR:.1e} ({LR_HIGH_FACTOR:g}x it)"
        )
    elif learning_rate is not None:
        target = (
            f"{AT_CHANCE_LR_CUT:g}x, to {learning_rate / AT_CHANCE_LR_CUT:.1e}, then place it "
            "with an LR range test (lr_find)"
        )
    else:
        target = f"{AT_CHANCE_LR_CUT:g}x, then place it with an LR range test (lr_find)"
    return (
        f"lower the learning rate {target} ({collapse}; a longer warmup also helps), or raise "
        "alignment_loss_weight"
    )


def _relative_change(improvement: float, digits: int = 1) -> str:
    """Words for a relative improvement: 'improved by 24.4%', 'got 0.1% worse', 'did not move'."""
    if round(abs(improvement) * 100, digits) == 0:
        return f"did not move (within {0.5 * 10**-digits:g}%)"
    if improvement > 0:
        return f"improved by {improvement:.{digits}%}"
    return f"got {-improvement:.{digits}%} worse"


def _stalled_components(
    epochs: list[dict[str, float]], patience: int, weights: dict[str, float]
) -> list[Finding]:
    numbers = _epoch_numbers(epochs)
    progress: dict[str, float] = {}
    overall: dict[str, float] = {}
    for component in COMPONENTS[1:]:
        values = _series(epochs, f"val_{component}")
        if weights.get(component, 1.0) == 0 or not all(math.isfinite(v) for v in values):
            continue
        reference = values[-patience - 1]
        if reference <= 0:
            continue
        progress[component] = (reference - min(values[-patience:])) / reference
        overall[component] = (values[0] - values[-1]) / values[0] if values[0] > 0 else 0.0
    findings = []
    for component, improvement in progress.items():
        others = {c: p for c, p in progress.items() if c != component}
        improving = {c: p for c, p in others.items() if p > COMPONENT_IMPROVE_REL}
        if improvement >= COMPONENT_STALL_REL or not improving:
            continue
        first = numbers[-patience - 1]
        values = _series(epochs, f"val_{component}")
        findings.append(
            Finding(
                "component stalled",
                f"val {component} {_relative_change(improvement, 2)} (relative to its own "
                f"value) over epochs {first}-{numbers[-1]} ({_fmt(values[-patience - 1])} -> "
                f"{_fmt(values[-1])}) while "
                + ", ".join(f"{c} improved by {p:.1%}" for c, p in improving.items())
                + f"; since epoch {numbers[0]} it {_relative_change(overall[component])}",
                {
                    "component": component,
                    "from_epoch": first,
                    "to_epoch": numbers[-1],
                    "relative_improvement": improvement,
                    "others": improving,
                    "since_start": overall[component],
                },
                f"the {component} loss has stopped learning while the others go on: raise "
                f"{component}_loss_weight, or check that part of the model; if it is already at "
                "its floor, nothing to do",
            )
        )
    return findings


def _val_below_train(epochs: list[dict[str, float]], patience: int) -> Finding | None:
    recent = epochs[-patience:]
    if not all("train_eval_total" in row for row in recent):
        return None  # the running train average of an improving epoch is no fair comparison
    numbers = _epoch_numbers(epochs)[-patience:]
    train = sum(row["train_eval_total"] for row in recent) / len(recent)
    val = sum(row["val_total"] for row in recent) / len(recent)
    if not (math.isfinite(train) and math.isfinite(val)) or val >= train * (
        1 - VAL_BELOW_TRAIN_REL
    ):
        return None
    return Finding(
        "val far below train",
        f"over epochs {numbers[0]}-{numbers[-1]} val total averages {_fmt(val)}, "
        f"{1 - val / train:.0%} below the train loss re-evaluated in eval mode ({_fmt(train)})",
        {
            "from_epoch": numbers[0],
            "to_epoch": numbers[-1],
            "val_total": val,
            "train_eval_total": train,
        },
        "check that val does not overlap train (duplicates, leaked captions) and that the val "
        "split is large and drawn like train; a much easier val set flatters the model",
    )


# ---------------------------------------------------------------------------------- comparison


def config_differences(first: Config, second: Config) -> dict[str, tuple[Any, Any]]:
    """The training fields whose values differ, `{field: (first's, second's)}`, in field order;
    `BOOKKEEPING_FIELDS` (run folder, logging, workers) are ignored."""
    ours, theirs = first.to_dict(), second.to_dict()
    return {
        name: (value, theirs[name])
        for name, value in ours.items()
        if name not in BOOKKEEPING_FIELDS and value != theirs[name]
    }


def _best_val(history: RunHistory) -> float:
    finite = [row["val_total"] for row in history.epochs if math.isfinite(row["val_total"])]
    return min(finite) if finite else math.inf


def _comparison(history: RunHistory, best: RunHistory, findings: list[Finding]) -> list[Finding]:
    """`history`'s findings seen against the better run `best`: with exactly one config
    difference, that difference is the cause, first, and every finding's action points at it."""
    ours, theirs = _best_val(history), _best_val(best)
    differences = config_differences(best.config, history.config)
    evidence: dict[str, Any] = {
        "baseline": best.name,
        "best_val_total": ours,
        "baseline_best_val_total": theirs,
        "differences": differences,
    }
    worse = f"this run's best val total {_fmt(ours)} is above {best.name}'s {_fmt(theirs)}"
    if len(differences) != 1:
        listed = ", ".join(differences) or "none"
        return [
            *findings,
            Finding(
                "comparison",
                f"{worse}, but the configs differ in {len(differences)} field(s) ({listed}): "
                "the comparison cannot name one cause",
                evidence,
                f"change one field at a time from {best.name}'s config"
                if differences
                else "same config: check the data and the code version, and rerun to see the "
                "run-to-run variation",
            ),
        ]
    ((field_name, (theirs_value, ours_value)),) = differences.items()
    seen = [f.kind for f in findings if f.kind != "insufficient data"]
    cause = Finding(
        "cause from comparison",
        f"{field_name} is the only config difference from {best.name} ({ours_value!r} here, "
        f"{theirs_value!r} there) and {worse}: {field_name} is the cause"
        + (f" of this run's findings ({', '.join(seen)})" if seen else ""),
        {**evidence, "field": field_name, "value": ours_value, "baseline_value": theirs_value},
        f"set {field_name} towards {theirs_value!r}, the value of {best.name}",
    )
    explained = [
        f
        if f.kind == "insufficient data"
        else replace(f, action=f"{cause.action} ({field_name} is the cause: see above)")
        for f in findings
    ]
    return [cause, *explained]


def diagnose_runs(
    histories: Sequence[RunHistory], *, lr_suggestion: float | None = None, patience: int = 3
) -> dict[str, list[Finding]]:
    """`diagnose` of each run, by name, with the runs compared: against the run with the lowest
    best val total, a run more than `WORSE_REL` worse gets a finding from the comparison. When
    exactly one training field of their configs differs (`config_differences`), that field is
    named as the cause and every action of the run points at it; otherwise the differing fields
    are listed. One run alone gets `diagnose`'s findings unchanged."""
    findings = {
        history.name: diagnose(history, lr_suggestion=lr_suggestion, patience=patience)
        for history in histories
    }
    if len(histories) < 2:
        return findings
    best = min(histories, key=_best_val)
    limit = (1 + WORSE_REL) * _best_val(best)
    for history in histories:
        if history is not best and _best_val(history) > limit:
            findings[history.name] = _comparison(history, best, findings[history.name])
    return findings


def format_findings(findings: Sequence[Finding]) -> str:
    """Findings as text, one block each; "no findings: the curves look healthy" when empty."""
    if not findings:
        return NO_FINDINGS
    return "\n".join(f"- {f.kind}: {f.message}\n  action: {f.action}" for f in findings)
