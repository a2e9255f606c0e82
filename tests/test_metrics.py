"""Tests for mmlib.evaluation.metrics: each score on hand-made cases, a run evaluated end to end."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from mmlib.checkpoint import CheckpointError
from mmlib.cli import main
from mmlib.config import Config
from mmlib.data.language import subjects_named
from mmlib.data.readers import Record, load_records
from mmlib.data.sources import load_split
from mmlib.data.synthetic import generate, subjects_in_caption
from mmlib.data.tokenizer import build_tokenizer
from mmlib.evaluation.cider import (
    cider_d,
    cider_d_scores,
    clipped_cosine,
    document_frequencies,
    length_penalty,
    ngram_counts,
    tfidf,
)
from mmlib.evaluation.metrics import (
    FID_SKIPPED,
    NOT_APPLICABLE,
    _scene_matcher,
    bleu4,
    bleu_scores,
    caption_bits_per_word,
    cider,
    evaluate_imagination,
    evaluate_run,
    image_quality,
    inception_distances,
    load_metrics,
    recall_at_k,
    retrieval_recalls,
    retrieval_targets,
    scene_match,
    scene_subjects,
    subject_match,
)
from mmlib.inference.predictor import Predictor
from mmlib.model.multimodal import MultimodalModel
from mmlib.tokens import PAD_ID
from mmlib.training.trainer import Trainer


def test_bleu4_uses_normalised_text_and_all_references() -> None:
    assert bleu4(["A small ship, beside a TOWER."], [["a small ship beside a tower"]]) == 1.0
    refs = [["two birds above a house", "a small ship beside a tall tower"]]
    assert bleu4(["a small ship beside a tall tower"], refs) == pytest.approx(1.0)
    assert bleu4(["a horse"], [["a small ship beside a tall tower"]]) == 0.0


def test_subject_match_counts_exact_subjects() -> None:
    reference = "an engraving depicting two birds above a small ship"
    captions = [
        "an engraving depicting a small ship beside two birds above it",
        "an engraving depicting a small ship",
        "an engraving depicting a small ship beside three birds",
    ]
    assert subject_match(captions, [reference] * 3, subjects_in_caption) == pytest.approx(1 / 3)
    pairs = (["two birds above a ship", "a ship"], ["a ship under two birds"] * 2)
    assert subject_match(*pairs, subjects_in_caption) == 0.5


def test_subject_match_reads_subjects_with_the_function_given() -> None:
    def words(caption: str) -> dict[str, int]:
        return dict.fromkeys(caption.split(), 1)

    assert subject_match(["a b", "a c"], ["b a", "a b"], words) == 0.5


def test_recall_at_k() -> None:
    similarity = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.7, 0.0], [0.0, 0.5, 0.4]])
    targets = torch.tensor([0, 1, 2])
    assert recall_at_k(similarity, targets, 1) == pytest.approx(1 / 3)
    assert recall_at_k(similarity, targets, 2) == pytest.approx(1.0)
    several = torch.tensor([[False, True, True], [False, False, True], [True, False, False]])
    assert recall_at_k(similarity, several, 1) == pytest.approx(0.0)
    assert recall_at_k(similarity, several, 2) == pytest.approx(1 / 3)


def _scene(*kinds_and_counts: tuple[str, int]) -> dict[str, object]:
    """A stored scene (as `Scene.to_dict` writes it) of these subjects, boxes left out."""
    subjects = [{"kind": kind, "count": count} for kind, count in kinds_and_counts]
    return {"subjects": subjects, "relations": []}


def test_scene_subjects_sum_each_kind_and_are_none_without_a_scene() -> None:
    scene = _scene(("ship", 1), ("bird", 2), ("ship", 1))
    record = Record("a", Path("a.png"), ("a caption",), {"scene": scene})
    assert scene_subjects(record) == {"ship": 2, "bird": 2}
    assert scene_subjects(Record("b", Path("b.png"), ("a caption",))) is None


@pytest.mark.parametrize("grammar", ["simple", "annotators"])
def test_every_reference_caption_names_its_scene(tmp_path: Path, grammar: str) -> None:
    generate(tmp_path, n=12, image_size=16, seed=2, workers=1, progress=False, grammar=grammar)
    records = load_records(tmp_path)[0]
    assert len(records) == 12
    assert {len(r.captions) for r in records} == {1 if grammar == "simple" else 5}
    for record in records:
        for caption in record.captions:
            assert subjects_named(caption) == scene_subjects(record), caption


def test_scene_match_compares_captions_with_the_subjects_drawn() -> None:
    truths = [{"ship": 1, "bird": 2}, {"tower": 1}]
    captions = ["two gulls over a boat", "a ship beside a tower"]
    assert scene_match(captions, truths, subjects_named) == 0.5
    assert scene_match([], [], subjects_named) == 0.0


def test_subject_match_reads_the_scene_not_the_first_caption() -> None:
    scenes = [_scene(("tower", 1)), _scene(("bird", 3), ("moon", 1))]
    records = [
        Record("0", Path("0.png"), ("a ship",), {"scene": scenes[0]}),
        Record("1", Path("1.png"), ("three birds", "a flock of three rooks"), {"scene": scenes[1]}),
    ]
    matched = _scene_matcher(records, subjects_named)
    assert matched(["a tall tower", "three birds under the moon"]) == 1.0
    assert matched(["a ship", "a flock of three rooks"]) == 0.0
    assert _scene_matcher(records, None)(["a ship", "a bird"]) is None
    user = [*records, Record("2", Path("2.png"), ("a dog",))]
    with pytest.raises(ValueError, match="2 has none"):
        _scene_matcher(user, subjects_named)


def test_retrieval_targets_hold_every_caption_of_every_record() -> None:
    records = [
        Record("0", Path("0.png"), ("A ship.", "a boat", "a ship")),
        Record("1", Path("1.png"), ("a tower", "a boat")),
    ]
    distinct, positives = retrieval_targets(records)
    assert distinct == ["a boat", "a ship", "a tower"]
    assert positives.tolist() == [[True, True, False], [True, False, True]]


def _old_retrieval(similarity: torch.Tensor, records: list[Record], shuffle: torch.Tensor):
    """The figures as evaluation computed them from the first captions only (before five
    captions per image): targets a column per image, a caption's images a mask."""
    distinct = sorted({r.captions[0] for r in records})
    targets = torch.tensor([distinct.index(r.captions[0]) for r in records])
    caption_images = targets[None, :] == torch.arange(len(distinct))[:, None]
    return {
        **{f"recall_at_{k}": recall_at_k(similarity, targets, k) for k in (1, 5, 10)},
        "recall_at_1_shuffled": recall_at_k(similarity[shuffle], targets, 1),
        **{f"text_recall_at_{k}": recall_at_k(similarity.T, caption_images, k) for k in (1, 5, 10)},
    }


def test_retrieval_with_one_caption_per_image_gives_the_figures_of_before() -> None:
    generator = torch.Generator().manual_seed(0)
    captions = [f"caption {i % 9}" for i in range(14)]  # some captions shared by two images
    records = [Record(str(i), Path(f"{i}.png"), (c,)) for i, c in enumerate(captions)]
    distinct, positives = retrieval_targets(records)
    noise = torch.randn(len(records), len(distinct), generator=generator)
    similarity = noise + positives.float()  # some hits, some misses
    shuffle = torch.randperm(len(records), generator=generator)
    figures = retrieval_recalls(similarity, positives, shuffle)
    assert figures == _old_retrieval(similarity, records, shuffle)
    assert 0 < figures["recall_at_1"] < figures["recall_at_5"]


def test_retrieval_counts_any_own_caption_as_a_hit() -> None:
    records = [
        Record("0", Path("0.png"), ("a", "b")),
        Record("1", Path("1.png"), ("c", "d")),
        Record("2", Path("2.png"), ("e", "b")),
    ]
    distinct, positives = retrieval_targets(records)
    assert distinct == ["a", "b", "c", "d", "e"]
    similarity = torch.tensor(  # columns a..e
        [
            [0.1, 0.9, 0.0, 0.0, 0.0],  # best: b, its own
            [0.0, 0.0, 0.2, 0.3, 0.9],  # best: e, not its own; then d, c (its own)
            [0.0, 0.1, 0.0, 0.0, 0.0],  # best: b, its own (also image 0's)
        ]
    )
    figures = retrieval_recalls(similarity, positives, torch.tensor([1, 2, 0]))
    assert figures["recall_at_1"] == pytest.approx(2 / 3) and figures["recall_at_5"] == 1.0
    # Shuffled: row 0 is image 1's (e: not image 0's), row 1 image 2's (b: not image 1's), row 2
    # image 0's (b: image 2's own caption too).
    assert figures["recall_at_1_shuffled"] == pytest.approx(1 / 3)
    # Text->image: a->0 (hit), b->0 (hit), c->1 (hit), d->1 (hit), e->1 (miss: image 2's).
    assert figures["text_recall_at_1"] == pytest.approx(4 / 5)


# A hand-written example: five images, three to five references each, and one caption each
# (word for word a reference, a near miss, a repeated word to clip, a short one).
CIDER_CAPTIONS = [
    "a small ship beside a tall tower",
    "two birds above a house",
    "a horse horse horse in a field",
    "an engraving of a windmill",
    "a church",
]
CIDER_REFERENCES = [
    ["a small ship beside a tall tower", "a ship next to a tower", "a little boat by a tall tower"],
    [
        "two birds fly above a house",
        "a pair of birds over a cottage",
        "two birds above a small house",
        "birds over a house",
    ],
    ["a horse in a field", "a brown horse stands in a field", "one horse on the grass"],
    [
        "an old engraving of a windmill and a tree",
        "a windmill beside a tree",
        "a tree left of a windmill",
        "an engraving of a windmill",
        "a mill and a tree",
    ],
    [
        "a church under a crescent moon",
        "a tall church and the moon",
        "a church with a moon above it",
    ],
]
# pycocoevalcap 1.2 (pip), `pycocoevalcap.cider.cider.Cider().compute_score(gts, res)` with
# gts = {i: CIDER_REFERENCES[i]} and res = {i: [CIDER_CAPTIONS[i]]}, the text fed as it is here
# (lower case, no punctuation; its Java PTBTokenizer not run). That scorer is CIDEr-D: clipped
# counts, Gaussian length penalty with sigma 6, x10, document frequencies from these references.
PYCOCOEVALCAP_CIDER_D = 3.1526515442198018
PYCOCOEVALCAP_CIDER_D_PER_IMAGE = [
    4.524410660030537,
    3.4965743722718345,
    2.513499149303811,
    3.6860822297606397,
    1.5426913097321862,
]


def test_cider_d_matches_pycocoevalcap() -> None:
    scores = cider_d_scores(CIDER_CAPTIONS, CIDER_REFERENCES)
    assert scores == pytest.approx(PYCOCOEVALCAP_CIDER_D_PER_IMAGE, rel=1e-12)
    assert cider_d(CIDER_CAPTIONS, CIDER_REFERENCES) == pytest.approx(
        PYCOCOEVALCAP_CIDER_D, rel=1e-12
    )


def test_cider_d_parts() -> None:
    assert ngram_counts("a b a".split(), max_n=2) == {
        ("a",): 2,
        ("b",): 1,
        ("a", "b"): 1,
        ("b", "a"): 1,
    }
    references = [[ngram_counts(["a", "b"]), ngram_counts(["a"])], [ngram_counts(["a", "c"])]]
    frequencies = document_frequencies(references)
    assert frequencies == {("a",): 2, ("b",): 1, ("a", "b"): 1, ("c",): 1, ("a", "c"): 1}
    vectors = tfidf(ngram_counts(["b", "b", "d"], max_n=2), frequencies, images=2, max_n=2)
    log2 = torch.tensor(2.0).log().item()
    assert vectors[0] == pytest.approx({("b",): 2 * log2, ("d",): log2})  # d: in no reference
    assert vectors[1] == pytest.approx({("b", "b"): log2, ("b", "d"): log2})
    assert clipped_cosine({("b",): 2.0}, {("b",): 1.0}) == pytest.approx(0.5)  # clipped at 1
    assert clipped_cosine({("b",): 1.0}, {}) == 0.0
    assert length_penalty(7, 7) == 1.0 and length_penalty(4, 10) == pytest.approx(0.6065306597)


def test_cider_d_is_zero_for_unrelated_captions_and_checks_its_input() -> None:
    assert cider_d(["one dog", "a cat"], [["the ship"], ["two towers"]]) == 0.0
    assert cider_d([], []) == 0.0
    with pytest.raises(ValueError, match="2 captions for 1 reference sets"):
        cider_d(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="at least one reference"):
        cider_d(["a"], [[]])


def test_cider_normalises_text() -> None:
    shouting = [c.upper() + "." for c in CIDER_CAPTIONS]
    references = [[f"{r.capitalize()}!" for r in group] for group in CIDER_REFERENCES]
    assert cider(shouting, references) == pytest.approx(PYCOCOEVALCAP_CIDER_D, rel=1e-12)


def test_bleu_scores_one_to_four() -> None:
    scores = bleu_scores(["a small ship beside a tower"], [["a small ship beside a tall tower"]])
    assert scores[0] > scores[1] > scores[2] > scores[3] > 0
    assert scores[3] == bleu4(
        ["a small ship beside a tower"], [["a small ship beside a tall tower"]]
    )


def test_image_quality_is_perfect_for_identical_images_and_falls_with_noise() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 16, 16), generator=generator, dtype=torch.uint8)
    psnr, ssim = image_quality(images, images)
    assert psnr > 80 and ssim == pytest.approx(1.0)
    noisy = (images.int() + torch.randint(-20, 21, images.shape, generator=generator)).clamp(0, 255)
    psnr_noisy, ssim_noisy = image_quality(images, noisy.byte())
    assert 20 < psnr_noisy < 30 and ssim_noisy < 0.99


def _random_inception_weights(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dict with the FID Inception's keys and shapes but random values."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with monkeypatch.context() as patch:
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        patch.setattr(
            "torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url",
            lambda *args, **kwargs: None,
        )
        network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    generator = torch.Generator().manual_seed(0)
    state = network.state_dict()
    for name, tensor in state.items():
        if name.endswith("running_var"):
            tensor.fill_(1.0)
        elif tensor.dim() == 4:  # conv weights: He initialisation keeps activations alive
            fan_in = tensor[0].numel()
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2 / fan_in) ** 0.5)
    torch.save(state, path)
    return path


def test_inception_distances_with_local_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = _random_inception_weights(tmp_path / "inception.pth", monkeypatch)
    generator = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (6, 3, 32, 32), generator=generator, dtype=torch.uint8)
    fid_same, kid_same, _ = inception_distances(real, real, weights)
    fid_other, kid_other, _ = inception_distances(real, 255 - real, weights)
    assert abs(fid_same) < 1e-3 and fid_other > fid_same and kid_other > kid_same
    with pytest.raises(CheckpointError, match="missing.pth"):
        inception_distances(real, real, tmp_path / "missing.pth")


def test_evaluate_run_writes_metrics_with_baselines(tiny_config) -> None:
    config = tiny_config(num_epochs=1)
    trainer = Trainer(config, progress=False)
    trainer.fit()
    metrics = evaluate_run("tiny", config.checkpoint_dir)
    written = json.loads((trainer.run_dir / "metrics.json").read_text())
    assert written["images"] == 7 and written["bleu4"] == metrics.bleu4
    assert written["split"] == "validation"  # this data set has no test split
    assert "7 images of the validation split" in metrics.table()
    for name in ("bleu4", "subject_match", "token_accuracy", "recall_at_1"):
        assert 0.0 <= written[name] <= 1.0 and 0.0 <= written[f"{name}_shuffled"] <= 1.0
    assert written["cider"] >= 0.0 and written["cider_shuffled"] >= 0.0
    assert written["beam_cider"] >= 0.0
    table = metrics.table()
    assert "image->text recall@1" in table and "text->image recall@10" in table
    assert "CIDEr-D greedy" in table and "CIDEr-D beam" in table
    assert "BLEU-4 beam" in table and "reconstruction SSIM" in table
    assert written["fid"] is None and FID_SKIPPED in table
    assert written["imagine_subject_match"] is None  # no imagine.pt in this run


def test_evaluate_run_reports_on_the_test_split_where_the_data_have_one(
    tiny_run: Path, tmp_path: Path
) -> None:
    run = shutil.copytree(tiny_run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    data = tmp_path / "with_test"  # the run's own 70 images, and 5 test images drawn apart
    generate(data, n=70, image_size=32, seed=1, test_n=5, workers=1, progress=False)
    (run / "config.json").write_text(json.dumps({**config, "data_dir": str(data)}))
    metrics = evaluate_run(run)
    assert (metrics.split, metrics.images) == ("test", 5)
    assert json.loads((run / "metrics.json").read_text())["split"] == "test"
    assert "5 images of the test split" in metrics.table()


def test_evaluate_command_extends_metrics_json_with_imagination(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = shutil.copytree(tiny_run, tmp_path / "run")
    (run / "metrics.json").write_text(json.dumps({"note": "kept", "bleu4": -1.0}))
    assert main(["evaluate", str(run)]) == 0
    written = json.loads((run / "metrics.json").read_text())
    assert written["note"] == "kept" and written["bleu4"] >= 0.0
    names = ("imagine_subject_match", "imagine_unseen_subject_match")
    for name in (*names, "imagine_random_subject_match"):
        assert 0.0 <= written[name] <= 1.0
    counted = written["sample_agreement_pairs"]  # sampled pairs whose caption names a subject
    assert (written["sample_agreement"] is None) == (counted == 0)
    assert "imagine round trip" in capsys.readouterr().out
    data = Path(json.loads((run / "config.json").read_text())["data_dir"])
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    assert json.loads((run / "metrics.json").read_text())["images"] == 70


def test_subject_figures_are_none_on_data_without_a_caption_grammar(
    tiny_run: Path, tmp_path: Path, seed_dataset
) -> None:
    run = shutil.copytree(tiny_run, tmp_path / "run")
    metrics = evaluate_run(run, data=seed_dataset(n=6))
    assert metrics.images == 6 and 0.0 <= metrics.bleu4 <= 1.0
    subject_figures = (
        "subject_match",
        "subject_match_shuffled",
        "beam_subject_match",
        "imagine_subject_match",
        "imagine_random_subject_match",
        "imagine_unseen_subject_match",
        "sample_agreement",
    )
    assert {name: getattr(metrics, name) for name in subject_figures} == dict.fromkeys(
        subject_figures
    )
    rows = [line.split("  ")[0] for line in metrics.table().splitlines()]
    assert "subject match greedy" not in rows and "imagine round trip" not in rows
    assert "BLEU-4 greedy" in rows
    assert f"sampled pair agreement: {NOT_APPLICABLE}" in metrics.table()


def test_evaluate_imagination_reports_unseen_captions_apart(tiny_run: Path) -> None:
    predictor = Predictor.load(tiny_run)
    prompts = [r.captions[0] for r in load_split(predictor.config).val]
    readings = predictor.caption(predictor.imagine(prompts, seed=3))
    seen = prompts[: len(prompts) // 2]
    subjects = subjects_in_caption
    figures = evaluate_imagination(predictor, prompts, subjects, 3, training_captions=seen)
    assert figures.imagine_subject_match == subject_match(readings, prompts, subjects)
    new = [i for i, p in enumerate(prompts) if p not in seen]
    expected = subject_match([readings[i] for i in new], [prompts[i] for i in new], subjects)
    assert figures.imagine_unseen_subject_match == expected
    none_new = evaluate_imagination(predictor, prompts[:2], subjects, 3, training_captions=prompts)
    assert none_new.imagine_unseen_subject_match is None


def test_load_metrics_reads_what_evaluate_wrote(tiny_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(tiny_run, tmp_path / "run")
    with pytest.raises(CheckpointError, match="evaluate"):
        load_metrics(run)
    metrics = evaluate_run(run)
    assert load_metrics(run) == metrics
    line = next(row for row in metrics.table().splitlines() if row.startswith("CIDEr-D greedy"))
    assert line.split()[2:] == [f"{metrics.cider:.3f}", f"{metrics.cider_shuffled:.3f}"]
    written = json.loads((run / "metrics.json").read_text())
    before_cider = {k: v for k, v in written.items() if "cider" not in k}  # an older mmlib's
    (run / "metrics.json").write_text(json.dumps(before_cider))
    older = load_metrics(run)
    assert (older.cider, older.cider_shuffled, older.beam_cider) == (None, None, None)
    assert "CIDEr-D" not in older.table() and older.bleu4 == metrics.bleu4
    (run / "metrics.json").write_text(json.dumps({"bleu4": 0.5}))
    with pytest.raises(CheckpointError, match="older mmlib"):
        load_metrics(run)


def test_imagine_round_trip_reads_each_imagined_image_back(tiny_run: Path) -> None:
    from mmlib.evaluation.metrics import imagine_round_trip

    predictor = Predictor.load(tiny_run)
    prompts = [r.captions[0] for r in load_split(predictor.config).val][:5]
    trip = imagine_round_trip(predictor, prompts, subjects_in_caption, seed=3, candidates=2)
    assert torch.equal(trip.images, predictor.imagine(prompts, seed=3, candidates=2))
    assert trip.readings == predictor.caption(trip.images)
    expected = [
        subjects_in_caption(r) == subjects_in_caption(p)
        for r, p in zip(trip.readings, prompts, strict=True)
    ]
    assert trip.matched == expected and trip.candidates == 2
    assert trip.match_rate() == subject_match(trip.readings, prompts, subjects_in_caption)
    # The first N prompts start from the noise the whole list starts from, batched or not (the
    # images agree up to the rounding of other batch shapes).
    first = imagine_round_trip(predictor, prompts[:2], subjects_in_caption, 3, 2, batch_size=1)
    assert (first.images.float() - trip.images[:2].float()).abs().mean() < 1
    with pytest.raises(ValueError, match="prompts is empty"):
        imagine_round_trip(predictor, [], subjects_in_caption)


def test_round_trip_match_rate_over_all_or_a_subset() -> None:
    from mmlib.evaluation.metrics import RoundTrip

    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    trip = RoundTrip(["a"] * 4, images, ["b"] * 4, [True, True, False, False], candidates=8)
    assert trip.match_rate() == 0.5
    assert trip.match_rate([True, False, False, False]) == 1.0
    assert trip.match_rate([False, True, True, True]) == pytest.approx(1 / 3)
    assert trip.match_rate([False] * 4) is None
    with pytest.raises(ValueError, match="among has 3 entries for 4 prompts"):
        trip.match_rate([True] * 3)


def test_same_subjects_and_new_captions() -> None:
    from mmlib.evaluation.metrics import new_captions, same_subjects

    assert same_subjects("two birds above a ship", "a ship under two birds", subjects_in_caption)
    assert not same_subjects("a bird above a ship", "two birds above a ship", subjects_in_caption)
    assert new_captions(["A Ship", "a tower", "a bird"], ["a ship", "A BIRD"]) == [
        False,
        True,
        False,
    ]


def test_evaluated_records_follow_the_split_the_figures_name() -> None:
    from mmlib.data.readers import Record
    from mmlib.data.sources import SplitData
    from mmlib.evaluation.metrics import evaluated_records

    train, val, test = ([Record(name, Path(name), (name,))] for name in ("train", "val", "test"))
    split = SplitData(None, None, train, val, test)  # type: ignore[arg-type]
    assert evaluated_records(split, "test") == test
    assert evaluated_records(split, "validation") == val
    with pytest.raises(ValueError, match="split='train'"):
        evaluated_records(split, "train")


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_caption_bits_per_word_of_a_uniform_model(kind: str) -> None:
    """A model that gives every token the same probability costs log2(V) bits per target token,
    so per word: log2(V) times the tokens (<END> included) over the words they spell."""
    captions = ["a small ship beside a tall tower", "two birds above a house", "a horse"] * 20
    config = Config.preset("tiny", tokenizer=kind, bpe_vocab_size=300)
    tokenizer = build_tokenizer(config, captions)
    model = MultimodalModel(config, len(tokenizer))
    torch.nn.init.zeros_(model.caption_decoder.output.weight)
    torch.nn.init.zeros_(model.caption_decoder.output.bias)
    tokens = tokenizer.batch_encode(captions[:3], max_length=config.max_caption_length)
    images = torch.zeros(3, 3, config.image_size, config.image_size)
    targets = int((tokens[:, 1:] != PAD_ID).sum())
    expected = math.log2(len(tokenizer)) * targets / (7 + 5 + 2)
    batches = [(images[:2], tokens[:2]), (images[2:], tokens[2:])]
    assert caption_bits_per_word(model, tokenizer, batches) == pytest.approx(expected)
    if kind == "word":  # one token per word, plus <END>
        assert targets == 7 + 5 + 2 + 3


def test_caption_bits_per_word_refuses_captions_without_words() -> None:
    config = Config.preset("tiny")
    tokenizer = build_tokenizer(config, ["a horse"])
    model = MultimodalModel(config, len(tokenizer))
    tokens = tokenizer.batch_encode([""], max_length=config.max_caption_length)
    with pytest.raises(ValueError, match="no words"):
        caption_bits_per_word(model, tokenizer, [(torch.zeros(1, 3, 32, 32), tokens)])
