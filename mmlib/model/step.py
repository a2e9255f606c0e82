"""The one training step: forward, losses, backward, clipping and the optimizer step.

`TrainingStep` is what `Trainer` runs for every optimizer step, what the learning-rate range
test (`mmlib.training.lr_find`) runs at each learning rate, and what the memory estimator
(`mmlib.sizing.memory`) runs on fake tensors, so what the estimate measures and the range test
explores is exactly what training does.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.functional import pad
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mmlib.config import Config
from mmlib.model.losses import (
    Losses,
    LossWeights,
    alignment_chance,
    alignment_loss,
    compute_losses,
    same_caption_mask,
)
from mmlib.model.multimodal import ModelOutput, MultimodalModel
from mmlib.tokens import PAD_ID

MicroBatch = tuple[Tensor, Tensor]  # images [B, C, S, S] in [-1, 1], tokens [B, L]
COMPONENTS = ("total", "image", "caption", "alignment")
# What a step reports: the loss components, then the alignment loss at chance level.
REPORTED = (*COMPONENTS, "alignment_chance")


def notice(line: str) -> None:
    """One line on stderr that leaves a running progress bar intact."""
    tqdm.write(line, file=sys.stderr)


def short_reason(error: BaseException, limit: int = 160) -> str:
    """The error's class and the first line of its message, at most `limit` characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def make_optimizer(model: nn.Module, config: Config, device_type: str) -> torch.optim.AdamW:
    """AdamW as training uses it: fused on CUDA, the per-tensor loop elsewhere and where the
    fused kernel is refused (then with one line that says so)."""
    lr, weight_decay = config.learning_rate, config.weight_decay
    if device_type == "cuda":
        try:
            return torch.optim.AdamW(
                model.parameters(), lr=lr, weight_decay=weight_decay, fused=True
            )
        except RuntimeError as error:
            notice(f"fused AdamW refused ({short_reason(error)}); using AdamW's default one")
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def unfuse(optimizer: torch.optim.Optimizer) -> None:
    """Turn a fused AdamW that has not yet kept any state into AdamW's default one, in place
    (the scheduler and the Trainer hold this optimizer)."""
    optimizer.state.clear()  # a failed fused step may have counted its step already
    optimizer.defaults["fused"] = False
    for group in optimizer.param_groups:
        group["fused"] = False
    # Set by a fused AdamW (and by GradScaler for it), read by the scaler and by AdamW's step.
    optimizer._step_supports_amp_scaling = False  # type: ignore[attr-defined]
    for name in ("grad_scale", "found_inf"):
        optimizer.__dict__.pop(name, None)


def autocast_for(device_type: str, precision: str) -> AbstractContextManager[Any]:
    """Autocast to bf16 or fp16 on `device_type`; nothing for fp32."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type, dtype=dtype)


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step saw.

    `sums` is [total, image, caption, alignment, alignment chance] (`REPORTED`), each multiplied
    by the samples it was measured on and added over the step's micro-batches (and processes);
    `samples` counts those samples, so `sums / samples` is the step's mean. The alignment chance
    is the alignment loss a model would get that cannot tell the batch apart
    (`mmlib.model.losses.alignment_chance`). `finite` is False when the step was skipped because
    the gradient norm was not finite.
    """

    sums: Tensor
    samples: int
    grad_norm: Tensor
    finite: bool

    @property
    def means(self) -> Tensor:
        """`REPORTED` averaged over the step's samples."""
        return self.sums / max(self.samples, 1)


class TrainingStep:
    """One optimizer step over a group of micro-batches (gradient accumulation).

    For each micro-batch: forward and losses under autocast (unless fp32), backward of the total
    divided by the number of micro-batches in the group, so a group of any size (a partial one
    at the end of an epoch included) steps on the mean gradient of what it holds. Then unscale
    (fp16), clip to `config.gradient_clip`, step unless the gradient norm is not finite (fp16
    leaves that to its scaler), update the scaler, set the gradients to None and advance the
    scheduler.

    Several processes (`world_size > 1`, `forward` a `DistributedDataParallel`): the losses are
    those of the global batch, and micro-batches that do not step skip the gradient all-reduce
    (`no_sync`). `scaler` defaults to a disabled one (fp16's loss scaling is then left out, as
    the memory estimate does); `scheduler` to none.

    `fast` (`Config.resolve_fast_path`): the model and each batch's images in channels_last,
    the tokens padded to `config.max_caption_length` (so that compile sees one shape instead of
    recompiling for each batch's longest caption), and `forward` compiled with torch.compile
    unless `compiled` is False. Compiling happens at the first step; if it fails there, that
    step runs again on the eager `forward` (from the same random state, no gradient kept), which
    every later step keeps, and one line says so. Likewise a fused AdamW whose first step fails
    becomes AdamW's default one.
    """

    def __init__(
        self,
        model: MultimodalModel,
        optimizer: torch.optim.Optimizer,
        config: Config,
        precision: str,
        *,
        forward: nn.Module | None = None,
        scaler: torch.amp.GradScaler | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        world_size: int = 1,
        fast: bool = False,
        compiled: bool = True,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.precision = precision
        self.forward = model if forward is None else forward
        self.device = next(model.parameters()).device
        self.scaler = scaler or torch.amp.GradScaler(self.device.type, enabled=False)
        self.scheduler = scheduler
        self.world_size = world_size
        self.weights = LossWeights.from_config(config)
        self.clip = config.gradient_clip or math.inf
        self.memory_format = torch.channels_last if fast else torch.contiguous_format
        self.pad_to = config.max_caption_length if fast else None
        # The eager forward while the compiled one has not yet run a step, else None.
        self._eager_fallback: nn.Module | None = None
        if fast:
            model.to(memory_format=torch.channels_last)  # in place: the optimizer's tensors
            if compiled:
                self._eager_fallback = self.forward
                # An nn.Module compiles to one (an OptimizedModule); the stub says any callable.
                self.forward = cast(nn.Module, torch.compile(self.forward))

    def __call__(self, micro_batches: Sequence[MicroBatch]) -> StepResult:
        """Accumulate the gradients of `micro_batches`, then take one optimizer step."""
        if not micro_batches:
            raise ValueError("a training step needs at least one micro-batch")
        if self._eager_fallback is None:
            sums, samples = self._accumulate(micro_batches)
        else:
            sums, samples = self._accumulate_compiling(micro_batches, self._eager_fallback)
        finite, grad_norm = self._optimizer_step()
        return StepResult(sums=sums, samples=samples, grad_norm=grad_norm, finite=finite)

    def _accumulate_compiling(
        self, micro_batches: Sequence[MicroBatch], eager: nn.Module
    ) -> tuple[Tensor, int]:
        """`_accumulate` through the compiled forward, which compiles now (forward and backward);
        if that fails, the same micro-batches again through `eager`, from the same random state
        and with the failed attempt's gradients dropped."""
        state = _random_state(self.device)
        try:
            accumulated = self._accumulate(micro_batches)
        except torch.OutOfMemoryError:
            raise  # the batch does not fit: no compiler's fault
        except Exception as error:
            self.optimizer.zero_grad(set_to_none=True)  # the optimizer has not stepped yet
            _set_random_state(self.device, state)
            self.forward = eager
            notice(
                f"torch.compile failed at the first training step ({short_reason(error)}); "
                "training on with the eager step (--set fast_path=off silences this)"
            )
            accumulated = self._accumulate(micro_batches)
        self._eager_fallback = None
        return accumulated

    def _accumulate(self, micro_batches: Sequence[MicroBatch]) -> tuple[Tensor, int]:
        """Forward, losses and backward of each micro-batch: the summed figures and samples."""
        sums = torch.zeros(len(REPORTED), device=self.device)
        samples = 0
        for index, (images, tokens) in enumerate(micro_batches):
            images = images.to(self.device, non_blocking=True)
            images = images.contiguous(memory_format=self.memory_format)
            tokens = tokens.to(self.device, non_blocking=True)
            if self.pad_to is not None:
                tokens = pad(tokens, (0, self.pad_to - tokens.shape[1]), value=PAD_ID)
            steps = index == len(micro_batches) - 1  # only its backward all-reduces
            with nullcontext() if steps else self._no_sync():
                with autocast_for(self.device.type, self.precision):
                    losses, figures = self.losses(self.forward(images, tokens), images, tokens)
                self.scaler.scale(losses.total / len(micro_batches)).backward()
            sums += figures * len(images) * self.world_size
            samples += len(images) * self.world_size
        return sums, samples

    def losses(self, output: ModelOutput, images: Tensor, tokens: Tensor) -> tuple[Losses, Tensor]:
        """The losses to back-propagate, and the figures to report (`REPORTED`).

        With several processes the batch is the global one: the contrastive loss compares every
        image with every caption of all processes, and the caption loss is normalised by the
        global token count, so the gradients equal those of one process with the whole batch.
        """
        if self.world_size == 1:
            same_caption = same_caption_mask(tokens)  # once, for the loss and its chance level
            losses = compute_losses(output, images, tokens, self.weights, same_caption)
            return losses, reported(losses, same_caption)
        return _global_losses(output, images, tokens, self.weights, self.world_size)

    def _no_sync(self) -> AbstractContextManager[Any]:
        if isinstance(self.forward, DistributedDataParallel):
            return self.forward.no_sync()
        return nullcontext()

    def _optimizer_step(self) -> tuple[bool, Tensor]:
        """Unscale, clip, step unless the clipped gradient norm is non-finite.

        Reading the norm's finiteness is the one host sync per optimizer step (GradScaler makes
        the same one). It asks "is the norm non-finite?": on the estimator's fake tensors, which
        hold no values, every such read answers no, so the step there still creates AdamW's
        state.
        """
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        finite = self.precision == "fp16" or not bool(torch.isfinite(grad_norm).logical_not())
        if finite:
            self._step_optimizer()
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        return finite, grad_norm

    def _step_optimizer(self) -> None:
        """`scaler.step`; a fused AdamW that fails at its first step (no state kept yet) becomes
        AdamW's default one and steps again, with one line that says so."""
        if not (self.optimizer.defaults.get("fused") and not self.optimizer.state):
            self.scaler.step(self.optimizer)
            return
        try:
            self.scaler.step(self.optimizer)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as error:
            unfuse(self.optimizer)
            notice(f"fused AdamW failed ({short_reason(error)}); using AdamW's default one")
            self.scaler.step(self.optimizer)


def _random_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    """The CPU generator's state and, on CUDA, the device's (dropout draws from it there)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_random_state(device: torch.device, state: tuple[Tensor, Tensor | None]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def reported(losses: Losses, same_caption: Tensor) -> Tensor:
    """`REPORTED` as one detached float tensor: the losses and the batch's alignment chance."""
    values = [value.detach().float() for value in losses.as_dict().values()]
    return torch.stack([*values, alignment_chance(same_caption).to(values[0].device)])


def _global_losses(
    output: ModelOutput, images: Tensor, tokens: Tensor, weights: LossWeights, world_size: int
) -> tuple[Losses, Tensor]:
    """The losses of the global batch, built so DDP's gradient average gives their gradient."""
    from torch.distributed.nn.functional import all_gather

    local = compute_losses(output, images, tokens, weights)
    # Caption: each process's token mean, reweighted by its share of the global tokens.
    local_tokens = (tokens[:, 1:] != PAD_ID).sum().float()
    global_tokens = local_tokens.clone()
    dist.all_reduce(global_tokens)
    caption = local.caption * local_tokens * world_size / global_tokens
    # Alignment over every pair of the global batch (all_gather keeps the gradient path).
    image_embeddings = torch.cat(all_gather(output.image_embedding))
    text_embeddings = torch.cat(all_gather(output.text_embedding))
    width = torch.tensor([tokens.shape[1]], device=tokens.device)
    dist.all_reduce(width, op=dist.ReduceOp.MAX)
    padded = torch.nn.functional.pad(tokens, (0, int(width) - tokens.shape[1]), value=PAD_ID)
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded)
    same_caption = same_caption_mask(torch.cat(gathered))
    alignment = alignment_loss(image_embeddings, text_embeddings, output.logit_scale, same_caption)
    total = weights.image * local.image + weights.caption * caption + weights.alignment * alignment
    losses = Losses(total=total, image=local.image, caption=caption, alignment=alignment)
    # Reported figures: global means (image and caption averaged over processes).
    figures = reported(losses, same_caption)
    dist.all_reduce(figures)
    return losses, figures / world_size
