"""The annotators' captions beside real ones: the issue-24 statistics, and how long they take.

    .venv/bin/python bench/bench_language.py [--seed 42 --n 5141]

Prints, with the issue's word rule (lower-cased runs of letters [a-z]+):
- the synthetic captions of the first 900 images (the next 100 for out-of-vocabulary) beside
  the Flickr8k reference table (the captions have no slips of the pen: every word is a real one);
- the synthetic 180/20 figures beside the real 200-image sample's (first 180 images, last 20)
  when it is present: ../shared/real-samples/flickr8k-200, or $MMLIB_REAL_SAMPLES;
- the share of tokens the scene cannot predict, and the time to caption `--n` images without
  drawing them (the issue's budget: 60 s for the whole `data synth` of 5,141 images).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mmlib.data import language
from mmlib.data.language import CaptionStatistics, caption_statistics
from mmlib.data.readers import load_records
from mmlib.data.synthetic import annotations_for, look_for, scene_for

# Reference constants from issue 24, measured on 900 Flickr8k photographs, 4,500 captions,
# 100 more for validation (words: the lower-cased runs of letters [a-z]+).
FLICKR8K_SOURCE = "900 Flickr8k photographs, 4,500 captions, 100 more for validation"
FLICKR8K = {
    "word types": 3063,
    "hapax share": 0.44,
    "mean length": 11.0,
    "OOV min_freq 1": 0.034,
    "OOV min_freq 2": 0.050,
    "OOV min_freq 3": 0.065,
    "OOV min_freq 5": 0.083,
    "OOV min_freq 10": 0.130,
    "Zipf slope": -1.23,
}
# The ranges for the synthetic 900/100 figures.
RANGES = {
    "word types": (2144, 3982),
    "hapax share": (0.35, 0.55),
    "mean length": (9.0, 14.0),
    "OOV min_freq 5": (0.05, 0.12),
    "Zipf slope": (-1.4, -1.0),
}
REAL_SAMPLES = Path(__file__).resolve().parents[1].parent / "shared/real-samples/flickr8k-200"


def figures(stats: CaptionStatistics) -> dict[str, float]:
    """The table's rows for one caption set."""
    rows: dict[str, float] = {
        "word types": stats.word_types,
        "hapax share": stats.hapax_share,
        "mean length": stats.mean_length,
    }
    rows |= {f"OOV min_freq {k}": share for k, share in stats.oov.items()}
    rows["Zipf slope"] = stats.zipf_slope
    return rows


def shown(name: str, value: float) -> str:
    if name == "word types":
        return f"{value:,.0f}"
    if "share" in name or name.startswith("OOV"):
        return f"{100 * value:.1f} %"
    return f"{value:.2f}"


def table(columns: dict[str, dict[str, float]], ranges: dict[str, tuple[float, float]]) -> None:
    """Rows of statistics, one column per caption set, and the issue's range where it has one."""
    names = list(next(iter(columns.values())))
    print(f"{'statistic':<17}" + "".join(f"{title:>22}" for title in columns) + "   range")
    for name in names:
        cells = "".join(f"{shown(name, column[name]):>22}" for column in columns.values())
        low_high = ranges.get(name)
        bounds = f"   {shown(name, low_high[0])} .. {shown(name, low_high[1])}" if low_high else ""
        print(f"{name:<17}{cells}{bounds}")


def synthetic_split(seed: int, train: int, val: int) -> CaptionStatistics:
    captions = [annotations_for(seed, index) for index in range(train + val)]
    return caption_statistics(
        [c for five in captions[:train] for c in five],
        [c for five in captions[train:] for c in five],
    )


def real_split(folder: Path, train: int) -> CaptionStatistics:
    records, _ = load_records(folder)
    return caption_statistics(
        [c for record in records[:train] for c in record.captions],
        [c for record in records[train:] for c in record.captions],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n", type=int, default=5141, help="images to caption for the timing")
    args = parser.parse_args()

    print(f"Synthetic 900/100 (seed {args.seed}) beside Flickr8k ({FLICKR8K_SOURCE}):")
    synthetic = figures(synthetic_split(args.seed, 900, 100))
    table({"synthetic": synthetic, "Flickr8k": FLICKR8K}, RANGES)

    folder = Path(os.environ.get("MMLIB_REAL_SAMPLES", REAL_SAMPLES))
    if folder.is_dir():
        print(f"\nSynthetic 180/20 beside the real sample at {folder} (first 180, last 20):")
        table(
            {
                "synthetic 180/20": figures(synthetic_split(args.seed, 180, 20)),
                "real sample 180/20": figures(real_split(folder, 180)),
            },
            {},
        )
    else:
        print(f"\n(no real sample at {folder}: set MMLIB_REAL_SAMPLES to compare with one)")

    unpredictable = total = 0
    for index in range(1000):
        scene, look = scene_for(args.seed, index), look_for(args.seed, index)
        voice, tokens = language.voice_tokens(scene, args.seed, index, look)
        unpredictable, total = unpredictable + voice, total + tokens
    print(
        f"\nTokens the scene cannot predict (the annotators' voice slots), "
        f"first 1,000 images: {100 * unpredictable / total:.1f} % (at most 15 %)"
    )
    started = time.perf_counter()
    for index in range(args.n):
        annotations_for(args.seed, index)
    seconds = time.perf_counter() - started
    print(f"Five captions for each of {args.n:,} images, without drawing them: {seconds:.2f} s")


if __name__ == "__main__":
    main()
