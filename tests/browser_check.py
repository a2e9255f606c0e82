"""`make check-browser`: course notebooks in JupyterLab, in headless Chromium, as learners run them.

Starts JupyterLab on 127.0.0.1 and, for each notebook (`NOTEBOOK_CHECKS`), opens it, runs all
cells, waits until its panel renders, moves one of the panel's sliders, checks that the panel
followed and saves screenshots under out/:
- 03_the_model: the temperature slider; the result line and the heat maps must change
  (out/notebook03_before.png, out/notebook03_after.png);
- 05_training: the batch-size slider; the Config the hyperparameter panel shows must change
  (out/notebook05.png).
Needs Debian's chromium and the playwright package (the make target installs both); exits
non-zero with a message when a check fails, saving the page as it was to out/NOTEBOOK-failure.png.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = "/usr/bin/chromium"
RUN_ALL_ATTEMPTS = 3
STOPPED_POLLS = 3  # seconds with no cell queued or running before the run counts as stopped
FOLLOW_TIMEOUT_MS = 60_000  # from moving a slider to the panel showing its new value
DIALOG_WAIT_MS = 5_000  # how long a dialog may take to open after the notebook appears
CLICK_ATTEMPTS = 3
CLICK_TIMEOUT_MS = 10_000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LAB_SETTINGS = {
    # Running all cells changes the notebook: never save it over the course's file.
    "docmanager-extension/plugin": '{"autosave": false}',
    # Unset, JupyterLab asks about its news feed over a corner of the screenshots.
    "apputils-extension/notification": '{"fetchNews": "false"}',
}


def write_lab_settings(folder: Path) -> None:
    """JupyterLab's user settings for the check (`LAB_SETTINGS`), in `folder`: the learner's own
    do not apply."""
    for plugin, settings in LAB_SETTINGS.items():
        file = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(settings + "\n")


def start_lab(root: Path, port: int, token: str, settings: Path) -> subprocess.Popen[bytes]:
    """JupyterLab serving `root` on 127.0.0.1:`port` with the user settings in `settings`,
    waited for until it answers."""
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api?token={token}", timeout=1)
            return lab
        except OSError:
            time.sleep(0.5)
    lab.terminate()
    raise SystemExit("JupyterLab did not start within 60 s")


def accept_dialogs(page: Page, wait_ms: int = DIALOG_WAIT_MS) -> None:
    """Accept the dialogs JupyterLab opens on a machine where it never ran ("Select Kernel",
    with the notebook's kernel chosen), which otherwise catch every click on the page."""
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.first.wait_for(state="visible", timeout=wait_ms)
    except PlaywrightTimeoutError:
        return
    while dialog.count():
        title = dialog.first.locator(".jp-Dialog-header").inner_text().strip()
        page.locator(".jp-Dialog .jp-mod-accept").first.click()
        dialog.first.wait_for(state="detached", timeout=10_000)
        print(f"accepted JupyterLab's dialog {title!r}")


def click(page: Page, target: Locator) -> None:
    """Click `target`, accepting a dialog that opens in the way (it may open at any time while
    JupyterLab starts the kernel)."""
    for attempt in range(1, CLICK_ATTEMPTS + 1):
        accept_dialogs(page, wait_ms=500)
        try:
            target.click(timeout=CLICK_TIMEOUT_MS)
            return
        except PlaywrightTimeoutError:
            if attempt == CLICK_ATTEMPTS:
                raise


def raise_on_cell_error(page: Page) -> None:
    """End the check with the traceback of a cell that raised, if one did."""
    error = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
        has_text="Traceback",
    )
    if error.count():
        raise SystemExit(f"a cell raised:\n{error.first.inner_text()[-3000:]}")


def wait_for_panel(page: Page, panel: str, timeout_ms: int) -> bool:
    """Wait until `panel` renders (True); False when the cells stopped before it (none queued or
    running for STOPPED_POLLS seconds) or it took longer than `timeout_ms`."""
    deadline = time.monotonic() + timeout_ms / 1000
    stopped = 0
    while time.monotonic() < deadline:
        if page.locator(panel).count():
            return True
        raise_on_cell_error(page)
        running = page.locator(".jp-InputPrompt", has_text="[*]").count()
        stopped = 0 if running else stopped + 1
        if stopped >= STOPPED_POLLS:
            return False
        time.sleep(1)
    return False


def run_all_cells(page: Page, panel: str, panel_timeout_ms: int, timeout_ms: int) -> None:
    """Run > Run All Cells, wait until `panel` renders, then until no cell is queued or running."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    accept_dialogs(page)
    page.get_by_text("Kernel status: Idle").first.wait_for(state="attached", timeout=60_000)
    # Right after start-up JupyterLab sometimes reports an idle kernel, runs the first cell and
    # drops the rest of the queue (seen once in a fresh clone): run all again if the cells stop,
    # or take far too long, before the panel appears.
    for attempt in range(1, RUN_ALL_ATTEMPTS + 1):
        click(page, page.locator(".lm-MenuBar-itemLabel", has_text="Run").first)
        click(page, page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first)
        if wait_for_panel(page, panel, min(timeout_ms, panel_timeout_ms)):
            break
        if attempt == RUN_ALL_ATTEMPTS:
            raise SystemExit(
                f"the panel ({panel}) did not render after Run All Cells, {attempt} times"
            )
        print(f"the panel did not render after Run All Cells (try {attempt}); again")
    deadline = time.monotonic() + timeout_ms / 1000
    while page.locator(".jp-InputPrompt", has_text="[*]").count():
        if time.monotonic() > deadline:
            raise SystemExit("cells still running after the timeout")
        time.sleep(1)


def check_slider_changes_config(page: Page, screenshots: Sequence[Path]) -> str:
    """Move the batch-size slider one step; the Config line under the panel must follow.
    Screenshot of the page at the panel afterwards."""
    result = page.locator(".widget-html-content", has_text="Config.preset(").first
    before = result.inner_text()
    handle = page.locator(".widget-hslider", has_text="batch_size").locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([el, old]) => el.innerText !== old", arg=[result.element_handle(), before]
    )
    after = result.inner_text()
    if "batch_size=" not in after:
        raise SystemExit(f"the Config line did not follow the slider: {before!r} -> {after!r}")
    (screenshot,) = screenshots
    page.locator(".widget-hslider").first.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot))
    return after


def shown_values(result_line: str) -> tuple[float, float]:
    """The temperature and the alignment loss that the temperature panel's result line shows."""
    found = re.search(r"temperature (\S+) · alignment loss (\S+)", result_line)
    if found is None:
        raise SystemExit(f"no temperature and loss in the result line: {result_line!r}")
    return float(found[1]), float(found[2])


def check_temperature_changes_plot(page: Page, screenshots: Sequence[Path]) -> str:
    """Click the temperature slider's track far from its handle (at 3/4, T = 1 on its 1e-3..10
    scale, or at 1/4, T = 0.01, when the handle is on the right); the result line and the heat
    maps must follow. Screenshots of the panel before and after."""
    slider = page.locator(".widget-hslider", has_text="temperature").first
    panel = page.locator(".jp-OutputArea-output").filter(has=slider).first
    # JupyterLab skips rendering the cells out of view (their innerText is empty): scroll first,
    # and read textContent.
    panel.scroll_into_view_if_needed()
    result = panel.locator(".widget-html-content", has_text="alignment loss").first
    before_line = result.text_content() or ""
    old_temperature, old_loss = shown_values(before_line)
    before_image = panel.locator(".widget-output img").first.get_attribute("src")
    before, after = screenshots
    panel.screenshot(path=str(before))

    track = slider.locator(".noUi-target").first.bounding_box()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    if track is None or handle is None:
        raise SystemExit("the temperature slider has no track or handle on the page")
    handle_at = (handle["x"] + handle["width"] / 2 - track["x"]) / track["width"]
    page.mouse.click(
        track["x"] + track["width"] * (0.25 if handle_at > 0.5 else 0.75),
        track["y"] + track["height"] / 2,
    )
    try:
        page.wait_for_function(
            """([panel, oldLine, oldImage]) => {
                const image = panel.querySelector(".widget-output img");
                const line = [...panel.querySelectorAll(".widget-html-content")]
                    .map((element) => element.textContent)
                    .find((text) => text.includes("alignment loss"));
                return image !== null && image.complete && image.src !== oldImage
                    && line !== undefined && line !== oldLine;
            }""",
            arg=[panel.element_handle(), before_line, before_image],
            timeout=FOLLOW_TIMEOUT_MS,
        )
    except PlaywrightTimeoutError:
        image_now = panel.locator(".widget-output img").first.get_attribute("src")
        raise SystemExit(
            f"the temperature panel did not follow the slider within {FOLLOW_TIMEOUT_MS // 1000} s"
            f" (result line {before_line!r} -> {result.text_content()!r}; the figure's image"
            f" {'changed' if image_now != before_image else 'did not change'})"
        ) from None
    after_line = result.text_content() or ""
    new_temperature, new_loss = shown_values(after_line)
    if new_temperature == old_temperature or new_loss == old_loss:
        raise SystemExit(
            f"the temperature or the loss did not change: {before_line!r} -> {after_line!r}"
        )
    panel.screenshot(path=str(after))
    return f"{before_line} -> {after_line}"


@dataclass(frozen=True)
class NotebookCheck:
    """How `make check-browser` checks one notebook."""

    panel: str  # selector of the panel whose appearance ends the wait after Run All Cells
    panel_timeout_s: int  # from Run All Cells to the panel, generously, on a 2-core CPU
    check: Callable[[Page, Sequence[Path]], str]  # moves a slider, checks, saves the screenshots
    screenshots: tuple[str, ...]  # their names under the output folder


NOTEBOOK_CHECKS = {
    # The panel comes after cells that train small models: 2-4 minutes.
    "03_the_model.ipynb": NotebookCheck(
        panel='.widget-hslider:has-text("temperature")',
        panel_timeout_s=600,
        check=check_temperature_changes_plot,
        screenshots=("notebook03_before.png", "notebook03_after.png"),
    ),
    # The panel is a few cells in: seconds.
    "05_training.ipynb": NotebookCheck(
        panel=".widget-hslider",
        panel_timeout_s=120,
        check=check_slider_changes_config,
        screenshots=("notebook05.png",),
    ),
}


def check_notebook(
    browser: Browser, url: str, notebook: Path, out: Path, timeout_s: int
) -> tuple[str, list[Path]]:
    """Run `notebook` (at `url`) in a new page and its `NOTEBOOK_CHECKS` entry: what the panel
    showed after the move, and the screenshots saved."""
    check = NOTEBOOK_CHECKS[notebook.name]
    screenshots = [out / name for name in check.screenshots]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    try:
        run_all_cells(page, check.panel, check.panel_timeout_s * 1000, timeout_s * 1000)
        shown = check.check(page, screenshots)
    except BaseException:
        failure = out / f"{notebook.stem}-failure.png"
        page.screenshot(path=str(failure), full_page=True)
        print(
            f"the check of {notebook.name} failed; the page as it was: {failure}", file=sys.stderr
        )
        raise
    page.close()
    return shown, screenshots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--notebook",
        type=Path,
        action="append",
        help="a notebook to check (repeatable); default: each of NOTEBOOK_CHECKS in notebooks/",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for screenshots")
    parser.add_argument("--timeout", type=int, default=900, help="seconds for Run All, each")
    args = parser.parse_args()
    notebooks = [
        path.resolve() for path in args.notebook or map(Path("notebooks").joinpath, NOTEBOOK_CHECKS)
    ]
    unknown = [path.name for path in notebooks if path.name not in NOTEBOOK_CHECKS]
    if unknown:
        parser.error(f"no check for {', '.join(unknown)}; checks: {', '.join(NOTEBOOK_CHECKS)}")
    args.out.mkdir(parents=True, exist_ok=True)

    port, token = free_port(), secrets.token_hex(16)
    root = Path(os.path.commonpath([path.parent for path in notebooks])).parent
    settings = Path(tempfile.mkdtemp(prefix="check-browser-settings-"))
    write_lab_settings(settings)
    lab = start_lab(root, port, token, settings)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for notebook in notebooks:
                relative = notebook.relative_to(root)
                url = f"http://127.0.0.1:{port}/lab/tree/{relative}?token={token}&reset"
                shown, screenshots = check_notebook(browser, url, notebook, args.out, args.timeout)
                print(f"{notebook.name} ran in JupyterLab; the panel rendered; after moving a")
                print(f"slider: {shown}")
                print(f"screenshots: {', '.join(map(str, screenshots))}")
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        shutil.rmtree(settings)


if __name__ == "__main__":
    main()
