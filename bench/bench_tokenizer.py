"""Time `WordTokenizer.batch_encode` on the 5,141 captions of the synthetic set."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from mmlib.data.tokenizer import WordTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--metadata", type=Path, default=Path("data/synthetic/metadata/engraving_metadata.json")
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-length", type=int, default=100)
    args = parser.parse_args()

    captions = [record["caption"] for record in json.loads(args.metadata.read_text())]
    start = time.perf_counter()
    tokenizer = WordTokenizer().build_vocab(captions)
    build_s = time.perf_counter() - start
    timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        batch = tokenizer.batch_encode(captions, max_length=args.max_length)
        timings.append(time.perf_counter() - start)
    median = statistics.median(timings)
    print(f"captions: {len(captions)}, vocabulary: {len(tokenizer)} tokens")
    print(f"build_vocab: {build_s * 1000:.1f} ms")
    print(
        f"batch_encode -> {tuple(batch.shape)}: median {median * 1000:.1f} ms over "
        f"{args.repeats} runs ({len(captions) / median:,.0f} captions/s)"
    )


if __name__ == "__main__":
    main()
