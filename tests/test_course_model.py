"""CI's guard that the course model learns: `make test` runs `make train` first, and this test
reads the metrics.json it wrote. Fails below the course targets (mmlib.pipeline.COURSE_TARGETS),
which are held on the test split: the validation split is what the recipe was tuned on."""

from __future__ import annotations

import json
from pathlib import Path

from mmlib.course.helpers import COURSE_PRESET
from mmlib.pipeline import COURSE_BASELINES, COURSE_TARGETS, targets_missed

METRICS = Path(__file__).resolve().parents[1] / "checkpoints" / COURSE_PRESET / "metrics.json"


def test_course_model_meets_the_targets() -> None:
    assert METRICS.is_file(), f"{METRICS} is missing: run `make train` (make test runs it first)"
    metrics = json.loads(METRICS.read_text())
    assert metrics.get("split") == "test", f"{METRICS}: figures not from the test split"
    missed = targets_missed(metrics)
    assert not missed, f"course model below its targets {COURSE_TARGETS}: {missed}"
    for name in COURSE_TARGETS:  # and far above what shuffled images or random latents give
        assert metrics[name] > 2 * metrics[COURSE_BASELINES[name]], name
