"""The wheel ships every package, module and data file of mmlib/ (issue 23: a move must not break
silently). The wheel is built from a copy of the project's files in a temporary folder (so no
`build/` is left in the repository and no stale `build/lib` hides a missing file), installed with
`pip install --target`, and imported in a subprocess whose PYTHONPATH puts it before the
repository's editable install and whose working directory is outside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What building needs: the rest of the repository (data, notebooks, checkpoints) is not packaged.
PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE", "setup.py", "setup.cfg", "MANIFEST.in")
EXTRAS = ("gradio", "gradio_client", "onnx", "onnxscript", "onnxruntime", "torch_fidelity")
BLOCKED = (*EXTRAS, "jupyterlab")


class Installed:
    def __init__(self, wheel: Path, site: Path) -> None:
        self.wheel = wheel
        self.site = site
        self.names = zipfile.ZipFile(wheel).namelist()

    def run(self, code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(self.site), "OMP_NUM_THREADS": "1"}
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(
        ROOT / "mmlib", source / "mmlib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for name in PROJECT_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run([*build, "-w", str(root / "dist"), str(source)], check=True, cwd=root)
    (wheel,) = (root / "dist").glob("mmlib-*.whl")
    install = [*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(root / "site")]
    subprocess.run([*install, str(wheel)], check=True, cwd=root)
    return Installed(wheel, root / "site")


def _source_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "mmlib").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_holds_every_package_and_file_of_the_source_tree(installed: Installed) -> None:
    wheel_packages = {
        name.rpartition("/")[0] for name in installed.names if name.endswith("/__init__.py")
    }
    source_packages = {
        path.parent.relative_to(ROOT).as_posix() for path in (ROOT / "mmlib").rglob("__init__.py")
    }
    assert wheel_packages == source_packages, "a package is missing from the packaging"
    missing = _source_files() - set(installed.names)
    assert not missing, f"in mmlib/ but not in the wheel (packages or package-data): {missing}"
    assert "mmlib/sizing/calibration/gpu_memory.json" in installed.names


# Imports each module it is given from the installed wheel, prints what it found, then runs
# `python -m mmlib --help` (importing mmlib/__main__.py runs the command line).
IMPORT_ALL = """
import importlib, json, runpy, sys
from pathlib import Path
import mmlib
from mmlib.sizing import gpu_calibration
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps({
    "mmlib": mmlib.__file__,
    "calibration_file": str(gpu_calibration.CALIBRATION_FILE),
    "measurements": len(gpu_calibration.load_gpu_measurements()),
    "loaded": sorted(m for m in sys.modules if m == "mmlib" or m.startswith("mmlib.")),
}), flush=True)
sys.argv = ["mmlib", "--help"]
runpy.run_module("mmlib", run_name="__main__")
"""


def test_every_module_imports_from_the_installed_wheel(
    installed: Installed, tmp_path: Path
) -> None:
    modules = sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in installed.names
        # IMPORT_ALL runs mmlib/__main__.py as `python -m mmlib --help`
        if name.startswith("mmlib/") and name.endswith(".py") and not name.endswith("__main__.py")
    )
    assert "mmlib.training.trainer" in modules and "mmlib.sizing" in modules
    result = installed.run(IMPORT_ALL, tmp_path, *modules)
    assert result.returncode == 0, result.stderr
    found, usage = result.stdout.split("\n", 1)
    found = json.loads(found)
    assert usage.startswith("usage:"), usage
    site = installed.site.resolve()
    assert Path(found["mmlib"]).resolve().is_relative_to(site), found["mmlib"]
    assert Path(found["calibration_file"]).resolve().is_relative_to(site)
    assert found["measurements"] > 0
    assert set(modules) <= set(found["loaded"])


# Before anything else, wraps every finder on sys.meta_path so that the optional extras look
# uninstalled: `importlib.util.find_spec` answers None (torch probes for onnx that way) and
# `import onnx` raises ModuleNotFoundError, as where the extra is not installed.
BLOCK = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocking(importlib.abc.MetaPathFinder):
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)
    def invalidate_caches(self):
        getattr(self.finder, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [Blocking(finder) for finder in sys.meta_path]
try:
    import onnx
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("the blocking finder let onnx through")
import mmlib.training, mmlib.sizing, mmlib.serving, mmlib.inference, mmlib.evaluation
import mmlib.course, mmlib.cli
for name in BLOCKED:
    assert name not in sys.modules, name
print("ok")
"""


def test_the_core_imports_without_the_optional_extras(installed: Installed, tmp_path: Path) -> None:
    result = installed.run(BLOCK, tmp_path, ",".join(BLOCKED))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
