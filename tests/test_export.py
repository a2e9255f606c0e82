"""mmlib.serving.export on the trained tiny run: ONNX and torch.export graphs, the shipped NumPy
runtime (greedy decoding, tokenizer), the manifest, and the `export` command."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch

from mmlib.checkpoint import BEST_FILE, CONFIG_FILE, MANIFEST_FILE, TOKENIZER_FILE
from mmlib.cli import main
from mmlib.data.sources import load_split
from mmlib.data.tokenizer import WordTokenizer
from mmlib.inference import export_runtime
from mmlib.inference.imagine import imagine_pixels
from mmlib.inference.predictor import Predictor
from mmlib.model.multimodal import MultimodalModel
from mmlib.serving.export import FORMATS, ExportError, export_run

# Measured on the tiny run (CPU, torch 2.14, onnxruntime 1.32): exported vs eager max |diff| is
# ~3e-7 for text->image (both formats), ~3e-6 (ONNX) / 0 (torch-export) for the memory and
# ~1.5e-7 for the embedding. The bound leaves room for other CPUs and library versions.
ATOL = 1e-4
SHORT = 8  # a max_length that cuts the tiny run's captions, so some rows never write <END>


def load_runtime(folder: Path) -> ModuleType:
    """The export folder's own runtime.py, imported from its path (as a user without mmlib)."""
    name = f"exported_runtime_{folder.parent.name}_{folder.name}".replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, folder / "runtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor.load(tiny_run)


@pytest.fixture(scope="module")
def val_pixels(predictor: Predictor) -> torch.Tensor:
    """The tiny run's validation images (7) as the model's input, [-1, 1]."""
    return predictor.pixels([record.image_path for record in load_split(predictor.config).val])


@pytest.fixture(scope="module")
def onnx_by_command(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny run exported to ONNX by the `export` command, and what the command printed.

    The ONNX export is the slowest step of these tests (about 50 s), so it is made once, by the
    command, and the parity tests run on its folder."""
    out = tmp_path_factory.mktemp("export") / "onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(out)]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module", params=FORMATS)
def exported(
    request: pytest.FixtureRequest, tiny_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny run exported once per format, outside the run folder: ONNX by the command,
    torch.export by `export_run`."""
    if request.param == "onnx":
        return request.getfixturevalue("onnx_by_command")[0]
    return export_run(tiny_run, request.param, out=tmp_path_factory.mktemp("export") / "pt2")


@pytest.fixture(scope="module")
def runner(exported: Path) -> export_runtime.ExportedModel:
    threads = 1 if exported.name == "onnx" else 0  # 0: leave torch's process-wide setting alone
    return load_runtime(exported).load_exported(exported, threads=threads)


def test_greedy_captions_match_eager_token_for_token(
    runner: export_runtime.ExportedModel, predictor: Predictor, val_pixels: torch.Tensor
) -> None:
    for max_length in (None, SHORT):
        expected = predictor.model.generate(val_pixels, max_length=max_length).numpy()
        tokens = runner.generate(val_pixels.numpy(), max_length=max_length)
        np.testing.assert_array_equal(tokens, expected)
    assert runner.caption(val_pixels.numpy()) == predictor.caption(
        (val_pixels + 1).mul(127.5).round().byte()
    )


def test_greedy_decode_over_the_exported_step(
    runner: export_runtime.ExportedModel, predictor: Predictor, val_pixels: torch.Tensor
) -> None:
    memory, _ = runner.encode_images(val_pixels.numpy())
    special = WordTokenizer
    tokens = export_runtime.greedy_decode(
        runner.next_logits,
        memory,
        special.start_id,
        special.end_id,
        special.pad_id,
        predictor.config.max_caption_length,
    )
    np.testing.assert_array_equal(tokens, predictor.model.generate(val_pixels).numpy())


def test_encoder_and_text_to_image_match_eager(
    runner: export_runtime.ExportedModel, predictor: Predictor, val_pixels: torch.Tensor
) -> None:
    model = predictor.model
    memory, embedding = runner.encode_images(val_pixels.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(memory, model.image_memory(val_pixels).numpy(), atol=ATOL)
        np.testing.assert_allclose(embedding, model.encode_image(val_pixels).numpy(), atol=ATOL)
    captions = ["two birds above a house", "a small ship beside a tall tower", "moon"]
    tokens = predictor.tokenizer.batch_encode(captions, model.max_caption_length)
    flow = predictor.imagination.flow
    for candidates in (1, 3):  # the batch and candidate dimensions are dynamic
        noise = export_runtime.imagine_noise(len(captions), candidates, flow.components, seed=5)
        with torch.no_grad():
            expected = imagine_pixels(
                model, flow, model.encode_text(tokens), torch.from_numpy(noise)
            ).numpy()
        for rows in (slice(0, 1), slice(None)):
            images = runner.text_to_image(tokens[rows].numpy(), noise[rows])
            np.testing.assert_allclose(images, expected[rows], atol=ATOL)
    # uint8: a ~1e-7 difference can still round a pixel the other way, so allow one level.
    drawn = runner.imagine(captions, seed=2).astype(np.int16)
    assert np.abs(drawn - predictor.imagine(captions, seed=2).numpy()).max() <= 1


def test_manifest_and_files(exported: Path) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["format"] in FORMATS
    for name in manifest["files"].values():
        assert (exported / name).is_file()
    assert manifest["files"]["text_to_image"] is not None and manifest["skipped"] == {}
    assert manifest["special_tokens"] == {"pad_id": 0, "start_id": 1, "end_id": 2, "unk_id": 3}
    assert manifest["max_caption_length"] == 32 and manifest["image_size"] == 32
    assert manifest["flow_components"] == 32 and manifest["imagine_candidates"] == 8
    assert "[-1, 1]" in manifest["inputs"]
    runtime = (exported / "runtime.py").read_bytes()
    assert runtime == Path(export_runtime.__file__).read_bytes()


def test_runtime_imports_only_stdlib_and_numpy_at_top_level() -> None:
    tree = ast.parse(Path(export_runtime.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    allowed = {"__future__", "collections", "json", "numpy", "pathlib", "re", "unicodedata"}
    assert imported <= allowed


def test_export_runs_in_a_process_without_mmlib(
    exported: Path, tmp_path: Path, predictor: Predictor, val_pixels: torch.Tensor
) -> None:
    np.save(tmp_path / "pixels.npy", val_pixels.numpy())
    script = (
        "import sys, numpy as np, runtime\n"
        "model = runtime.load_exported('.', threads=1)\n"
        f"print(model.generate(np.load({str(tmp_path / 'pixels.npy')!r})).tolist())\n"
        "assert not any(name.split('.')[0] == 'mmlib' for name in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=exported, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == predictor.model.generate(val_pixels).tolist()


def test_greedy_decode_mirrors_the_model_loop() -> None:
    # Scripted next tokens per row: row 0 ends at step 2, row 1 at step 4, row 2 never; after
    # <END> the script goes on writing words, which must become <PAD>.
    script = np.array([[5, 2, 6, 7, 8, 9], [5, 6, 7, 2, 8, 9], [5, 6, 7, 8, 9, 5]])

    def next_logits(tokens: np.ndarray, memory: np.ndarray) -> np.ndarray:
        logits = np.zeros((len(tokens), 12), dtype=np.float32)
        logits[np.arange(len(tokens)), script[: len(tokens), tokens.shape[1] - 1]] = 1.0
        return logits

    def log_probs(tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(next_logits(tokens.numpy(), memory.numpy())).log_softmax(-1)

    stub = SimpleNamespace(_next_log_probs=log_probs)
    for rows, max_length in ((3, 7), (3, 4), (2, 7)):  # runs to the end; cut; all end early
        memory = np.zeros((rows, 1, 1), dtype=np.float32)
        expected = MultimodalModel._greedy(stub, torch.from_numpy(memory), max_length)
        tokens = export_runtime.greedy_decode(next_logits, memory, 1, 2, 0, max_length)
        np.testing.assert_array_equal(tokens, expected.numpy())
    assert tokens.tolist() == [[1, 5, 2, 0, 0], [1, 5, 6, 7, 2]]


def test_runtime_tokenizer_matches_production(predictor: Predictor, tiny_run: Path) -> None:
    tokenizer = export_runtime.Tokenizer.from_file(tiny_run / TOKENIZER_FILE)
    captions = [
        "Two BIRDS, above a house!",
        "a ｓｍａｌｌ ship — beside the well-known tower's moon",
        "zebra qwerty",
        " ".join(["a"] * 40),
        "",
    ]
    expected = predictor.tokenizer.batch_encode(captions, 32).numpy()
    np.testing.assert_array_equal(tokenizer.batch_encode(captions, 32), expected)
    rows = np.array([[1, 6, 8, 0, 2, 7], [1, 999, 2, 5, 5, 5]])
    assert tokenizer.batch_decode(rows) == predictor.tokenizer.batch_decode(torch.from_numpy(rows))


def test_run_without_imagine_skips_text_to_image(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "no-imagine"
    run.mkdir()
    for name in (CONFIG_FILE, TOKENIZER_FILE, MANIFEST_FILE, BEST_FILE):
        shutil.copyfile(tiny_run / name, run / name)
    folder = export_run(run, "torch-export")  # default folder: <run>/export-torch-export/
    assert folder == run / "export-torch-export"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["text_to_image"] is None
    assert "imagine.pt" in manifest["skipped"]["text_to_image"]
    assert not (folder / "text_to_image.pt2").exists()
    runner = load_runtime(folder).load_exported(folder)
    assert not runner.has_text_to_image
    with pytest.raises(RuntimeError, match="imagine.pt"):
        runner.text_to_image(np.ones((1, 3), dtype=np.int64), np.zeros((1, 1, 1), np.float32))


def test_export_command(tiny_run: Path, onnx_by_command: tuple[Path, str]) -> None:
    out, printed = onnx_by_command
    for name in ("image_encoder.onnx", "caption_step.onnx", "text_to_image.onnx", "runtime.py"):
        assert (out / name).is_file() and name in printed
    with pytest.raises(SystemExit):
        main(["export", str(tiny_run), "--format", "tflite"])


def test_unknown_format_is_a_value_error(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'onnx', 'torch-export'"):
        export_run(tiny_run, "tflite", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_onnx_packages_name_the_extra(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` fail
    with pytest.raises(ExportError, match=r'pip install -e "\.\[export\]"'):
        export_run(tiny_run, "onnx", out=tmp_path / "x")
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "onnxscript" in capsys.readouterr().err
