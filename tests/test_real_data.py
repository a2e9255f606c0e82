"""The recipe learns on real captions: own-cpu on 200 Flickr8k photographs (5 captions each).

The guide's preset (docs/your-own-data.md, "Train on your own captioned images") unchanged but
for its number of epochs. Alignment is read in eval mode on the fixed training subset
(`train_eval_*` in `history.csv`), against its exact chance level: the loss of a model that
cannot tell the images apart. With cpu-tiny's learning rate and alignment weight, a real set of
800 photographs left the alignment at its chance level for a whole run.
"""

from __future__ import annotations

from pathlib import Path

from mmlib.config import Config
from mmlib.training.trainer import Trainer

GUIDE_PRESET = "own-cpu"
EPOCHS = 12  # 24 optimizer steps: 180 training images, batch 64
LEARNED_SHARE = 0.8  # the eval-mode alignment must fall below this share of its chance level


def test_alignment_leaves_its_chance_level_on_real_captions(
    real_samples: Path, tmp_path: Path
) -> None:
    config = Config.preset(
        GUIDE_PRESET,
        data_dir=real_samples,
        data_format="flickr8k",
        num_epochs=EPOCHS,
        checkpoint_dir=tmp_path / "checkpoints",
        cache_dir=tmp_path / "cache",
        run_name="real",
    )
    history = Trainer(config, log=lambda _line: None, progress=False).fit()
    first, last = history[0], history[-1]
    # It starts at chance (20 distinct captions: ln 20) ...
    assert first["train_eval_alignment"] > 0.95 * first["train_eval_alignment_chance"]
    # ... and learns to match the training images with their captions.
    assert last["train_eval_alignment"] <= LEARNED_SHARE * last["train_eval_alignment_chance"]
