"""`make check-browser`: each course notebook's teaching control in JupyterLab, headless Chromium.

One JupyterLab server on 127.0.0.1 (with its own user settings: no autosave, no news question)
serves every notebook given (default: each notebooks/NN_*.ipynb), two at a time (`--jobs`), each
in a Chromium of its own: wait until the notebook's own kernel is connected and idle, clear the
committed outputs, run the cells up to the one that shows the teaching control (the widget with
class `mmlib-teach`, found in the notebook's saved widget state), screenshot the control's figure
(the Output with class `mmlib-teach-figure`), move the control (a slider: ArrowRight on its
handle; a dropdown or toggle buttons: the next option), click the panel's `mmlib-teach-run` button
if it has one, wait until the figure's pixels change and settle, and screenshot it again:
out/notebookNN_before.png and out/notebookNN_after.png; then shut the notebook's kernel down.
A notebook without one teaching control, a cell that raises, or a figure that does not change
fails that notebook (the page as it was: out/notebookNN-failure.png); the check goes on with the
others and exits non-zero naming each notebook that failed.
Needs Debian's chromium and the playwright package (the make target installs both).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops
from playwright.sync_api import Browser, Locator, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
# The teaching control contract: mmlib/course/widgets.py
# adds these classes to each notebook's control,
# to its optional run button and to the Output that holds its figure.
TEACH = "mmlib-teach"
TEACH_RUN = "mmlib-teach-run"
TEACH_FIGURE = "mmlib-teach-figure"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SLIDER_PRESSES = 3
MIN_CHANGED_FRACTION = 0.005  # of the figure's pixels (a moved marker in notebook 02: 1.4%)
STOPPED_POLLS = 3  # seconds with no cell queued or running before the run counts as stopped
KERNEL_TIMEOUT_MS = 120_000  # from opening the page to the notebook's kernel idle
RENDER_TIMEOUT_MS = 30_000  # from the control's cell finishing to its widgets on the page
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


def start_lab(
    root: Path, port: int, token: str, scratch: Path, log: Path, threads: int
) -> subprocess.Popen[bytes]:
    """JupyterLab serving `root` on 127.0.0.1:`port` with the user settings in `scratch`/settings
    and the checkpoints it makes of each notebook it opens in `scratch`/checkpoints (not in
    notebooks/), its output in `log`, its kernels on `threads` threads each; waited for until it
    answers."""
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
            f"--LabApp.user_settings_dir={scratch / 'settings'}",
            f"--FileCheckpoints.checkpoint_dir={scratch / 'checkpoints'}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api?token={token}", timeout=1)
            return lab
        except OSError:
            time.sleep(0.5)
    lab.terminate()
    raise SystemExit("JupyterLab did not start within 60 s")


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab server on 127.0.0.1: its port and token."""

    port: int
    token: str

    def page_url(self, path: str) -> str:
        """The address that opens `path` (relative to the server's root) in JupyterLab, with the
        workspace reset."""
        return f"http://127.0.0.1:{self.port}/lab/tree/{path}?token={self.token}&reset"

    def api(self, method: str, path: str) -> Any:
        """The server's REST API: `method` on `path`, the JSON answer (None when empty)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None


class CheckFailed(Exception):
    """One notebook's check failed; the message says why."""


def screenshot_prefix(notebook: Path) -> str:
    """`notebookNN` for notebooks/NN_name.ipynb."""
    number = re.match(r"\d+", notebook.name)
    return f"notebook{number[0] if number else notebook.stem}"


def widget_classes(state: dict[str, Any], model_id: str) -> set[str]:
    """The DOM classes of the widget `model_id` and of the widgets inside it, in a notebook's
    saved widget state."""
    model = state.get(model_id)
    if model is None:
        return set()
    classes = set(model["state"].get("_dom_classes", []))
    for child in model["state"].get("children", []):
        classes |= widget_classes(state, child.removeprefix("IPY_MODEL_"))
    return classes


def teach_cell_index(notebook: Path, content: dict[str, Any]) -> int:
    """The index of the one cell whose saved output shows a widget with class `TEACH`."""
    state = content["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    cells = [
        index
        for index, cell in enumerate(content["cells"])
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
        and TEACH in widget_classes(state, output["data"][WIDGET_VIEW]["model_id"])
    ]
    if not cells:
        raise CheckFailed(
            f"{notebook.name} has no teaching control: no cell's saved output shows a widget with"
            f" class {TEACH!r} (add the class in mmlib/course/widgets.py, then execute the notebook"
            " with nbconvert, which saves the widget state)"
        )
    if len(set(cells)) > 1:
        raise CheckFailed(
            f"{notebook.name} shows a {TEACH!r} widget in cells {sorted(set(cells))}: the"
            " contract is one teaching control per notebook"
        )
    return cells[0]


def kernel_display_name(lab: Lab, notebook: Path, content: dict[str, Any]) -> str:
    """The display name of the notebook's kernel, which the server must have: otherwise
    JupyterLab asks which kernel to start."""
    name = content["metadata"].get("kernelspec", {}).get("name")
    specs = lab.api("GET", "/api/kernelspecs")["kernelspecs"]
    if name not in specs:
        raise CheckFailed(
            f"{notebook.name} names the kernel {name!r}; the server has {', '.join(specs)}"
        )
    return specs[name]["spec"]["display_name"]


def shut_down_kernel(lab: Lab, path: str) -> None:
    """Shut down the kernels of the sessions open on `path`."""
    for session in lab.api("GET", "/api/sessions"):
        if session["path"] == path:
            lab.api("DELETE", f"/api/sessions/{session['id']}")


def wait_for_kernel(page: Page, display_name: str) -> None:
    """Wait until the notebook's own kernel is connected and idle: the toolbar names it and its
    status reads Idle. The status reads Idle already while the toolbar says "No Kernel", before
    JupyterLab has connected the notebook to its kernel; a Run clicked then finds no kernel, opens
    "Select Kernel" and skips the cells (seconds long on a machine's first start)."""
    toolbar = page.locator(".jp-NotebookPanel-toolbar")
    try:
        page.wait_for_function(
            """(name) => {
                const toolbar = document.querySelector(".jp-NotebookPanel-toolbar");
                const kernel = toolbar?.querySelector(".jp-Toolbar-kernelName");
                const status = toolbar?.querySelector(
                    ".jp-Notebook-ExecutionIndicator-tooltip span");
                return kernel?.textContent.trim() === name
                    && status?.textContent.trim() === "Kernel status: Idle";
            }""",
            arg=display_name,
            timeout=KERNEL_TIMEOUT_MS,
        )
    except PlaywrightError:
        shown = " ".join(toolbar.locator(".jp-Toolbar-kernelName").all_text_contents())
        dialog = page.locator(".jp-Dialog .jp-Dialog-header")
        raise CheckFailed(
            f"the notebook's kernel {display_name!r} was not connected and idle within"
            f" {KERNEL_TIMEOUT_MS // 1000} s: the toolbar shows {shown!r}"
            + (f", and the dialog {dialog.first.inner_text()!r} is open" if dialog.count() else "")
        ) from None


def kernel_idle(page: Page) -> bool:
    """Whether the notebook's kernel reads Idle (it is busy while a widget's callback runs)."""
    status = page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator-tooltip span")
    return (status.first.text_content() or "").strip() == "Kernel status: Idle"


def click(page: Page, target: Locator) -> None:
    """Click `target`; when a dialog is in the way, fail naming it."""
    try:
        target.click(timeout=CLICK_TIMEOUT_MS)
    except PlaywrightError:
        dialog = page.locator(".jp-Dialog .jp-Dialog-header")
        if dialog.count():
            raise CheckFailed(
                f"JupyterLab's dialog {dialog.first.inner_text().strip()!r} is in the way"
            ) from None
        raise


def menu(page: Page, name: str, item: str) -> None:
    """Click the menu bar's `name`, then its item `item` (the whole label)."""
    click(page, page.locator(".lm-MenuBar-itemLabel", has_text=name).first)
    label = re.compile(rf"^{re.escape(item)}$")
    click(page, page.locator(".lm-Menu-itemLabel", has_text=label).first)


def raise_on_cell_error(page: Page) -> None:
    """Fail with the traceback of a cell that raised, if one did."""
    error = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
        has_text="Traceback",
    )
    if error.count():
        raise CheckFailed(f"a cell raised:\n{(error.first.text_content() or '')[-3000:]}")


def run_up_to(page: Page, index: int, timeout_s: int) -> Locator:
    """Select cell `index`, run the cells above it and then it; wait until it has an execution
    count and no cell is queued or running. The cell."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    click(page, cell.locator(".jp-InputPrompt"))
    page.wait_for_function(
        """(index) => [...document.querySelectorAll(".jp-Notebook .jp-Cell")]
            .findIndex((cell) => cell.classList.contains("jp-mod-active")) === index""",
        arg=index,
    )
    menu(page, "Run", "Run All Above Selected Cell")
    menu(page, "Run", "Run Selected Cell and Do not Advance")
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout_s
    stopped = 0
    while time.monotonic() < deadline:
        raise_on_cell_error(page)
        running = page.locator(".jp-InputPrompt", has_text="[*]").count()
        if not running and re.search(r"\[\d+\]", prompt.text_content() or ""):
            return cell
        stopped = 0 if running else stopped + 1
        if stopped >= STOPPED_POLLS:
            raise CheckFailed(f"the cells stopped before cell {index}, the control's, ran")
        time.sleep(1)
    raise CheckFailed(f"the cells up to {index}, the control's, still ran after {timeout_s} s")


def wait_for_figure(figure: Locator) -> None:
    """Wait until `figure` shows its images, loaded."""
    figure.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    figure.page.wait_for_function(
        """(figure) => {
            const images = [...figure.querySelectorAll("img")];
            return images.length > 0 && images.every((image) => image.complete
                && image.naturalWidth > 0) || figure.querySelector("svg, canvas") !== null;
        }""",
        arg=figure.element_handle(),
        timeout=RENDER_TIMEOUT_MS,
    )


def changed_fraction(before: bytes, after: bytes) -> float:
    """The fraction of pixels that differ between two PNG screenshots (1 when their sizes do)."""
    with Image.open(io.BytesIO(before)) as old, Image.open(io.BytesIO(after)) as new:
        if old.size != new.size:
            return 1.0
        difference = ImageChops.difference(old.convert("RGB"), new.convert("RGB")).convert("L")
    return 1 - difference.histogram()[0] / (difference.width * difference.height)


def move_control(page: Page, control: Locator) -> str:
    """Move the teaching control: a slider's handle SLIDER_PRESSES times ArrowRight (ArrowLeft
    when it is at its right end), a dropdown's or toggle buttons' next option. What moved, in
    words."""
    classes = (control.get_attribute("class") or "").split()
    label = (control.locator(".widget-label").first.text_content() or "").strip()
    if "widget-slider" in classes:
        handle = control.locator(".noUi-handle").first
        readout = control.locator(".widget-readout").first
        before, shown = handle.get_attribute("aria-valuenow"), readout.text_content()
        for key in ("ArrowRight", "ArrowLeft"):
            handle.focus()
            for _ in range(SLIDER_PRESSES):
                page.keyboard.press(key)
            if handle.get_attribute("aria-valuenow") != before:
                return f"slider {label!r} {shown} -> {readout.text_content()}"
        raise CheckFailed(f"the slider {label!r} moves with neither ArrowRight nor ArrowLeft")
    if "widget-dropdown" in classes:
        select = control.locator("select")
        options = select.locator("option").all_text_contents()
        if len(options) < 2:
            raise CheckFailed(f"the dropdown {label!r} has one option")
        current = select.evaluate("(select) => select.selectedIndex")
        select.select_option(index=(current + 1) % len(options))
        return f"dropdown {label!r} {options[current]} -> {options[(current + 1) % len(options)]}"
    if "widget-toggle-buttons" in classes:
        active = control.locator("button.mod-active").first.text_content()
        other = control.locator("button.widget-toggle-button:not(.mod-active)").first
        chosen = other.text_content()
        click(page, other)
        return f"toggle buttons {label!r} {active} -> {chosen}"
    raise CheckFailed(
        f"the teaching control ({' '.join(classes)}) is not a slider, a dropdown or toggle buttons"
    )


def wait_for_change(page: Page, figure: Locator, before: bytes, timeout_s: int) -> bytes:
    """Wait until `figure`'s pixels differ from `before` by at least MIN_CHANGED_FRACTION and
    settle (the same screenshot twice, the kernel idle). Its last screenshot."""
    deadline = time.monotonic() + timeout_s
    previous, most = b"", 0.0
    while time.monotonic() < deadline:
        shot = figure.screenshot()
        changed = changed_fraction(before, shot)
        most = max(most, changed)
        if changed >= MIN_CHANGED_FRACTION and shot == previous and kernel_idle(page):
            return shot
        previous = shot
        time.sleep(1)
    raise CheckFailed(
        f"the figure did not change within {timeout_s} s: at most {most:.2%} of its pixels"
        f" differed (at least {MIN_CHANGED_FRACTION:.1%} must)"
    )


def check_notebook(
    browser: Browser, lab: Lab, root: Path, notebook: Path, out: Path, timeouts: tuple[int, int]
) -> str:
    """Run `notebook` up to its teaching control in a new page, move the control and check that
    its figure changes; screenshots before and after under `out`. What moved and how much of the
    figure changed, in words."""
    run_timeout_s, follow_timeout_s = timeouts
    content = json.loads(notebook.read_text())
    index = teach_cell_index(notebook, content)
    display_name = kernel_display_name(lab, notebook, content)
    prefix = screenshot_prefix(notebook)
    path = notebook.relative_to(root).as_posix()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab.page_url(path))
        page.wait_for_function(
            "(count) => document.querySelectorAll('.jp-Notebook .jp-Cell').length === count",
            arg=len(content["cells"]),
            timeout=KERNEL_TIMEOUT_MS,
        )
        wait_for_kernel(page, display_name)
        menu(page, "Edit", "Clear Outputs of All Cells")
        cell = run_up_to(page, index, run_timeout_s)
        control = cell.locator(f".{TEACH}").first
        figure = cell.locator(f".{TEACH_FIGURE}").first
        for part, locator in (("control", control), ("figure", figure)):
            try:
                locator.wait_for(state="attached", timeout=RENDER_TIMEOUT_MS)
            except PlaywrightError:
                raise CheckFailed(
                    f"cell {index} ran but shows no teaching {part} ({locator})"
                ) from None
        wait_for_figure(figure)
        before = figure.screenshot(path=out / f"{prefix}_before.png")
        moved = move_control(page, control)
        run_button = cell.locator(f".{TEACH_RUN}")
        if run_button.count():
            click(page, run_button.first)
            moved += f", then {(run_button.first.text_content() or '').strip()!r} clicked"
        after = wait_for_change(page, figure, before, follow_timeout_s)
        (out / f"{prefix}_after.png").write_bytes(after)
        return f"{moved}; {changed_fraction(before, after):.1%} of the figure's pixels changed"
    except (CheckFailed, PlaywrightError):
        page.screenshot(path=out / f"{prefix}-failure.png", full_page=True)
        raise
    finally:
        page.close()
        shut_down_kernel(lab, path)


@dataclass(frozen=True)
class Task:
    """One notebook to check, and how (what a worker process receives)."""

    lab: Lab
    root: Path
    notebook: Path
    out: Path
    timeouts: tuple[int, int]  # seconds for the cells up to the control, and for the redraw


@dataclass(frozen=True)
class Outcome:
    """How one notebook's check went."""

    notebook: str
    passed: bool
    message: str  # what moved and how much of the figure changed, or why the check failed
    seconds: float


def check_in_worker(task: Task) -> Outcome:
    """Check one notebook in a Chromium of its own (in a worker process)."""
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            message = check_notebook(
                browser, task.lab, task.root, task.notebook, task.out, task.timeouts
            )
            passed = True
        except (CheckFailed, PlaywrightError) as error:
            message, passed = str(error), False
        browser.close()
    return Outcome(task.notebook.name, passed, message, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--notebook",
        type=Path,
        action="append",
        help="a notebook to check (repeatable); default: each notebooks/NN_*.ipynb",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for screenshots")
    parser.add_argument(
        "--timeout", type=int, default=300, help="seconds for the cells up to a control, each"
    )
    parser.add_argument(
        "--follow-timeout",
        type=int,
        default=120,
        help="seconds from moving a control to its figure redrawn",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="notebooks checked side by side, each kernel on cores/jobs threads (default 2)",
    )
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give at least 1")
    notebooks = [
        path.resolve()
        for path in args.notebook or sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    ]
    args.out.mkdir(parents=True, exist_ok=True)

    lab = Lab(free_port(), secrets.token_hex(16))
    root = Path(os.path.commonpath([path.parent for path in notebooks])).parent
    scratch = Path(tempfile.mkdtemp(prefix="check-browser-"))
    write_lab_settings(scratch / "settings")
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    server = start_lab(root, lab.port, lab.token, scratch, args.out / "jupyterlab.log", threads)
    timeouts = (args.timeout, args.follow_timeout)
    tasks = [Task(lab, root, notebook, args.out, timeouts) for notebook in notebooks]
    failed: list[str] = []
    started = time.monotonic()
    try:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for outcome in pool.imap_unordered(check_in_worker, tasks):
                if outcome.passed:
                    print(f"ok {outcome.notebook} ({outcome.seconds:.0f} s): {outcome.message}")
                else:
                    failed.append(outcome.notebook)
                    print(f"FAILED {outcome.notebook}: {outcome.message}", file=sys.stderr)
                sys.stdout.flush()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(scratch)
    seconds = time.monotonic() - started
    print(f"{len(notebooks)} notebooks in {seconds:.0f} s; screenshots in {args.out}/")
    if failed:
        raise SystemExit(f"check-browser failed for {', '.join(failed)}")


if __name__ == "__main__":
    main()
