# facepair: `make setup` (venv + install), `make test`, `make bench`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup browser test bench demo ui docs clean mutate

setup: $(VENV)/.installed

# torch is pinned to the CPU build that this kind of machine carries (a plain `torch` pulls a
# multi-GB CUDA build); on a GPU machine install the CUDA torch first, then `make setup`.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The browser the UI tests drive: Debian's chromium, installed when missing and this machine can
# (root or password-less sudo, with apt-get). Otherwise a loud line; the browser tests then skip,
# except under CI=true, where they fail.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (for the UI's browser tests) ..."; \
	    $$SUDO apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null || \
	    echo "*** chromium could not be installed: the UI's browser tests will not run ***"; \
	  else echo "*** no chromium, and no root/apt-get to install it: the UI's browser tests will not run ***"; fi; }

# two test processes on the two cores of the development machines (TEST_WORKERS=0: one process)
TEST_WORKERS ?= 2
test: setup browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# the whole pipeline on the sample footage: writes demo/swap.mp4, demo/report.html, demo/model/
demo: setup
	$(PY) -m facepair demo -o demo

# the local web app on http://127.0.0.1:7860/ (work folder ./facepair-work)
ui: setup
	$(PY) -m facepair ui

# the README's before/after picture and the web app's screenshots from the demo's model
# (docs/make_pictures.py); DEMO_DIR=/path reuses a folder `facepair demo -o` wrote, else runs the demo there
DEMO_DIR ?= demo
docs: setup browser
	$(PY) docs/make_pictures.py --demo-dir $(DEMO_DIR)

# the mutation check of the pure modules (docs/testing.md); long, and not part of `make test`
mutate: setup
	$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install --quiet -e '.[mutate]'
	nice -n 10 $(PY) tools/mutate.py

bench: setup
	$(PY) benchmarks/extract_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/model_speed.py
	$(PY) benchmarks/swap_speed.py
	$(PY) benchmarks/encoder.py
	$(PY) benchmarks/calibration.py
	$(PY) benchmarks/embedding.py
	$(PY) benchmarks/watermark.py
	$(PY) benchmarks/smoothing.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
