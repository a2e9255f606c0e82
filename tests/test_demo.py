"""The demo: its callbacks without a server, and the served app driven by gradio_client."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import png_claiming
from PIL import Image

from mmlib.cli import build_parser, main
from mmlib.data.sources import load_split
from mmlib.inference.predictor import Predictor
from mmlib.serving.demo import (
    HOST,
    MAX_UPLOAD,
    NEAREST_HEADERS,
    DemoDependencyError,
    DemoInputError,
    build_demo,
    caption_image,
    dataset_captions,
    embed_pool,
    enlarge,
    imagine_image,
    imagine_unavailable,
    launch_demo,
    port_is_free,
    upload_image,
    uploaded_path,
)

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
AppError = pytest.importorskip("gradio_client.exceptions").AppError


@pytest.fixture(scope="module", autouse=True)
def offline_gradio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No telemetry, and gradio's uploads and outputs in a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        yield


@pytest.fixture(scope="module")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor.load(tiny_run)


@pytest.fixture(scope="module")
def pool(predictor: Predictor) -> list[str]:
    return dataset_captions(predictor.config)


@pytest.fixture(scope="module")
def engraving(predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PNG of the run's first validation image, written to a temporary folder."""
    record = load_split(predictor.config).val[0]
    path = tmp_path_factory.mktemp("upload") / "engraving.png"
    with Image.open(record.image_path) as image:
        image.convert("RGB").save(path)
    return path


def test_caption_pool_is_the_distinct_dataset_captions(predictor: Predictor, pool: list[str]):
    split = load_split(predictor.config)
    every = [c for r in [*split.train, *split.val] for c in r.captions]
    assert len(pool) == len(set(pool)) and set(pool) == set(every)
    assert embed_pool(predictor, pool).shape == (len(pool), predictor.config.embedding_dim)
    assert embed_pool(predictor, []).shape == (0, predictor.config.embedding_dim)


def test_callbacks_without_a_server(predictor: Predictor, pool: list[str], engraving: Path):
    embeddings = embed_pool(predictor, pool)
    greedy, beam, rows = caption_image(predictor, str(engraving), pool, embeddings)
    assert greedy == predictor.caption([engraving])[0]
    assert beam == predictor.caption([engraving], method="beam")[0]
    expected = predictor.retrieve([str(engraving)], pool, k=5)[0]
    assert [row[0] for row in rows] == [match.item for match in expected]
    assert [row[1] for row in rows] == pytest.approx([m.score for m in expected], abs=1e-3)
    assert caption_image(predictor, None, pool, embeddings) == ("", "", [])
    assert caption_image(predictor, str(engraving), [], embed_pool(predictor, []))[2] == []

    not_an_image = engraving.with_name("notes.png")
    not_an_image.write_text("not pixels")
    with pytest.raises(DemoInputError, match="could not use that upload"):
        caption_image(predictor, str(not_an_image), pool, embeddings)

    size = predictor.config.image_size
    picture = imagine_image(predictor, f"  {pool[0]} ")
    assert picture.size == (256, 256) and picture.mode == "RGB"
    imagined = predictor.imagine(pool[0])[0].permute(1, 2, 0).numpy()
    factor = 256 // size
    assert np.array_equal(np.asarray(picture)[::factor, ::factor], imagined)
    for blank in (None, "", "   ", "\U0001f6a2\U0001f319", "xyzzy"):  # emoji; an unknown word
        with pytest.raises(DemoInputError, match="type a caption"):
            imagine_image(predictor, blank)
    assert enlarge(predictor.imagine(pool[0])[0], size=size).size == (size, size)


BAD_UPLOADS = {
    "random.png": (bytes(range(256)) * 8, "not a readable image"),
    "notes.txt": (b"not pixels\n", "not a readable image"),
    "empty.png": (b"", "empty file"),
    "bomb.png": (png_claiming(20000, 20000), "claims 400,000,000 pixels"),
    "wide.png": (png_claiming(5000, 4000), "claims 5000x4000 pixels"),  # within PIL's limit
}


@pytest.mark.parametrize(("name", "data", "reason"), [(n, *v) for n, v in BAD_UPLOADS.items()])
def test_a_bad_upload_gets_the_demos_message(predictor, tmp_path, name, data, reason) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DemoInputError, match="could not use that upload") as refused:
        upload_image(predictor, str(path))
    assert reason in str(refused.value) and str(tmp_path) not in str(refused.value)


def test_the_caption_event_takes_the_uploads_path_unread() -> None:
    assert uploaded_path({"path": "/tmp/upload/a.png", "url": None}) == "/tmp/upload/a.png"
    assert uploaded_path(None) is None
    with pytest.raises(DemoInputError, match="no file came with it"):
        uploaded_path({"path": None, "url": "data:image/png;base64,AAAA"})


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_served_app_answers_bad_uploads_with_its_own_message(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = launch_demo(tiny_run, block=False)
    try:
        assert MAX_UPLOAD == "20mb" and demo.max_file_size == 20 * 2**20
        client = gradio_client.Client(
            demo.local_url, verbose=False, analytics_enabled=False, download_files=tmp_path
        )
        try:
            for name in ("random.png", "bomb.png"):
                upload = tmp_path / name
                upload.write_bytes(BAD_UPLOADS[name][0])
                with pytest.raises(AppError, match="could not use that upload") as refused:
                    client.predict(gradio_client.handle_file(upload), api_name="/caption")
                assert "preprocess" not in str(refused.value)
        finally:
            client.close()
    finally:
        demo.close(verbose=False)
    assert "Traceback" not in capsys.readouterr().err  # the server's log stays quiet


def test_missing_imagine_pt_gives_a_clear_message(predictor: Predictor, pool: list[str]):
    blind = Predictor(
        predictor.model, predictor.tokenizer, predictor.config, None, predictor.run_dir
    )
    assert imagine_unavailable(predictor) is None
    message = imagine_unavailable(blind)
    assert message and "imagine.pt" in message and "fit-imagine" in message
    with pytest.raises(DemoInputError, match="no imagine.pt"):
        imagine_image(blind, pool[0])

    demo = build_demo(blind, pool)
    shown = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert any(message in text for text in shown)
    endpoints = {fn.api_name: fn for fn in demo.fns.values()}
    assert {"caption", "imagine"} <= endpoints.keys()
    with pytest.raises(gr.Error, match="no imagine.pt"):
        endpoints["imagine"].fn(pool[0])


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # gradio vs pandas 3, not ours
def test_served_app_round_trip(
    tiny_run: Path, predictor: Predictor, pool: list[str], engraving: Path, tmp_path: Path
):
    demo = launch_demo(tiny_run, block=False)
    port = demo.server_port
    try:
        assert demo.server_name == HOST and demo.local_url == f"http://{HOST}:{port}/"
        client = gradio_client.Client(
            demo.local_url, verbose=False, analytics_enabled=False, download_files=tmp_path
        )
        try:
            greedy, beam, nearest = client.predict(
                gradio_client.handle_file(engraving), api_name="/caption"
            )
            imagined = client.predict(pool[0], api_name="/imagine")
        finally:
            client.close()
    finally:
        demo.close(verbose=False)
    assert port_is_free(port), "the demo's port is still taken after close()"

    assert isinstance(greedy, str) and greedy and isinstance(beam, str) and beam
    assert greedy == predictor.caption([engraving])[0]
    assert beam == predictor.caption([engraving], method="beam")[0]
    assert nearest["headers"] == NEAREST_HEADERS and len(nearest["data"]) == 5
    scores = [score for _, score in nearest["data"]]
    assert all(caption in pool for caption, _ in nearest["data"])
    assert scores == sorted(scores, reverse=True) and all(-1.001 <= s <= 1.001 for s in scores)

    with Image.open(imagined) as picture:
        assert picture.format == "PNG" and picture.size == (256, 256)
        assert np.array_equal(
            np.asarray(picture.convert("RGB")), np.asarray(imagine_image(predictor, pool[0]))
        )


def test_busy_port_is_one_clear_error(tiny_run: Path):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is in use"):
            launch_demo(tiny_run, port=port, block=False)


def test_without_gradio_the_error_says_how_to_install(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    with pytest.raises(DemoDependencyError, match=r'pip install -e "\.\[demo\]"'):
        build_demo(predictor, [])
    with pytest.raises(DemoDependencyError):
        launch_demo("no-such-run", block=False)


def test_demo_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = build_parser().parse_args(["demo", "latest", "--port", "7001", "--device", "cpu"])
    assert (args.run, args.port, args.device) == ("latest", 7001, "cpu")
    assert args.checkpoint_dir == Path("checkpoints") and args.handler.__name__ == "_demo"
    assert build_parser().parse_args(["demo", "latest"]).port is None
    assert main(["demo", "nothing", "--checkpoint-dir", str(tmp_path)]) == 2
    assert "no run 'nothing'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_served_bare_run_without_imagine_pt_or_data(
    tiny_run: Path, engraving: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("best.pt", "tokenizer.json", "manifest.json"):
        shutil.copy(tiny_run / name, bare / name)
    config = json.loads((tiny_run / "config.json").read_text())
    config["data_dir"] = str(tmp_path / "gone")
    (bare / "config.json").write_text(json.dumps(config))

    demo = launch_demo(bare, block=False)
    try:
        assert "no nearest captions" in capsys.readouterr().err
        client = gradio_client.Client(
            demo.local_url, verbose=False, analytics_enabled=False, download_files=tmp_path
        )
        try:
            greedy, _, nearest = client.predict(
                gradio_client.handle_file(engraving), api_name="/caption"
            )
            with pytest.raises(AppError, match="no imagine.pt"):
                client.predict("a ship", api_name="/imagine")
        finally:
            client.close()
    finally:
        demo.close(verbose=False)
    assert greedy and nearest["data"] == []
