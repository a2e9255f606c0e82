"""The flat modules of mmlib 0.1 (`mmlib.train`, `mmlib.memory`, ...) still import, with a
DeprecationWarning naming the new place, until mmlib 0.3. `mmlib.data`, `mmlib.model`,
`mmlib.inference` and `mmlib.course` became packages whose `__init__` keeps the old module's
names."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

REMOVED_IN = "0.3"
OLD_PATHS = {
    "synthetic": "mmlib.data.synthetic",
    "readers": "mmlib.data.readers",
    "images": "mmlib.data.images",
    "tokenizer": "mmlib.data.tokenizer",
    "dataset": "mmlib.data.dataset",
    "losses": "mmlib.model.losses",
    "step": "mmlib.model.step",
    "cuda_emulation": "mmlib.sizing.cuda_emulation",
    "memory": "mmlib.sizing.memory",
    "gpu_calibration": "mmlib.sizing.gpu_calibration",
    "batch_size": "mmlib.sizing.batch_size",
    "train": "mmlib.training.trainer",
    "lr_find": "mmlib.training.lr_find",
    "export_runtime": "mmlib.inference.export_runtime",
    "imagine": "mmlib.inference.imagine",
    "attention": "mmlib.inference.attention",
    "analysis": "mmlib.evaluation.curves",
    "metrics": "mmlib.evaluation.metrics",
    "export": "mmlib.serving.export",
    "demo": "mmlib.serving.demo",
    "anatomy": "mmlib.course.anatomy",
    "plots": "mmlib.course.plots",
    "widgets": "mmlib.course.widgets",
}


class OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers `import mmlib.OLD` with the module at its new path, after a DeprecationWarning."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "mmlib" or name not in OLD_PATHS:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new_path = OLD_PATHS[spec.name.partition(".")[2]]
        warnings.warn(
            f"{spec.name} moved to {new_path} (or import from its package); the old path is "
            f"removed in mmlib {REMOVED_IN}",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new_path)

    def exec_module(self, module: ModuleType) -> None:
        """The module was imported at its new path: nothing to run."""


def install() -> None:
    """Put the finder on `sys.meta_path` once."""
    if not any(isinstance(finder, OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(OldPathFinder())
