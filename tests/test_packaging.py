"""environment.yml installs the project as pyproject.toml declares it; CI runs `make test`, then
`make check-browser`, both Makefile targets."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_requirements() -> set[str]:
    project = _pyproject()
    extras = project["optional-dependencies"].values()
    return {*project["dependencies"], *(requirement for extra in extras for requirement in extra)}


def test_environment_yml_installs_the_project_with_every_extra() -> None:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    assert len(pip_lists) == 1, "environment.yml must have exactly one pip: section"
    extras = ",".join(_pyproject()["optional-dependencies"])
    assert pip_lists[0] == [f"-e .[{extras}]"]


def test_torch_is_not_pinned() -> None:
    torch_specs = [r for r in _pyproject_requirements() if r.startswith("torch")]
    assert torch_specs and not any("==" in spec for spec in torch_specs)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test", "make check-browser"]
    makefile = (ROOT / "Makefile").read_text()
    targets = {match.group(1) for match in re.finditer(r"(?m)^([\w-]+):", makefile)}
    assert {"test", "check-browser"} <= targets
