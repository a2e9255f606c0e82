"""Does the model caption and align? BLEU-4, subject match, token accuracy, recall@1.

Each figure comes with the same figure for a baseline that shuffles the images, so a number
that a caption-only language model would also reach is visible as such.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics.text import BLEUScore

from mmlib.checkpoint import METRICS_FILE, atomic_write_text, load_model, resolve_run
from mmlib.data import Record, build_image_cache, load_split
from mmlib.model import MultimodalModel
from mmlib.synthetic import subjects_in_caption, subjects_of
from mmlib.tokenizer import ProductionTokenizer, normalize


def bleu4(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 on a 0-1 scale (torchmetrics), on normalised text, all references."""
    score = BLEUScore(n_gram=4)
    return float(
        score(
            [normalize(h) for h in hypotheses],
            [[normalize(r) for r in refs] for refs in references],
        )
    )


def subject_match(captions: Sequence[str], scenes: Sequence[dict]) -> float:
    """Share of captions that name exactly the drawn subjects, with their counts."""
    hits = sum(
        subjects_in_caption(c) == subjects_of(s) for c, s in zip(captions, scenes, strict=True)
    )
    return hits / len(captions) if captions else 0.0


def recall_at_k(similarity: Tensor, targets: Tensor, k: int = 1) -> float:
    """Share of rows whose target column is among their `k` most similar columns."""
    top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
    return float((top == targets[:, None]).any(dim=1).float().mean())


@dataclass(frozen=True)
class CaptionMetrics:
    """The course's learning checks, each with its shuffled-image baseline."""

    bleu4: float
    bleu4_shuffled: float
    subject_match: float | None
    subject_match_shuffled: float | None
    token_accuracy: float
    token_accuracy_shuffled: float
    recall_at_1: float
    recall_at_1_shuffled: float
    images: int
    distinct_captions: int

    def table(self) -> str:
        """A small text table: metric, model, shuffled-image baseline."""
        rows = [
            ("BLEU-4", self.bleu4, self.bleu4_shuffled),
            ("subject match", self.subject_match, self.subject_match_shuffled),
            ("token accuracy", self.token_accuracy, self.token_accuracy_shuffled),
            ("image->text recall@1", self.recall_at_1, self.recall_at_1_shuffled),
        ]
        lines = [f"{'metric':<22}{'model':>8}{'shuffled':>10}"]
        for name, value, baseline in rows:
            if value is not None:
                lines.append(f"{name:<22}{value:>8.3f}{baseline:>10.3f}")
        lines.append(
            f"({self.images} validation images, {self.distinct_captions} distinct captions)"
        )
        return "\n".join(lines)


@torch.no_grad()
def evaluate_captioning(
    model: MultimodalModel,
    tokenizer: ProductionTokenizer,
    records: Sequence[Record],
    images: Tensor,
    batch_size: int = 128,
    seed: int = 0,
) -> CaptionMetrics:
    """Greedy captions, teacher-forced accuracy and retrieval on `records` (uint8 `images`)."""
    device = next(model.parameters()).device
    model.eval()
    shuffle = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed))
    references = [list(r.captions) for r in records]
    tokens = tokenizer.batch_encode([r.captions[0] for r in records], model.max_caption_length)

    captions, image_embeddings, correct, correct_shuffled, counted = [], [], 0, 0, 0
    for start in range(0, len(records), batch_size):
        rows = slice(start, start + batch_size)
        batch = _to_float(images[rows], device)
        shuffled = _to_float(images[shuffle[rows]], device)
        batch_tokens = tokens[rows].to(device)
        captions += tokenizer.batch_decode(model.generate(batch).cpu())
        image_embeddings.append(model.encode_image(batch))
        hits, total = _teacher_forced_hits(model, batch, batch_tokens)
        hits_shuffled, _ = _teacher_forced_hits(model, shuffled, batch_tokens)
        correct, correct_shuffled, counted = (
            correct + hits,
            correct_shuffled + hits_shuffled,
            counted + total,
        )

    distinct = sorted({normalize(r.captions[0]) for r in records})
    index = {caption: i for i, caption in enumerate(distinct)}
    targets = torch.tensor([index[normalize(r.captions[0])] for r in records], device=device)
    text_embeddings = model.encode_text(
        tokenizer.batch_encode(distinct, model.max_caption_length).to(device)
    )
    similarity = torch.cat(image_embeddings) @ text_embeddings.T

    scenes = [r.attributes.get("scene") for r in records]
    has_scenes = all(scene is not None for scene in scenes)
    shuffled_captions = [captions[i] for i in shuffle.tolist()]
    return CaptionMetrics(
        bleu4=bleu4(captions, references),
        bleu4_shuffled=bleu4(shuffled_captions, references),
        subject_match=subject_match(captions, scenes) if has_scenes else None,
        subject_match_shuffled=subject_match(shuffled_captions, scenes) if has_scenes else None,
        token_accuracy=correct / counted,
        token_accuracy_shuffled=correct_shuffled / counted,
        recall_at_1=recall_at_k(similarity, targets, 1),
        recall_at_1_shuffled=recall_at_k(similarity[shuffle.to(device)], targets, 1),
        images=len(records),
        distinct_captions=len(distinct),
    )


def _to_float(images: Tensor, device: torch.device) -> Tensor:
    return images.to(device).float().div_(127.5).sub_(1.0)


def _teacher_forced_hits(model: MultimodalModel, images: Tensor, tokens: Tensor) -> tuple[int, int]:
    """Correctly predicted next tokens and the number of non-pad targets."""
    logits = model(images, tokens).caption_logits
    targets = tokens[:, 1:]
    mask = targets != ProductionTokenizer.pad_id
    return int(((logits.argmax(-1) == targets) & mask).sum()), int(mask.sum())


def evaluate_run(
    run: str | Path, checkpoint_dir: str | Path = "checkpoints", device: str = "cpu"
) -> CaptionMetrics:
    """Evaluate a run's `best.pt` on its validation split and write `metrics.json` beside it."""
    model, tokenizer, config = load_model(run, checkpoint_dir, device=device)
    val = load_split(config).val
    images = build_image_cache(
        val, config.image_size, config.resize_mode, cache_dir=config.cache_dir, progress=False
    )
    metrics = evaluate_captioning(model, tokenizer, val, images, seed=config.seed)
    run_dir = resolve_run(run, checkpoint_dir)
    atomic_write_text(run_dir / METRICS_FILE, json.dumps(asdict(metrics), indent=2) + "\n")
    return metrics
