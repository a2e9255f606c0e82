"""Where `make train`'s time goes: each stage's parts, in CPU seconds on a fixed thread count.

CPU time (`time.process_time`) rather than wall-clock, so other jobs on the machine move the
figures less; with nothing else running the two agree. Parts: a training step with and without the
perceptual term, under bf16 autocast and compiled (`fast_path=on`, after its compiling), the
forward and backward passes of its modules and the optimizer step, the per-epoch eval-mode passes,
a step of fitting `imagine.pt`, and the evaluation's greedy and beam captions and its imagining,
with the config and data of a trained run (`--run`, a folder or a name under `checkpoints/`): by
default the course model `make train` leaves (`checkpoints/cpu-tiny`). Ends with `make train`'s
composition: how many of each part one run does, and their product.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mmlib.checkpoint import CheckpointError
from mmlib.config import Config
from mmlib.data.images import build_image_cache, to_pixels
from mmlib.data.language import subjects_named
from mmlib.data.sources import load_split
from mmlib.evaluation.metrics import evaluate_imagination
from mmlib.inference.imagine import (
    LatentFlow,
    caption_embeddings,
    fit_steps,
    image_latents,
    train_flow,
)
from mmlib.inference.predictor import Predictor
from mmlib.model.losses import caption_loss
from mmlib.training.trainer import Trainer


def cpu_seconds(work: Callable[[], object], repeats: int) -> float:
    """CPU seconds of one call of `work`, the mean of `repeats` after one warm-up call."""
    work()
    started = time.process_time()
    for _ in range(repeats):
        work()
    return (time.process_time() - started) / repeats


def step_seconds(run_config: Config, steps: int, **overrides: object) -> tuple[float, int]:
    """CPU seconds of one training step of the run's config (first batches of its data), and
    the steps of an epoch."""
    trainer = quiet_trainer(run_config.with_overrides(overrides))
    batches = itertools.cycle(
        [(b["images"], b["tokens"]) for b in itertools.islice(iter(trainer.train_loader), 4)]
    )
    trainer.model.train()
    return cpu_seconds(lambda: trainer.step([next(batches)]), steps), len(trainer.train_loader)


def step_parts_seconds(run_config: Config, repeats: int) -> dict[str, float]:
    """CPU seconds of each part of one training step (forward and backward of each module on a
    batch of the run's data, then the optimizer's step): where a step's time goes."""
    trainer = quiet_trainer(run_config)
    batch = next(iter(trainer.train_loader))
    images, tokens = batch["images"], batch["tokens"]
    model, decoder = trainer.model, trainer.model.caption_decoder
    model.train()
    latent, features = model.image_encoder(images)
    memory = decoder.memory(latent, features).detach()
    hidden = torch.randn(*tokens[:, 1:].shape, decoder.width, requires_grad=True)
    inputs = tokens[:, :-1]

    def caption_body() -> None:
        mask = decoder.causal_mask(inputs.shape[1])
        out = decoder.decoder(decoder.embed(inputs), memory, tgt_mask=mask, tgt_is_causal=True)
        out.square().mean().backward()

    def image_parts() -> None:
        model.image_decoder(model.image_encoder(images)[0]).square().mean().backward()

    def output_layer() -> None:
        caption_loss(decoder.output(hidden), tokens[:, 1:]).backward()

    def text_encoder() -> None:
        model.encode_text(tokens).square().mean().backward()

    parts = {
        "image encoder and decoder": image_parts,
        "caption decoder's layers": caption_body,
        "output layer and caption loss": output_layer,
        "text encoder": text_encoder,
        "optimizer step": trainer.optimizer.step,
    }
    return {name: cpu_seconds(work, repeats) for name, work in parts.items()}


def eval_passes_seconds(run_config: Config) -> float:
    """CPU seconds of one epoch's eval-mode passes (validation and the training subset)."""
    trainer = quiet_trainer(run_config)
    return cpu_seconds(lambda: (trainer.validate(), trainer.validate_train()), 1)


def quiet_trainer(config: Config) -> Trainer:
    """A prepared Trainer of `config` that prints nothing."""
    trainer = Trainer(config, progress=False)
    trainer.log = lambda *args, **kwargs: None
    trainer.prepare()
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--run", default="cpu-tiny", help="a trained run: a folder, or a name under checkpoints/"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="training steps timed per variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = Predictor.load(args.run, device="cpu")
    model, tokenizer, config = predictor.model, predictor.tokenizer, predictor.config
    with tempfile.TemporaryDirectory() as scratch:
        scratch_config = config.with_overrides({"checkpoint_dir": Path(scratch)})
        step, batches = step_seconds(scratch_config, args.steps)
        no_perceptual, _ = step_seconds(scratch_config, args.steps, perceptual_loss_weight=0.0)
        bf16, _ = step_seconds(scratch_config, args.steps, precision="bf16")
        compiled, _ = step_seconds(scratch_config, args.steps, fast_path="on")
        evals = eval_passes_seconds(scratch_config)
        step_parts = step_parts_seconds(scratch_config, args.steps)

    split = load_split(config)
    train_images = build_image_cache(
        split.train, config.image_size, config.resize_mode, cache_dir=config.cache_dir
    )
    latents = image_latents(model, train_images)
    captions = [r.captions[0] for r in split.train]
    embeddings = caption_embeddings(model, tokenizer, captions)
    flow = LatentFlow(embeddings.shape[1], latents.shape[1])
    flow_step = cpu_seconds(lambda: train_flow(flow, latents, embeddings, steps=50), 1) / 50
    flow_steps = fit_steps(len(captions), config.imagine_steps)

    val_images = build_image_cache(
        split.val, config.image_size, config.resize_mode, cache_dir=config.cache_dir
    )
    pixels = to_pixels(val_images)
    with torch.no_grad():
        greedy = cpu_seconds(lambda: model.generate(pixels), 1)
        beam = cpu_seconds(lambda: model.generate(pixels, method="beam"), 1)
    prompts = [r.captions[0] for r in split.val]
    try:
        imagining = cpu_seconds(
            lambda: evaluate_imagination(predictor, prompts, subjects_named, config.seed), 1
        )
    except CheckpointError as error:  # a run trained with --no-imagine
        print(f"imagining not timed: {error}")
        imagining = 0.0

    epochs = config.num_epochs
    parts = {
        "training steps": epochs * batches * step,
        "per-epoch eval passes": epochs * evals,
        f"fitting imagine.pt ({flow_steps} steps)": flow_steps * flow_step,
        "evaluation: greedy captions": greedy,
        "evaluation: beam captions (width 4)": beam,
        "evaluation: imagining and sampled pairs": imagining,
    }
    print(f"CPU seconds on {args.threads} thread(s)")
    print(f"training step (batch {config.batch_size}): {step:.3f}")
    print(f"  without the perceptual term: {no_perceptual:.3f} ({no_perceptual / step - 1:+.0%})")
    print(f"  under bf16 autocast: {bf16:.3f} ({bf16 / step - 1:+.0%})")
    print(f"  compiled, channels_last (fast_path=on): {compiled:.3f} ({compiled / step - 1:+.0%})")
    print("  its parts, forward and backward (the perceptual term's is the difference above):")
    for name, seconds in step_parts.items():
        print(f"    {name:32s} {seconds:.3f}  {seconds / step:4.0%}")
    print(f"fitting imagine.pt: {flow_step * 1000:.1f} ms per step")
    print(f"\nmake train ({epochs} epochs x {batches} steps), the parts it runs, in CPU minutes")
    print(f"(wall-clock: about CPU time / {args.threads} where the threads are kept busy):")
    total = sum(parts.values())
    for name, seconds in parts.items():
        print(f"  {name:44s} {seconds / 60:5.1f}  {seconds / total:4.0%}")
    print(f"  {'total':44s} {total / 60:5.1f}")


if __name__ == "__main__":
    main()
