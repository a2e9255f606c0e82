"""Tests for mmlib.metrics: each score on hand-made cases, and a run evaluated end to end."""

from __future__ import annotations

import json

import pytest
import torch

from mmlib.metrics import bleu4, evaluate_run, recall_at_k, subject_match
from mmlib.train import Trainer


def test_bleu4_uses_normalised_text_and_all_references() -> None:
    assert bleu4(["A small ship, beside a TOWER."], [["a small ship beside a tower"]]) == 1.0
    refs = [["two birds above a house", "a small ship beside a tall tower"]]
    assert bleu4(["a small ship beside a tall tower"], refs) == pytest.approx(1.0)
    assert bleu4(["a horse"], [["a small ship beside a tall tower"]]) == 0.0


def test_subject_match_counts_exact_subjects() -> None:
    scene = {"subjects": [{"kind": "ship", "count": 1}, {"kind": "bird", "count": 2}]}
    captions = [
        "an engraving depicting a small ship beside two birds above it",
        "an engraving depicting a small ship",
        "an engraving depicting a small ship beside three birds",
    ]
    assert subject_match(captions, [scene] * 3) == pytest.approx(1 / 3)


def test_recall_at_k() -> None:
    similarity = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.7, 0.0], [0.0, 0.5, 0.4]])
    targets = torch.tensor([0, 1, 2])
    assert recall_at_k(similarity, targets, 1) == pytest.approx(1 / 3)
    assert recall_at_k(similarity, targets, 2) == pytest.approx(1.0)


def test_evaluate_run_writes_metrics_with_baselines(tiny_config) -> None:
    config = tiny_config(num_epochs=1)
    trainer = Trainer(config, progress=False)
    trainer.fit()
    metrics = evaluate_run("tiny", config.checkpoint_dir)
    written = json.loads((trainer.run_dir / "metrics.json").read_text())
    assert written["images"] == 7 and written["bleu4"] == metrics.bleu4
    for name in ("bleu4", "subject_match", "token_accuracy", "recall_at_1"):
        assert 0.0 <= written[name] <= 1.0 and 0.0 <= written[f"{name}_shuffled"] <= 1.0
    assert "image->text recall@1" in metrics.table()
