"""The demo's memory across large uploads: RSS after the first request against after many.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/bench_demo_memory.py [--requests 15] [--side 4096]
        [--keep-memory]

An untrained tiny run is written to a temporary folder and its demo built (`build_demo`, not
launched); each request calls the caption endpoint's own function, the one Gradio calls with an
upload's payload, on worker threads in turn as Gradio's server does (`WORKER_THREADS` threads
that stay alive; glibc gives each its own malloc arena). The uploads are `--side` x `--side`
PNGs (an engraving-like drawing, well under the demo's 20 MB upload limit), each one new. It
prints the resident set size (VmRSS) before, after the first request and after the last: the
demo gives each request's memory back, so the growth after the first must stay under 50 MB.
`--keep-memory` turns `mmlib.serving.demo.release_memory` off (requests still run on the demo's one
request thread), to see what a request holds without it.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from mmlib.checkpoint import BEST_FILE, CONFIG_FILE, save_checkpoint, save_run_tokenizer
from mmlib.config import Config
from mmlib.data.tokenizer import WordTokenizer
from mmlib.inference.imagine import IMAGINE_FILE, Imagination
from mmlib.inference.predictor import Predictor
from mmlib.model.multimodal import MultimodalModel
from mmlib.serving import demo as demo_module
from mmlib.serving.demo import build_demo

MIB = 2**20
ALLOWED_GROWTH_MIB = 50
# Gradio runs each request on one of its idle worker threads; glibc gives threads their own
# malloc arenas, and each arena keeps what its thread freed, so requests go round these threads.
WORKER_THREADS = 4
CAPTIONS = ["an engraving of a ship beside a tower", "two birds above a house by a river"]


def rss_mib() -> float:
    """This process's resident set size in MiB (Linux: /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this bench needs Linux)")


def write_run(run_dir: Path) -> Path:
    """An untrained tiny run: config, tokenizer, best.pt and imagine.pt."""
    config = Config.preset("cpu-tiny").with_overrides({"run_name": run_dir.name})
    config.save(run_dir / CONFIG_FILE)
    tokenizer = WordTokenizer(100).build_vocab(CAPTIONS)
    save_run_tokenizer(tokenizer, run_dir)
    torch.manual_seed(0)
    save_checkpoint(MultimodalModel(config, len(tokenizer)).state_dict(), run_dir / BEST_FILE)
    imagination = Imagination(config.embedding_dim, config.latent_dim)
    save_checkpoint(imagination.state_dict(), run_dir / IMAGINE_FILE)
    return run_dir


def write_upload(path: Path, side: int, seed: int) -> Path:
    """A side x side PNG: dark strokes on a paper tone, different for each seed."""
    image = Image.new("RGB", (side, side), (235, 225, 205))
    draw = ImageDraw.Draw(image)
    for x in range(seed % 7, side, 7):
        draw.line([(x, 0), (side - x, side)], fill=(40 + seed, 30, 20), width=2)
    image.save(path, compress_level=1)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--keep-memory", action="store_true", help="no release_memory()")
    args = parser.parse_args()
    if args.keep_memory:
        demo_module.release_memory = lambda: None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        predictor = Predictor.load(write_run(root / "run"))
        demo = build_demo(predictor, CAPTIONS)
        caption = next(fn.fn for fn in demo.fns.values() if fn.api_name == "caption")
        uploads = [write_upload(root / f"{i}.png", args.side, i) for i in range(args.requests)]
        size = sum(path.stat().st_size for path in uploads) / len(uploads) / MIB
        gc.collect()
        before = rss_mib()
        print(f"{args.requests} uploads of {args.side}x{args.side} PNG ({size:.1f} MiB each)")
        print(f"RSS before the first request:   {before:8.1f} MiB")
        workers = [ThreadPoolExecutor(max_workers=1) for _ in range(WORKER_THREADS)]
        for index, upload in enumerate(uploads):
            worker = workers[index % WORKER_THREADS]
            worker.submit(caption, {"path": str(upload)}).result()
            if index == 0:
                first = rss_mib()
                print(f"RSS after the first request:    {first:8.1f} MiB")
        last = rss_mib()
        for worker in workers:
            worker.shutdown()
    growth = last - first
    verdict = "ok" if growth <= ALLOWED_GROWTH_MIB else f"OVER {ALLOWED_GROWTH_MIB} MiB"
    print(f"RSS after request {args.requests:<3}:          {last:8.1f} MiB")
    print(f"held over the level before:     {last - before:+8.1f} MiB")
    print(f"growth after the first request: {growth:+8.1f} MiB ({verdict})")


if __name__ == "__main__":
    main()
