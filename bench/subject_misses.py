"""Where a synthetic run's subject match misses: by number of subjects drawn, and by kind of miss.

    .venv/bin/python bench/subject_misses.py RUN [--checkpoint-dir DIR] [--examples N]

Captions the run's test split (its validation split where it has none) greedily, reads each
caption's subjects with `language.subjects_named` and compares them with the scene's
(`scene_subjects`), as `metrics.json`'s subject match does. Prints the share matched for each
number of subject kinds in the scene, how the misses split (a kind read as another, a subject
left out, a wrong count, an extra subject), and a few misses with a reference caption.
"""

from __future__ import annotations

import argparse
from collections import Counter

from mmlib.data.images import build_image_cache
from mmlib.data.language import subjects_named
from mmlib.data.sources import load_split
from mmlib.evaluation.metrics import scene_subjects
from mmlib.inference.predictor import Predictor


def miss_kind(truth: dict[str, int], read: dict[str, int]) -> str:
    """How a caption's subjects `read` differ from the scene's `truth`."""
    if read == truth:
        return "matched"
    if set(read) == set(truth):
        return "a wrong count"
    if set(read) < set(truth):
        return "a subject left out"
    if set(read) > set(truth):
        return "an extra subject"
    return "a kind read as another"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint-dir", default="checkpoints")
    parser.add_argument("--examples", type=int, default=10)
    args = parser.parse_args()
    predictor = Predictor.load(args.run, checkpoint_dir=args.checkpoint_dir, device="cpu")
    config = predictor.config
    split = load_split(config)
    records = split.test or split.val
    images = build_image_cache(records, config.image_size, config.resize_mode, progress=False)
    captions = predictor.caption(images)
    kinds: Counter[str] = Counter()
    matched: Counter[int] = Counter()
    drawn: Counter[int] = Counter()
    examples = []
    for record, caption in zip(records, captions, strict=True):
        truth = scene_subjects(record)
        if truth is None:
            raise SystemExit(f"{args.run}: record {record.id} has no scene (not synthetic data)")
        kind = miss_kind(truth, subjects_named(caption))
        kinds[kind] += 1
        drawn[len(truth)] += 1
        matched[len(truth)] += kind == "matched"
        if kind != "matched" and len(examples) < args.examples:
            examples.append(f"  {kind}: wrote {caption!r}; one reference: {record.captions[0]!r}")
    print(f"{args.run}: {len(records)} images, subject match {kinds['matched'] / len(records):.3f}")
    print("kinds of subject drawn  matched")
    for count in sorted(drawn):
        print(f"{count:>21}  {matched[count]}/{drawn[count]}")
    print("misses:", ", ".join(f"{k} {n}" for k, n in kinds.most_common() if k != "matched"))
    print("\n".join(examples))


if __name__ == "__main__":
    main()
