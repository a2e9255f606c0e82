"""mmlib: a small, tested library behind the multimodal engraving course.

The parts, in the order data flows: `data` (files to batches), `model` (the model, its losses, one
training step), `sizing` (how big a batch fits), `training`, `inference`, `evaluation`, `serving`
(export, demo) and `course` (what the notebooks show); `config`, `files`, `tokens`, `progress`,
`checkpoint`, `pipeline` and `cli` sit beside them. `LAYERS` is the import rule between them."""

from mmlib import _old_paths
from mmlib.config import Config, ConfigError, get_device

# Each part imports only parts before it in this list (tests/test_layering.py checks it).
LAYERS = (
    "files",
    "progress",
    "tokens",
    "config",
    "data",
    "model",
    "checkpoint",
    "sizing",
    "inference",
    "evaluation",
    "training",
    "pipeline",
    "serving",
    "course",
    "cli",
)

_old_paths.install()

__all__ = ["LAYERS", "Config", "ConfigError", "get_device"]
__version__ = "0.2.0"
