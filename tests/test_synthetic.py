"""Synthetic engravings: deterministic, in the `seed` format, and captioned truthfully."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from mmlib.config import Config
from mmlib.data import synthetic
from mmlib.data.sources import load_split
from mmlib.data.synthetic import (
    GROUND_KINDS,
    HORIZONTAL_GAPS,
    KINDS,
    PREFIX,
    SIZE_SCALES,
    TEST_INDEX_START,
    Scene,
    caption_for,
    caption_report,
    generate,
    render_scene,
    sample_scene,
    scene_for,
    subjects_in_caption,
    subjects_of,
)

N, SIZE = 40, 64


def _records(root: Path) -> list[dict[str, Any]]:
    return json.loads((root / "metadata" / "engraving_metadata.json").read_text())


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _pixels(root: Path, record: dict[str, Any]) -> np.ndarray:
    path = root / "processed" / "engraving" / "resized" / record["filename"]
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "one"
    generate(root, n=N, image_size=SIZE, seed=7, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def dataset_scenes() -> list[Scene]:
    return [scene_for(42, i) for i in range(5141)]


def test_same_seed_same_dataset_whatever_the_workers(dataset: Path, tmp_path: Path) -> None:
    summary = generate(tmp_path, n=N, image_size=SIZE, seed=7, workers=2, progress=False)
    assert _records(tmp_path) == _records(dataset)
    for record in _records(dataset):
        assert np.array_equal(_pixels(tmp_path, record), _pixels(dataset, record))
    assert summary.n == N and summary.seed == 7 and summary.out_dir == tmp_path
    assert summary.distinct_captions == len({r["caption"] for r in _records(dataset)})
    assert "40 synthetic engravings" in str(summary)


def test_another_seed_another_dataset(dataset: Path, tmp_path: Path) -> None:
    generate(tmp_path, n=N, image_size=SIZE, seed=8, workers=1, progress=False)
    ours, theirs = _records(dataset), _records(tmp_path)
    assert sum(a["caption"] != b["caption"] for a, b in zip(ours, theirs, strict=True)) > N // 2
    assert not np.array_equal(_pixels(tmp_path, theirs[0]), _pixels(dataset, ours[0]))


def test_on_disk_format(dataset: Path) -> None:
    records = _records(dataset)
    assert [r["id"] for r in records] == list(range(N))
    assert _names(dataset / "metadata") == ["engraving_metadata.json"]
    for record in records:
        assert set(record) == {"id", "filename", "caption", "scene"}
        assert record["filename"] == f"synth_{record['id']:06d}.png"
        scene = Scene.from_dict(record["scene"])
        assert scene == scene_for(7, record["id"])
        assert caption_for(scene) == record["caption"]
        path = dataset / "processed" / "engraving" / "resized" / record["filename"]
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == (SIZE, SIZE)


def test_images_show_ink_on_paper(dataset: Path) -> None:
    for record in _records(dataset):
        grey = _pixels(dataset, record).mean(axis=2)
        assert (grey < 110).mean() > 0.01, "no ink"
        assert (grey > 180).mean() > 0.3, "no paper"


def test_render_is_deterministic_and_style_follows_the_seed() -> None:
    scene = sample_scene(random.Random(3))
    first, again = render_scene(scene, 48, seed=1), render_scene(scene, 48, seed=1)
    assert first.mode == "RGB" and first.size == (48, 48)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(render_scene(scene, 48, seed=2)))


def test_an_interrupted_run_leaves_no_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(tmp_path, n=3, image_size=SIZE, seed=1, workers=1, progress=False)
    calls = 0

    def failing_render(*args: Any) -> Image.Image:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return render_scene(*args)

    monkeypatch.setattr(synthetic, "render_scene", failing_render)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, n=3, image_size=SIZE, seed=2, workers=1, progress=False)
    assert _names(tmp_path / "metadata") == []


def test_refuses_to_overwrite_another_datasets_metadata(tmp_path: Path) -> None:
    metadata = tmp_path / "metadata" / "engraving_metadata.json"
    metadata.parent.mkdir()
    metadata.write_text(json.dumps([{"id": 1, "filename": "real.png", "caption": "x"}]))
    with pytest.raises(FileExistsError, match="not a synthetic"):
        generate(tmp_path, n=2, image_size=SIZE, workers=1, progress=False)
    assert "real.png" in metadata.read_text()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        generate(tmp_path, n=0, progress=False)
    with pytest.raises(ValueError, match="workers"):
        generate(tmp_path, n=1, workers=-1, progress=False)
    with pytest.raises(ValueError, match="test_n=-1"):
        generate(tmp_path, n=1, test_n=-1, progress=False)


def test_test_images_move_no_training_or_validation_image(dataset: Path, tmp_path: Path) -> None:
    summary = generate(tmp_path, n=N, image_size=SIZE, seed=7, test_n=6, workers=1, progress=False)
    with_test = _records(tmp_path)
    assert with_test[:N] == _records(dataset)
    for record in _records(dataset):
        assert np.array_equal(_pixels(tmp_path, record), _pixels(dataset, record))
    test = with_test[N:]
    assert [r["id"] for r in test] == list(range(TEST_INDEX_START, TEST_INDEX_START + 6))
    assert all(r["split"] == "test" and r["filename"].startswith("synth_1") for r in test)
    assert {r["caption"] for r in test} != {r["caption"] for r in with_test[:6]}
    assert "and 6 test images" in str(summary)

    def split_of(root: Path) -> tuple[list[tuple[str, str, tuple[str, ...]]], ...]:
        config = Config(data_dir=root, val_fraction=0.2, seed=7, cache_dir=root / "cache")
        split = load_split(config)
        return tuple(
            [(r.id, r.image_path.name, r.captions) for r in part]
            for part in (split.train, split.val, split.test)
        )

    train, val, no_test = split_of(dataset)
    marked = [(str(r["id"]), r["filename"], (r["caption"],)) for r in test]
    assert split_of(tmp_path) == (train, val, marked)
    assert no_test == [] and len(val) == N // 5


def test_caption_names_exactly_the_drawn_subjects(dataset_scenes: list[Scene]) -> None:
    for scene in dataset_scenes[:500]:
        assert subjects_in_caption(caption_for(scene)) == subjects_of(scene.to_dict())


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("An engraving depicting two birds above a small ship", {"bird": 2, "ship": 1}),
        ("an engraving depicting a tall tower tower.", {"tower": 2}),
        ("three ships and the sun under a crescent moon", {"ship": 3, "sun": 1, "moon": 1}),
        ("a small church beside churches", {"church": 2}),
        ("birds", {"bird": 1}),
        ("An engraving depicting", {}),
        ("", {}),
    ],
)
def test_subjects_in_broken_captions(caption: str, expected: dict[str, int]) -> None:
    assert subjects_in_caption(caption) == expected


def _structure(scene: Scene) -> tuple[Any, ...]:
    """Everything a caption should say: subjects without their boxes, the ground ones in
    left-to-right order, and the relations between them."""
    ground = [i for i, s in enumerate(scene.subjects) if s.kind in GROUND_KINDS]
    sky = [i for i, s in enumerate(scene.subjects) if s.kind not in GROUND_KINDS]
    order = sorted(ground, key=lambda i: scene.subjects[i].box[0]) + sorted(
        sky, key=lambda i: KINDS.index(scene.subjects[i].kind)
    )
    rank = {i: r for r, i in enumerate(order)}
    subjects = tuple((s.kind, s.size, s.count, s.phase) for s in (scene.subjects[i] for i in order))
    relations = frozenset((rank[r.subject], r.relation, rank[r.object]) for r in scene.relations)
    return subjects, relations


def test_one_scene_one_caption(dataset_scenes: list[Scene]) -> None:
    caption_of: dict[Any, str] = {}
    structure_of: dict[str, Any] = {}
    for scene in dataset_scenes:
        caption, structure = caption_for(scene), _structure(scene)
        assert caption.startswith(PREFIX + " ")
        assert caption_of.setdefault(structure, caption) == caption
        assert structure_of.setdefault(caption, structure) == structure
        assert caption_for(Scene.from_dict(json.loads(json.dumps(scene.to_dict())))) == caption


def test_ground_subjects_are_named_left_to_right(dataset_scenes: list[Scene]) -> None:
    for scene in dataset_scenes[:500]:
        named = [w for w in caption_for(scene).split() if w in GROUND_KINDS]
        ground = sorted((s for s in scene.subjects if s.kind in GROUND_KINDS), key=lambda s: s.box)
        assert named == [s.kind for s in ground]


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_what_the_caption_says_is_visible(dataset_scenes: list[Scene]) -> None:
    """Sizes are separable per kind, relations are real horizontal or vertical placements."""
    heights: dict[tuple[str, bool], list[float]] = {}
    for scene in dataset_scenes:
        boxes = [s.box for s in scene.subjects]
        for i, s in enumerate(scene.subjects):
            if s.size is not None:
                heights.setdefault((s.kind, s.size == "small"), []).append(s.box[3] - s.box[1])
            assert 0.04 < s.box[0] < s.box[2] < 0.96 and 0.04 < s.box[1] < s.box[3] < 0.96
            if s.kind not in GROUND_KINDS:  # nothing in the sky hides or touches anything
                assert not any(_overlap(s.box, b) for j, b in enumerate(boxes) if j != i)
        for r in scene.relations:
            a, b = boxes[r.subject], boxes[r.object]
            if r.relation in HORIZONTAL_GAPS:
                low, high = HORIZONTAL_GAPS[r.relation]
                assert low - 1e-3 <= b[0] - a[2] <= high + 1e-3
            elif r.relation == "above":  # a flock centred over its subject, clear above it
                assert a[3] < b[1] and b[0] <= (a[0] + a[2]) / 2 <= b[2]
            else:
                assert r.relation == "under" and b[3] < a[1]
    assert max(HORIZONTAL_GAPS["beside"]) * 3 < min(HORIZONTAL_GAPS["left of"])
    for kind, (_, height) in GROUND_KINDS.items():
        small, large = heights[(kind, True)], heights[(kind, False)]
        assert max(small) * 1.3 < min(large)
        assert (
            height * SIZE_SCALES["small"][0] - 1e-3 <= min(small) and max(small) - min(small) > 0.01
        )


def test_caption_report_on_hand_made_lists() -> None:
    train = ["A small ship beside a large tower.", "a cat", "a cat"]
    val = [
        "a large ship beside a small tower",
        "A cat!",
        "a dog",
        "a small ship beside a large tower",
    ]
    assert caption_report(train, val) == {
        "distinct_captions": 4,
        "vocabulary_size": 8,
        "val_unseen_share": 2 / 4,
        "val_bag_twin_share": 2 / 4,
    }
    assert caption_report(["a b", "b a"], [])["val_bag_twin_share"] == 0.0


def test_the_grammar_is_rich_but_small(dataset_scenes: list[Scene]) -> None:
    n = len(dataset_scenes)
    captions = [caption_for(s) for s in dataset_scenes]
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(42))
    val_ids = set(permutation[: math.floor(0.1 * n)].tolist())
    report = caption_report(
        [c for i, c in enumerate(captions) if i not in val_ids],
        [c for i, c in enumerate(captions) if i in val_ids],
    )
    assert report["distinct_captions"] >= 2000
    assert 28 <= report["vocabulary_size"] <= 60
    assert report["val_unseen_share"] > 0.2
    assert report["val_bag_twin_share"] > 0.1
    assert max(len(c.split()) for c in captions) <= 24
    kinds = Counter(s.kind for scene in dataset_scenes for s in scene.subjects)
    assert set(kinds) == set(KINDS) and min(kinds.values()) > n / 20
    text = " ".join(captions)
    assert " two birds " in text and " three birds " in text
