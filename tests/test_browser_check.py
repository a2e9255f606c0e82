"""The browser check's own logic, without a browser: finding a notebook's teaching control in its
saved widget state, and comparing a figure's screenshots."""

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from browser_check import CheckFailed, changed_fraction, screenshot_prefix, teach_cell_index
from PIL import Image

NOTEBOOK = Path("notebooks/09_example.ipynb")


def widget(name: str, classes: list[str], children: Sequence[str] = ()) -> dict[str, Any]:
    """A model of a saved widget state."""
    state = {"_dom_classes": classes, "children": [f"IPY_MODEL_{child}" for child in children]}
    return {"model_name": name, "state": state}


def notebook(state: dict[str, Any], views: list[str | None]) -> dict[str, Any]:
    """A notebook whose cell i shows the widget `views[i]` (a markdown cell where None)."""
    cells = [
        {"cell_type": "markdown", "source": "text"}
        if view is None
        else {
            "cell_type": "code",
            "outputs": [{"data": {"application/vnd.jupyter.widget-view+json": {"model_id": view}}}],
        }
        for view in views
    ]
    widgets = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    return {"metadata": {"widgets": widgets}, "cells": cells}


def panel_state(control_classes: list[str]) -> dict[str, Any]:
    """A saved panel: a box holding a slider (with `control_classes`) and a figure's Output."""
    return {
        "box": widget("VBoxModel", [], ["slider", "figure"]),
        "slider": widget("IntSliderModel", control_classes),
        "figure": widget("OutputModel", ["mmlib-teach-figure"]),
        "other": widget("DropdownModel", []),
    }


def test_the_control_is_found_inside_the_panel_a_cell_shows():
    content = notebook(panel_state(["mmlib-teach"]), [None, "other", "box", None])
    assert teach_cell_index(NOTEBOOK, content) == 2


def test_a_notebook_without_a_teaching_control_fails_naming_it():
    content = notebook(panel_state([]), [None, "other", "box"])
    with pytest.raises(CheckFailed, match="09_example.ipynb has no teaching control"):
        teach_cell_index(NOTEBOOK, content)


def test_a_notebook_without_saved_widget_state_fails_naming_it():
    content = {"metadata": {}, "cells": [{"cell_type": "code", "outputs": []}]}
    with pytest.raises(CheckFailed, match="09_example.ipynb has no teaching control"):
        teach_cell_index(NOTEBOOK, content)


def test_two_cells_with_a_teaching_control_fail():
    content = notebook(panel_state(["mmlib-teach"]), ["box", None, "slider"])
    with pytest.raises(CheckFailed, match=r"cells \[0, 2\]"):
        teach_cell_index(NOTEBOOK, content)


def png(size: tuple[int, int], changed_pixels: int = 0) -> bytes:
    """A white PNG with its first `changed_pixels` pixels (row by row) black."""
    image = Image.new("RGB", size, "white")
    for index in range(changed_pixels):
        image.putpixel((index % size[0], index // size[0]), (0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_changed_fraction_counts_the_pixels_that_differ():
    assert changed_fraction(png((10, 10)), png((10, 10))) == 0
    assert changed_fraction(png((10, 10)), png((10, 10), changed_pixels=3)) == pytest.approx(0.03)


def test_a_figure_whose_size_changed_counts_as_changed():
    assert changed_fraction(png((10, 10)), png((10, 12))) == 1


def test_screenshots_are_named_by_the_notebook_number():
    assert screenshot_prefix(Path("notebooks/03_the_model.ipynb")) == "notebook03"
