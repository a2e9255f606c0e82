"""Export a trained run for serving without mmlib: ONNX or torch.export graphs plus a runtime.

`export_run` writes three graphs with dynamic batch (and caption length) into one folder:

- `image_encoder`: pixels float32 [B, 3, S, S] in [-1, 1] -> (memory [B, M, W], the caption
  decoder's cross-attention memory, and image_embedding [B, E], unit norm);
- `caption_step`: (tokens int64 [B, T], memory [B, M, W]) -> logits [B, V] of the next token,
  1 <= T <= max_caption_length: one step of the caption decoder (no KV cache);
- `text_to_image`: tokens int64 [B, L] -> image float32 [B, 3, S, S] in [-1, 1], through the
  text embedding and the run's `imagine.pt` mapping (skipped when the run has none).

The decoding loop stays outside the graphs, in `runtime.py` (a copy of
`mmlib.inference.export_runtime`, NumPy only), with the run's `tokenizer.json`, `config.json` and
a `manifest.json`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmlib.checkpoint import CONFIG_FILE, TOKENIZER_FILE, load_run_config, resolve_run
from mmlib.config import Config
from mmlib.data.tokenizer import WordTokenizer
from mmlib.files import (
    TEMPORARY_SUFFIX,
    WriteError,
    atomic_write_bytes,
    atomic_write_text,
    check_output_folder,
    write_error,
)
from mmlib.inference import export_runtime
from mmlib.inference.imagine import CANDIDATES, IMAGINE_FILE, Imagination, imagine_pixels
from mmlib.inference.predictor import Predictor
from mmlib.model.multimodal import MultimodalModel
from mmlib.tokens import START_ID

FORMATS = ("onnx", "torch-export")
SUFFIXES = {"onnx": ".onnx", "torch-export": ".pt2"}
ONNX_OPSET = 18
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
MANIFEST_FILE = export_runtime.MANIFEST_FILE
RUNTIME_FILE = "runtime.py"
GRAPHS = ("image_encoder", "caption_step", "text_to_image")
EXAMPLE_BATCH = 2  # > 1, so that the batch dimension stays symbolic while tracing
# A graph to export: its module, example inputs, their dynamic dimensions and its output names.
GraphSpec = tuple[nn.Module, tuple[Tensor, ...], dict, list[str]]
INPUT_NOTE = (
    "pixels: float32 [B, 3, S, S], RGB in [-1, 1] (uint8 / 127.5 - 1), each image fitted to "
    "S x S as in training (config.json resize_mode); tokens: int64 ids from tokenizer.json, "
    "<START> first; caption_step takes 1 <= T <= max_caption_length tokens and returns the "
    "next token's logits; text_to_image takes <START> words <END> <PAD>... (the runtime pads "
    "to max_caption_length) and standard normal noise [B, C, flow_components] "
    "(runtime.imagine_noise), and returns images in [-1, 1] ((x + 1) * 127.5 gives uint8)."
)


class ExportError(RuntimeError):
    """An export cannot be made: packages are missing, or tracing the model failed."""


class ImageEncoderGraph(nn.Module):
    """pixels [B, 3, S, S] -> (memory [B, M, W], image_embedding [B, E])."""

    def __init__(self, model: MultimodalModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        memory = self.model.image_memory(pixels)
        return memory, self.model._image_embedding(memory)


class CaptionStepGraph(nn.Module):
    """(tokens [B, T], memory [B, M, W]) -> logits [B, V] at the last position."""

    def __init__(self, model: MultimodalModel) -> None:
        super().__init__()
        self.decoder = model.caption_decoder

    def forward(self, tokens: Tensor, memory: Tensor) -> Tensor:
        return self.decoder(tokens, memory)[:, -1]


class TextToImageGraph(nn.Module):
    """(tokens [B, L], noise [B, C, K]) -> images [B, 3, S, S] in [-1, 1], by `imagine_pixels`."""

    def __init__(self, model: MultimodalModel, imagination: Imagination) -> None:
        super().__init__()
        self.model = model
        self.flow = imagination.flow

    def forward(self, tokens: Tensor, noise: Tensor) -> Tensor:
        return imagine_pixels(self.model, self.flow, self.model.encode_text(tokens), noise)


def require_onnx() -> None:
    """Raise `ExportError` naming the install command when the ONNX packages are missing."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(
            f"--format onnx needs {', '.join(missing)}, which is not installed; install the "
            'export extra: pip install -e ".[export]"'
        )


def export_run(
    run: str | os.PathLike[str],
    format: str,
    out: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] = "checkpoints",
) -> Path:
    """Export a run (folder, name or `latest`) as `format` ("onnx" or "torch-export").

    Writes the graphs, `runtime.py`, `tokenizer.json`, `config.json` and `manifest.json` into
    `out` (default `<run_dir>/export-<format>/`) and returns that folder. The text->image graph
    is skipped, and the manifest says why, when the run has no `imagine.pt`. A run whose
    tokenizer is not word-level is refused (`refuse_other_tokenizers`).
    """
    if format not in FORMATS:
        raise ValueError(f"format={format!r}: expected one of {', '.join(map(repr, FORMATS))}")
    refuse_other_tokenizers(resolve_run(run, checkpoint_dir))
    if format == "onnx":
        require_onnx()
    predictor = Predictor.load(run, checkpoint_dir, device="cpu")
    run_dir = predictor.run_dir
    assert run_dir is not None
    folder = check_output_folder(out if out is not None else run_dir / f"export-{format}", "out")
    config = predictor.config
    pixels = torch.zeros(EXAMPLE_BATCH, config.image_channels, config.image_size, config.image_size)
    with torch.no_grad():
        memory = predictor.model.eval().image_memory(pixels)
    graphs, skipped = _graphs(predictor, pixels, memory)
    files = _write_graphs(graphs, format, folder)
    files.update(_copy_run_files(run_dir, folder))
    manifest = _manifest(predictor, format, files, skipped, list(memory.shape[1:]), list(graphs))
    atomic_write_text(folder / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return folder


def refuse_other_tokenizers(run_dir: Path) -> None:
    """An ExportError, in one line, for a run whose tokenizer is not word-level: the exported
    NumPy runtime (`mmlib.inference.export_runtime`) tokenizes whole words only."""
    kind = load_run_config(run_dir).tokenizer
    if kind != WordTokenizer.kind:
        raise ExportError(
            f"{run_dir}: cannot export a run with the {kind!r} tokenizer: the exported NumPy "
            "runtime (runtime.py) tokenizes whole words only; use this run through mmlib "
            "(caption, evaluate, imagine, demo), or train with --set tokenizer=word to export"
        )


def _graphs(
    predictor: Predictor, pixels: Tensor, memory: Tensor
) -> tuple[dict[str, GraphSpec], dict[str, str]]:
    """The graphs to export, by name, with the example `pixels` and their `memory`; and the
    graphs skipped, with why."""
    model, max_length = predictor.model, predictor.config.max_caption_length
    batch = torch.export.Dim("batch", min=1)
    steps = torch.export.Dim("steps", min=1, max=max_length)
    length = torch.export.Dim("length", min=2, max=max_length)
    candidates = torch.export.Dim("candidates", min=1)
    example_captions = ["an example caption", "another"][:EXAMPLE_BATCH]
    graphs: dict[str, GraphSpec] = {
        "image_encoder": (
            ImageEncoderGraph(model),
            (pixels,),
            {"pixels": {0: batch}},
            ["memory", "image_embedding"],
        ),
        "caption_step": (
            CaptionStepGraph(model),
            # T = 3 > 1: a length-1 example would fix T to 1.
            (torch.full((EXAMPLE_BATCH, min(3, max_length)), START_ID, dtype=torch.long), memory),
            {"tokens": {0: batch, 1: steps}, "memory": {0: batch}},
            ["logits"],
        ),
    }
    skipped: dict[str, str] = {}
    if predictor.imagination is not None:
        tokens = predictor.tokenizer.batch_encode(example_captions, max_length)
        noise = torch.zeros(EXAMPLE_BATCH, CANDIDATES, predictor.imagination.flow.components)
        graphs["text_to_image"] = (
            TextToImageGraph(model, predictor.imagination),
            (tokens, noise),
            {"tokens": {0: batch, 1: length}, "noise": {0: batch, 1: candidates}},
            ["image"],
        )
    else:
        skipped["text_to_image"] = (
            f"the run has no {IMAGINE_FILE}; fit one with `python -m mmlib fit-imagine RUN` "
            "and export again"
        )
    return graphs, skipped


def _write_graphs(graphs: dict[str, GraphSpec], format: str, folder: Path) -> dict[str, str | None]:
    """Export `graphs` into `folder`, and remove a stale file of each graph not among them:
    each of `GRAPHS` with its file name, or None."""
    files: dict[str, str | None] = {}
    for name in GRAPHS:
        path = folder / f"{name}{SUFFIXES[format]}"
        if name not in graphs:
            path.unlink(missing_ok=True)  # a stale graph from an earlier export
            files[name] = None
            continue
        module, args, dynamic, outputs = graphs[name]
        _export_graph(module.eval(), args, dynamic, outputs, format, path)
        files[name] = path.name
    return files


def _copy_run_files(run_dir: Path, folder: Path) -> dict[str, str]:
    """Copy the run's tokenizer and config, and the runtime, into `folder`: their file names."""
    for source, name in (
        (run_dir / TOKENIZER_FILE, TOKENIZER_FILE),
        (run_dir / CONFIG_FILE, CONFIG_FILE),
        (Path(export_runtime.__file__), RUNTIME_FILE),
    ):
        atomic_write_bytes(folder / name, source.read_bytes())
    return {"tokenizer": TOKENIZER_FILE, "config": CONFIG_FILE, "runtime": RUNTIME_FILE}


def _manifest(
    predictor: Predictor,
    format: str,
    files: dict[str, str | None],
    skipped: dict[str, str],
    memory_shape: list[int],
    exported: list[str],
) -> dict[str, Any]:
    """What `manifest.json` says of an export: its files, the inputs and outputs of the
    `exported` graphs, the special tokens and the sizes the runtime needs."""
    config, model, imagination = predictor.config, predictor.model, predictor.imagination
    components = imagination.flow.components if imagination else None
    signatures = _signatures(config, memory_shape, model.vocab_size, components)
    assert predictor.run_dir is not None
    return {
        "format": format,
        "run": predictor.run_dir.name,
        "files": files,
        "skipped": skipped,
        "special_tokens": {
            "pad_id": WordTokenizer.pad_id,
            "start_id": WordTokenizer.start_id,
            "end_id": WordTokenizer.end_id,
            "unk_id": WordTokenizer.unk_id,
        },
        "max_caption_length": config.max_caption_length,
        "image_size": config.image_size,
        "image_channels": config.image_channels,
        "resize_mode": config.resize_mode,
        "vocab_size": model.vocab_size,
        "memory_shape": memory_shape,
        "embedding_dim": config.embedding_dim,
        "flow_components": components,
        "imagine_candidates": CANDIDATES,
        "inputs": INPUT_NOTE,
        "signatures": {name: signatures[name] for name in exported},
        "torch_version": torch.__version__,
        **({"onnx_opset": ONNX_OPSET} if format == "onnx" else {}),
    }


def _signatures(
    config: Config, memory_shape: list[int], vocab_size: int, components: int | None
) -> dict[str, str]:
    image = f"[B, {config.image_channels}, {config.image_size}, {config.image_size}]"
    memory = f"[B, {', '.join(map(str, memory_shape))}]"
    length = config.max_caption_length
    return {
        "image_encoder": f"pixels float32 {image} -> memory float32 {memory}, "
        f"image_embedding float32 [B, {config.embedding_dim}]",
        "caption_step": f"tokens int64 [B, T] (1 <= T <= {length}), memory float32 {memory} "
        f"-> logits float32 [B, {vocab_size}]",
        "text_to_image": f"tokens int64 [B, L] (2 <= L <= {length}), noise float32 "
        f"[B, C, {components}] -> image float32 {image} (the best aligned of C candidates)",
    }


def _export_graph(
    module: nn.Module,
    args: tuple[Tensor, ...],
    dynamic_shapes: dict,
    output_names: list[str],
    format: str,
    path: Path,
) -> None:
    """Trace `module` on `args` and write it to `path` as ONNX or a torch.export program."""
    try:
        with torch.no_grad(), _quiet_exporters():
            if format == "torch-export":
                program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes)
                with _replaced_atomically(path) as temporary:
                    torch.export.save(program, temporary)
            else:
                # dynamo=True: the TorchScript exporter (dynamo=False) cannot translate the
                # fused attention (aten::_native_multi_head_attention) that nn.Transformer*
                # layers use in eval mode; the torch.export-based exporter decomposes it.
                onnx_program = torch.onnx.export(
                    module,
                    args,
                    dynamo=True,
                    dynamic_shapes=dynamic_shapes,
                    input_names=list(dynamic_shapes),
                    output_names=output_names,
                    opset_version=ONNX_OPSET,
                    verbose=False,
                )
                assert onnx_program is not None  # None only with dynamo=False
                with _replaced_atomically(path) as temporary:
                    # weights inline, or beside it past protobuf's 2 GB
                    onnx_program.save(temporary)
    except WriteError:
        raise
    except Exception as error:
        raise ExportError(
            f"exporting {path.name} failed: {type(error).__name__}: {error}"
        ) from error


@contextlib.contextmanager
def _replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for an exporter that writes to a path itself; it replaces
    `path` when the block ends. A failed write leaves `path` as it was and raises `WriteError`."""
    temporary: Path | None = None
    try:
        descriptor, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
        )
        os.close(descriptor)
        temporary = Path(name)
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        raise write_error(
            path, error, f"; the previous {path.name}, if any, is unchanged"
        ) from error
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' harmless notes (constant folding skipped, axis names merged)."""
    logger = logging.getLogger("onnxscript")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def summary(folder: str | os.PathLike[str]) -> str:
    """What an export folder holds: one line per file with its size, and any skipped graph."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    lines = [f"exported {manifest['run']} as {manifest['format']} to {folder}/"]
    for path in sorted(folder.iterdir()):
        if path.is_file():
            lines.append(f"  {path.name:<24} {path.stat().st_size / 1024:>10,.1f} KiB")
    for name, reason in manifest["skipped"].items():
        lines.append(f"  skipped {name}: {reason}")
    lines.append(
        f"use it without mmlib: `import runtime` from {folder}/, then "
        f"runtime.load_exported({str(folder)!r}).caption(pixels)"
    )
    return "\n".join(lines)
