"""Where the caption decoder looks: its cross-attention over the image, word by word.

The caption decoder's memory is `memory_tokens` global tokens made from the latent, then one
token per cell of the image encoder's last feature map, row by row from the top. Every decoder
layer's cross-attention gives, for each caption position and head, a distribution over that
memory. `attention_maps` records those distributions without changing what the decoder computes;
`caption_attention` pairs them with a caption's words; `subject_attention_share` measures, on the
synthetic scenes, how much of a subject word's attention on the image falls inside the subject's
box, against the box's share of the image (what attention spread evenly would give).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from mmlib.data.images import to_pixels
from mmlib.data.readers import Record
from mmlib.data.synthetic import Box, noun_kind
from mmlib.data.tokenizer import Tokenizer
from mmlib.model.multimodal import MultimodalModel
from mmlib.tokens import END_ID, PAD_ID, START_ID

CaptionSource = Literal["generated", "reference"]


@dataclass(frozen=True)
class AttentionMaps:
    """The caption decoder's cross-attention during one teacher-forced pass (`tokens[:, :-1]` in).

    `weights[b, layer, head, t]` is the distribution over the memory while predicting
    `tokens[b, t + 1]`: the `memory_tokens` latent tokens first, then the `grid` row by row.
    `combined` is the plain mean over heads and layers. Heads: the layer concatenates their
    outputs and projects them together, so none is privileged beforehand (torch's
    `average_attn_weights` takes the same mean). Layers: the decoder never rewrites its memory,
    so every layer attends over the same tokens and the mean of their maps is again a
    distribution over those tokens (attention rollout is for self-attention, where tokens mix).
    """

    weights: Tensor  # [B, layers, heads, T, memory_tokens + h * w]
    logits: Tensor  # [B, T, vocab]: the decoder's output in the same pass
    memory_tokens: int
    grid: tuple[int, int]  # (h, w) of the encoder's last feature map

    @property
    def combined(self) -> Tensor:
        """[B, T, memory]: the mean over layers and heads; each row sums to 1."""
        return self.weights.mean(dim=(1, 2))

    @property
    def latent_share(self) -> Tensor:
        """[B, T]: the share of the combined attention on the global latent tokens."""
        return self.combined[..., : self.memory_tokens].sum(-1)

    @property
    def spatial(self) -> Tensor:
        """[B, T, h, w]: the combined attention on the grid, renormalised to sum to 1 (where in
        the image it looks; how much it looks at the grid at all is 1 - `latent_share`)."""
        grid = self.combined[..., self.memory_tokens :]
        grid = grid / grid.sum(-1, keepdim=True).clamp_min(torch.finfo(grid.dtype).tiny)
        return grid.unflatten(-1, self.grid)


@contextmanager
def _recording_cross_attention(decoder: nn.TransformerDecoder) -> Iterator[list[Tensor]]:
    """Collect each layer's cross-attention weights [B, heads, T, memory] while `decoder` runs.

    The layers call `multihead_attn` with need_weights=False; a forward hook calls the module's
    `forward` (which skips hooks) once more with need_weights=True and keeps only the weights,
    so the layer's output, and the logits, are the unhooked decoder's bit for bit.
    """
    recorded: list[Tensor] = []

    def record(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: object) -> None:
        again = {**kwargs, "need_weights": True, "average_attn_weights": False}
        recorded.append(module.forward(*args, **again)[1])

    handles = [
        layer.multihead_attn.register_forward_hook(record, with_kwargs=True)
        for layer in decoder.layers
    ]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def attention_maps(model: MultimodalModel, images: Tensor, tokens: Tensor) -> AttentionMaps:
    """The caption decoder's cross-attention for `images` [B, C, S, S] in [-1, 1] and token ids
    `tokens` [B, L], teacher-forced as in training. Runs in eval mode and restores the mode."""
    was_training = model.training
    model.eval()
    try:
        memory = model.image_memory(images)
        with _recording_cross_attention(model.caption_decoder.decoder) as recorded:
            logits = model.caption_decoder(tokens[:, :-1], memory)
    finally:
        model.train(was_training)
    side = model.image_encoder.feature_size
    return AttentionMaps(
        torch.stack(recorded, dim=1), logits, model.caption_decoder.memory_tokens, (side, side)
    )


@dataclass(frozen=True)
class CaptionAttention:
    """One image's caption and, for each of its words, where the decoder looked to write it."""

    image: Tensor  # uint8 [3, S, S]
    caption: str
    words: list[str]
    maps: Tensor  # [W, h, w]: `AttentionMaps.spatial` while predicting each word
    latent_shares: Tensor  # [W]: the share of that attention on the latent tokens


def caption_attention(
    model: MultimodalModel,
    tokenizer: Tokenizer,
    images: Tensor,
    tokens: Tensor | None = None,
) -> list[CaptionAttention]:
    """Each uint8 image [B, 3, S, S] with its words' attention, for `tokens` [B, L] (default:
    the model's greedy captions). A word's map is the attention at the position that predicts it,
    as in Show, Attend and Tell; words are those `tokenizer.decode` keeps."""
    pixels = to_pixels(images.to(next(model.parameters()).device))
    tokens = model.generate(pixels) if tokens is None else tokens.to(pixels.device)
    maps = attention_maps(model, pixels, tokens)
    spatial, latent = maps.spatial.cpu(), maps.latent_share.cpu()
    return [
        _words_with_attention(image, row, row_maps, row_latent, tokenizer)
        for image, row, row_maps, row_latent in zip(
            images.cpu(), tokens.cpu(), spatial, latent, strict=True
        )
    ]


def _words_with_attention(
    image: Tensor, row: Tensor, maps: Tensor, latent: Tensor, tokenizer: Tokenizer
) -> CaptionAttention:
    """One caption (as `tokenizer.decode` reads `row`) with its tokens (words, or a BPE's pieces
    of words) and the maps that predicted them."""
    words: list[str] = []
    positions: list[int] = []
    for position, token in enumerate(row.tolist()[1:]):
        if token == END_ID:
            break
        if token in (START_ID, PAD_ID):
            continue
        words.append(tokenizer.token_text(token))
        positions.append(position)
    return CaptionAttention(image, tokenizer.decode(row), words, maps[positions], latent[positions])


# --------------------------------------------------------------- inside the subject's box


def box_coverage(boxes: Sequence[Box], grid: tuple[int, int]) -> Tensor:
    """[h, w]: the share of each grid cell's area inside the union of `boxes` (x0, y0, x1, y1
    as fractions of the image, y down), computed exactly.

    Cell (i, j) covers rows [i/h, (i+1)/h) and columns [j/w, (j+1)/w) of the image: each
    stride-2 level of the encoder halves the map, so a cell summarises that block of pixels.
    A cell partly inside counts in proportion to the part inside, as if its attention were spread
    evenly over its pixels (nearest-neighbour upsampling); so attention spread evenly over the
    grid puts exactly the union's area share inside.
    """
    rows, cols = grid
    corners = np.clip(np.asarray(boxes, dtype=float).reshape(-1, 4), 0.0, 1.0)
    xs = np.unique(np.concatenate([np.linspace(0, 1, cols + 1), corners[:, 0::2].ravel()]))
    ys = np.unique(np.concatenate([np.linspace(0, 1, rows + 1), corners[:, 1::2].ravel()]))
    # Between consecutive edges lie rectangles that are each in one cell and wholly in or out
    # of every box: test their centres, add up their areas per cell.
    mid_x, mid_y = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside = np.zeros((len(mid_y), len(mid_x)), dtype=bool)
    for x0, y0, x1, y1 in corners:
        inside |= ((mid_y > y0) & (mid_y < y1))[:, None] & ((mid_x > x0) & (mid_x < x1))[None, :]
    areas = np.outer(np.diff(ys), np.diff(xs)) * inside
    coverage = np.zeros((rows, cols))
    cell_rows = np.minimum((mid_y * rows).astype(int), rows - 1)
    cell_cols = np.minimum((mid_x * cols).astype(int), cols - 1)
    np.add.at(coverage, (cell_rows[:, None], cell_cols[None, :]), areas)
    return torch.from_numpy(coverage * rows * cols).float()


@dataclass(frozen=True)
class SubjectAttention:
    """Subject words' attention against their subjects' boxes, averaged over the words measured.

    `inside_share`: the share of a word's spatial attention inside its subject's box;
    `area_share`: the box's share of the image, which attention spread evenly would put inside;
    `latent_share`: the share of the word's whole attention on the latent tokens, not the grid;
    `words`: subject words measured; `absent`: subject words naming a kind the scene lacks (a
    wrong caption's), not measured.
    """

    inside_share: float
    area_share: float
    latent_share: float
    words: int
    absent: int

    def __str__(self) -> str:
        return (
            f"{self.words} subject words: {self.inside_share:.1%} of their attention on the image "
            f"falls inside the subject's box, which covers {self.area_share:.1%} of the image "
            f"({self.inside_share / self.area_share:.2f}x); {self.latent_share:.1%} of their "
            f"attention goes to the latent tokens; {self.absent} words named a subject the scene "
            "lacks"
        )


def measure_subject_attention(
    captions: Sequence[CaptionAttention], scenes: Sequence[dict[str, Any]]
) -> SubjectAttention:
    """`SubjectAttention` over every subject word (bird, ship, moon, ...) of `captions`, each
    against the boxes in its image's synthetic `scene`. A word for a kind the scene draws more
    than once ("a small ship beside a large ship") is measured against the union of those boxes:
    a reference caption's word order would tell them apart, a generated caption's cannot be
    trusted to."""
    inside, area, latent, absent = [], [], [], 0
    for caption, scene in zip(captions, scenes, strict=True):
        for word, spatial, latent_share in zip(
            caption.words, caption.maps, caption.latent_shares, strict=True
        ):
            kind = noun_kind(word)
            if kind is None:
                continue
            boxes = [tuple(s["box"]) for s in scene["subjects"] if s["kind"] == kind]
            if not boxes:
                absent += 1
                continue
            coverage = box_coverage(boxes, tuple(spatial.shape))
            inside.append(float((spatial * coverage).sum()))
            area.append(float(coverage.mean()))
            latent.append(float(latent_share))
    if not inside:
        raise ValueError("no subject word named a subject of its scene: nothing to measure")
    return SubjectAttention(
        float(np.mean(inside)), float(np.mean(area)), float(np.mean(latent)), len(inside), absent
    )


def subject_attention_share(
    model: MultimodalModel,
    tokenizer: Tokenizer,
    records: Sequence[Record],
    images: Tensor,
    captions: CaptionSource = "generated",
    batch_size: int = 64,
) -> SubjectAttention:
    """`measure_subject_attention` over synthetic `records` and their uint8 `images` [N, 3, S, S]
    (square, as the synthetic set draws them, so the boxes' fractions are the model's input's),
    for the model's greedy captions or the records' reference captions."""
    if captions not in ("generated", "reference"):
        raise ValueError(f"captions={captions!r}: expected 'generated' or 'reference'")
    missing = [record.id for record in records if "scene" not in record.attributes]
    if missing:
        raise ValueError(
            f"records {missing[:3]}... have no 'scene': only the synthetic set records where its "
            "subjects are, so this measure does not apply to this data set"
        )
    found: list[CaptionAttention] = []
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        tokens = None
        if captions == "reference":
            texts = [record.captions[0] for record in batch]
            tokens = tokenizer.batch_encode(texts, model.max_caption_length)
        found += caption_attention(model, tokenizer, images[start : start + len(batch)], tokens)
    return measure_subject_attention(found, [record.attributes["scene"] for record in records])
