"""Shipping a run: ONNX / torch.export graphs and the Gradio demo. Importing this package needs
neither extra; `export_run` and `build_demo` say which to install when it is missing."""

from mmlib.serving.demo import (
    DemoDependencyError,
    build_demo,
    launch_demo,
)
from mmlib.serving.export import (
    FORMATS,
    ExportError,
    export_run,
    summary,
)

__all__ = [
    "DemoDependencyError",
    "ExportError",
    "FORMATS",
    "build_demo",
    "export_run",
    "launch_demo",
    "summary",
]
