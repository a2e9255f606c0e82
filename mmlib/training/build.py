"""`build_run`: STEP 1..5 of a prepared run (data, tokenizer, loaders, model and optimizer, a
tokenization check), printed as it goes, and the run folder's files around them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmlib import checkpoint as ckpt
from mmlib.config import ConfigError
from mmlib.data.sources import SplitData, load_split
from mmlib.data.tokenizer import Tokenizer, build_tokenizer, caption_length_report
from mmlib.files import check_writable, remove_temporaries
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import make_optimizer
from mmlib.training.loaders import RunLoaders, make_run_loaders
from mmlib.training.setup import PreparedRun

Log = Callable[[str], None]


@dataclass
class RunParts:
    """What STEP 1..5 build: the `tokenizer`, the datasets and `loaders`, the number of
    `test_images` held out, the `model` (and `forward`, the model or its
    DistributedDataParallel), the AdamW `optimizer`, its warm-up cosine `scheduler` over
    `total_steps` optimizer steps, and the fp16 loss `scaler` (disabled in other precisions)."""

    tokenizer: Tokenizer
    loaders: RunLoaders
    test_images: int
    model: MultimodalModel
    forward: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    total_steps: int


def build_run(run: PreparedRun, precision: str, log: Log, progress: bool) -> RunParts:
    """Seed torch with `config.seed`, check that the run folder and the image cache can be
    written, then STEP 1..5 (a resumed run loads its own tokenizer). Nothing is written into
    the run folder yet: `write_run_files` does that once the run has loaded."""
    config = run.config
    torch.manual_seed(config.seed)
    open_folders(run, log)
    log("STEP 1: Loading dataset...")
    split = load_split(config)
    log(split.source.message)
    log(f"Total captions found: {split.report.captions}")
    log(split.report.problems())

    log("\nSTEP 2: Building tokenizer...")
    tokenizer = _tokenizer(run, split)
    log(tokenizer.summary())
    captions = [caption for record in split.train for caption in record.captions]
    log(caption_length_report(tokenizer, captions, config.max_caption_length))

    log("\nSTEP 3: Creating data loaders...")
    loaders = make_run_loaders(run, split, tokenizer, progress)
    log(f"Train samples: {len(loaders.train_set)}")
    log(f"Val samples: {len(loaders.val_set)}")
    log(
        f"Batches per epoch: {len(loaders.train_loader)}  "
        f"({len(loaders.train_set)} / {config.batch_size})"
    )
    test_images = len(split.test)  # 0: the final figures come from validation
    log(f"Test images: {test_images} (held out for the final figures only)")

    log("\nSTEP 4: Building model...")
    model = MultimodalModel(config, len(tokenizer)).to(run.device)
    forward = DistributedDataParallel(model) if run.world_size > 1 else model
    log(f"Total parameters: {sum(p.numel() for p in model.parameters()):,}")
    log(model.summary())
    optimizer = make_optimizer(model, config, run.device.type)
    total_steps = math.ceil(len(loaders.train_loader) / config.grad_accum_steps) * config.num_epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(config.warmup_steps, total_steps)
    )
    scaler = torch.amp.GradScaler(run.device.type, enabled=precision == "fp16")

    log("\nSTEP 5: Testing tokenization...")
    example = split.val[0].captions[0]
    encoded = tokenizer.encode(example, config.max_caption_length)
    log(f"Original: {example}")
    log(f"Encoded shape: {encoded.shape}")
    log(f"Decoded: {tokenizer.decode(encoded)}")
    return RunParts(
        tokenizer, loaders, test_images, model, forward, optimizer, scheduler, scaler, total_steps
    )


def open_folders(run: PreparedRun, log: Log) -> None:
    """Before the expensive work: check that the run folder and the image cache can be
    written, and remove what saves killed midway left in the run folder."""
    if run.restart_note:
        log(run.restart_note)
    if run.is_main:
        check_writable(run.run_dir, "set checkpoint_dir (or --run) to a writable folder")
        removed = remove_temporaries(run.run_dir)
        if removed:
            names = ", ".join(path.name for path in removed)
            log(f"Removed {len(removed)} temporary file(s) of interrupted saves: {names}")
    check_writable(run.config.cache_dir, "set cache_dir to a writable folder")


def clear_earlier_run(run: PreparedRun, log: Log) -> None:
    """A fresh run's start: remove the outputs of an earlier run in its folder, saying so."""
    removed = ckpt.clear_run_outputs(run.run_dir)
    if removed:
        log(
            f"{run.run_dir} held an earlier run: a fresh run replaces its "
            f"{len(removed)} checkpoint, log and metrics file(s) "
            f"(to continue that run instead, use --resume {run.run_dir.name})"
        )


def write_run_files(run: PreparedRun, tokenizer: Tokenizer) -> None:
    """`config.json` and, for a fresh run, the tokenizer's files (a resume keeps the run's own,
    checked, tokenizer files)."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    run.config.save(run.run_dir / ckpt.CONFIG_FILE)
    if run.resume_state is None:
        ckpt.save_run_tokenizer(tokenizer, run.run_dir)


def save_epoch_checkpoint(run: PreparedRun, model: nn.Module, epoch: int) -> None:
    """After `epoch` epochs, `epoch_NNN.pt` (its model) every `save_interval` epochs, keeping
    the last `keep_checkpoints` (none if 0)."""
    config = run.config
    if config.keep_checkpoints and epoch % config.save_interval == 0:
        name = f"epoch_{epoch - 1:03d}.pt"  # epoch_000.pt after the first, as before
        ckpt.save_checkpoint({"model": model.state_dict(), "epoch": epoch}, run.run_dir / name)
        for old in sorted(run.run_dir.glob("epoch_*.pt"))[: -config.keep_checkpoints]:
            old.unlink()


def continue_schedule(
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    total_steps: int,
    saved_total: int | None,
    num_epochs: int,
    log: Log,
) -> None:
    """After a resume loaded `scheduler`'s state: set the next step's learning rate from this
    run's schedule, which spans `num_epochs` epochs (`total_steps` steps). Resumed with more
    epochs than before (a saved `saved_total` other than `total_steps`), the run follows the
    cosine re-planned over them from the step it reached (not the old schedule's end, 0), and
    `log` says so."""
    step, optimizer = scheduler.last_epoch, scheduler.optimizer
    rates = zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
    for group, (base, factor) in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = base * factor(step)
    if saved_total is not None and saved_total != total_steps:
        log(
            f"The learning-rate schedule now spans {num_epochs} epochs "
            f"({total_steps} steps, not {saved_total}): from step {step} the learning "
            f"rate is {optimizer.param_groups[0]['lr']:.2e}, decaying to 0 at the end"
        )


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up, then cosine decay to zero at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _tokenizer(run: PreparedRun, split: SplitData) -> Tokenizer:
    """A fresh run's tokenizer, built on its training captions; a resumed run's own, whose kind
    its config must keep (ConfigError otherwise)."""
    if run.resume_state is not None:
        tokenizer = ckpt.load_run_tokenizer(run.run_dir)
        if tokenizer.kind != run.config.tokenizer:
            raise ConfigError(
                f"tokenizer={run.config.tokenizer!r}: {run.run_dir} was trained with the "
                f"{tokenizer.kind!r} tokenizer ({ckpt.TOKENIZER_FILE}), which a resume keeps; "
                "leave tokenizer as the run has it, or train a new run"
            )
        return tokenizer
    captions = [caption for record in split.train for caption in record.captions]
    return build_tokenizer(run.config, captions)
