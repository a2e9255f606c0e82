"""The flat module paths of mmlib 0.1 still import after the split into sub-packages (issue 23):
each with a DeprecationWarning naming its new path, as the very module object of that path; and
the four modules that became packages keep their names with no warning."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import pytest

import mmlib
from mmlib._old_paths import OLD_PATHS

ROOT = Path(__file__).resolve().parents[1]

# The public top-level names of the 0.1 modules that became packages, as commit 358dcaa (the
# last before the split) defined them: the packages' __init__ must keep every one.
OLD_NAMES = {
    "data": """DataSource SYNTHETIC_SIZE SYNTHETIC_TEST_SIZE SplitData is_test_record
        load_run_records load_split resolve_data_source split_indices split_records""",
    "model": """AttentionPool CHANNEL_MULTIPLIERS CaptionDecoder DecodeMethod EMBEDDING_INIT_STD
        ImageDecoder ImageEncoder LOGIT_SCALE_INIT LOGIT_SCALE_MAX MAX_BEAM_WIDTH MAX_LEVELS
        MIN_FEATURE_SIZE ModelOutput MultimodalModel TextEncoder TokenEmbedding build_model
        encoder_channels encoder_levels""",
    "inference": """Agreement CaptionSubjects ImageInput Match Predictor PromptError SampledPairs
        load_images vocabulary_samples""",
    "course": """COURSE_PRESET CaptionSample LEARNING_RATE_TRIAL_STEPS REAL_SAMPLE SIBLING
        ValidationExamples course_model_config ensure_course_run ensure_run enter_project_root
        fit_batches learning_rate_trial long_tail_captions project_root sibling_config
        train_steps validation_examples""",
}


def _forget(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop `mmlib.<name>` from sys.modules and from mmlib's attributes (restored after)."""
    monkeypatch.delitem(sys.modules, f"mmlib.{name}", raising=False)
    monkeypatch.delattr(mmlib, name, raising=False)


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_path_imports_with_a_warning_naming_the_new_path(
    old: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = importlib.import_module(OLD_PATHS[old])
    _forget(old, monkeypatch)
    with pytest.warns(DeprecationWarning) as caught:
        module = importlib.import_module(f"mmlib.{old}")
    assert module is new
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any(OLD_PATHS[old] in message and f"mmlib.{old}" in message for message in messages)


@pytest.mark.parametrize("old", ["train", "memory", "analysis", "export"])
def test_from_mmlib_import_old_name(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _forget(old, monkeypatch)
    namespace: dict[str, object] = {}
    with pytest.warns(DeprecationWarning, match=OLD_PATHS[old].replace(".", r"\.")):
        exec(f"from mmlib import {old}", namespace)
    assert namespace[old] is importlib.import_module(OLD_PATHS[old])


def test_a_module_that_became_a_package_keeps_its_names_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from mmlib.course import ensure_course_run
        from mmlib.data import load_split
        from mmlib.inference import Predictor
        from mmlib.model import MultimodalModel

    assert callable(load_split) and callable(ensure_course_run)
    assert MultimodalModel.__module__ == "mmlib.model.multimodal"
    assert Predictor.__module__ == "mmlib.inference.predictor"
    for package, names in OLD_NAMES.items():
        module = importlib.import_module(f"mmlib.{package}")
        assert module.__file__ and module.__file__.endswith("__init__.py")
        missing = [name for name in names.split() if not hasattr(module, name)]
        assert not missing, f"mmlib.{package} lost 0.1's names {missing}"


def test_every_new_path_is_a_module_file_under_mmlib() -> None:
    for old, new in OLD_PATHS.items():
        parts = new.split(".")
        assert parts[0] == "mmlib" and len(parts) >= 3, new
        path = ROOT.joinpath(*parts).with_suffix(".py")
        assert path.is_file(), f"OLD_PATHS[{old!r}] = {new!r}: no file {path}"
        assert not (ROOT / "mmlib" / f"{old}.py").exists(), f"mmlib/{old}.py shadows the old path"
