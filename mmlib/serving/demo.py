"""A local web demo of a trained run: caption an uploaded image, imagine an image from a caption.

`python -m mmlib demo RUN` (or `launch_demo(run)`) serves a Gradio app on 127.0.0.1 only. The
caption tab writes the greedy and the beam-search caption of an uploaded image and lists the
dataset captions nearest to it in the aligned space; the imagine tab decodes a typed caption
into an image (`Predictor.imagine`), shown enlarged. Both are also API endpoints, `/caption` and
`/imagine`, which `gradio_client.Client` can call.

Gradio is an optional extra (`pip install -e ".[demo]"`): it is imported only when a demo is
built. The callbacks (`caption_image`, `imagine_image`, ...) are plain functions of the
predictor, testable without a server. Each request gives its memory back when it ends
(`release_memory`), and a launched demo keeps its uploads in a folder of its own, removed when it
stops.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import gc
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from PIL import Image
from torch import Tensor

from mmlib.config import Config, ConfigError
from mmlib.data.images import ImageFileError, load_image, pil_to_image
from mmlib.data.readers import DatasetError
from mmlib.data.sources import load_split
from mmlib.inference.imagine import IMAGINE_FILE
from mmlib.inference.predictor import Match, Predictor, PromptError

if TYPE_CHECKING:
    import gradio

HOST = "127.0.0.1"  # never 0.0.0.0: the demo is for this machine only
DISPLAY_SIZE = 256  # imagined images are enlarged to about this many pixels a side
NEAREST_K = 5
INSTALL_HINT = 'the demo needs gradio: pip install -e ".[demo]"'
NEAREST_HEADERS = ["caption", "cosine"]
MAX_UPLOAD = "20mb"  # gradio refuses larger uploads before they reach the app
# Uploads whose header claims more pixels are refused before decoding; JPEGs decode downscaled.
UPLOAD_MAX_PIXELS = 4096 * 4096
UPLOADS_VARIABLE = "GRADIO_TEMP_DIR"  # where gradio keeps uploads and the files it serves
_Result = TypeVar("_Result")


class DemoDependencyError(ImportError):
    """Gradio (the `demo` extra) is not installed."""


class DemoInputError(ValueError):
    """A user's input the demo cannot use; the app shows the message."""


# --------------------------------------------------------------------------- callbacks


def dataset_captions(config: Config) -> list[str]:
    """The distinct captions of a run's dataset, train split first, then validation."""
    split = load_split(config)
    return list(dict.fromkeys(c for r in [*split.train, *split.val] for c in r.captions))


def embed_pool(predictor: Predictor, captions: Sequence[str]) -> Tensor:
    """Unit-norm embeddings [N, embedding_dim] of the caption pool (empty pool: [0, dim])."""
    if len(captions) == 0:
        return torch.zeros(0, predictor.config.embedding_dim, device=predictor.device)
    return predictor.embed_captions(list(captions))


def nearest_captions(
    predictor: Predictor,
    image: str | os.PathLike[str] | Image.Image | Tensor,
    pool: Sequence[str],
    pool_embeddings: Tensor,
    k: int = NEAREST_K,
) -> list[Match]:
    """The `k` pool captions most similar to an image (cosine), best first."""
    if len(pool) == 0:
        return []
    scores = (predictor.embed_images([image]) @ pool_embeddings.T)[0]
    values, indices = scores.topk(min(k, len(pool)))
    return [
        Match(int(i), float(s), pool[int(i)])
        for s, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


def upload_image(predictor: Predictor, image: str | os.PathLike[str] | Image.Image) -> Tensor:
    """An upload decoded once as the model's uint8 input [3, S, S], through the library's checked
    loader (at most UPLOAD_MAX_PIXELS, or the run's lower limit); a file that is no usable image
    is a DemoInputError with the demo's own message, without the server's temporary path."""
    config = predictor.config
    if isinstance(image, Image.Image):
        return pil_to_image(image, config.image_size, config.resize_mode)
    most = min(UPLOAD_MAX_PIXELS, config.max_image_pixels)
    try:
        return load_image(image, config.image_size, config.resize_mode, max_pixels=most)
    except ImageFileError as error:
        reason = str(error).removeprefix(f"{Path(image)}: ")
        raise DemoInputError(f"could not use that upload: {reason}") from None


def caption_image(
    predictor: Predictor,
    image: str | os.PathLike[str] | Image.Image | None,
    pool: Sequence[str],
    pool_embeddings: Tensor,
    k: int = NEAREST_K,
) -> tuple[str, str, list[list[Any]]]:
    """The caption tab: greedy caption, beam caption, and [caption, cosine] rows of the `k`
    nearest pool captions. No image (the upload was cleared) gives empty outputs."""
    if image is None:
        return "", "", []
    pixels = upload_image(predictor, image)
    greedy = predictor.caption([pixels], method="greedy")[0]
    beam = predictor.caption([pixels], method="beam")[0]
    matches = nearest_captions(predictor, pixels, pool, pool_embeddings, k)
    return greedy, beam, [[m.item, round(m.score, 4)] for m in matches]


def imagine_unavailable(predictor: Predictor) -> str | None:
    """Why this run cannot imagine images (it has no imagine.pt), or None when it can."""
    if predictor.imagination is not None:
        return None
    where = predictor.run_dir or "this run"
    return (
        f"Imagining is not available: {where} has no {IMAGINE_FILE}. Fit it with "
        "`python -m mmlib fit-imagine RUN` (or mmlib.inference.imagine.fit_run_imagination), then "
        "restart the demo."
    )


def enlarge(image: Tensor, size: int = DISPLAY_SIZE) -> Image.Image:
    """A uint8 image [3, S, S] as a PIL image enlarged by a whole factor (nearest neighbour) to
    about `size` pixels a side, so every model pixel stays a visible square."""
    picture = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy(), "RGB")
    factor = max(1, round(size / max(picture.size)))
    width, height = picture.size
    return picture.resize((width * factor, height * factor), Image.Resampling.NEAREST)


def imagine_image(predictor: Predictor, caption: str | None) -> Image.Image:
    """The imagine tab: the image imagined from a caption, enlarged for display."""
    message = imagine_unavailable(predictor)
    if message:
        raise DemoInputError(message)
    caption = (caption or "").strip()
    try:
        predictor.check_prompt(caption)
    except PromptError as error:
        raise DemoInputError(str(error)) from None
    return enlarge(predictor.imagine([caption])[0])


def release_memory() -> None:
    """Give what a request freed back to the system. Decoding a 4096x4096 upload frees about
    200 MB that glibc's malloc would otherwise keep for good; `malloc_trim` returns it (where
    the C library has no such call, freeing is left to it)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None on other C libraries (macOS, musl, Windows)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- the app


def _gradio() -> Any:
    """The gradio module, telemetry off unless the user set it; a clear error if missing."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as error:
        raise DemoDependencyError(INSTALL_HINT) from error
    return gradio


def uploaded_path(payload: dict[str, Any] | None) -> str | None:
    """The file of gr.Image's upload payload, unread; None when the upload was cleared.

    The caption event skips gradio's preprocessing (`preprocess=False`), which opens the file
    with PIL and answers a bad one with its generic "Could not preprocess input" and a traceback
    in the server's log: `upload_image` reads it instead.
    """
    if not payload:
        return None
    path = payload.get("path")
    if not path:
        raise DemoInputError("could not use that upload: no file came with it; upload an image")
    return str(path)


class _RequestThread:
    """The demo's one request thread: glibc keeps what a thread frees in that thread's own arena,
    and gradio hands requests to any of its worker threads, so all of them run on this one
    thread, which gives memory back after each."""

    def __init__(self, user_error: Callable[..., Exception]) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mmlib-demo")
        self._user_error = user_error  # gradio's gr.Error

    def serve(self, work: Callable[[], _Result]) -> _Result:
        """`work()` on the request thread, its memory given back after; a DemoInputError is
        the user's message."""

        def run() -> _Result:
            try:
                return work()
            finally:
                release_memory()

        try:
            return self._thread.submit(run).result()
        except DemoInputError as error:
            raise self._user_error(str(error), print_exception=False) from None  # a user's input


def build_demo(predictor: Predictor, caption_pool: Sequence[str]) -> gradio.Blocks:
    """The demo app (not launched). The pool's distinct captions are embedded once, here."""
    gr = _gradio()
    pool = list(dict.fromkeys(caption_pool))
    pool_embeddings = embed_pool(predictor, pool)
    unavailable = imagine_unavailable(predictor)
    requests = _RequestThread(gr.Error)

    def on_caption(upload: dict[str, Any] | None) -> tuple[str, str, list[list[Any]]]:
        return requests.serve(
            lambda: caption_image(predictor, uploaded_path(upload), pool, pool_embeddings)
        )

    def on_imagine(caption: str | None) -> Image.Image:
        return requests.serve(lambda: imagine_image(predictor, caption))

    name = Path(predictor.run_dir).name if predictor.run_dir else "a run"
    size = predictor.config.image_size
    with gr.Blocks(title=f"mmlib demo: {name}", analytics_enabled=False) as demo:
        gr.Markdown(f"## mmlib demo: {name}\nRun folder: `{predictor.run_dir}`")
        with gr.Tab("Caption an image"):
            with gr.Row():
                image = gr.Image(
                    label=f"Image (fitted to {size}x{size} as in training)",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard"],
                    height=DISPLAY_SIZE,
                )
                with gr.Column():
                    greedy = gr.Textbox(label="Greedy caption", interactive=False)
                    beam = gr.Textbox(label="Beam-search caption", interactive=False)
            nearest = gr.Dataframe(
                headers=NEAREST_HEADERS,
                datatype=["str", "number"],
                interactive=False,
                label=f"Nearest of the dataset's {len(pool)} distinct captions (cosine)",
            )
            image.change(
                on_caption, image, [greedy, beam, nearest], api_name="caption", preprocess=False
            )
        with gr.Tab("Imagine from a caption"):
            if unavailable:
                gr.Markdown(f"**{unavailable}**")
            prompt = gr.Textbox(
                label="Caption",
                value=pool[0] if pool and not unavailable else "",
                interactive=unavailable is None,
            )
            button = gr.Button("Imagine", variant="primary", interactive=unavailable is None)
            picture = gr.Image(
                label=f"Imagined image ({size}x{size}, enlarged)",
                type="pil",
                format="png",  # lossless: what the client gets is what the model drew
                interactive=False,
                height=DISPLAY_SIZE + 40,
                buttons=["download", "fullscreen"],
            )
            gr.on([button.click, prompt.submit], on_imagine, prompt, picture, api_name="imagine")
            if pool and not unavailable:
                gr.Examples(
                    [[c] for c in pool[:NEAREST_K]], inputs=prompt, label="Dataset captions"
                )
    return demo


class _UploadFolder:
    """A new folder for a demo's uploads (and the files it serves): GRADIO_TEMP_DIR points into
    it while the demo runs, and `remove` deletes it and puts GRADIO_TEMP_DIR back. Gradio itself
    keeps uploads for good."""

    def __init__(self) -> None:
        self.previous = os.environ.get(UPLOADS_VARIABLE)
        self.path = Path(tempfile.mkdtemp(prefix="mmlib-demo-uploads-", dir=self.previous))
        os.environ[UPLOADS_VARIABLE] = str(self.path)
        atexit.register(self.remove)  # a demo the process ends without closing

    def remove(self) -> None:
        """Delete the folder and what is in it; restore GRADIO_TEMP_DIR."""
        shutil.rmtree(self.path, ignore_errors=True)
        if os.environ.get(UPLOADS_VARIABLE) == str(self.path):
            if self.previous is None:
                del os.environ[UPLOADS_VARIABLE]
            else:
                os.environ[UPLOADS_VARIABLE] = self.previous
        atexit.unregister(self.remove)

    def removed_on_close(self, demo: gradio.Blocks) -> None:
        """Make `demo.close()` (Ctrl+C included) remove the folder after stopping the server."""
        close = demo.close

        def close_and_remove(verbose: bool = True) -> None:
            try:
                close(verbose)
            finally:
                self.remove()

        demo.close = close_and_remove  # type: ignore[method-assign]


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on `host:port` now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port nothing listens on (the system's pick)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def launch_demo(
    run: str | os.PathLike[str],
    port: int | None = None,
    checkpoint_dir: str | os.PathLike[str] = "checkpoints",
    device: str = "cpu",
    block: bool = True,
) -> gradio.Blocks:
    """Load a run, build its demo and serve it on 127.0.0.1 (`port=None`: a free port).

    With `block=True` this returns when the server stops (Ctrl+C); with `block=False` it returns
    the running app at once: its URL is `demo.local_url`, and `demo.close()` stops it. Uploads
    go to a folder of the demo's own (GRADIO_TEMP_DIR while it runs), removed when it stops.
    """
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(
            f"port {port}: allowed 1 to 65535; pass another --port, or none for a free one"
        )
    _gradio()  # fail before loading anything when gradio is missing
    if port is None:
        port = free_port()
    elif not port_is_free(port):
        raise OSError(
            f"port {port} on {HOST} is in use: pass another --port, or none for a free one"
        )
    predictor = Predictor.load(run, checkpoint_dir, device=device)
    try:
        pool = dataset_captions(predictor.config)
    except DatasetError as error:  # e.g. a run copied here without its data
        print(
            f"warning: no nearest captions, the run's dataset is unreadable: {error}",
            file=sys.stderr,
        )
        pool = []
    uploads = _UploadFolder()  # before the app is built: gradio reads it then
    try:
        demo = build_demo(predictor, pool)
        demo.launch(
            server_name=HOST,
            server_port=port,
            share=False,
            inbrowser=False,
            prevent_thread_lock=True,
            quiet=True,
            show_error=True,
            max_file_size=MAX_UPLOAD,
            ssr_mode=False,
            mcp_server=False,
        )
    except BaseException:
        uploads.remove()
        raise
    uploads.removed_on_close(demo)
    print(f"mmlib demo of {predictor.run_dir} at {demo.local_url}", flush=True)
    if block:
        try:
            print("press Ctrl+C to stop", flush=True)
            demo.block_thread()  # returns on Ctrl+C
        except KeyboardInterrupt:
            pass
        finally:
            demo.close(verbose=False)
    return demo
