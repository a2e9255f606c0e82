"""`make check-browser`: notebook 05 in JupyterLab, in headless Chromium, as a learner runs it.

Starts JupyterLab on 127.0.0.1, opens the notebook, runs all cells, checks that the
hyperparameter panel rendered and that moving its batch-size slider changes the Config it
shows, and saves a screenshot. Needs Debian's chromium and the playwright package (the make
target installs both); exits non-zero with a message when a check fails.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = "/usr/bin/chromium"
RUN_ALL_ATTEMPTS = 3
PANEL_TIMEOUT_MS = 120_000  # from Run All Cells to the panel: a few seconds on a 2-core CPU
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


def start_lab(root: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    """JupyterLab serving `root` on 127.0.0.1:`port`, waited for until it answers."""
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


def run_all_cells(page: Page, timeout_ms: int) -> None:
    """Run > Run All Cells, then wait until no cell is queued or running."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    accept_dialogs(page)
    page.get_by_text("Kernel status: Idle").first.wait_for(state="attached", timeout=60_000)
    # Right after start-up JupyterLab sometimes reports an idle kernel, runs the first cell and
    # drops the rest of the queue (seen once in a fresh clone): run all again if the panel,
    # a few cells in, has not appeared.
    for attempt in range(1, RUN_ALL_ATTEMPTS + 1):
        click(page, page.locator(".lm-MenuBar-itemLabel", has_text="Run").first)
        click(page, page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first)
        try:
            page.wait_for_selector(".widget-hslider", timeout=min(timeout_ms, PANEL_TIMEOUT_MS))
            break
        except PlaywrightTimeoutError:
            if attempt == RUN_ALL_ATTEMPTS:
                raise
            print(f"the panel did not render after Run All Cells (try {attempt}); again")
    deadline = time.monotonic() + timeout_ms / 1000
    while page.locator(".jp-InputPrompt", has_text="[*]").count():
        if time.monotonic() > deadline:
            raise SystemExit("cells still running after the timeout")
        time.sleep(1)


def check_slider_changes_config(page: Page) -> str:
    """Move the batch-size slider one step; the Config line under the panel must follow."""
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
    return after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notebook", type=Path, default=Path("notebooks/05_training.ipynb"))
    parser.add_argument("--screenshot", type=Path, default=Path("out/notebook05.png"))
    parser.add_argument("--timeout", type=int, default=900, help="seconds for Run All")
    args = parser.parse_args()

    port, token = free_port(), secrets.token_hex(16)
    notebook = args.notebook.resolve()
    lab = start_lab(notebook.parent.parent, port, token)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            relative = notebook.relative_to(notebook.parent.parent)
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{relative}?token={token}&reset")
            try:
                run_all_cells(page, args.timeout * 1000)
                shown = check_slider_changes_config(page)
            except BaseException:
                failure = args.screenshot.with_name(args.screenshot.stem + "-failure.png")
                failure.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(failure), full_page=True)
                print(f"the check failed; the page as it was: {failure}", file=sys.stderr)
                raise
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".widget-hslider").first.scroll_into_view_if_needed()
            page.screenshot(path=str(args.screenshot))
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    print(f"{notebook.name} ran in JupyterLab; the panel rendered; after moving a slider: {shown}")
    print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
