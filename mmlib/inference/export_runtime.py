"""Run an exported mmlib model without mmlib: captioning and imagining with NumPy.

`python -m mmlib export` copies this file, unchanged, into the export folder as `runtime.py`,
beside the exported graphs, `tokenizer.json`, `config.json` and `manifest.json`. It needs only
NumPy, plus onnxruntime for an ONNX export or PyTorch for a torch-export (.pt2) one, imported
when the folder is loaded::

    import runtime  # from the export folder

    model = runtime.load_exported("checkpoints/tiny/export-onnx")
    captions = model.caption(pixels)  # pixels: float32 [B, 3, S, S] in [-1, 1]
    images = model.imagine(["two birds above a house"], seed=0)  # uint8 [B, 3, S, S]

The graphs hold one step of the caption decoder; the decoding loop is `greedy_decode` below,
the same loop as mmlib's `MultimodalModel.generate(method="greedy")`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MANIFEST_FILE = "manifest.json"

# mmlib.data.tokenizer's word pattern: letters or digits, optionally joined by inner apostrophes or
# hyphens; every other character separates words.
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")

NextLogits = Callable[[np.ndarray, np.ndarray], np.ndarray]


def words(text: str) -> list[str]:
    """The words of `text` as mmlib's tokenizer sees them: NFKC, lower case, no punctuation."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).lower())
    return _WORD.findall(folded)


class Tokenizer:
    """Word-level encode/decode over an mmlib `tokenizer.json` (same ids, same rules)."""

    def __init__(self, idx2word: Sequence[str], pad_id: int, start_id: int, end_id: int) -> None:
        self.idx2word = list(idx2word)
        self.word2idx = {word: i for i, word in enumerate(self.idx2word)}
        self.pad_id, self.start_id, self.end_id = pad_id, start_id, end_id
        self.unk_id = self.word2idx.get("<UNK>", 3)

    @classmethod
    def from_file(cls, path: str | Path, pad_id: int = 0, start_id: int = 1, end_id: int = 2):
        """Read an mmlib `tokenizer.json`."""
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(payload["idx2word"], pad_id, start_id, end_id)

    def __len__(self) -> int:
        return len(self.idx2word)

    def encode(self, caption: str, max_length: int) -> np.ndarray:
        """int64 [max_length]: <START> words <END> <PAD>...; long captions are cut, <END> kept."""
        if max_length < 3:
            raise ValueError(f"max_length={max_length}: must be >= 3 (<START>, a word, <END>)")
        body = [self.word2idx.get(w, self.unk_id) for w in words(caption)[: max_length - 2]]
        ids = [self.start_id, *body, self.end_id]
        return np.array(ids + [self.pad_id] * (max_length - len(ids)), dtype=np.int64)

    def batch_encode(self, captions: Sequence[str], max_length: int) -> np.ndarray:
        """int64 [len(captions), max_length]."""
        if isinstance(captions, str):
            raise TypeError("captions: pass a list of strings, not one string")
        rows = [self.encode(caption, max_length) for caption in captions]
        return np.stack(rows) if rows else np.empty((0, max_length), dtype=np.int64)

    def decode(self, tokens: Sequence[int] | np.ndarray) -> str:
        """Words up to the first <END>, skipping <START>/<PAD>; unknown ids read <UNK>."""
        out: list[str] = []
        for token in np.asarray(tokens).tolist():
            if token == self.end_id:
                break
            if token in (self.start_id, self.pad_id):
                continue
            out.append(self.idx2word[token] if 0 <= token < len(self) else "<UNK>")
        return " ".join(out)

    def batch_decode(self, tokens: np.ndarray) -> list[str]:
        """`decode` for each row of a [B, L] array."""
        return [self.decode(row) for row in tokens]


def greedy_decode(
    next_logits: NextLogits,
    memory: np.ndarray,
    start_id: int,
    end_id: int,
    pad_id: int,
    max_length: int,
) -> np.ndarray:
    """Greedy captions int64 [B, L <= max_length]: <START>, words, <END>, then <PAD> only.

    `next_logits(tokens [B, T], memory [B, M, W])` gives the logits [B, V] of the token after
    each prefix. Step for step the loop of mmlib's `MultimodalModel._greedy`: the argmax token
    (argmax of the logits = argmax of their log-softmax) is appended, rows that have written
    <END> continue with <PAD>, and decoding stops once every row has ended.
    """
    if max_length < 2:
        raise ValueError(f"max_length={max_length}: must be >= 2")
    batch = memory.shape[0]
    tokens = np.full((batch, 1), start_id, dtype=np.int64)
    finished = np.zeros(batch, dtype=bool)
    for _ in range(max_length - 1):
        step = np.asarray(next_logits(tokens, memory)).argmax(-1).astype(np.int64)
        step[finished] = pad_id
        tokens = np.concatenate([tokens, step[:, None]], axis=1)
        finished |= step == end_id
        if finished.all():
            break
    return tokens


def imagine_noise(captions: int, candidates: int, components: int, seed: int = 0) -> np.ndarray:
    """The standard normal noise float32 [captions, candidates, components] that imagining starts
    from; mmlib's `Predictor.imagine` draws the same, so both give the same images. Row i depends
    only on `seed` and i, not on how many captions there are."""
    if captions < 0 or candidates < 1 or components < 1:
        raise ValueError(
            f"captions={captions}, candidates={candidates}, components={components}: "
            "need captions >= 0 and candidates, components >= 1"
        )
    generator = np.random.default_rng(seed)
    return generator.standard_normal((captions, candidates, components), dtype=np.float32)


class ExportedModel:
    """An export folder ready to run; `OnnxModel` and `TorchExportModel` supply the graphs."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        special = self.manifest["special_tokens"]
        self.pad_id, self.start_id, self.end_id = (
            special["pad_id"],
            special["start_id"],
            special["end_id"],
        )
        self.max_caption_length: int = self.manifest["max_caption_length"]
        self.image_size: int = self.manifest["image_size"]
        self.tokenizer = Tokenizer.from_file(
            self.folder / self.manifest["files"]["tokenizer"],
            self.pad_id,
            self.start_id,
            self.end_id,
        )

    @property
    def has_text_to_image(self) -> bool:
        """Whether the export holds the text->image graph (the run had an imagine.pt)."""
        return self.manifest["files"].get("text_to_image") is not None

    # --- the graphs: subclasses run them ---
    def encode_images(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels float32 [B, 3, S, S] in [-1, 1] to (memory [B, M, W], embedding [B, E])."""
        raise NotImplementedError

    def next_logits(self, tokens: np.ndarray, memory: np.ndarray) -> np.ndarray:
        """Logits [B, V] of the token after `tokens` int64 [B, T] (T <= max_caption_length)."""
        raise NotImplementedError

    def text_to_image(self, tokens: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Caption tokens int64 [B, L] and noise float32 [B, C, K] (`imagine_noise`) to images
        float32 [B, 3, S, S] in [-1, 1]: the best aligned of C candidates per caption."""
        raise NotImplementedError

    # --- conveniences ---
    def generate(self, pixels: np.ndarray, max_length: int | None = None) -> np.ndarray:
        """Greedy caption tokens int64 [B, L] for pixels float32 [B, 3, S, S] in [-1, 1]."""
        memory, _ = self.encode_images(pixels)
        length = self.max_caption_length if max_length is None else max_length
        if not 2 <= length <= self.max_caption_length:
            raise ValueError(
                f"max_length={length}: must be between 2 and {self.max_caption_length}"
            )
        return greedy_decode(
            self.next_logits, memory, self.start_id, self.end_id, self.pad_id, length
        )

    def caption(self, pixels: np.ndarray) -> list[str]:
        """One greedy caption per image (pixels float32 [B, 3, S, S] in [-1, 1])."""
        return self.tokenizer.batch_decode(self.generate(pixels))

    def imagine(
        self, captions: Sequence[str], seed: int = 0, candidates: int | None = None
    ) -> np.ndarray:
        """uint8 images [B, 3, S, S] drawn from each caption, as mmlib's `Predictor.imagine`
        (by default with as many candidates as the manifest's `imagine_candidates`)."""
        tokens = self.tokenizer.batch_encode(captions, self.max_caption_length)
        count = self.manifest["imagine_candidates"] if candidates is None else candidates
        noise = imagine_noise(len(tokens), count, self.manifest["flow_components"], seed)
        pixels = self.text_to_image(tokens, noise)
        return np.clip(np.round((pixels + 1.0) * 127.5), 0, 255).astype(np.uint8)

    def _require_text_to_image(self) -> str:
        name = self.manifest["files"].get("text_to_image")
        if name is None:
            reason = self.manifest.get("skipped", {}).get("text_to_image", "it was not exported")
            raise RuntimeError(f"{self.folder}: no text->image graph ({reason})")
        return name

    def _pixels(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        expected = (self.manifest.get("image_channels", 3), self.image_size, self.image_size)
        if pixels.ndim != 4 or pixels.shape[1:] != expected:
            raise ValueError(
                f"pixels: expected shape [B, {', '.join(map(str, expected))}], "
                f"got {list(pixels.shape)}"
            )
        return pixels

    def _tokens(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.ascontiguousarray(tokens, dtype=np.int64)
        if tokens.ndim != 2 or not 1 <= tokens.shape[1] <= self.max_caption_length:
            raise ValueError(
                f"tokens: expected shape [B, T] with 1 <= T <= {self.max_caption_length}, "
                f"got {list(tokens.shape)}"
            )
        return tokens


class OnnxModel(ExportedModel):
    """An ONNX export run by onnxruntime on the CPU (`threads`: intra-op threads, 0 = all)."""

    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        super().__init__(folder)
        try:
            import onnxruntime
        except ImportError:
            raise ImportError(
                "running an ONNX export needs onnxruntime: pip install onnxruntime"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads

        def session(name: str):
            path = str(self.folder / name)
            return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        files = self.manifest["files"]
        self._encoder = session(files["image_encoder"])
        self._step = session(files["caption_step"])
        self._text_to_image = session(files["text_to_image"]) if self.has_text_to_image else None

    def encode_images(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        memory, embedding = self._encoder.run(None, {"pixels": self._pixels(pixels)})
        return memory, embedding

    def next_logits(self, tokens: np.ndarray, memory: np.ndarray) -> np.ndarray:
        memory = np.ascontiguousarray(memory, dtype=np.float32)
        return self._step.run(None, {"tokens": self._tokens(tokens), "memory": memory})[0]

    def text_to_image(self, tokens: np.ndarray, noise: np.ndarray) -> np.ndarray:
        self._require_text_to_image()
        assert self._text_to_image is not None  # set whenever the export has the graph
        feeds = {"tokens": self._tokens(tokens), "noise": np.asarray(noise, dtype=np.float32)}
        return self._text_to_image.run(None, feeds)[0]


class TorchExportModel(ExportedModel):
    """A torch.export (.pt2) export run by PyTorch on the CPU (`threads` > 0 sets
    torch.set_num_threads, which is process-wide; 0 leaves it alone)."""

    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        super().__init__(folder)
        try:
            import torch
        except ImportError:
            raise ImportError(
                "running a torch-export export needs PyTorch: pip install torch"
            ) from None
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        files = self.manifest["files"]
        self._encoder = torch.export.load(self.folder / files["image_encoder"]).module()
        self._step = torch.export.load(self.folder / files["caption_step"]).module()
        self._text_to_image = (
            torch.export.load(self.folder / files["text_to_image"]).module()
            if self.has_text_to_image
            else None
        )

    def _run(self, module, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        with self._torch.no_grad():
            outputs = module(*(self._torch.from_numpy(array) for array in arrays))
        outputs = outputs if isinstance(outputs, tuple | list) else (outputs,)
        return tuple(output.numpy() for output in outputs)

    def encode_images(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        memory, embedding = self._run(self._encoder, self._pixels(pixels))
        return memory, embedding

    def next_logits(self, tokens: np.ndarray, memory: np.ndarray) -> np.ndarray:
        memory = np.ascontiguousarray(memory, dtype=np.float32)
        return self._run(self._step, self._tokens(tokens), memory)[0]

    def text_to_image(self, tokens: np.ndarray, noise: np.ndarray) -> np.ndarray:
        self._require_text_to_image()
        noise = np.asarray(noise, dtype=np.float32)
        return self._run(self._text_to_image, self._tokens(tokens), noise)[0]


RUNNERS: dict[str, Callable[[Path, int], ExportedModel]] = {
    "onnx": OnnxModel,
    "torch-export": TorchExportModel,
}


def load_exported(folder: str | Path, threads: int = 0) -> ExportedModel:
    """The export in `folder` (written by `python -m mmlib export`), ready to run on the CPU.

    `threads`: CPU threads for the graphs (0: the runtime's default, usually every core).
    """
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        raise FileNotFoundError(f"{folder}: no {MANIFEST_FILE}; is it an mmlib export folder?")
    format = json.loads(manifest.read_text(encoding="utf-8")).get("format")
    if format not in RUNNERS:
        raise ValueError(f"{manifest}: format {format!r} is not one of {', '.join(RUNNERS)}")
    return RUNNERS[format](folder, threads)
