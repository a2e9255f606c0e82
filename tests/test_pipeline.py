"""Tests for mmlib.pipeline: `make train`'s train, fit, evaluate and report."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import torch
from conftest import free_port, join_as_torchrun_process

from mmlib import pipeline
from mmlib.config import Config
from mmlib.evaluation import metrics
from mmlib.inference import imagine
from mmlib.pipeline import COURSE_TARGETS, targets_missed
from mmlib.training.trainer import Trainer


def test_targets_missed_names_each_shortfall() -> None:
    assert targets_missed(dict(COURSE_TARGETS)) == {}
    metrics = {**COURSE_TARGETS, "bleu4": 0.5, "subject_match": None}
    assert targets_missed(metrics) == {"bleu4": 0.5, "subject_match": None}


def _recording(calls: list[tuple[str, object]], name: str, function: Callable) -> Callable:
    """`function`, first noting under `name` the device it is given (None: none given)."""

    def record(*args: object, **kwargs: object) -> object:
        bound = inspect.signature(function).bind(*args, **kwargs)
        calls.append((name, bound.arguments.get("device")))
        return function(*args, **kwargs)

    return record


def test_fitting_and_evaluation_run_on_the_training_device(tiny_config, monkeypatch) -> None:
    trainers: list[Trainer] = []

    class RecordedTrainer(Trainer):
        def fit(self) -> list[dict[str, float]]:
            history = super().fit()
            self.device = torch.device("cpu", 0)  # told apart from a default "cpu"
            trainers.append(self)
            return history

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(pipeline, "Trainer", RecordedTrainer)
    for name in ("fit_run_imagination", "evaluate_run"):
        monkeypatch.setattr(pipeline, name, _recording(calls, name, getattr(pipeline, name)))
    run_dir, evaluated = pipeline.train_and_evaluate(
        tiny_config(num_epochs=1, imagine_steps=40), progress=False
    )
    device = trainers[0].device
    assert calls == [("fit_run_imagination", device), ("evaluate_run", device)]
    assert evaluated is not None and (run_dir / "metrics.json").is_file()


def _record_writers(rank: int, log: Path) -> None:
    """Make the writers of `imagine.pt` and `metrics.json` note `rank` in `log` first."""
    for module, name in ((imagine, "save_imagination"), (metrics, "write_metrics")):
        write = getattr(module, name)

        def noted(*args: object, _write: Callable = write, _name: str = name, **kwargs: object):
            with log.open("a") as file:
                file.write(f"{rank} {_name}\n")
            return _write(*args, **kwargs)

        setattr(module, name, noted)


def _pipeline_worker(rank: int, world_size: int, port: int, config: Config, log: Path) -> None:
    """One process of a `torchrun`-like `make train` on CPU with gloo."""
    join_as_torchrun_process(rank, world_size, port)
    _record_writers(rank, log)
    try:
        pipeline.train_and_evaluate(config, progress=False)
    finally:
        torch.distributed.destroy_process_group()


def test_only_rank_0_fits_and_evaluates_under_two_processes(tiny_config, tmp_path) -> None:
    config = tiny_config(num_epochs=1, imagine_steps=40)
    log = tmp_path / "writes.log"
    port = free_port()
    torch.multiprocessing.spawn(_pipeline_worker, args=(2, port, config, log), nprocs=2)
    assert log.read_text().splitlines() == ["0 save_imagination", "0 write_metrics"]
    run_dir = tmp_path / "checkpoints/tiny"
    assert (run_dir / "imagine.pt").is_file() and (run_dir / "metrics.json").is_file()


def test_stages_are_named_and_imagine_steps_0_skips_fitting(tiny_config, capsys) -> None:
    run_dir, evaluated = pipeline.train_and_evaluate(
        tiny_config(num_epochs=1, imagine_steps=0), progress=False
    )
    out = capsys.readouterr().out
    assert "STEP 7: Fitting imagine.pt: skipped (imagine_steps=0)" in out
    assert "STEP 8: Evaluating best.pt on the validation split (no test split), on cpu" in out
    timed = next(line for line in out.splitlines() if "trained and evaluated in" in line)
    assert "(training " in timed and ", evaluation " in timed and "fitting" not in timed
    assert not (run_dir / "imagine.pt").exists() and (run_dir / "metrics.json").is_file()
    assert evaluated is not None and evaluated.imagine_subject_match is None


def test_stage_times_add_up_and_keep_their_order(monkeypatch) -> None:
    clock = iter([0.0, 90.0, 90.0, 120.0])  # seconds: a 1.5 min stage, then a 0.5 min one
    monkeypatch.setattr(pipeline.time, "perf_counter", lambda: next(clock))
    times = pipeline.StageTimes()
    with times.stage("training"):
        pass
    with times.stage("evaluation"):
        pass
    assert times.minutes == {"training": 1.5, "evaluation": 0.5}
    assert str(times) == "2.0 min (training 1.5, evaluation 0.5)"


class _StopAtFirstStep(Trainer):
    """A Trainer asked to stop after its first optimizer step, as Ctrl-C or SIGTERM would."""

    def fit(self) -> list[dict[str, float]]:
        self.prepare()
        self.step = _then(self.step, self.request_stop)
        return super().fit()


def _then(step: Callable, after: Callable[[], None]) -> Callable:
    def stepped(*args: object) -> object:
        result = step(*args)
        after()
        return result

    return stepped


def test_a_stopped_run_is_neither_fitted_nor_evaluated(tiny_config, monkeypatch, capsys) -> None:
    monkeypatch.setattr(pipeline, "Trainer", _StopAtFirstStep)
    run_dir, evaluated = pipeline.train_and_evaluate(tiny_config(num_epochs=2), progress=False)
    assert evaluated is None
    out = capsys.readouterr().out
    assert "Training stopped: imagine.pt not fitted, best.pt not evaluated" in out
    assert (run_dir / "last.pt").is_file()
    assert not (run_dir / "imagine.pt").exists() and not (run_dir / "metrics.json").exists()
