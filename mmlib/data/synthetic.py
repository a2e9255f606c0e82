"""Synthetic engravings: a stand-in dataset whose every caption is known to be true.

A small grammar draws scenes of one to three ground subjects standing in a row (named left to
right, "beside" when close and "left of" when far apart), maybe a flock of birds above one of
them and maybe a sun or moon over them all. Each scene has exactly one caption, and is drawn in
an engraving's style: brown-black ink lines and hatching on grainy paper in a ruled plate border.
`generate` writes the `seed` on-disk format, so the whole course runs on it unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from mmlib.data import language
from mmlib.files import atomic_open, atomic_write_text, check_output_folder, check_writable
from mmlib.progress import progress_bar

PREFIX = "An engraving depicting"
# Test images are items numbered from here: their seeds are drawn apart from the training and
# validation images' (items 0..n-1), so adding a test set moves no training or validation image.
TEST_INDEX_START = 1_000_000
MAX_IMAGE_SIZE = 4096  # Config.image_size's cap; 30000 met PIL's decompression-bomb limit
# The metadata field, and its value, that mark a record as a test image.
SPLIT_FIELD, TEST_SPLIT = "split", "test"
METADATA_PATH = Path("metadata") / "engraving_metadata.json"
# The languages `generate` captions in: the 34-token grammar, one caption per image (the
# default), or five annotators (mmlib.data.language), five captions per image.
GRAMMARS = ("simple", "annotators")
IMAGES_PATH = Path("processed") / "engraving" / "resized"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image, y down
Point = tuple[float, float]

# (width, height) of a large subject as a fraction of the image; small ones are ~0.6 of that.
GROUND_KINDS: dict[str, tuple[float, float]] = {
    "ship": (0.34, 0.46),
    "tower": (0.16, 0.56),
    "house": (0.32, 0.38),
    "tree": (0.26, 0.50),
    "mountain": (0.46, 0.42),
    "bridge": (0.44, 0.28),
    "church": (0.30, 0.50),
    "windmill": (0.34, 0.50),
    "horse": (0.36, 0.34),
}
TALL_KINDS = frozenset({"tower", "tree", "church", "windmill"})
SKY_KINDS = ("bird", "sun", "moon")
KINDS = (*GROUND_KINDS, *SKY_KINDS)
MOON_PHASES = ("crescent", "full")
# Scale ranges of the two size classes: they jitter but never meet (1.38x apart at least).
SIZE_SCALES = {"small": (0.55, 0.65), "large": (0.90, 1.05)}
# The horizontal gap between neighbours for each relation: touching vs clearly apart.
HORIZONTAL_GAPS = {"beside": (-0.03, 0.04), "left of": (0.14, 0.26)}

_ROW = (0.07, 0.93)  # where ground subjects may stand, inside the plate border
_SKY = (0.05, 0.95)  # where sky subjects may fly
_BASE_Y = (0.86, 0.90)
_GROUND_COUNT_WEIGHTS = (0.30, 0.45, 0.25)  # of 1, 2 and 3 ground subjects
_P_BIRDS, _P_CELESTIAL = 0.35, 0.60
_CLEARANCE = 0.02
# Birds of a flock in bird-width units (a bird is 1 wide and _BIRD_HEIGHT high).
_FLOCKS: dict[int, tuple[Point, ...]] = {
    1: ((0.0, 0.0),),
    2: ((0.0, 0.0), (1.25, 0.5)),
    3: ((0.0, 0.55), (1.2, 0.0), (0.6, 1.05)),
}
_BIRD_HEIGHT = 0.45
_NUMBER_WORDS = {1: "a", 2: "two", 3: "three"}
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


@dataclass(frozen=True)
class Subject:
    """One drawn subject: a kind, where it is and its attributes."""

    kind: str
    box: Box
    size: str | None = None  # "small", "large" or "tall"; None in the sky
    count: int = 1  # birds come in flocks
    phase: str | None = None  # "crescent" or "full" for the moon


@dataclass(frozen=True)
class Relation:
    """`subjects[subject]` stands in `relation` to `subjects[object]`."""

    subject: int
    relation: str
    object: int


@dataclass(frozen=True)
class Scene:
    """Ground subjects left to right, then birds, then a sun or moon; with their relations."""

    subjects: tuple[Subject, ...]
    relations: tuple[Relation, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form stored in the metadata's `scene` field."""
        return {
            "subjects": [{**asdict(s), "box": list(s.box)} for s in self.subjects],
            "relations": [asdict(r) for r in self.relations],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        """The inverse of `to_dict`."""
        subjects = tuple(Subject(**{**s, "box": tuple(s["box"])}) for s in data["subjects"])
        return cls(subjects, tuple(Relation(**r) for r in data["relations"]))


@dataclass(frozen=True)
class SyntheticSummary:
    """What `generate` wrote."""

    out_dir: Path
    n: int
    image_size: int
    seed: int
    seconds: float
    distinct_captions: int
    vocabulary_size: int
    test_n: int = 0

    def __str__(self) -> str:
        return (
            f"{self.n} synthetic engravings and {self.test_n} test images "
            f"({self.image_size}x{self.image_size}, seed {self.seed}) in {self.out_dir} in "
            f"{self.seconds:.1f} s: "
            f"{self.distinct_captions} distinct captions, {self.vocabulary_size} words"
        )


# ---------------------------------------------------------------------------- the grammar


def sample_scene(rng: random.Random) -> Scene:
    """Draw a scene: a row of ground subjects, maybe birds above one, maybe a sun or moon."""
    n = rng.choices((1, 2, 3), weights=_GROUND_COUNT_WEIGHTS)[0]
    subjects, relations = _sample_row(rng, n)
    if rng.random() < _P_BIRDS:
        anchor = rng.randrange(n)
        subjects.append(_sample_birds(rng, subjects, anchor))
        relations.append(Relation(len(subjects) - 1, "above", anchor))
    if rng.random() < _P_CELESTIAL:
        flock = subjects[-1].box if subjects[-1].kind == "bird" else None
        subjects.append(_sample_celestial(rng, flock))
        relations.extend(Relation(i, "under", len(subjects) - 1) for i in range(n))
    return Scene(tuple(subjects), tuple(relations))


def _sample_row(rng: random.Random, n: int) -> tuple[list[Subject], list[Relation]]:
    """`n` ground subjects left to right, and the horizontal relation of each neighbour pair."""
    while True:  # redraw until the row fits between the margins
        kinds = [rng.choice(tuple(GROUND_KINDS)) for _ in range(n)]
        large = [rng.random() < 0.5 for _ in range(n)]
        dims = [_dimensions(rng, kind, big) for kind, big in zip(kinds, large, strict=True)]
        links = [rng.choice(tuple(HORIZONTAL_GAPS)) for _ in range(n - 1)]
        gaps = [rng.uniform(*HORIZONTAL_GAPS[link]) for link in links]
        width = sum(w for w, _ in dims) + sum(gaps)
        if width <= _ROW[1] - _ROW[0]:
            break
    x = _ROW[0] + rng.uniform(0.0, _ROW[1] - _ROW[0] - width)
    subjects = []
    for kind, big, (w, h), gap in zip(kinds, large, dims, [*gaps, 0.0], strict=True):
        base = rng.uniform(*_BASE_Y)
        size = ("tall" if kind in TALL_KINDS else "large") if big else "small"
        subjects.append(Subject(kind, _box(x, base - h, x + w, base), size=size))
        x += w + gap
    return subjects, [Relation(i, link, i + 1) for i, link in enumerate(links)]


def _dimensions(rng: random.Random, kind: str, large: bool) -> tuple[float, float]:
    """Width and height of a subject of `kind` in its size class, jittered."""
    width, height = GROUND_KINDS[kind]
    scale = rng.uniform(*SIZE_SCALES["large" if large else "small"])
    return width * scale * rng.uniform(0.94, 1.06), height * scale


def _flock_extent(count: int) -> Point:
    """Width and height of a flock of `count` birds, in bird widths."""
    layout = _FLOCKS[count]
    return max(x for x, _ in layout) + 1.0, max(y for _, y in layout) + _BIRD_HEIGHT


def _sample_birds(rng: random.Random, ground: Sequence[Subject], anchor: int) -> Subject:
    """A flock centred over `ground[anchor]`, clear above everything it overlaps."""
    count = rng.choice((1, 2, 3))
    bird = rng.uniform(0.075, 0.085)
    extent_w, extent_h = _flock_extent(count)
    w, h = bird * extent_w, bird * extent_h
    a = ground[anchor].box
    centre = (a[0] + a[2]) / 2 + rng.uniform(-0.15, 0.15) * (a[2] - a[0])
    x0 = min(max(centre - w / 2, _SKY[0]), _SKY[1] - w)
    bottom = min(s.box[1] for s in ground if s.box[0] < x0 + w and s.box[2] > x0)
    bottom -= rng.uniform(0.04, 0.09)
    return Subject("bird", _box(x0, bottom - h, x0 + w, bottom), count=count)


def _sample_celestial(rng: random.Random, flock: Box | None) -> Subject:
    """A sun or a moon high in the sky, out of the way of the flock."""
    kind, phase = rng.choice((("sun", None), ("moon", "crescent"), ("moon", "full")))
    r = rng.uniform(0.08, 0.095) if kind == "sun" else rng.uniform(0.05, 0.065)
    cy = rng.uniform(0.14, 0.17) if kind == "sun" else rng.uniform(0.11, 0.16)
    lo, hi = _SKY[0] + r, _SKY[1] - r
    if flock is None:
        cx = rng.uniform(lo, hi)
    else:  # uniform over the two spans left and right of the flock
        left = max(0.0, flock[0] - r - _CLEARANCE - lo)
        right = max(0.0, hi - flock[2] - r - _CLEARANCE)
        u = rng.uniform(0.0, left + right)
        cx = lo + u if u < left else hi - (u - left)
    return Subject(kind, _box(cx - r, cy - r, cx + r, cy + r), phase=phase)


def _box(x0: float, y0: float, x1: float, y1: float) -> Box:
    """A box rounded so that it survives the JSON round trip unchanged."""
    return (round(x0, 4), round(y0, 4), round(x1, 4), round(y1, 4))


def caption_for(scene: Scene) -> str:
    """The one caption of `scene`: ground subjects left to right, birds before the subject they
    fly above, then the sun or moon, e.g. "An engraving depicting a small ship beside two birds
    above a tall tower under a crescent moon"."""
    ground = sorted(
        (i for i, s in enumerate(scene.subjects) if s.kind in GROUND_KINDS),
        key=lambda i: scene.subjects[i].box[0],
    )
    links = {(r.subject, r.object): r.relation for r in scene.relations}
    flying_above = {r.object: r.subject for r in scene.relations if r.relation == "above"}
    words = [PREFIX]
    for position, i in enumerate(ground):
        if position:
            words.append(links[(ground[position - 1], i)])
        if i in flying_above:
            words += [_phrase(scene.subjects[flying_above[i]]), "above"]
        words.append(_phrase(scene.subjects[i]))
    celestial = [s for s in scene.subjects if s.kind in ("sun", "moon")]
    if celestial:
        words += ["under", _phrase(celestial[0])]
    return " ".join(words)


def _phrase(subject: Subject) -> str:
    """The noun phrase naming one subject."""
    if subject.kind == "bird":
        return "a bird" if subject.count == 1 else f"{_NUMBER_WORDS[subject.count]} birds"
    if subject.kind == "sun":
        return "the sun"
    if subject.kind == "moon":
        return f"a {subject.phase} moon"
    return f"a {subject.size} {subject.kind}"


def scene_for(seed: int, index: int) -> Scene:
    """Scene number `index` of the dataset drawn with `seed`, without rendering it."""
    return sample_scene(random.Random(_item_seed(seed, index)))


def look_for(seed: int, index: int) -> language.Look:
    """What the print of item `index` shows of its style (paper tint, line weight, hatching,
    grain): the renderer's first draws, repeated in a `Random` of its own, so the renderer's
    draws and pixels are untouched."""
    style = _Style.sample(random.Random(_render_seed(seed, index)), 1)
    tint = sum(p - base for p, base in zip(style.paper, _PAPER, strict=True)) / len(_PAPER)
    return language.Look(tint, style.line, style.spacing, style.angle, style.grain)


def annotations_for(seed: int, index: int) -> tuple[str, ...]:
    """The five annotators' captions of item `index` (`grammar="annotators"`), without
    rendering it."""
    return language.annotate(scene_for(seed, index), seed, index, look_for(seed, index))


def _render_seed(seed: int, index: int) -> int:
    """The seed of item `index`'s style jitter."""
    return _item_seed(seed, index) ^ 0x5EED


def _item_seed(seed: int, index: int) -> int:
    """Each item's own seed, so items do not depend on the order or process that draws them."""
    digest = hashlib.sha256(f"mmlib.synthetic:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# ------------------------------------------------------------------ reading captions back


def _words(text: str) -> list[str]:
    """Normalised words: NFKC, lower case, punctuation removed."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def _noun_forms() -> dict[str, str]:
    """Singular and plural of every kind's noun, mapped to the kind."""
    forms = {}
    for kind in KINDS:
        forms[kind] = kind
        forms[kind + ("es" if kind.endswith("ch") else "s")] = kind
    return forms


_NOUNS = _noun_forms()
_COUNTS = {"a": 1, "an": 1, "one": 1, "the": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_ADJECTIVES = frozenset({"small", "large", "tall", *MOON_PHASES})


def subjects_of(scene: dict[str, Any]) -> dict[str, int]:
    """Kind -> number drawn, from a stored `scene` dict."""
    counts: Counter[str] = Counter()
    for subject in scene["subjects"]:
        counts[subject["kind"]] += subject["count"]
    return dict(counts)


def noun_kind(word: str) -> str | None:
    """The kind a normalised word names, singular or plural ("ships" -> "ship"); else None."""
    return _NOUNS.get(word)


def subjects_in_caption(caption: str) -> dict[str, int]:
    """Kind -> number named in any caption, a model's broken ones too: every kind noun counts
    with the number word before it (adjectives skipped), once where there is none."""
    words = _words(caption)
    counts: Counter[str] = Counter()
    for i, word in enumerate(words):
        kind = _NOUNS.get(word)
        if kind is None:
            continue
        j = i - 1
        while j >= 0 and words[j] in _ADJECTIVES:
            j -= 1
        counts[kind] += _COUNTS.get(words[j], 1) if j >= 0 else 1
    return dict(counts)


def caption_report(train_captions: Sequence[str], val_captions: Sequence[str]) -> dict[str, Any]:
    """How rich a caption set is, on normalised words: distinct captions and vocabulary over
    both sets, the share of validation captions never seen in training, and the share whose
    bag of words equals that of a different caption (so only word order tells them apart)."""
    train = [tuple(_words(c)) for c in train_captions]
    val = [tuple(_words(c)) for c in val_captions]
    distinct = set(train) | set(val)
    orders_of_bag: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for caption in distinct:
        orders_of_bag.setdefault(tuple(sorted(caption)), set()).add(caption)
    seen = set(train)
    unseen = sum(caption not in seen for caption in val)
    twins = sum(len(orders_of_bag[tuple(sorted(caption))]) > 1 for caption in val)
    return {
        "distinct_captions": len(distinct),
        "vocabulary_size": len({word for caption in distinct for word in caption}),
        "val_unseen_share": unseen / len(val) if val else 0.0,
        "val_bag_twin_share": twins / len(val) if val else 0.0,
    }


# ----------------------------------------------------------------------------- drawing

# A part of a subject, in the unit square of its box (u right, v down):
# ("poly", points, tone), ("ellipse", two corners, tone) or ("stroke", points, weight).
# Tones: 0 bare paper, 1 hatching, 2 cross-hatching, 3 solid ink.
Part = tuple[str, tuple[Point, ...], float]


def _rect(u0: float, v0: float, u1: float, v1: float, tone: int) -> Part:
    return ("poly", ((u0, v0), (u1, v0), (u1, v1), (u0, v1)), tone)


def _arch(cx: float, top: float, half: float, bottom: float, rise: float, tone: int) -> Part:
    """A round-topped opening: a door, window or the span of a bridge."""
    spring = top + rise
    curve = tuple(
        (cx - half * math.cos(math.pi * k / 8), spring - rise * math.sin(math.pi * k / 8))
        for k in range(9)
    )
    return ("poly", ((cx - half, bottom), *curve, (cx + half, bottom)), tone)


def _ship() -> list[Part]:
    return [
        ("poly", ((0.18, 0.12), (0.78, 0.12), (0.85, 0.38), (0.11, 0.38)), 1),
        ("poly", ((0.11, 0.42), (0.86, 0.42), (0.95, 0.68), (0.03, 0.68)), 1),
        ("stroke", ((0.48, 0.0), (0.48, 0.74)), 1.0),
        ("poly", ((0.48, 0.0), (0.68, 0.04), (0.48, 0.08)), 3),
        ("poly", ((0.0, 0.7), (1.0, 0.7), (0.84, 0.98), (0.14, 0.98)), 2),
    ]


def _tower() -> list[Part]:
    return [
        ("poly", ((0.08, 0.16), (0.92, 0.16), (0.97, 1.0), (0.03, 1.0)), 1),
        ("poly", ((0.56, 0.16), (0.92, 0.16), (0.97, 1.0), (0.6, 1.0)), 2),
        _rect(0.0, 0.07, 1.0, 0.19, 2),
        *(_rect(u, 0.0, u + 0.24, 0.08, 2) for u in (0.0, 0.38, 0.76)),
        _rect(0.38, 0.3, 0.6, 0.4, 3),
        _rect(0.38, 0.52, 0.6, 0.62, 3),
        _arch(0.5, 0.78, 0.16, 1.0, 0.08, 3),
    ]


def _house() -> list[Part]:
    return [
        _rect(0.66, 0.08, 0.78, 0.35, 2),
        _rect(0.1, 0.46, 0.9, 1.0, 1),
        ("poly", ((0.0, 0.5), (0.5, 0.04), (1.0, 0.5)), 2),
        _rect(0.42, 0.68, 0.58, 1.0, 3),
        _rect(0.17, 0.6, 0.32, 0.76, 3),
        _rect(0.68, 0.6, 0.83, 0.76, 3),
    ]


def _tree() -> list[Part]:
    return [
        ("poly", ((0.42, 0.55), (0.58, 0.55), (0.63, 1.0), (0.37, 1.0)), 3),
        ("ellipse", ((0.0, 0.24), (0.6, 0.72)), 2),
        ("ellipse", ((0.4, 0.24), (1.0, 0.72)), 2),
        ("ellipse", ((0.12, 0.0), (0.88, 0.52)), 2),
    ]


def _mountain() -> list[Part]:
    return [
        ("poly", ((0.0, 1.0), (0.5, 0.0), (0.58, 1.0)), 1),
        ("poly", ((0.5, 0.0), (1.0, 1.0), (0.58, 1.0)), 2),
        ("poly", ((0.5, 0.0), (0.62, 0.24), (0.55, 0.2), (0.5, 0.3), (0.44, 0.2), (0.38, 0.24)), 0),
    ]


def _bridge() -> list[Part]:
    return [
        _rect(0.0, 0.3, 1.0, 1.0, 1),
        *(_arch(cx, 0.5, 0.12, 1.0, 0.3, 0) for cx in (1 / 6, 0.5, 5 / 6)),
        _rect(0.0, 0.18, 1.0, 0.32, 2),
    ]


def _church() -> list[Part]:
    return [
        _rect(0.04, 0.56, 0.96, 1.0, 1),
        ("poly", ((0.0, 0.58), (0.5, 0.36), (1.0, 0.58)), 2),
        _rect(0.36, 0.24, 0.64, 0.52, 1),
        ("poly", ((0.32, 0.26), (0.5, 0.06), (0.68, 0.26)), 2),
        ("stroke", ((0.5, 0.0), (0.5, 0.08)), 0.8),
        ("stroke", ((0.45, 0.03), (0.55, 0.03)), 0.8),
        _arch(0.5, 0.3, 0.06, 0.44, 0.05, 3),
        _arch(0.2, 0.68, 0.06, 0.86, 0.05, 3),
        _arch(0.8, 0.68, 0.06, 0.86, 0.05, 3),
        _arch(0.5, 0.74, 0.09, 1.0, 0.07, 3),
    ]


def _windmill(rng: random.Random) -> list[Part]:
    hub_u, hub_v, length, breadth = 0.5, 0.38, 0.38, 0.1
    turn = rng.uniform(0.0, math.pi / 2)
    sails: list[Part] = []
    for k in range(4):
        du, dv = math.cos(turn + k * math.pi / 2), math.sin(turn + k * math.pi / 2)
        nu, nv = -dv * breadth, du * breadth  # the sail's cloth hangs to one side of its spar
        p0 = (hub_u + du * 0.06, hub_v + dv * 0.06)
        p1 = (hub_u + du * length, hub_v + dv * length)
        sails.append(("poly", (p0, p1, (p1[0] + nu, p1[1] + nv), (p0[0] + nu, p0[1] + nv)), 1))
        sails.append(("stroke", ((hub_u, hub_v), p1), 1.0))
    return [
        ("poly", ((0.36, 0.42), (0.64, 0.42), (0.72, 1.0), (0.28, 1.0)), 1),
        ("poly", ((0.52, 0.42), (0.64, 0.42), (0.72, 1.0), (0.54, 1.0)), 2),
        ("poly", ((0.32, 0.44), (0.5, 0.3), (0.68, 0.44)), 2),
        _arch(0.5, 0.8, 0.07, 1.0, 0.05, 3),
        *sails,
    ]


def _horse() -> list[Part]:
    legs: list[Part] = [
        ("stroke", ((u, 0.5), (u + lean, 0.78), (u + lean / 2, 1.0)), 1.8)
        for u, lean in ((0.26, -0.03), (0.37, 0.03), (0.64, -0.02), (0.74, 0.04))
    ]
    return [
        ("stroke", ((0.2, 0.36), (0.09, 0.48), (0.06, 0.72)), 1.6),
        *legs,
        ("ellipse", ((0.16, 0.26), (0.8, 0.62)), 2),
        ("poly", ((0.62, 0.42), (0.72, 0.12), (0.82, 0.04), (0.86, 0.28), (0.8, 0.46)), 2),
        ("poly", ((0.74, 0.04), (0.86, 0.0), (1.0, 0.17), (0.95, 0.25), (0.82, 0.2)), 2),
    ]


def _sun() -> list[Part]:
    rays: list[Part] = []
    for k in range(12):
        a = k * math.pi / 6 + 0.2
        reach = 0.5 if k % 2 else 0.42
        rays.append(
            (
                "stroke",
                (
                    (0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a)),
                    (0.5 + reach * math.cos(a), 0.5 + reach * math.sin(a)),
                ),
                0.9,
            )
        )
    return [*rays, ("ellipse", ((0.25, 0.25), (0.75, 0.75)), 0)]


def _crescent() -> tuple[Point, ...]:
    """The outline of a crescent: a disc less the same disc shifted right by `shift`."""
    r, shift = 0.5, 0.36
    hx, hy = shift / 2, math.sqrt(r * r - shift * shift / 4)
    a0, b0 = math.atan2(hy, hx), math.atan2(hy, hx - shift)
    outer = [a0 + (2 * math.pi - 2 * a0) * k / 16 for k in range(17)]
    inner = [(2 * math.pi - b0) - (2 * math.pi - 2 * b0) * k / 16 for k in range(17)]
    return (
        *((0.5 + r * math.cos(a), 0.5 - r * math.sin(a)) for a in outer),
        *((0.5 + shift + r * math.cos(a), 0.5 - r * math.sin(a)) for a in inner),
    )


_CRESCENT = _crescent()


def _moon(phase: str) -> list[Part]:
    if phase == "crescent":
        return [("poly", _CRESCENT, 2)]
    return [
        ("ellipse", ((0.0, 0.0), (1.0, 1.0)), 1),
        ("ellipse", ((0.2, 0.25), (0.45, 0.5)), 2),
        ("ellipse", ((0.55, 0.55), (0.75, 0.75)), 2),
    ]


def _birds(rng: random.Random, count: int) -> list[Part]:
    extent_w, extent_h = _flock_extent(count)
    wing = ((0.0, 0.3), (0.22, 0.02), (0.5, 0.4), (0.78, 0.02), (1.0, 0.3))
    parts: list[Part] = []
    for x, y in _FLOCKS[count]:
        dx, dy = rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08)
        points = tuple(
            ((x + dx + u) / extent_w, (y + dy + v * _BIRD_HEIGHT / 0.4) / extent_h) for u, v in wing
        )
        parts.append(("stroke", points, 1.5))
    return parts


_SHAPES: dict[str, Callable[[], list[Part]]] = {
    "ship": _ship,
    "tower": _tower,
    "house": _house,
    "tree": _tree,
    "mountain": _mountain,
    "bridge": _bridge,
    "church": _church,
    "horse": _horse,
    "sun": _sun,
}


def _parts(subject: Subject, rng: random.Random) -> list[Part]:
    """The parts that draw `subject`, mirrored at random where a subject has a facing."""
    if subject.kind == "bird":
        return _birds(rng, subject.count)
    if subject.kind == "moon":
        parts = _moon(subject.phase or "full")
    elif subject.kind == "windmill":
        parts = _windmill(rng)
    else:
        parts = _SHAPES[subject.kind]()
    if rng.random() < 0.5:
        parts = [(shape, tuple((1.0 - u, v) for u, v in points), p) for shape, points, p in parts]
    return parts


_PAPER = (236.0, 226.0, 198.0)  # the paper's colour before its tint


@dataclass(frozen=True)
class _Style:
    """The jitter of one print: paper, ink, line weight and hatching."""

    size: int
    paper: tuple[float, ...]
    ink: tuple[float, ...]
    line: float
    spacing: float
    angle: float
    grain: float

    @classmethod
    def sample(cls, rng: random.Random, size: int) -> _Style:
        tint = rng.uniform(-10, 6)
        paper = tuple(c + tint + rng.uniform(-4, 4) for c in _PAPER)
        ink = tuple(c + rng.uniform(-8, 8) for c in (44.0, 32.0, 24.0))
        return cls(
            size=size,
            paper=paper,
            ink=ink,
            line=size * rng.uniform(0.009, 0.012),
            spacing=size * rng.uniform(0.017, 0.022),
            angle=rng.choice((45.0, 135.0)) + rng.uniform(-12, 12),
            grain=rng.uniform(5, 9),
        )


def render_scene(scene: Scene, image_size: int, seed: int) -> Image.Image:
    """`scene` as an RGB engraving, image_size pixels square; `seed` drives the style jitter."""
    rng = random.Random(seed)
    style = _Style.sample(rng, 2 * image_size)  # drawn at twice the size, then downsampled
    ink = Image.new("L", (style.size, style.size), 0)
    _draw_sky(ink, rng, style)
    _draw_ground(ink, rng, style)
    for subject in scene.subjects:
        _draw_subject(ink, subject, rng, style)
    _draw_border(ink, rng, style)
    return _print(ink, rng, style).resize((image_size, image_size), Image.Resampling.LANCZOS)


def _draw_sky(ink: Image.Image, rng: random.Random, style: _Style) -> None:
    """Faint, broken horizontal lines: the engraver's sky."""
    draw, s = ImageDraw.Draw(ink), style.size
    y = rng.uniform(0.07, 0.09)
    while y < 0.84:
        x = rng.uniform(0.05, 0.2)
        while x < 0.95:
            end = min(x + rng.uniform(0.15, 0.6), 0.95)
            draw.line([(x * s, y * s), (end * s, y * s)], fill=rng.randint(45, 80), width=1)
            x = end + rng.uniform(0.03, 0.2)
        y += rng.uniform(0.03, 0.045)


def _draw_ground(ink: Image.Image, rng: random.Random, style: _Style) -> None:
    """A horizon line and hatched ground below it."""
    draw, s = ImageDraw.Draw(ink), style.size
    y = rng.uniform(0.87, 0.885)
    draw.line([(0.04 * s, y * s), (0.96 * s, y * s)], fill=255, width=round(style.line * 0.8))
    while y < 0.95:
        y += rng.uniform(0.012, 0.018)
        x = 0.04
        while x < 0.96:
            end = min(x + rng.uniform(0.1, 0.4), 0.96)
            draw.line([(x * s, y * s), (end * s, y * s)], fill=rng.randint(150, 230), width=1)
            x = end + rng.uniform(0.01, 0.06)


def _draw_border(ink: Image.Image, rng: random.Random, style: _Style) -> None:
    """The plate's double rule: a heavy outer line and a thin inner one."""
    draw, s = ImageDraw.Draw(ink), style.size
    outer = rng.uniform(0.018, 0.026) * s
    inner = outer + rng.uniform(0.012, 0.016) * s
    draw.rectangle((outer, outer, s - outer, s - outer), outline=255, width=round(style.line * 1.3))
    draw.rectangle(
        (inner, inner, s - inner, s - inner), outline=255, width=max(1, round(style.line * 0.5))
    )


def _hatch(
    size: tuple[int, int], angle: float, spacing: float, width: int, phase: float
) -> Image.Image:
    """Parallel lines at `angle` degrees covering an image of `size`."""
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    w, h = size
    half = math.hypot(w, h) / 2
    du, dv = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    offset = -half + phase * spacing
    while offset < half:
        cx, cy = w / 2 - dv * offset, h / 2 + du * offset
        draw.line(
            [(cx - du * half, cy - dv * half), (cx + du * half, cy + dv * half)],
            fill=255,
            width=width,
        )
        offset += spacing
    return image


def _draw_subject(ink: Image.Image, subject: Subject, rng: random.Random, style: _Style) -> None:
    """Draw `subject` over what is behind it: each part hides what it covers, is shaded with
    hatching clipped to its shape and outlined."""
    s = style.size
    x0, y0, x1, y1 = (c * s for c in subject.box)
    line = style.line * rng.uniform(0.85, 1.15)
    pad = math.ceil(line) + 2
    crop = (
        max(0, math.floor(x0) - pad),
        max(0, math.floor(y0) - pad),
        min(s, math.ceil(x1) + pad),
        min(s, math.ceil(y1) + pad),
    )
    local = ink.crop(crop)
    spacing = style.spacing * rng.uniform(0.9, 1.1)
    width = max(1, round(spacing * 0.4))
    angle = style.angle + rng.uniform(-10, 10)
    hatch = _hatch(local.size, angle, spacing, width, rng.random())
    cross = ImageChops.lighter(
        hatch, _hatch(local.size, angle + rng.uniform(75, 105), spacing, width, rng.random())
    )
    tones = {1: hatch, 2: cross}

    def to_local(points: Iterable[Point]) -> list[Point]:
        return [(x0 - crop[0] + u * (x1 - x0), y0 - crop[1] + v * (y1 - y0)) for u, v in points]

    draw = ImageDraw.Draw(local)
    for shape, points, value in _parts(subject, rng):
        xy = to_local(points)
        if shape == "stroke":
            draw.line(xy, fill=255, width=max(1, round(line * value)), joint="curve")
            continue
        mask = Image.new("L", local.size, 0)
        if shape == "ellipse":
            (ua, va), (ub, vb) = xy
            xy = [(min(ua, ub), va), (max(ua, ub), vb)]
            ImageDraw.Draw(mask).ellipse(xy, fill=255)
        else:
            ImageDraw.Draw(mask).polygon(xy, fill=255)
        local.paste(0, mask=mask)
        if value == 3:
            local.paste(255, mask=mask)
        elif value:
            local.paste(255, mask=ImageChops.multiply(mask, tones[int(value)]))
        if shape == "ellipse":
            draw.ellipse(xy, outline=255, width=max(1, round(line)))
        else:
            draw.line([*xy, xy[0]], fill=255, width=max(1, round(line)), joint="curve")
    ink.paste(local, crop[:2])


def _print(ink: Image.Image, rng: random.Random, style: _Style) -> Image.Image:
    """Ink pulled onto grainy, slightly mottled paper."""
    s = style.size
    noise = np.random.default_rng(rng.getrandbits(64))
    mottle = Image.fromarray(noise.normal(0.0, 4.0, (6, 6)).astype(np.float32))
    paper = (
        noise.standard_normal((s, s), dtype=np.float32) * style.grain
        + np.asarray(mottle.resize((s, s), Image.Resampling.BICUBIC))
    )[..., None] + np.asarray(style.paper, np.float32)
    alpha = np.asarray(ink, np.float32)[..., None] * (rng.uniform(0.9, 0.97) / 255.0)
    rgb = paper * (1.0 - alpha) + np.asarray(style.ink, np.float32) * alpha
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


# -------------------------------------------------------------------------- the dataset


def _make_item(task: tuple[int, int, int, str, str]) -> dict[str, Any]:
    """Draw, render and save item `index`; return its metadata record (its caption a list of
    five with `grammar="annotators"`)."""
    seed, index, image_size, images_dir, grammar = task
    scene = scene_for(seed, index)
    filename = f"synth_{index:06d}.png"
    image = render_scene(scene, image_size, _render_seed(seed, index))
    with atomic_open(os.path.join(images_dir, filename)) as handle:
        # Grainy paper barely compresses: the fastest level gives the same size.
        image.save(handle, format="PNG", compress_level=1)
    caption: str | list[str] = caption_for(scene)
    if grammar == "annotators":
        caption = list(language.annotate(scene, seed, index, look_for(seed, index)))
    record = {"id": index, "filename": filename, "caption": caption}
    if index >= TEST_INDEX_START:
        record[SPLIT_FIELD] = TEST_SPLIT
    return {**record, "scene": scene.to_dict()}


def _as_list(caption: str | list[str]) -> list[str]:
    return caption if isinstance(caption, list) else [caption]


def _clear_previous(metadata: Path) -> None:
    """Remove a previous synthetic dataset's metadata before its images are overwritten, so an
    interrupted run leaves no metadata at all; refuse to touch any other dataset's."""
    if not metadata.exists():
        return
    try:
        records = json.loads(metadata.read_text(encoding="utf-8"))
        synthetic = isinstance(records, list) and all("scene" in r for r in records)
    except (ValueError, TypeError):
        synthetic = False
    if not synthetic:
        raise FileExistsError(f"{metadata} is not a synthetic dataset's; not overwriting it")
    metadata.unlink()


def generate(
    out_dir: str | os.PathLike[str],
    n: int = 5141,
    image_size: int = 128,
    seed: int = 42,
    workers: int | None = None,
    progress: bool = True,
    test_n: int = 0,
    grammar: str = "simple",
) -> SyntheticSummary:
    """Draw `n` scenes to train and validate on, and `test_n` test scenes (items numbered from
    `TEST_INDEX_START`, marked `"split": "test"`), and write them in the `seed` format: the PNGs
    under processed/engraving/resized/, then, last and atomically, metadata/engraving_metadata.json.
    The same seed gives the same dataset, pixel for pixel, whatever the number of workers; the
    first `n` records do not depend on `test_n`. `grammar="simple"` gives each image its one
    caption of the 34-token grammar; `"annotators"` five captions (a list) by the annotators of
    `mmlib.data.language`, the images unchanged."""
    if grammar not in GRAMMARS:
        raise ValueError(f"grammar must be one of {', '.join(GRAMMARS)}, got {grammar!r}")
    if n < 1 or not 16 <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(
            f"need n >= 1 and 16 <= image_size <= {MAX_IMAGE_SIZE}, got n={n}, "
            f"image_size={image_size}"
        )
    if n > TEST_INDEX_START or test_n < 0:
        raise ValueError(
            f"need n <= {TEST_INDEX_START} (where the test images' numbers start) and "
            f"test_n >= 0, got n={n}, test_n={test_n}"
        )
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    started = time.perf_counter()
    root = Path(out_dir)
    metadata, images = root / METADATA_PATH, root / IMAGES_PATH
    check_output_folder(root, "out_dir")
    for folder in (metadata.parent, images):
        check_writable(folder, "choose another out_dir")
    _clear_previous(metadata)
    indices = [*range(n), *range(TEST_INDEX_START, TEST_INDEX_START + test_n)]
    tasks = [(seed, index, image_size, str(images), grammar) for index in indices]
    total = len(tasks)
    with contextlib.ExitStack() as stack:
        if workers == 1:
            results: Iterable[dict[str, Any]] = map(_make_item, tasks)
        else:
            pool = stack.enter_context(Pool(workers))
            chunk = max(1, min(64, total // (8 * workers)))
            results = pool.imap(_make_item, tasks, chunksize=chunk)
        bar = progress_bar(
            results, total=total, desc="synthetic engravings", unit="img", enabled=progress
        )
        records = list(bar)
    atomic_write_text(metadata, json.dumps(records))
    captions = [c for r in records for c in _as_list(r["caption"])]
    report = caption_report(captions, [])
    return SyntheticSummary(
        out_dir=root,
        n=n,
        image_size=image_size,
        seed=seed,
        seconds=time.perf_counter() - started,
        distinct_captions=report["distinct_captions"],
        vocabulary_size=report["vocabulary_size"],
        test_n=test_n,
    )
