"""Loading run histories, EMA smoothing, summaries and `diagnose` findings."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from mmlib.config import Config
from mmlib.evaluation.curves import (
    AT_CHANCE_LR_CUT,
    LR_HIGH_FACTOR,
    NO_FINDINGS,
    HistoryError,
    RunHistory,
    config_differences,
    diagnose,
    diagnose_runs,
    ema,
    format_findings,
    load_histories,
    load_history,
    smoothed_relative_gap,
    summary_rows,
    summary_table,
)
from mmlib.training.trainer import Trainer

RATES = {"image": 0.9, "caption": 0.85, "alignment": 0.8}
START = {"image": 0.2, "caption": 2.0, "alignment": 3.0}


def rows(n: int = 10, **overrides: Callable[[int], float]) -> list[dict[str, float]]:
    """A clean history: every component decays geometrically, val a little above train."""
    out = []
    for i in range(n):
        row: dict[str, float] = {"epoch": i + 1, "lr": 1e-3, "epoch_time_s": 2.0}
        for split, offset in (("train", 1.0), ("val", 1.1)):
            parts = {c: START[c] * RATES[c] ** i * offset for c in START}
            for c, value in parts.items():
                row[f"{split}_{c}"] = value
            row[f"{split}_total"] = sum(parts.values())
        for key, fn in overrides.items():
            row[key] = fn(i)
        out.append(row)
    return out


def kinds(history: object, **kwargs: object) -> list[str]:
    return [finding.kind for finding in diagnose(history, **kwargs)]  # type: ignore[arg-type]


def test_clean_and_short_healthy_histories_have_no_findings() -> None:
    assert diagnose(rows(10)) == []
    assert diagnose(rows(5)) == []  # patience 3 + 2 epochs: enough, and healthy
    assert format_findings(diagnose(rows(10))) == NO_FINDINGS


def test_too_short_history_is_insufficient_data_for_trends_only() -> None:
    findings = diagnose(rows(3))
    assert [f.kind for f in findings] == ["insufficient data"]
    assert findings[0].evidence == {"epochs": 3, "needed": 5}
    assert "trends" in findings[0].message


def test_divergence_is_never_too_early_to_call() -> None:
    # A 3-epoch run at lr 5: validation 175 -> 822 -> 2,443.
    jump = diagnose(rows(3, val_total=lambda i: [175.0, 822.0, 2443.0][i]))
    assert [f.kind for f in jump] == ["divergence", "insufficient data"]
    assert jump[0].evidence["epoch"] == 2 and jump[0].evidence["factor"] > 4
    non_finite = diagnose(rows(1, val_total=lambda i: math.nan))
    assert [f.kind for f in non_finite] == ["divergence", "insufficient data"]


def test_a_step_loss_far_above_its_start_is_divergence_within_epoch_1() -> None:
    steps = [{"step": s, "epoch": 1, "total": t} for s, t in [(10, 14.0), (20, 30.0), (30, 86.0)]]
    findings = diagnose(rows(1), steps=steps)
    assert findings[0].kind == "divergence" and findings[0].evidence["step"] == 30
    assert "6.1x its first logged value 14" in findings[0].message
    falling = [{"step": s, "epoch": 1, "total": 14.0 / s} for s in range(1, 40)]
    assert [f.kind for f in diagnose(rows(1), steps=falling)] == ["insufficient data"]


def test_divergence_non_finite_and_jump() -> None:
    findings = diagnose(rows(8, train_total=lambda i: math.inf if i == 6 else 5.0 * 0.9**i))
    assert findings[0].kind == "divergence" and findings[0].evidence["epoch"] == 7
    jump = diagnose(rows(8, val_total=lambda i: 20.0 if i == 5 else 5.0 * 0.9**i))
    assert jump[0].kind == "divergence"
    assert jump[0].evidence["epoch"] == 6 and jump[0].evidence["factor"] > 3
    assert "epoch 6" in jump[0].message


def test_overfitting_names_the_epoch_it_starts() -> None:
    val = [3.0, 2.5, 2.2, 2.0, 2.1, 2.2, 2.35, 2.5]
    findings = diagnose(rows(8, val_total=lambda i: val[i]))
    assert [f.kind for f in findings] == ["overfitting"]
    assert findings[0].evidence["from_epoch"] == 4
    assert "from epoch 4" in findings[0].message and "epoch 4" in findings[0].action


def test_plateau() -> None:
    val = [3.0, 2.0, 1.5, 1.2, 1.0, 0.999, 0.998, 0.9985]
    findings = diagnose(rows(8, val_total=lambda i: val[i]))
    assert [f.kind for f in findings] == ["plateau"]
    assert findings[0].evidence["from_epoch"] == 6
    assert findings[0].evidence["relative_improvement"] < 0.01


def test_learning_rate_too_high_from_early_oscillation() -> None:
    val = [3.0, 4.0, 2.5, 3.5, 2.0, 1.8, 1.5, 1.3, 1.1, 1.0]
    findings = diagnose(rows(10, val_total=lambda i: val[i]))
    assert "learning rate too high" in [f.kind for f in findings]
    spike = next(f for f in findings if f.kind == "learning rate too high")
    assert [s["epoch"] for s in spike.evidence["epoch_spikes"]] == [2, 4]


def test_learning_rate_too_high_from_step_spikes() -> None:
    history = rows(10)
    totals = [5.0, 4.0, 12.0, 3.5, 3.0, 10.0, 2.8, 2.6, 9.0, 2.4] + [2.0] * 10
    steps = [{"step": i + 1, "epoch": 1 + i // 2, "total": v} for i, v in enumerate(totals)]
    assert kinds(history, steps=steps) == ["learning rate too high"]
    smooth = [{"step": i + 1, "epoch": 1 + i // 2, "total": 5.0 * 0.9**i} for i in range(20)]
    assert kinds(history, steps=smooth) == []


def test_learning_rate_too_low_only_against_a_suggestion() -> None:
    history = rows(10)
    assert kinds(history, learning_rate=1e-5) == []  # a smooth decline alone says nothing
    assert kinds(history, learning_rate=1e-5, lr_suggestion=3e-3) == ["learning rate too low"]
    assert kinds(history, learning_rate=1e-3, lr_suggestion=3e-3) == []


def test_learning_rate_far_above_the_suggestion_is_too_high() -> None:
    history = rows(10)
    # Notebook 06: 2e-2 against a suggestion of 4.6e-3 (4.3x) passed the old 10x threshold.
    assert kinds(history, learning_rate=2e-2, lr_suggestion=4.6e-3) == ["learning rate too high"]
    assert kinds(history, learning_rate=1e-2, lr_suggestion=3e-3) == ["learning rate too high"]
    assert kinds(history, learning_rate=8e-3, lr_suggestion=3e-3) == []  # within 3x


def test_component_stalled_is_relative_not_raw_magnitude() -> None:
    # image is tiny in magnitude but keeps improving; alignment is large but stalls.
    align = [3.0, 2.5, 2.2, 2.1, 2.05, 2.05, 2.05, 2.05, 2.05, 2.05]
    findings = diagnose(rows(10, val_alignment=lambda i: align[i]))
    assert [f.kind for f in findings] == ["component stalled"]
    assert findings[0].evidence["component"] == "alignment"
    assert "image" in findings[0].evidence["others"]


def test_a_stalled_component_that_got_worse_is_not_said_to_have_improved() -> None:
    # Notebook 06 printed "improved by -0.09% ... since epoch 1 it has improved by -0.0%".
    align = [4.1137, 4.11, 4.11, 4.11, 4.11, 4.11, 4.11, 4.1137, 4.1137, 4.1137]
    findings = diagnose(rows(10, val_alignment=lambda i: align[i]))
    assert [f.kind for f in findings] == ["component stalled"]
    message = findings[0].message
    assert "val alignment got 0.09% worse (relative to its own value)" in message
    assert message.endswith("since epoch 1 it did not move (within 0.05%)")
    assert "improved by -" not in message


def test_val_far_below_train_needs_train_eval_columns() -> None:
    low_val = rows(10, val_total=lambda i: 0.5 * 5.0 * 0.8**i, train_total=lambda i: 5.0 * 0.8**i)
    assert "val far below train" not in kinds(low_val)  # running averages: no verdict
    for i, row in enumerate(low_val):
        row["train_eval_total"] = 5.0 * 0.8**i
    findings = diagnose(low_val)
    assert [f.kind for f in findings] == ["val far below train"]
    assert findings[0].evidence["to_epoch"] == 10
    fair = rows(10)
    for row in fair:
        row["train_eval_total"] = row["val_total"] * 0.95
    assert diagnose(fair) == []


def test_ema_bias_correction() -> None:
    assert ema([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)  # no bend towards zero at the start
    assert ema([1.0, 3.0], 0.0) == [1.0, 3.0]
    assert ema([1.0, 3.0], 0.5) == pytest.approx([1.0, (0.25 + 1.5) / 0.75])
    with pytest.raises(ValueError, match="smoothing"):
        ema([1.0], 1.0)


def test_smoothed_relative_gap_compares_the_smoothed_curves_after_the_burn_in() -> None:
    falling = [4.0 / (1 + step) + 1.0 for step in range(100)]
    assert smoothed_relative_gap(falling, falling, 0.9, 10) == 0.0
    assert smoothed_relative_gap(falling, [1.03 * v for v in falling], 0.9, 10) == pytest.approx(
        0.03
    )
    # Alternating +-10% noise averages out under the smoothing, not without it.
    noisy = [v * (1.1 if step % 2 else 0.9) for step, v in enumerate(falling)]
    assert smoothed_relative_gap(falling, noisy, 0.9, 20) < 0.02
    assert smoothed_relative_gap(falling, noisy, 0.0, 20) == pytest.approx(0.1)
    # A gap in the first steps counts only inside the burn-in.
    early = [2 * v if step < 3 else v for step, v in enumerate(falling)]
    assert smoothed_relative_gap(falling, early, 0.0, 3) == 0.0
    assert smoothed_relative_gap(falling, early, 0.0, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="other has 99 steps, reference 100"):
        smoothed_relative_gap(falling, falling[1:], 0.9, 10)
    with pytest.raises(ValueError, match="burn_in=100"):
        smoothed_relative_gap(falling, falling, 0.9, 100)


def test_load_history_of_a_real_tiny_run(tiny_config: Callable[..., Config]) -> None:
    config = tiny_config(num_epochs=2)
    Trainer(config, log=lambda _line: None, progress=False).fit()
    history = load_history("tiny", config.checkpoint_dir)
    assert isinstance(history, RunHistory) and history.name == "tiny"
    assert [row["epoch"] for row in history.epochs] == [1, 2]
    assert history.steps and "total" in history.steps[0]
    assert history.config.latent_dim == config.latent_dim
    assert load_histories(["latest"], config.checkpoint_dir)[0].path == history.path
    (row,) = summary_rows([history])
    assert row["epochs"] == 2 and row["best_epoch"] in (1, 2)
    assert row["parameters"] and row["parameters"] > 1000
    table = summary_table([history])
    assert "tiny" in table and f"{row['parameters']:,}" in table
    assert [f.kind for f in diagnose(history)] == ["insufficient data"]

    (history.path / "history.csv").write_text("epoch,train_total\n1,0.5\n")
    with pytest.raises(HistoryError, match=r"history\.csv.*missing column"):
        load_history(history.path)
    (history.path / "history.csv").unlink()
    with pytest.raises(HistoryError, match=r"history\.csv: file not found"):
        load_history(history.path)


def test_malformed_value_names_file_and_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    Config().save(run / "config.json")
    header = "epoch,train_total,train_image,train_caption,train_alignment,"
    header += "val_total,val_image,val_caption,val_alignment"
    (run / "history.csv").write_text(f"{header}\n1,1,1,1,1,1,1,1,1\n2,1,x,1,1,1,1,1,1\n")
    with pytest.raises(HistoryError, match=r"history\.csv: malformed, line 3"):
        load_history(run)
    (run / "history.csv").write_text(f"{header}\n1,1,1,1,1,1,1,1,1\n")
    history = load_history(run)
    assert history.steps == [] and history.epochs[0]["val_total"] == 1.0
    assert summary_rows([history])[0]["parameters"] is None  # no tokenizer.json
    assert "unknown" in summary_table([history])


def _at_chance(share: float) -> list[dict[str, float]]:
    """A history whose eval-mode training alignment sits at `share` of its chance level."""
    chance = {"train_eval_alignment_chance": lambda i: math.log(64)}
    return rows(10, train_eval_alignment=lambda i: share * math.log(64), **chance)


def test_alignment_stuck_at_its_chance_level_is_flagged_with_the_chance_as_evidence() -> None:
    findings = [f for f in diagnose(_at_chance(0.999)) if f.kind == "alignment at chance"]
    assert len(findings) == 1
    assert findings[0].evidence["chance"] == pytest.approx(math.log(64))
    assert findings[0].evidence["split"] == "train_eval"
    assert "4.159" in findings[0].message and "learning rate" in findings[0].action
    assert "alignment at chance" not in kinds(_at_chance(0.5))
    assert "alignment at chance" not in kinds(rows(10))  # no chance recorded: nothing claimed


def _at_chance_action(**rates: float) -> str:
    findings = [f for f in diagnose(_at_chance(0.999), **rates) if f.kind == "alignment at chance"]
    return findings[0].action


def test_alignment_at_chance_advises_a_rate_below_the_too_high_flag() -> None:
    """The advice lands under what `diagnose` itself flags as too high (notebook 06's case:
    5e-2 with a range test at 4.6e-3)."""
    with_test = _at_chance_action(learning_rate=5e-2, lr_suggestion=4.6e-3)
    assert "4.6e-03" in with_test and f"{4.6e-3 * LR_HIGH_FACTOR:.1e}" in with_test
    alone = _at_chance_action(learning_rate=5e-2)
    assert f"to {5e-2 / AT_CHANCE_LR_CUT:.1e}" in alone and "lr_find" in alone
    assert 5e-2 / AT_CHANCE_LR_CUT < 4.6e-3 * LR_HIGH_FACTOR
    assert "alignment_loss_weight" in _at_chance_action()


def _run(name: str, epochs: list[dict[str, float]], **config: object) -> RunHistory:
    return RunHistory(name, Path(name), epochs, [], Config(run_name=name, **config))


def _collapsed() -> list[dict[str, float]]:
    """A worse run: its alignment stalls while its caption loss improves (`component stalled`,
    whose own action is "raise alignment_loss_weight"), and its val total stays higher."""
    stuck = [4.1] * 10
    return rows(10, val_alignment=lambda i: stuck[i], val_total=lambda i: 6.0 - 0.1 * i)


def test_config_differences_ignore_bookkeeping() -> None:
    first = Config(run_name="a", checkpoint_dir=Path("x"), log_interval=5)
    second = Config(run_name="b", learning_rate=2e-2, batch_size=8)
    assert config_differences(first, second) == {
        "batch_size": (16, 8),
        "learning_rate": (1e-3, 2e-2),
    }
    assert config_differences(first, first) == {}


def test_a_compared_run_gets_the_one_config_difference_as_its_cause() -> None:
    base = _run("base", rows(10), learning_rate=1e-3)
    fast = _run("fast", _collapsed(), learning_rate=2e-2)
    alone = diagnose(fast)
    assert any("raise alignment_loss_weight" in f.action for f in alone)  # a guess without runs
    found = diagnose_runs([base, fast])
    assert found["base"] == []
    cause, *rest = found["fast"]
    assert cause.kind == "cause from comparison"
    assert cause.evidence["field"] == "learning_rate" and cause.evidence["baseline"] == "base"
    assert "learning_rate is the only config difference from base (0.02 here, 0.001 there)" in (
        cause.message
    )
    assert [f.kind for f in rest] == [f.kind for f in alone]
    assert all("learning_rate" in f.action for f in found["fast"])
    assert not any("alignment_loss_weight" in f.action for f in found["fast"])


def test_several_differences_are_listed_without_naming_a_cause() -> None:
    base = _run("base", rows(10))
    other = _run("other", _collapsed(), learning_rate=2e-2, batch_size=8)
    found = diagnose_runs([other, base])
    assert found["other"][:-1] == diagnose(other)  # the run's own findings and actions stay
    last = found["other"][-1]
    assert last.kind == "comparison" and "batch_size, learning_rate" in last.message
    assert diagnose_runs([other]) == {"other": diagnose(other)}  # one run: nothing to compare
    twin = _run("twin", rows(10, val_total=lambda i: 1.03 * rows(10)[i]["val_total"]))
    assert diagnose_runs([base, twin]) == {"base": [], "twin": []}  # within WORSE_REL: no verdict
