"""Losses: image reconstruction, caption cross-entropy, contrastive alignment, weighted sum.

Nothing here calls `.item()` or otherwise waits for the device: the trainer decides when to
synchronise. Each function checks shapes, which costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.config import Config
from mmlib.model.multimodal import ModelOutput
from mmlib.tokens import PAD_ID

RANGE_TOLERANCE = 1e-4


def reconstruction_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between a tanh output and a target image, both in [-1, 1].

    A target scaled to [0, 1] by mistake would train without an error and decode washed out, so
    its range is checked; on CPU tensors only: on a GPU the check would wait for the device on
    every step.
    """
    if output.shape != target.shape:
        raise ValueError(
            f"reconstruction {list(output.shape)} and target {list(target.shape)} differ in shape"
        )
    if target.device.type == "cpu":
        low, high = torch.aminmax(target.detach())
        if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise ValueError(
                f"target images span [{float(low):.3g}, {float(high):.3g}]; expected [-1, 1] "
                "(scale pixels with x / 127.5 - 1)"
            )
    return F.mse_loss(output, target)


def perceptual_loss(model_output: ModelOutput) -> Tensor:
    """Mean squared difference of the encoder's feature maps of reconstruction and image."""
    if model_output.image_features is None or model_output.reconstruction_features is None:
        raise ValueError(
            "perceptual loss: the model was built with perceptual_loss_weight=0, so it returned "
            "no feature maps; build it from the same config as the loss weights"
        )
    return F.mse_loss(model_output.reconstruction_features, model_output.image_features)


def caption_loss(logits: Tensor, targets: Tensor, pad_id: int = PAD_ID) -> Tensor:
    """Cross-entropy of logits [B, L, V] against token ids [B, L], ignoring `pad_id` targets."""
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"caption logits {list(logits.shape)} do not match targets {list(targets.shape)} "
            "(expected logits [B, L, V] for targets [B, L])"
        )
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)


def same_caption_mask(tokens: Tensor) -> Tensor:
    """BoolTensor [B, B]: True where two rows of token ids [B, L] are the same caption."""
    return (tokens[:, None, :] == tokens[None, :, :]).all(dim=-1)


def alignment_loss(
    image_emb: Tensor,
    text_emb: Tensor,
    logit_scale: Tensor | float,
    same_caption: Tensor | None = None,
) -> Tensor:
    """Symmetric InfoNCE (CLIP) over the batch, image->text and text->image averaged.

    Embeddings are L2-normalised here, so raw or unit vectors both work. With `same_caption`
    [B, B] (True where captions i and j are identical, as happens with synthetic data), every
    identical caption counts as a positive: the target is uniform over them, and the loss is
    the KL divergence to that target, so it is 0 for a perfect match whatever the duplicates.
    Without it, only the diagonal is positive (plain CLIP).
    """
    if image_emb.shape != text_emb.shape or image_emb.dim() != 2:
        raise ValueError(
            f"image {list(image_emb.shape)} and text {list(text_emb.shape)} embeddings: "
            "expected the same shape [B, D]"
        )
    batch = image_emb.shape[0]
    image_emb = F.normalize(image_emb, dim=-1)
    text_emb = F.normalize(text_emb, dim=-1)
    logits = logit_scale * image_emb @ text_emb.T  # [image, text]
    positives = torch.eye(batch, dtype=torch.bool, device=logits.device)
    if same_caption is not None:
        if same_caption.shape != (batch, batch):
            raise ValueError(
                f"same_caption {list(same_caption.shape)}: expected [{batch}, {batch}]"
            )
        positives = positives | same_caption.to(device=logits.device, dtype=torch.bool)
    image_to_text = _soft_cross_entropy(logits, positives)
    text_to_image = _soft_cross_entropy(logits.T, positives.T)
    return (image_to_text + text_to_image) / 2


def alignment_chance(same_caption: Tensor) -> Tensor:
    """The alignment loss of a model that cannot tell a batch apart (all logits equal).

    A row with k positives among B candidates then costs ln B - ln k (the KL divergence from the
    uniform target over its positives to the uniform softmax), so the chance level is the mean
    of that over the rows: ln B for B distinct captions, lower where captions repeat, and lower
    for a smaller (partial) batch. `same_caption` [B, B] is `same_caption_mask`'s answer; the
    diagonal always counts. Both directions of the symmetric loss give the same value.
    """
    batch = same_caption.shape[0]
    diagonal = torch.eye(batch, dtype=torch.bool, device=same_caption.device)
    counts = (same_caption.bool() | diagonal).sum(dim=1).float()
    return (math.log(batch) - counts.log()).mean()


def _soft_cross_entropy(logits: Tensor, positives: Tensor) -> Tensor:
    """Mean over rows of KL(uniform over the row's positives || softmax(row))."""
    counts = positives.sum(dim=1, keepdim=True).float()
    target = positives.float() / counts
    cross_entropy = -(target * logits.float().log_softmax(dim=1)).sum(dim=1)
    return (cross_entropy - counts.squeeze(1).log()).mean()


@dataclass(frozen=True)
class LossWeights:
    """How much each loss counts in the total (defaults 1.0 / 1.0 / 0.5, `Config`'s), and the
    weight of the perceptual term inside the image loss (default 0: off)."""

    image: float = 1.0
    caption: float = 1.0
    alignment: float = 0.5
    perceptual: float = 0.0

    @classmethod
    def from_config(cls, config: Config) -> LossWeights:
        """The weights named image/caption/alignment_loss_weight in `config`."""
        return cls(
            image=config.image_loss_weight,
            caption=config.caption_loss_weight,
            alignment=config.alignment_loss_weight,
            perceptual=config.perceptual_loss_weight,
        )


@dataclass(frozen=True)
class Losses:
    """The weighted total and each unweighted component, as 0-d tensors (not synchronised);
    `image` includes the perceptual term, weighted, where there is one."""

    total: Tensor
    image: Tensor
    caption: Tensor
    alignment: Tensor

    def as_dict(self) -> dict[str, Tensor]:
        """{"total": ..., "image": ..., "caption": ..., "alignment": ...}."""
        return {
            "total": self.total,
            "image": self.image,
            "caption": self.caption,
            "alignment": self.alignment,
        }


def compute_losses(
    model_output: ModelOutput,
    images: Tensor,
    tokens: Tensor,
    config: Config | LossWeights,
    same_caption: Tensor | None = None,
) -> Losses:
    """All three losses for one batch and their weighted sum.

    `tokens` are the full captions the model was fed ([B, L], <START> ... <END> <PAD>...);
    the caption targets are `tokens[:, 1:]`. `same_caption` defaults to identical token rows.
    """
    weights = config if isinstance(config, LossWeights) else LossWeights.from_config(config)
    if same_caption is None:
        same_caption = same_caption_mask(tokens)
    image = reconstruction_loss(model_output.reconstruction, images)
    if weights.perceptual:
        image = image + weights.perceptual * perceptual_loss(model_output)
    caption = caption_loss(model_output.caption_logits, tokens[:, 1:])
    alignment = alignment_loss(
        model_output.image_embedding,
        model_output.text_embedding,
        model_output.logit_scale,
        same_caption,
    )
    total = weights.image * image + weights.caption * caption + weights.alignment * alignment
    return Losses(total=total, image=image, caption=caption, alignment=alignment)
