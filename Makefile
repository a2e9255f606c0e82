# Every target bootstraps .venv itself: `make test` on a fresh clone is enough.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# This machine's pip takes these two builds from local disk. Elsewhere, set TORCH_PACKAGES to your
# build (for example `make test TORCH_PACKAGES="torch torchvision"`), or to "" to keep the venv's.
TORCH_PACKAGES ?= torch==2.14.1 torchvision==0.29.1
SYNTHETIC := data/synthetic/metadata/engraving_metadata.json
# The same engravings with five captions each by different annotators: notebook 02's long tail.
ANNOTATORS := data/annotators/metadata/engraving_metadata.json
COURSE_METRICS := checkpoints/cpu-tiny/metrics.json

.PHONY: venv test lint data lab bench train check-browser gpu-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(strip $(TORCH_PACKAGES)),$(PY) -m pip install --quiet $(TORCH_PACKAGES))
	$(PY) -m pip install --quiet -e ".[course,dev,demo,export,fid]"
	touch $(STAMP)

$(SYNTHETIC): | $(STAMP)
	$(PY) -m mmlib data synth --out data/synthetic

$(ANNOTATORS): | $(STAMP)
	$(PY) -m mmlib data synth --grammar annotators --out data/annotators

data: $(SYNTHETIC) $(ANNOTATORS)

lint: $(STAMP)
	$(VENV)/bin/ruff check mmlib tests bench
	$(VENV)/bin/ruff format --check mmlib tests bench
	$(VENV)/bin/mypy

# The course model is trained first (again only when mmlib/ changed): the notebooks load it and
# tests/test_course_model.py checks its metrics.json against the course targets.
# The slowest tests are listed at the end, so the time budget stays visible; PYTEST_ARGS adds
# options (for example --junitxml=out/tests.xml, from which bench/test_times.py sums each notebook).
PYTEST_ARGS ?=
# Notebooks run as on a learner's clone, without the optional real sample beside the project
# (MMLIB_REAL_SAMPLES names a folder that is not there); tests that need it find it themselves.
# TEST_WORKERS processes (pytest-xdist) share the tests, one torch thread each, so that they do
# not fight over the cores; --dist loadscope keeps each test module, and each notebook's cells in
# order, on one worker. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
ONE_THREAD_EACH := $(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=1)
test: lint data $(COURSE_METRICS)
	MMLIB_REAL_SAMPLES=data/no-real-sample HYPOTHESIS_PROFILE=ci $(ONE_THREAD_EACH) $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope --durations=20 $(PYTEST_ARGS)

# Notebooks 03-05 and 07 load the course model: trained first when it is missing (not retrained
# when mmlib/ changed; make test does that), after a line that says how long it takes
# (make train's times in docs/results.md).
lab: $(STAMP) data
	@test -f $(COURSE_METRICS) || { echo "make lab: training the course model first ($(COURSE_METRICS) is missing): about 9 to 18 minutes on a 2-core CPU, then JupyterLab opens"; $(MAKE) --no-print-directory $(COURSE_METRICS); }
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP) data
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# Issue 17's device check, on a machine with a GPU (about 8 minutes, no network): memory
# calibration (out/gpu-check/gpu_memory.json), the speed table with MFU, the finder's batch and
# one seed-large training epoch that evaluates. `--device cpu --tiny` runs it in a minute on a CPU.
gpu-check: $(STAMP)
	PYTHONPATH=. $(PY) bench/gpu_check.py out/gpu-check

# The main job (mmlib/pipeline.py): train the course model (cpu-tiny) into checkpoints/cpu-tiny/,
# fit its imagine.pt, evaluate it, write metrics.json and print the report.
train: $(STAMP) data
	$(PY) -m mmlib train --preset cpu-tiny

$(COURSE_METRICS): $(STAMP) $(SYNTHETIC) $(shell find mmlib -name '*.py')
	$(MAKE) train

# Every notebook in JupyterLab in headless Chromium (Debian's package; playwright drives it): each
# runs up to its teaching control, which is moved, and its figure must redraw; screenshots in
# out/. The notebooks need the data and the course model, trained first only when it is missing
# (make test retrains it when mmlib/ changed).
check-browser: $(STAMP) data $(if $(wildcard $(COURSE_METRICS)),,$(COURSE_METRICS))
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) tests/browser_check.py --out out
