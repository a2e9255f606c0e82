"""How well does a run caption, align, reconstruct and imagine? Every figure of `metrics.json`.

Captioning and retrieval figures come with the same figure for a baseline that shuffles the
images, so a number that a caption-only language model would also reach is visible as such.
BLEU, perplexity, PSNR, SSIM, FID and KID are torchmetrics' implementations; CIDEr-D is
`mmlib.evaluation.cider`'s. BLEU and CIDEr-D score a caption against all of its image's
captions, retrieval counts any of them as a hit, and subject match reads the synthetic set's
scenes (the subjects drawn), not a caption.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from torchmetrics.text import BLEUScore, Perplexity

from mmlib.checkpoint import METRICS_FILE, CheckpointError, load_checkpoint
from mmlib.data.images import build_image_cache, to_pixels, to_uint8
from mmlib.data.language import subjects_named
from mmlib.data.readers import Record
from mmlib.data.sources import SplitData, load_run_records, load_split
from mmlib.data.synthetic import subjects_of
from mmlib.data.tokenizer import Tokenizer, normalize
from mmlib.evaluation.cider import cider_d
from mmlib.files import atomic_write_text, read_json_object
from mmlib.inference.imagine import CANDIDATES
from mmlib.inference.predictor import CaptionSubjects, Predictor
from mmlib.model.multimodal import MultimodalModel
from mmlib.tokens import PAD_ID

RECALL_KS = (1, 5, 10)
# One process evaluates (rank 0 under torchrun): a torchmetrics metric must not gather its state
# over the training process group, whose other ranks have moved on (it would fail, or hang).
SYNC_ON_COMPUTE = False
NOT_APPLICABLE = (
    "not applicable: they read the subjects a caption names, which only the synthetic "
    "set's caption grammar defines"
)
FID_SKIPPED = "skipped: no --fid-weights given (Inception weights are never downloaded at run time)"


def bleu_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4
) -> list[float]:
    """Corpus BLEU-1..max_n on a 0-1 scale (torchmetrics), on normalised text, all references."""
    hyps = [normalize(h) for h in hypotheses]
    refs = [[normalize(r) for r in group] for group in references]
    return [float(BLEUScore(n_gram=n)(hyps, refs)) for n in range(1, max_n + 1)]


def bleu4(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (see `bleu_scores`)."""
    return bleu_scores(hypotheses, references)[3]


def cider(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus CIDEr-D (`cider.cider_d`) on normalised text, against all references; the
    document frequencies come from `references`."""
    refs = [[normalize(r) for r in group] for group in references]
    return cider_d([normalize(h) for h in hypotheses], refs)


def subject_match(
    captions: Sequence[str], references: Sequence[str], subjects: CaptionSubjects
) -> float:
    """Share of captions that name the same subjects, with the same counts, as their reference
    caption, as `subjects` reads them."""
    return scene_match(captions, [subjects(r) for r in references], subjects)


def scene_match(
    captions: Sequence[str], truths: Sequence[Mapping[str, int]], subjects: CaptionSubjects
) -> float:
    """Share of captions that name exactly the subjects and counts of their `truths` (kind ->
    number, as `scene_subjects` gives a scene's), as `subjects` reads them."""
    hits = sum(subjects(c) == dict(t) for c, t in zip(captions, truths, strict=True))
    return hits / len(captions) if captions else 0.0


def scene_subjects(record: Record) -> dict[str, int] | None:
    """Kind -> number drawn in a synthetic record's scene (`attributes["scene"]`, as
    `Scene.to_dict` writes it); None for a record without one (a user's data)."""
    scene = record.attributes.get("scene")
    return subjects_of(scene) if scene is not None else None


def same_subjects(caption: str, reference: str, subjects: CaptionSubjects) -> bool:
    """Whether `caption` names the subjects of `reference`, with the same counts, as `subjects`
    reads them (the test behind the imagine round trip)."""
    return subjects(caption) == subjects(reference)


def new_captions(prompts: Sequence[str], training_captions: Sequence[str]) -> list[bool]:
    """For each prompt, whether it is none of the training captions (case-insensitive)."""
    known = {caption.lower() for caption in training_captions}
    return [prompt.lower() not in known for prompt in prompts]


def recall_at_k(similarity: Tensor, positives: Tensor, k: int = 1) -> float:
    """Share of rows with a positive among their `k` most similar columns.

    `positives` is the target column of each row [R] or a boolean mask [R, C] (several
    positives per row, as when several images share a caption).
    """
    if positives.dim() == 1:
        positives = torch.nn.functional.one_hot(positives, similarity.shape[1]).bool()
    top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
    return float(positives.gather(1, top).any(dim=1).float().mean())


def image_quality(real: Tensor, generated: Tensor) -> tuple[float, float]:
    """(PSNR in dB, SSIM) of uint8 images [N, 3, H, W] against their uint8 originals."""
    real01, generated01 = real.float() / 255, generated.float() / 255
    psnr = PeakSignalNoiseRatio(data_range=1.0)(generated01, real01)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)(generated01, real01)
    return float(psnr), float(ssim)


def inception_distances(
    real: Tensor, generated: Tensor, weights_path: str | os.PathLike[str]
) -> tuple[float, float, float]:
    """(FID, KID mean, KID std) of uint8 images [N, 3, H, W] against real ones.

    `weights_path` is a local copy of the FID Inception weights (torch-fidelity's
    `pt_inception-2015-12-05-6726825d.pth`); nothing is downloaded.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError:
        raise ImportError('FID/KID need torch-fidelity: pip install -e ".[fid]"') from None
    load_checkpoint(weights_path)  # a clear error for a missing or unreadable file
    inception = NoTrainInceptionV3(
        name="inception-v3-compat",
        features_list=["2048"],
        feature_extractor_weights_path=str(weights_path),
    )
    fid = FrechetInceptionDistance(feature=inception, sync_on_compute=SYNC_ON_COMPUTE)
    with warnings.catch_warnings():  # its note that KID keeps every feature: a few hundred here
        warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance`")
        kid = KernelInceptionDistance(
            feature=inception, subset_size=min(100, len(real)), sync_on_compute=SYNC_ON_COMPUTE
        )
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(generated, real=False)
    kid_mean, kid_std = kid.compute()
    return float(fid.compute()), float(kid_mean), float(kid_std)


@dataclass(frozen=True)
class EvaluationMetrics:
    """Every evaluation figure of a run; `*_shuffled` are the shuffled-image baselines.

    BLEU and CIDEr-D are against all of an image's captions; image->text retrieval ranks the
    distinct captions of all images (any of the image's own captions counting as a hit), and
    text->image retrieval ranks all images for each distinct caption (any image with that
    caption counting). Subject match compares a caption with the subjects drawn in the image's
    scene (synthetic data only, else None). CIDEr-D is None in metrics written before it.
    """

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
    bleu1: float
    bleu2: float
    bleu3: float
    beam_bleu1: float
    beam_bleu2: float
    beam_bleu3: float
    beam_bleu4: float
    beam_subject_match: float | None
    perplexity: float
    recall_at_5: float
    recall_at_10: float
    text_recall_at_1: float
    text_recall_at_5: float
    text_recall_at_10: float
    psnr: float
    ssim: float
    imagine_subject_match: float | None = None
    imagine_random_subject_match: float | None = None
    imagine_unseen_subject_match: float | None = None
    sample_agreement: float | None = None
    sample_agreement_pairs: int | None = None  # sampled pairs whose caption names a subject
    fid: float | None = None
    kid: float | None = None
    kid_std: float | None = None
    fid_note: str = FID_SKIPPED
    split: str = "validation"  # the figures' images: "test", "validation" or a data set's path
    cider: float | None = None  # CIDEr-D of the greedy captions
    cider_shuffled: float | None = None
    beam_cider: float | None = None

    def table(self) -> str:
        """The figures as a text table: metric, model, shuffled-image baseline where one exists."""
        rows: list[tuple[str, float | None, float | None]] = [
            *((f"BLEU-{n} greedy", getattr(self, f"bleu{n}"), None) for n in (1, 2, 3)),
            ("BLEU-4 greedy", self.bleu4, self.bleu4_shuffled),
            *((f"BLEU-{n} beam", getattr(self, f"beam_bleu{n}"), None) for n in (1, 2, 3, 4)),
            ("CIDEr-D greedy", self.cider, self.cider_shuffled),
            ("CIDEr-D beam", self.beam_cider, None),
            ("subject match greedy", self.subject_match, self.subject_match_shuffled),
            ("subject match beam", self.beam_subject_match, None),
            ("token accuracy", self.token_accuracy, self.token_accuracy_shuffled),
            ("perplexity", self.perplexity, None),
            ("image->text recall@1", self.recall_at_1, self.recall_at_1_shuffled),
            ("image->text recall@5", self.recall_at_5, None),
            ("image->text recall@10", self.recall_at_10, None),
            *(
                (f"text->image recall@{k}", getattr(self, f"text_recall_at_{k}"), None)
                for k in RECALL_KS
            ),
            ("reconstruction PSNR (dB)", self.psnr, None),
            ("reconstruction SSIM", self.ssim, None),
            ("imagine round trip", self.imagine_subject_match, self.imagine_random_subject_match),
            ("  captions not in training", self.imagine_unseen_subject_match, None),
            ("sampled pair agreement", self.sample_agreement, None),
            ("FID (reconstructions)", self.fid, None),
            ("KID (reconstructions)", self.kid, None),
        ]
        lines = [f"{'metric':<26}{'model':>9}{'baseline':>10}"]
        for name, value, baseline in rows:
            if value is not None:
                base = f"{baseline:>10.3f}" if baseline is not None else f"{'':>10}"
                lines.append(f"{name:<26}{value:>9.3f}{base}")
        lines.append(
            f"({self.images} images of {_split_phrase(self.split)}, {self.distinct_captions} "
            "distinct captions; baseline: shuffled images, or random latents for the imagine "
            "round trip)"
        )
        if self.sample_agreement_pairs is not None:
            lines.append(
                f"sampled pair agreement over the {self.sample_agreement_pairs} sampled pairs "
                "whose caption names a subject"
            )
        if self.subject_match is None:
            lines.append(
                f"subject match, imagine round trip, sampled pair agreement: {NOT_APPLICABLE}"
            )
        if self.fid is None:
            lines.append(f"FID/KID {self.fid_note}")
        return "\n".join(lines)


def _batches(count: int, size: int) -> list[slice]:
    return [slice(start, start + size) for start in range(0, count, size)]


@torch.no_grad()
def evaluate_captioning(
    model: MultimodalModel,
    tokenizer: Tokenizer,
    records: Sequence[Record],
    images: Tensor,
    batch_size: int = 128,
    seed: int = 0,
    beam_width: int = 4,
    subjects: CaptionSubjects | None = None,
) -> EvaluationMetrics:
    """Captioning, retrieval and reconstruction figures on `records` (uint8 `images`); subject
    match only with `subjects` (the data set's reading of the subjects a caption names, e.g.
    `language.subjects_named`), against each record's scene (`scene_subjects`), else None."""
    model.eval()
    shuffle = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed))
    batches = _batches(len(records), batch_size)
    data = _EvaluationData(model, tokenizer, records, images, batches, shuffle)
    return EvaluationMetrics(
        images=len(records),
        **_captioning_figures(data, beam_width, subjects),
        **_retrieval_figures(data),
        **_reconstruction_figures(data),
    )


@torch.no_grad()
def caption_bits_per_word(
    model: MultimodalModel, tokenizer: Tokenizer, batches: Iterable[tuple[Tensor, Tensor]]
) -> float:
    """Teacher-forced caption loss in bits per word over `batches` of (pixels in [-1, 1]
    [B, C, H, W], their encoded captions [B, L]): -log2 p of every target token (<END>
    included), summed, over the words those tokens spell (`tokenizer.decode`).

    Per-token loss cannot compare tokenizers whose tokens differ (a subword model takes more,
    easier steps per word); per word it can. A word-level <UNK> counts as one word, so that
    model is flattered by the words it never has to spell.
    """
    model.eval()
    device = next(model.parameters()).device
    nats, word_count = 0.0, 0
    for images, tokens in batches:
        images, tokens = images.to(device), tokens.to(device)
        logits = model(images, tokens).caption_logits.float()
        nats += float(
            F.cross_entropy(
                logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=PAD_ID, reduction="sum"
            )
        )
        word_count += sum(len(tokenizer.decode(row).split()) for row in tokens)
    if word_count == 0:
        raise ValueError("caption_bits_per_word: the captions hold no words to score")
    return nats / math.log(2) / word_count


@dataclass(frozen=True)
class _EvaluationData:
    """What `evaluate_captioning` measures on: the model and its tokenizer, the records and
    their uint8 images, taken in `batches`, and the `shuffle` of the images for the baselines."""

    model: MultimodalModel
    tokenizer: Tokenizer
    records: Sequence[Record]
    images: Tensor
    batches: list[slice]
    shuffle: Tensor

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return next(self.model.parameters()).device

    def pixels(self, rows: slice | Tensor) -> Tensor:
        """The images at `rows` as the model's input, on its device."""
        return to_pixels(self.images[rows].to(self.device))


def _captioning_figures(
    data: _EvaluationData, beam_width: int, subjects: CaptionSubjects | None
) -> dict[str, Any]:
    """BLEU and CIDEr-D of greedy and beam captions against all captions, subject match against
    the scenes, teacher-forced token accuracy and perplexity of the first captions, with the
    shuffled-image baselines."""
    model, tokenizer, records, shuffle = data.model, data.tokenizer, data.records, data.shuffle
    tokens = tokenizer.batch_encode([r.captions[0] for r in records], model.max_caption_length)
    # torchmetrics annotates **kwargs as dict values
    perplexity = Perplexity(ignore_index=PAD_ID, sync_on_compute=SYNC_ON_COMPUTE)  # type: ignore[arg-type]
    perplexity = perplexity.to(data.device)
    greedy: list[str] = []
    beam: list[str] = []
    correct, correct_shuffled, counted = 0, 0, 0
    for rows in data.batches:
        batch, shuffled = data.pixels(rows), data.pixels(shuffle[rows])
        batch_tokens = tokens[rows].to(data.device)
        greedy += tokenizer.batch_decode(model.generate(batch).cpu())
        beam += tokenizer.batch_decode(
            model.generate(batch, method="beam", beam_width=beam_width).cpu()
        )
        logits = model(batch, batch_tokens).caption_logits
        perplexity.update(logits.float(), batch_tokens[:, 1:])
        hits, total = _teacher_forced_hits(logits, batch_tokens)
        hits_shuffled, _ = _teacher_forced_hits(
            model(shuffled, batch_tokens).caption_logits, batch_tokens
        )
        correct, correct_shuffled, counted = (
            correct + hits,
            correct_shuffled + hits_shuffled,
            counted + total,
        )

    references = [list(r.captions) for r in records]
    greedy_bleu, beam_bleu = bleu_scores(greedy, references), bleu_scores(beam, references)
    shuffled_greedy = [greedy[i] for i in shuffle.tolist()]
    matched = _scene_matcher(records, subjects)
    return {
        **{f"bleu{n}": score for n, score in enumerate(greedy_bleu, start=1)},
        **{f"beam_bleu{n}": score for n, score in enumerate(beam_bleu, start=1)},
        "bleu4_shuffled": bleu4(shuffled_greedy, references),
        "cider": cider(greedy, references),
        "cider_shuffled": cider(shuffled_greedy, references),
        "beam_cider": cider(beam, references),
        "subject_match": matched(greedy),
        "subject_match_shuffled": matched(shuffled_greedy),
        "beam_subject_match": matched(beam),
        "token_accuracy": correct / counted,
        "token_accuracy_shuffled": correct_shuffled / counted,
        "perplexity": float(perplexity.compute()),
    }


def _scene_matcher(
    records: Sequence[Record], subjects: CaptionSubjects | None
) -> Callable[[Sequence[str]], float | None]:
    """Subject match of captions (one per record) against the records' scenes as `subjects`
    reads the captions; None throughout without `subjects`."""
    if subjects is None:
        return lambda captions: None
    truths = [scene_subjects(r) for r in records]
    known = [truth for truth in truths if truth is not None]
    if len(known) != len(records):
        missing = next(r.id for r, truth in zip(records, truths, strict=True) if truth is None)
        raise ValueError(f"subject match needs each record's scene; {missing} has none")
    return lambda captions: scene_match(captions, known, subjects)


def retrieval_targets(records: Sequence[Record]) -> tuple[list[str], Tensor]:
    """The gallery of retrieval, the distinct normalised captions of all `records` (sorted),
    and the positives: [records, captions] True where the caption is one of the record's."""
    own = [{normalize(c) for c in r.captions} for r in records]
    distinct = sorted({caption for captions in own for caption in captions})
    column = {caption: i for i, caption in enumerate(distinct)}
    positives = torch.zeros(len(records), len(distinct), dtype=torch.bool)
    for row, captions in enumerate(own):
        positives[row, [column[c] for c in captions]] = True
    return distinct, positives


def retrieval_recalls(similarity: Tensor, positives: Tensor, shuffle: Tensor) -> dict[str, float]:
    """Image->text recall@k of `similarity` [images, captions] (at 1 also with the images in
    `shuffle` order, scored against the unshuffled positives) and text->image recall@k."""
    return {
        **{f"recall_at_{k}": recall_at_k(similarity, positives, k) for k in RECALL_KS},
        "recall_at_1_shuffled": recall_at_k(similarity[shuffle], positives, 1),
        **{f"text_recall_at_{k}": recall_at_k(similarity.T, positives.T, k) for k in RECALL_KS},
    }


def _retrieval_figures(data: _EvaluationData) -> dict[str, Any]:
    """Recall@k between the images and the distinct captions of all of them (`retrieval_targets`,
    `retrieval_recalls`), with the shuffled-image baseline at 1."""
    model, device = data.model, data.device
    embeddings = [model.encode_image(data.pixels(rows)) for rows in data.batches]
    distinct, positives = retrieval_targets(data.records)
    text_embeddings = model.encode_text(
        data.tokenizer.batch_encode(distinct, model.max_caption_length).to(device)
    )
    similarity = torch.cat(embeddings) @ text_embeddings.T
    return {
        "distinct_captions": len(distinct),
        **retrieval_recalls(similarity, positives.to(device), data.shuffle.to(device)),
    }


def _reconstruction_figures(data: _EvaluationData) -> dict[str, Any]:
    """PSNR and SSIM of the model's reconstructions of the images."""
    reconstructions = [to_uint8(data.model.reconstruct(data.pixels(rows))) for rows in data.batches]
    psnr, ssim = image_quality(data.images, torch.cat(reconstructions))
    return {"psnr": psnr, "ssim": ssim}


def _teacher_forced_hits(logits: Tensor, tokens: Tensor) -> tuple[int, int]:
    """Correctly predicted next tokens and the number of non-pad targets."""
    targets = tokens[:, 1:]
    mask = targets != PAD_ID
    return int(((logits.argmax(-1) == targets) & mask).sum()), int(mask.sum())


@dataclass(frozen=True)
class ImaginationMetrics:
    """Round trips through the latent: imagined images read back, and sampled pairs."""

    imagine_subject_match: float
    imagine_random_subject_match: float
    imagine_unseen_subject_match: float | None
    sample_agreement: float | None
    sample_agreement_pairs: int


@dataclass(frozen=True)
class RoundTrip:
    """Captions imagined and read back: each prompt, its imagined image (uint8 [N, 3, S, S],
    the best of `candidates` draws), the captioner's reading of that image, and whether the
    reading names the prompt's subjects (`same_subjects`)."""

    prompts: list[str]
    images: Tensor
    readings: list[str]
    matched: list[bool]
    candidates: int

    def match_rate(self, among: Sequence[bool] | None = None) -> float | None:
        """Share of the round trips that matched, over all of them or over those where `among`
        is True; None when that leaves none."""
        if among is not None and len(among) != len(self.matched):
            raise ValueError(f"among has {len(among)} entries for {len(self.matched)} prompts")
        keep = [True] * len(self.matched) if among is None else among
        chosen = [matched for matched, kept in zip(self.matched, keep, strict=True) if kept]
        return sum(chosen) / len(chosen) if chosen else None


@torch.no_grad()
def imagine_round_trip(
    predictor: Predictor,
    prompts: Sequence[str],
    subjects: CaptionSubjects,
    seed: int = 0,
    candidates: int = CANDIDATES,
    batch_size: int = 128,
) -> RoundTrip:
    """Imagine an image per prompt (`Predictor.imagine`, best of `candidates`) and caption it
    back. A prompt's noise depends only on `seed`, `candidates` and its position, so the first
    N prompts of a list get the images the whole list gets (up to the rounding of the batch)."""
    if not prompts:
        raise ValueError("prompts is empty: give at least one caption to imagine")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: need at least 1")
    prompts = list(prompts)
    images: list[Tensor] = []
    readings: list[str] = []
    for start in range(0, len(prompts), batch_size):
        imagined = predictor.imagine(
            prompts[start : start + batch_size], seed=seed, candidates=candidates
        )
        images.append(imagined)
        readings += predictor.caption(imagined)
    matched = [same_subjects(r, p, subjects) for r, p in zip(readings, prompts, strict=True)]
    return RoundTrip(prompts, torch.cat(images), readings, matched, candidates)


@torch.no_grad()
def evaluate_imagination(
    predictor: Predictor,
    prompts: Sequence[str],
    subjects: CaptionSubjects,
    seed: int = 0,
    batch_size: int = 128,
    training_captions: Sequence[str] | None = None,
) -> ImaginationMetrics:
    """Imagine an image per prompt and caption it back: the share naming the prompt's subjects
    (as `subjects` reads them), beside the same share for images decoded from random latents
    (drawn from the fitted latent Gaussian), and how often a sampled pair's caption and reading
    agree. With `training_captions`, also the share among prompts that are none of them
    (case-insensitive): how well imagining generalises to new captions."""
    trip = imagine_round_trip(predictor, prompts, subjects, seed, batch_size=batch_size)
    random_pairs = predictor.sample_pairs(len(prompts), seed=seed)
    agreement = random_pairs.subject_agreement(subjects)
    unseen = None
    if training_captions is not None:
        unseen = trip.match_rate(new_captions(prompts, training_captions))
    return ImaginationMetrics(
        imagine_subject_match=trip.match_rate() or 0.0,
        imagine_random_subject_match=subject_match(random_pairs.readings, prompts, subjects),
        imagine_unseen_subject_match=unseen,
        sample_agreement=agreement.share,
        sample_agreement_pairs=agreement.counted,
    )


def evaluate_run(
    run: str | Path,
    checkpoint_dir: str | Path = "checkpoints",
    device: str | torch.device = "cpu",
    data: str | os.PathLike[str] | None = None,
    data_format: str = "auto",
    fid_weights: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> EvaluationMetrics:
    """Evaluate a run's `best.pt` on `device` and add the figures to `metrics.json` in its folder.

    The data are the run's own test split (its validation split where the data have none: no
    marked test records and `test_fraction` 0), or every record of `data` (any dataset format);
    `split` in the figures says which. Figures that read the subjects a caption names (subject
    match, imagination) need the synthetic set (its records carry their `scene`; captions of
    either grammar are read by `language.subjects_named`), and the imagination figures the
    run's `imagine.pt`; FID/KID need `fid_weights`. `progress` prints each stage as it starts.
    """

    def stage(text: str) -> None:
        if progress:
            print(f"  {text}", flush=True)

    predictor = Predictor.load(run, checkpoint_dir, device=device)
    assert predictor.run_dir is not None  # load always sets it
    figures_written(predictor.run_dir)  # a damaged metrics.json is refused now, not at the end
    config = predictor.config
    split = load_split(config) if data is None else None
    if split is None:
        assert data is not None  # split is None only when data is given
        records, split_name = load_run_records(data, data_format, None, config)[0], str(data)
    elif split.test:
        records, split_name = split.test, "test"
    else:
        records, split_name = split.val, "validation"
    images = build_image_cache(
        records, config.image_size, config.resize_mode, cache_dir=config.cache_dir, progress=False
    )
    synthetic = all(scene_subjects(r) is not None for r in records)
    subjects = subjects_named if synthetic else None
    stage(
        f"captions (greedy and beam), retrieval, reconstructions: {len(records)} images of "
        f"{_split_phrase(split_name)}"
    )
    metrics = evaluate_captioning(
        predictor.model, predictor.tokenizer, records, images, seed=config.seed, subjects=subjects
    )
    extra: dict[str, float | str | None] = {"split": split_name}
    if predictor.imagination is not None and subjects is not None:
        prompts = [r.captions[0] for r in records]
        stage(f"imagining {len(prompts)} captions, and sampled pairs")
        training = [c for r in split.train for c in r.captions] if split is not None else None
        imagination = evaluate_imagination(
            predictor, prompts, subjects, config.seed, training_captions=training
        )
        extra.update(asdict(imagination))
    if fid_weights is not None:
        stage("FID and KID of the reconstructions")
        reconstructed = torch.cat(
            [
                to_uint8(predictor.model.reconstruct(to_pixels(images[rows].to(predictor.device))))
                for rows in _batches(len(records), 128)
            ]
        )
        fid, kid, kid_std = inception_distances(images, reconstructed, fid_weights)
        extra.update(fid=fid, kid=kid, kid_std=kid_std, fid_note=f"weights: {fid_weights}")
    metrics = EvaluationMetrics(**{**asdict(metrics), **extra})
    write_metrics(metrics, predictor.run_dir)
    return metrics


def _split_phrase(split: str) -> str:
    """How a report names the images a figure comes from: "the test split", or a data set."""
    return f"the {split} split" if split in ("test", "validation") else f"the data set {split}"


def evaluated_records(split: SplitData, name: str) -> list[Record]:
    """The records of `split` that figures evaluated on the split called `name` (as
    `EvaluationMetrics.split` names it: "test" or "validation") come from."""
    records = {"test": split.test, "validation": split.val}.get(name)
    if records is None:
        raise ValueError(f"split={name!r}: a run's own split is 'test' or 'validation'")
    return records


def load_metrics(run_dir: str | os.PathLike[str]) -> EvaluationMetrics:
    """The figures of a run's `metrics.json` (written by `make train` or `evaluate`)."""
    path = Path(run_dir) / METRICS_FILE
    evaluate = f"evaluate the run again with `python -m mmlib evaluate {run_dir}`"
    written = read_json_object(path, evaluate, CheckpointError)
    wrong = [
        f"{f.name}={written[f.name]!r}"
        for f in fields(EvaluationMetrics)
        if f.name in written and not _fits(written[f.name], str(f.type))
    ]
    if wrong:
        raise CheckpointError(f"{path}: {wrong[0]} is not a figure of that kind; {evaluate}")
    known = {f.name for f in fields(EvaluationMetrics)}
    try:
        return EvaluationMetrics(**{k: v for k, v in written.items() if k in known})
    except TypeError as error:
        raise CheckpointError(f"{path}: written by an older mmlib ({error}); {evaluate}") from None


def _fits(value: object, annotation: str) -> bool:
    """Whether a JSON value is of a field's annotated type ("float | None", "int", "str")."""
    kinds = {"float": (int, float), "int": (int,), "str": (str,), "None": (type(None),)}
    allowed = tuple(kind for name in annotation.split(" | ") for kind in kinds[name])
    return isinstance(value, allowed) and not isinstance(value, bool)


def figures_written(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What the run's `metrics.json` holds ({} without one), checked to be a JSON object."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return {}
    remedy = f"delete it, then evaluate the run again (python -m mmlib evaluate {run_dir})"
    return read_json_object(path, remedy, CheckpointError)


def write_metrics(metrics: EvaluationMetrics, run_dir: str | os.PathLike[str]) -> Path:
    """Write `metrics` into the run's `metrics.json`, atomically; keys that `EvaluationMetrics`
    does not define (added by other tools) are kept."""
    path = Path(run_dir) / METRICS_FILE
    existing = figures_written(run_dir)
    known = {f.name for f in fields(EvaluationMetrics)}
    kept = {k: v for k, v in existing.items() if k not in known}
    return atomic_write_text(path, json.dumps({**kept, **asdict(metrics)}, indent=2) + "\n")
