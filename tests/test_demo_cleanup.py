"""The demo leaves nothing behind (issue 22): uploads go to a folder of its own, removed when it
stops; every request runs on the demo's one request thread and gives its memory back; a long
prompt's error is one short line. RSS figures: bench/bench_demo_memory.py."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_engraving, write_untrained_run

from mmlib.inference.predictor import Predictor
from mmlib.serving import demo as demo_module
from mmlib.serving.demo import (
    UPLOADS_VARIABLE,
    DemoInputError,
    build_demo,
    imagine_image,
    launch_demo,
)

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture
def gradio_folder(tmp_path: Path) -> Iterator[Path]:
    """GRADIO_TEMP_DIR set to an empty folder, as a user may set it; no telemetry."""
    folder = tmp_path / "gradio"
    folder.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv(UPLOADS_VARIABLE, str(folder))
        yield folder


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_the_upload_folder_is_removed_when_the_demo_stops(
    tmp_path: Path, gradio_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_untrained_run(tmp_path / "run")
    demo = launch_demo(run, block=False)
    try:
        uploads = Path(os.environ[UPLOADS_VARIABLE])
        assert uploads.parent == gradio_folder and uploads.is_dir()
        client = gradio_client.Client(
            demo.local_url, verbose=False, analytics_enabled=False, download_files=tmp_path
        )
        try:
            upload = gradio_client.handle_file(write_engraving(tmp_path / "engraving.png"))
            greedy, _, _ = client.predict(upload, api_name="/caption")
        finally:
            client.close()
        assert isinstance(greedy, str)
        assert any(path.name == "engraving.png" for path in uploads.rglob("*"))
    finally:
        demo.close(verbose=False)
    assert not uploads.exists()
    assert list(gradio_folder.iterdir()) == []
    assert os.environ[UPLOADS_VARIABLE] == str(gradio_folder)
    assert "no nearest captions" in capsys.readouterr().err  # the bare run has no data


def test_requests_run_on_one_thread_that_gives_memory_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = Predictor.load(write_untrained_run(tmp_path / "run"))
    threads: list[str] = []
    monkeypatch.setattr(
        demo_module, "release_memory", lambda: threads.append(threading.current_thread().name)
    )
    endpoints = {fn.api_name: fn.fn for fn in build_demo(predictor, []).fns.values()}
    upload = {"path": str(write_engraving(tmp_path / "engraving.png"))}
    calls = [lambda: endpoints["caption"](upload), lambda: endpoints["imagine"]("a ship")] * 2
    workers = [threading.Thread(target=call) for call in calls]  # as gradio's would call them
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with pytest.raises(gr.Error, match="none of its words"):
        endpoints["imagine"]("zqx")
    # The refused request is released too; every release on one thread, the demo's own.
    assert len(threads) == 5 and len(set(threads)) == 1 and threads[0].startswith("mmlib-demo")


def test_a_megabyte_prompt_in_the_demo_is_a_short_message(tmp_path: Path) -> None:
    predictor = Predictor.load(write_untrained_run(tmp_path / "run"))
    with pytest.raises(DemoInputError) as refused:
        imagine_image(predictor, "zqx " * 250_000)
    assert len(str(refused.value)) < 300 and "(999,999 characters)" in str(refused.value)
