"""Tests for mmlib.pipeline: `make train`'s train, fit, evaluate and report."""

from __future__ import annotations

from mmlib.pipeline import COURSE_TARGETS, targets_missed


def test_targets_missed_names_each_shortfall() -> None:
    assert targets_missed(dict(COURSE_TARGETS)) == {}
    metrics = {**COURSE_TARGETS, "bleu4": 0.5, "subject_match": None}
    assert targets_missed(metrics) == {"bleu4": 0.5, "subject_match": None}
