"""What is inside the model: each stage's shape and parameters, the losses at initialisation
predicted from first principles, and the contrastive loss's temperature.

Everything here runs the model's own forward pass (with hooks where a stage is not in its
output) and the loss functions of `mmlib.model.losses`; nothing re-implements either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mmlib.model.losses import (
    LossWeights,
    alignment_chance,
    alignment_loss,
    compute_losses,
    perceptual_loss,
    reconstruction_loss,
    same_caption_mask,
)
from mmlib.model.multimodal import ModelOutput, MultimodalModel
from mmlib.tokens import PAD_ID

# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Stage:
    """One stage of a forward pass: its output's shape and the parameters that produced it.

    `part` is the `MultimodalModel.parameter_summary` part its parameters belong to ("" for the
    inputs), `modules` the model's submodules (or parameters) that made it.
    """

    name: str
    shape: tuple[int, ...]
    parameters: int
    part: str
    modules: tuple[str, ...]


# name, part, producing modules, where the output comes from (a hook or the model's output)
_STAGES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("input images", "", (), "images"),
    ("input tokens", "", (), "tokens"),
    ("image encoder: feature map", "image_encoder", ("image_encoder.convs",), "features"),
    ("image encoder: latent", "image_encoder", ("image_encoder.head",), "latent"),
    ("image decoder: reconstruction", "image_decoder", ("image_decoder",), "reconstruction"),
    (
        "caption decoder: memory",
        "caption_decoder",
        (
            "caption_decoder.latent_memory",
            "caption_decoder.spatial_memory",
            "caption_decoder.spatial_position",
            "caption_decoder.memory_norm",
        ),
        "memory",
    ),
    (
        "caption decoder: logits (fed tokens[:, :-1])",
        "caption_decoder",
        ("caption_decoder.embed", "caption_decoder.decoder", "caption_decoder.output"),
        "caption_logits",
    ),
    ("text encoder: pooled", "text_encoder", ("text_encoder",), "text_pooled"),
    (
        "image embedding head",
        "alignment_heads",
        ("image_pool", "image_projection"),
        "image_embedding",
    ),
    ("text embedding head", "alignment_heads", ("text_projection",), "text_embedding"),
    ("logit scale", "alignment_heads", ("log_logit_scale",), "logit_scale"),
)


def _count(model: nn.Module, path: str) -> int:
    """Parameters of the submodule or parameter at `path`."""
    try:
        return sum(p.numel() for p in model.get_submodule(path).parameters())
    except AttributeError:
        return model.get_parameter(path).numel()


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients, then the previous mode again."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _record_outputs(model: MultimodalModel, images: Tensor, tokens: Tensor) -> dict[str, Tensor]:
    """One forward pass: the model's outputs plus the stages that only hooks can see."""
    seen: dict[str, Tensor] = {}

    def keep(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            seen.setdefault(name, output)

        return hook

    hooks = [
        model.image_encoder.register_forward_hook(keep("encoder")),
        model.caption_decoder.memory_norm.register_forward_hook(keep("memory")),
        model.text_encoder.register_forward_hook(keep("text_pooled")),
    ]
    try:
        output = model(images, tokens)
    finally:
        for hook in hooks:
            hook.remove()
    latent, features = seen.pop("encoder")
    return {
        **output._asdict(),
        **seen,
        "images": images,
        "tokens": tokens,
        "latent": latent,
        "features": features,
    }


def stage_shapes(model: MultimodalModel, images: Tensor, tokens: Tensor) -> list[Stage]:
    """Each stage of one teacher-forced forward pass of `images` [B, C, S, S] and `tokens`
    [B, L] (eval mode, no gradients): its output shape and the parameters that made it.

    The stages' parameters add up to `model.parameter_summary()`, part by part.
    """
    with _evaluating(model):
        outputs = _record_outputs(model, images, tokens)
    return [
        Stage(
            name=name,
            shape=tuple(outputs[source].shape),
            parameters=sum(_count(model, path) for path in modules),
            part=part,
            modules=modules,
        )
        for name, part, modules, source in _STAGES
    ]


def format_stages(stages: list[Stage]) -> str:
    """The stages as a text table: stage, output shape, parameters (with thousands separators)
    and the part of `parameter_summary` they count in, then the total."""
    shapes = [str(list(stage.shape)) if stage.shape else "[] (scalar)" for stage in stages]
    rows = [
        (stage.name, shape, f"{stage.parameters:,}", stage.part)
        for stage, shape in zip(stages, shapes, strict=True)
    ]
    total = ("total", "", f"{sum(stage.parameters for stage in stages):,}", "")
    header = ("stage", "output shape", "parameters", "part")
    widths = [max(len(row[i]) for row in (header, *rows, total)) for i in range(4)]

    def line(row: tuple[str, str, str, str]) -> str:
        name, shape, count, part = row
        return f"{name:<{widths[0]}}  {shape:<{widths[1]}}  {count:>{widths[2]}}  {part}".rstrip()

    rule = "-" * (sum(widths) + 6)
    return "\n".join([line(header), rule, *map(line, rows), rule, line(total)])


# --------------------------------------------------------------------------- loss at init


@dataclass(frozen=True)
class InitialLoss:
    """One loss component of an untrained model: predicted from first principles and measured.

    `how` says what the prediction was computed from, with its numbers.
    """

    name: str
    predicted: float
    measured: float
    how: str

    @property
    def ratio(self) -> float:
        """measured / predicted: 1 when the prediction is exact."""
        return self.measured / self.predicted


def caption_prediction(model: MultimodalModel) -> tuple[float, float]:
    """(ln V, ln V + sigma^2 / 2): the caption cross-entropy of an untrained model, per token.

    The output layer scores all V tokens, `<PAD>` included (only pad *targets* are ignored), so
    a model that knows nothing pays ln V. At initialisation its logits are not equal but
    spread: the last LayerNorm gives a hidden vector of squared norm d (its width), and
    `nn.Linear`'s weights and bias are uniform on +-1/sqrt(d), so each logit has variance
    sigma^2 = (d + 1) / (3d), about 1/3, independent of the target. For such logits the
    log-sum-exp is ln V + ln E[exp(z)] = ln V + sigma^2 / 2, and the target's logit is 0 on
    average, so the expected loss is ln V + sigma^2 / 2. One initialisation differs from it by
    the logits its frequent targets happened to draw: on the course batch, by 0.1 to 0.2 (the
    standard deviation over seeds).
    """
    output = model.caption_decoder.output
    width = output.in_features
    variance = (width + 1) / (3 * width)
    log_v = math.log(output.out_features)
    return log_v, log_v + variance / 2


def _image_prediction(
    model: MultimodalModel, output: ModelOutput, images: Tensor, weights: LossWeights
) -> tuple[float, str]:
    """The image loss of the decoder's mean starting output against every target."""
    mean_output = output.reconstruction.mean(0, keepdim=True)
    predicted = reconstruction_loss(mean_output.expand_as(images), images)
    how = f"MSE of the decoder's mean starting output against the targets {float(predicted):.4f}"
    if weights.perceptual:
        features = model.image_encoder.convs(mean_output).expand(len(images), -1, -1, -1)
        mean_features = output._replace(reconstruction_features=features)
        perceptual = perceptual_loss(mean_features)
        predicted = predicted + weights.perceptual * perceptual
        how += f" + {weights.perceptual:g} x its perceptual term {float(perceptual):.4f}"
    return float(predicted), how


def cosine_spread(image_embedding: Tensor, text_embedding: Tensor) -> float:
    """The variance of the image x caption cosines within a row, averaged over the rows of
    both directions (image -> captions and caption -> images)."""
    cosines = image_embedding.float() @ text_embedding.float().T
    by_image = cosines.var(dim=1, unbiased=False).mean()
    by_caption = cosines.var(dim=0, unbiased=False).mean()
    return float((by_image + by_caption) / 2)


def _alignment_prediction(output: ModelOutput, same_caption: Tensor) -> tuple[float, str]:
    """Chance level (duplicates counted) plus the starting temperature's share of the spread."""
    chance = float(alignment_chance(same_caption))
    scale = float(output.logit_scale)
    spread = cosine_spread(output.image_embedding, output.text_embedding)
    rise = scale**2 * spread / 2
    batch = same_caption.shape[0]
    repeated = int((same_caption.sum(dim=1) > 1).sum())
    how = (
        f"chance {chance:.4f} (ln {batch} = {math.log(batch):.4f}, less ln k for each of the "
        f"{repeated} rows whose caption is in the batch k > 1 times) + s^2 Var(cos) / 2 = "
        f"{scale:.2f}^2 x {spread:.2e} / 2 = {rise:.4f}"
    )
    return chance + rise, how


def initial_losses(
    model: MultimodalModel, images: Tensor, tokens: Tensor, weights: LossWeights
) -> dict[str, InitialLoss]:
    """Each loss of an untrained model on one batch, predicted next to measured (one forward
    pass in eval mode, without gradients): "image", "caption", "alignment" and the weighted
    "total".

    - caption: ln V + sigma^2 / 2 (`caption_prediction`), from the vocabulary size and the
      output layer's initial weight distribution only; per non-pad target token.
    - alignment: the batch's chance level (`alignment_chance`: ln B, less ln k for a row whose
      caption appears k times) plus s^2 Var(cos) / 2, the second-order term of the log-sum-exp
      when every logit is the logit scale s (exp(LOGIT_SCALE_INIT) = 1 / 0.07 at the start)
      times a cosine and nothing pairs an image with its caption yet. Var(cos) is *measured*:
      the spread of the initial cosines (`cosine_spread`); the rest is predicted.
    - image: the reconstruction loss (and the perceptual term, if weighted) of the decoder's
      mean starting output against every target: an untrained decoder draws about the same
      image whatever it is given.
    """
    with _evaluating(model):
        output = model(images, tokens)
        same_caption = same_caption_mask(tokens)
        measured = compute_losses(output, images, tokens, weights, same_caption)
        image, image_how = _image_prediction(model, output, images, weights)
    alignment, alignment_how = _alignment_prediction(output, same_caption)
    log_v, caption = caption_prediction(model)
    targets = int((tokens[:, 1:] != PAD_ID).sum())
    caption_how = (
        f"ln V + sigma^2 / 2 = ln {model.vocab_size} ({log_v:.4f}) + {caption - log_v:.4f}, "
        f"per token over the {targets} non-pad targets"
    )
    total = weights.image * image + weights.caption * caption + weights.alignment * alignment
    total_how = (
        f"{weights.image:g} x image + {weights.caption:g} x caption "
        f"+ {weights.alignment:g} x alignment"
    )
    rows = [
        InitialLoss("image", image, float(measured.image), image_how),
        InitialLoss("caption", caption, float(measured.caption), caption_how),
        InitialLoss("alignment", alignment, float(measured.alignment), alignment_how),
        InitialLoss("total", total, float(measured.total), total_how),
    ]
    return {row.name: row for row in rows}


def format_initial_losses(losses: dict[str, InitialLoss]) -> str:
    """The predicted and measured losses as a text table, with the ratio and how each
    prediction was made."""
    lines = [f"{'loss':<10}  {'predicted':>9}  {'measured':>9}  {'ratio':>6}  how"]
    for row in losses.values():
        lines.append(
            f"{row.name:<10}  {row.predicted:>9.4f}  {row.measured:>9.4f}  {row.ratio:>6.3f}  "
            f"{row.how}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- temperature


@dataclass(frozen=True)
class EmbeddedBatch:
    """A batch's unit image and caption embeddings [B, E], which captions repeat [B, B], and
    the model's own temperature 1 / logit_scale."""

    image: Tensor
    text: Tensor
    same_caption: Tensor
    temperature: float

    def __len__(self) -> int:
        return self.image.shape[0]

    @property
    def similarities(self) -> Tensor:
        """Cosine similarity [B, B] of image i (row) and caption j (column)."""
        return self.image @ self.text.T

    def first(self, size: int) -> EmbeddedBatch:
        """The batch of the first `size` pairs."""
        if not 2 <= size <= len(self):
            raise ValueError(f"size={size}: choose between 2 and {len(self)} pairs")
        return EmbeddedBatch(
            self.image[:size],
            self.text[:size],
            self.same_caption[:size, :size],
            self.temperature,
        )


def embed_batch(model: MultimodalModel, images: Tensor, tokens: Tensor) -> EmbeddedBatch:
    """The embeddings of a batch of images [B, C, S, S] and their captions [B, L] (eval mode,
    no gradients), for `similarity_matrix` and the temperature's loss."""
    with _evaluating(model):
        image = model.encode_image(images).float()
        text = model.encode_text(tokens).float()
        temperature = 1 / float(model.logit_scale)
    return EmbeddedBatch(image, text, same_caption_mask(tokens), temperature)


def similarity_matrix(model: MultimodalModel, images: Tensor, tokens: Tensor) -> Tensor:
    """Cosine similarity [B, B] of image i (row) and caption j (column)."""
    return embed_batch(model, images, tokens).similarities


def softmax_at(similarities: Tensor, temperature: float) -> Tensor:
    """softmax(similarities / temperature) over each row: which caption each image picks."""
    _check_temperature(temperature)
    return (similarities / temperature).softmax(dim=1)


def loss_at(batch: EmbeddedBatch, temperature: float) -> float:
    """The alignment loss (`mmlib.model.losses.alignment_loss`) of `batch` at `temperature`
    (logit scale 1 / temperature), duplicate captions counted as positives."""
    _check_temperature(temperature)
    return float(alignment_loss(batch.image, batch.text, 1 / temperature, batch.same_caption))


def chance_level(batch: EmbeddedBatch) -> float:
    """The alignment loss when all logits are equal (`alignment_chance`): ln B for B distinct
    captions, less where captions repeat."""
    return float(alignment_chance(batch.same_caption))


@dataclass(frozen=True)
class TemperatureView:
    """What the temperature heat map shows for one temperature and batch size."""

    temperature: float
    similarities: Tensor  # [B, B] cosines, image rows, caption columns
    probabilities: Tensor  # [B, B] softmax over each row at the temperature
    positives: Tensor  # [B, B] the diagonal and the duplicate captions
    loss: float
    chance: float

    @property
    def batch_size(self) -> int:
        return self.similarities.shape[0]

    @property
    def chance_probability(self) -> float:
        """1 / B: the probability a guess gives the right caption among B."""
        return 1 / self.batch_size


def temperature_view(batch: EmbeddedBatch, temperature: float, size: int) -> TemperatureView:
    """The first `size` pairs of `batch` at `temperature`: similarities, softmax, the loss
    and its chance level."""
    part = batch.first(size)
    similarities = part.similarities
    positives = part.same_caption | torch.eye(size, dtype=torch.bool, device=similarities.device)
    return TemperatureView(
        temperature=temperature,
        similarities=similarities,
        probabilities=softmax_at(similarities, temperature),
        positives=positives,
        loss=loss_at(part, temperature),
        chance=chance_level(part),
    )


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature={temperature}: must be > 0")
