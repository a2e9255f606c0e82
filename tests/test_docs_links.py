"""Every relative link in README.md and docs/*.md leads to a file, each #anchor to a heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) outside code; an image ![alt](target) is a link too.
LINK = re.compile(r"\[[^\]]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks, inline code spans emptied (a link may span lines)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:  # GitHub numbers repeated headings: name, name-1, ...
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text()))


def problem(page: Path, target: str) -> str | None:
    """What is wrong with one link from `page`, or None."""
    if re.match(r"(https?|mailto):", target):
        return None
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    if not destination.exists():
        return f"{path} does not exist"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"#{anchor} is no heading of {destination.name}"
    return None


def test_slug_is_githubs() -> None:
    assert slug("Coming from `train_production.py`") == "coming-from-train_productionpy"
    assert slug("Training on several GPUs (`torchrun`)") == "training-on-several-gpus-torchrun"
    assert slug("1. Lay out the data") == "1-lay-out-the-data"
    assert slug("Moved in 0.2") == "moved-in-02"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](page.md#nowhere)\n")
    assert problem(page, "#title") is None
    assert problem(page, "missing.md") == "missing.md does not exist"
    assert problem(page, "page.md#nowhere") is not None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_resolves(page: Path) -> None:
    broken = [f"{target}: {why}" for target in links(page) if (why := problem(page, target))]
    assert not broken, f"{page.relative_to(ROOT)} has broken links: {broken}"
