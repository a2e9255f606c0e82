"""The README's picture, from the course model (`make train` first): three test engravings, each
with its caption and the one the model wrote, and the image it imagines from that caption.

    .venv/bin/python bench/readme_figure.py [docs/images/course-model.png]
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mmlib.course import course_model_config, enter_project_root
from mmlib.data import load_split
from mmlib.files import atomic_open
from mmlib.inference import Predictor

RUN = "checkpoints/cpu-tiny"
SHOWN = 3


def main(out: Path) -> None:
    enter_project_root()
    predictor = Predictor.load(RUN)
    test = load_split(course_model_config(RUN)).test[:SHOWN]
    truths = [record.captions[0] for record in test]
    images = predictor.load_images([record.image_path for record in test])
    written = predictor.caption(images)
    imagined = predictor.imagine(truths)
    figure, axes = plt.subplots(
        3, SHOWN, figsize=(2.6 * SHOWN, 6.6), gridspec_kw={"height_ratios": [3, 1.6, 3]}
    )
    for column in range(SHOWN):
        top, middle, bottom = axes[0][column], axes[1][column], axes[2][column]
        top.imshow(images[column].permute(1, 2, 0).numpy())
        top.set_title("a test engraving", fontsize=9)
        middle.text(0, 0.5, _captions(truths[column], written[column]), fontsize=8, va="center")
        middle.axis("off")
        bottom.imshow(imagined[column].permute(1, 2, 0).numpy())
        bottom.set_title("imagined from its caption", fontsize=9)
        for axis in (top, bottom):
            axis.set_xticks([])
            axis.set_yticks([])
    figure.tight_layout()
    with atomic_open(out) as handle:
        figure.savefig(handle, format="png", dpi=72)
    print(f"wrote {out}")
    for truth, caption in zip(truths, written, strict=True):
        print(f"  truth: {truth}\n  model: {caption}")


def _captions(truth: str, written: str) -> str:
    return (
        f"its caption:\n{textwrap.fill(truth, 34)}\nthe model wrote:\n{textwrap.fill(written, 34)}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/course-model.png"))
