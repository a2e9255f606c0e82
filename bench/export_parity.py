"""How closely an exported run matches the eager model, on its validation captions.

    .venv/bin/python bench/export_parity.py [--run cpu-tiny] [--n 64]

Exports the run in both formats into a temporary folder, then prints, per format, the largest
difference of the text -> image graph's output from eager `imagine_pixels` (same tokens, same
noise), and how many of the `n` imagined uint8 images are within one level of `Predictor.imagine`.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import torch

from mmlib.data.sources import load_split
from mmlib.inference.export_runtime import imagine_noise
from mmlib.inference.imagine import CANDIDATES, imagine_pixels
from mmlib.inference.predictor import Predictor
from mmlib.serving.export import FORMATS, export_run


def load_runtime(folder: Path):
    """The export's own runtime.py, imported from the folder."""
    spec = importlib.util.spec_from_file_location("runtime", folder / "runtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_exported(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="cpu-tiny")
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    predictor = Predictor.load(args.run)
    if predictor.imagination is None:
        raise SystemExit(
            f"{args.run}: no imagine.pt; fit it: python -m mmlib fit-imagine {args.run}"
        )
    flow = predictor.imagination.flow
    prompts = [r.captions[0] for r in load_split(predictor.config).val[: args.n]]
    tokens = predictor.tokenizer.batch_encode(prompts, predictor.config.max_caption_length)
    noise = imagine_noise(len(prompts), CANDIDATES, flow.components, seed=0)
    with torch.no_grad():
        text = predictor.model.encode_text(tokens)
        eager = imagine_pixels(predictor.model, flow, text, torch.from_numpy(noise)).numpy()
    drawn = predictor.imagine(prompts).numpy().astype(np.int16)
    with tempfile.TemporaryDirectory() as folder:
        for format in FORMATS:
            exported = load_runtime(export_run(args.run, format, out=Path(folder) / format))
            difference = np.abs(exported.text_to_image(tokens.numpy(), noise) - eager).max()
            levels = np.abs(exported.imagine(prompts).astype(np.int16) - drawn).max((1, 2, 3))
            print(
                f"{format}: text_to_image max |exported - eager| = {difference:.2e}; "
                f"{int((levels <= 1).sum())}/{len(prompts)} imagined images within one level",
                flush=True,
            )


if __name__ == "__main__":
    main()
