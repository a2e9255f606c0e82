"""After training: caption images (and see where each word looks), retrieve across modalities,
imagine images from captions.

`Predictor.load(run)` needs only a run folder: `config.json`, `tokenizer.json`, `best.pt`, and
for `imagine` / `sample_pairs` the small `imagine.pt` that `mmlib.inference.imagine`
fits beside them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from PIL import Image
from torch import Tensor

from mmlib.checkpoint import BEST_FILE, CheckpointError, load_model, resolve_run
from mmlib.config import DEFAULT_MAX_IMAGE_PIXELS, Config
from mmlib.data.images import fit_image, load_image, pil_to_image, to_pixels, to_uint8
from mmlib.data.sources import load_split
from mmlib.data.tokenizer import Tokenizer, words
from mmlib.files import quoted
from mmlib.inference.attention import CaptionAttention, caption_attention
from mmlib.inference.export_runtime import imagine_noise
from mmlib.inference.imagine import (
    CANDIDATES,
    GUIDANCE,
    IMAGINE_FILE,
    Imagination,
    caption_embeddings,
    image_latents,
    imagine_pixels,
    load_imagination,
)
from mmlib.model.multimodal import DecodeMethod, MultimodalModel

ImageInput = str | os.PathLike[str] | Image.Image | Tensor
# Kind -> count of the subjects a caption names: only a data set with a caption grammar has one
# (the synthetic set's is `mmlib.data.synthetic.subjects_in_caption`).
CaptionSubjects = Callable[[str], dict[str, int]]


class PromptError(ValueError):
    """A caption to imagine from has nothing the model can read (`Predictor.check_prompt`)."""


def load_images(
    images: Sequence[ImageInput] | Tensor,
    image_size: int,
    resize_mode: str = "pad",
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Tensor:
    """File paths, PIL images or tensors as one uint8 batch [N, 3, S, S].

    A tensor is a uint8 image [3, H, W] or a batch [N, 3, H, W] (float tensors must already be
    in [0, 1]); every image is fitted to S as training fitted it (`resize_mode`). A file that is
    not an image, or claims more than `max_pixels` pixels, is an `ImageFileError` naming it.
    """
    if isinstance(images, Tensor):
        images = list(images) if images.dim() == 4 else [images]
    if len(images) == 0:
        raise ValueError("images: got none; pass file paths, PIL images or image tensors")
    return torch.stack([_load_one(image, image_size, resize_mode, max_pixels) for image in images])


def _load_one(image: ImageInput, image_size: int, resize_mode: str, max_pixels: int) -> Tensor:
    if isinstance(image, Image.Image):
        return pil_to_image(image, image_size, resize_mode)
    if isinstance(image, Tensor):
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            shape = list(image.shape)
            raise ValueError(f"image tensor: expected [3, H, W] or [1, H, W], got {shape}")
        if image.is_floating_point():
            if image.min() < 0 or image.max() > 1:
                raise ValueError("float image tensor: values must lie in [0, 1]")
            image = image.mul(255).round().byte()
        return fit_image(image.cpu().expand(3, -1, -1), image_size, resize_mode)
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    return load_image(path, image_size, resize_mode, max_pixels)


@dataclass(frozen=True)
class Match:
    """One retrieved item: its index among the candidates, cosine similarity, and the item."""

    index: int
    score: float
    item: str | int


@dataclass(frozen=True)
class SampledPairs:
    """New images [N, 3, S, S] (uint8), the captions written from their latents, and the
    captioner's reading of each decoded image."""

    images: Tensor
    captions: list[str]
    readings: list[str]

    def subject_agreement(self, subjects: CaptionSubjects) -> Agreement:
        """How often a pair's caption and reading name the same subjects and counts, as
        `subjects` (the data set's reading of a caption, e.g. the synthetic grammar's) reads
        them; counted only over pairs whose caption names at least one subject, since an empty
        caption and an empty reading "agree" about nothing."""
        named = [(c, r) for c, r in zip(self.captions, self.readings, strict=True) if subjects(c)]
        same = sum(subjects(c) == subjects(r) for c, r in named)
        share = same / len(named) if named else None
        return Agreement(share=share, counted=len(named), pairs=len(self.captions))


@dataclass(frozen=True)
class Agreement:
    """`share` of the `counted` pairs (those whose caption names a subject, of `pairs`) whose
    caption and reading agree; None when no caption names a subject."""

    share: float | None
    counted: int
    pairs: int


class Predictor:
    """A trained run ready for inference: captioning, retrieval, imagining, sampling."""

    def __init__(
        self,
        model: MultimodalModel,
        tokenizer: Tokenizer,
        config: Config,
        imagination: Imagination | None = None,
        run_dir: Path | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.imagination = imagination.to(self.device).eval() if imagination else None
        self.run_dir = run_dir

    @classmethod
    def load(
        cls,
        run: str | os.PathLike[str],
        checkpoint_dir: str | os.PathLike[str] = "checkpoints",
        which: str = BEST_FILE,
        device: str | torch.device = "cpu",
    ) -> Predictor:
        """A run folder, run name or `latest`, with `imagine.pt` when the run has one."""
        run_dir = resolve_run(run, checkpoint_dir)
        model, tokenizer, config = load_model(run_dir, checkpoint_dir, which, device)
        return cls(model, tokenizer, config, load_imagination(run_dir, config), run_dir)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def load_images(self, images: Sequence[ImageInput] | Tensor) -> Tensor:
        """`load_images` with this run's image size, resize mode and pixel limit."""
        config = self.config
        return load_images(images, config.image_size, config.resize_mode, config.max_image_pixels)

    def pixels(self, images: Sequence[ImageInput] | Tensor) -> Tensor:
        """Any accepted images as the model's float input [N, 3, S, S] in [-1, 1], on its device."""
        return to_pixels(self.load_images(images).to(self.device))

    @torch.no_grad()
    def caption(
        self,
        images: Sequence[ImageInput] | Tensor,
        method: DecodeMethod = "greedy",
        beam_width: int = 4,
        length_penalty: float = 0.6,
        batch_size: int = 64,
    ) -> list[str]:
        """One caption per image, greedy or by beam search."""
        pixels = self.pixels(images)
        captions: list[str] = []
        for batch in pixels.split(batch_size):
            tokens = self.model.generate(
                batch, method=method, beam_width=beam_width, length_penalty=length_penalty
            )
            captions += self.tokenizer.batch_decode(tokens.cpu())
        return captions

    def caption_attention(
        self, images: Sequence[ImageInput] | Tensor, batch_size: int = 64
    ) -> list[CaptionAttention]:
        """Greedy captions, each word with where the caption decoder looked on the image grid
        while writing it (`mmlib.inference.attention.caption_attention`)."""
        uint8 = self.load_images(images)
        found: list[CaptionAttention] = []
        for batch in uint8.split(batch_size):
            found += caption_attention(self.model, self.tokenizer, batch)
        return found

    @torch.no_grad()
    def embed_images(self, images: Sequence[ImageInput] | Tensor, batch_size: int = 128) -> Tensor:
        """Unit-norm image embeddings [N, embedding_dim]."""
        pixels = self.pixels(images)
        return torch.cat([self.model.encode_image(batch) for batch in pixels.split(batch_size)])

    def embed_captions(self, captions: Sequence[str], batch_size: int = 256) -> Tensor:
        """Unit-norm caption embeddings [N, embedding_dim]."""
        if isinstance(captions, str):
            raise TypeError("captions: pass a list of strings, not one string")
        return caption_embeddings(self.model, self.tokenizer, captions, batch_size)

    def _embed(self, items: Sequence[ImageInput] | Tensor | Sequence[str]) -> Tensor:
        if not isinstance(items, Tensor) and len(items) and all(isinstance(i, str) for i in items):
            paths = [Path(cast(str, i)) for i in items]
            if not any(p.suffix and p.is_file() for p in paths):
                return self.embed_captions(items)  # type: ignore[arg-type]
        return self.embed_images(items)

    def retrieve(
        self,
        queries: Sequence[ImageInput] | Tensor | Sequence[str],
        candidates: Sequence[ImageInput] | Tensor | Sequence[str],
        k: int = 5,
    ) -> list[list[Match]]:
        """The `k` candidates most similar to each query, best first, in the aligned space.

        Queries and candidates are each captions (strings that are not image files) or images;
        image->caption and caption->image ranking are the two mixed cases. A `Match.item` is the
        candidate caption, or the candidate image's index.
        """
        similarity = self._embed(queries) @ self._embed(candidates).T
        scores, indices = similarity.topk(min(k, similarity.shape[1]), dim=1)
        texts = (
            cast(Sequence[str], candidates)
            if not isinstance(candidates, Tensor) and isinstance(candidates[0], str)
            else None
        )
        return [
            [
                Match(int(i), float(s), texts[int(i)] if texts else int(i))
                for s, i in zip(row_scores, row_indices, strict=True)
            ]
            for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True)
        ]

    def _require_imagination(self) -> Imagination:
        if self.imagination is None:
            where = self.run_dir or "this run"
            raise CheckpointError(
                f"{where}: no {IMAGINE_FILE}; fit it first with "
                "`python -m mmlib fit-imagine RUN` (or mmlib.inference.imagine.fit_run_imagination)"
            )
        return self.imagination

    def check_prompt(self, caption: str) -> None:
        """A PromptError unless `caption` has a word this run's vocabulary knows: an empty,
        blank, emoji- or punctuation-only caption, or one of unknown words only, reads as
        nothing to the model, and its image would say nothing about it. A BPE tokenizer spells
        every word, so only a caption without words is refused."""
        found = words(caption)
        if not found:
            raise PromptError(
                f"caption {quoted(caption)} has no words: type a caption first, e.g. one like the "
                "training captions"
            )
        unknown = self.tokenizer.unknown_words(caption)
        if len(unknown) == len(found):
            named = ", ".join(repr(word) for word in list(dict.fromkeys(unknown))[:3])
            raise PromptError(
                f"caption {quoted(caption)}: none of its words is in this run's vocabulary of "
                f"{len(self.tokenizer)} tokens (unknown: {named}); type a caption with words "
                "like the training captions'"
            )

    @torch.no_grad()
    def imagine(
        self,
        captions: str | Sequence[str],
        seed: int = 0,
        candidates: int = CANDIDATES,
        guidance: float = GUIDANCE,
    ) -> Tensor:
        """Images [N, 3, S, S] (uint8) drawn from each caption through the latent.

        The flow samples `candidates` latents per caption (noise from `imagine_noise(seed)`, so
        a caption's image depends only on the seed and its position), and `imagine_pixels`
        keeps the best-aligned decoded image.
        """
        flow = self._require_imagination().flow
        captions = [captions] if isinstance(captions, str) else list(captions)
        for caption in captions:
            self.check_prompt(caption)
        noise = torch.from_numpy(imagine_noise(len(captions), candidates, flow.components, seed))
        pixels = imagine_pixels(
            self.model, flow, self.embed_captions(captions), noise.to(self.device), guidance
        )
        return to_uint8(pixels)

    @torch.no_grad()
    def sample_pairs(self, n: int, seed: int = 0) -> SampledPairs:
        """`n` new image + caption pairs from latents drawn from the fitted latent Gaussian.

        Each latent is decoded to an image; its caption is written from that latent (with the
        decoded image's spatial map, which the caption decoder also reads), and its reading is
        the captioner's caption of the decoded image alone (re-encoded).
        """
        generator = torch.Generator().manual_seed(seed)
        latents = self._require_imagination().prior.sample(n, generator)
        pixels = self.model.image_decoder(latents)
        captions = self.model.generate(pixels, latent=latents)
        readings = self.model.generate(pixels)
        return SampledPairs(
            images=to_uint8(pixels),
            captions=self.tokenizer.batch_decode(captions.cpu()),
            readings=self.tokenizer.batch_decode(readings.cpu()),
        )

    def latents(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """Image latents [N, latent_dim] of uint8 images [N, 3, S, S]."""
        return image_latents(self.model, images, batch_size)


def vocabulary_samples(
    run_dir: str | os.PathLike[str], count: int = 4
) -> tuple[Tokenizer, list[tuple[str, str]]]:
    """The run's tokenizer, unchecked, and (reference, greedy caption) for the first `count`
    images of its validation split: what `python -m mmlib trust-vocabulary` shows before it
    records the vocabulary (with another vocabulary than the weights', captions are garbled)."""
    model, tokenizer, config = load_model(run_dir, check_vocabulary=False)
    records = load_split(config).val[:count]
    predictor = Predictor(model, tokenizer, config, None, Path(run_dir))
    captions = predictor.caption([record.image_path for record in records])
    return tokenizer, [(r.captions[0], c) for r, c in zip(records, captions, strict=True)]
