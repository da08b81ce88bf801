# facepair: `make setup` (venv + install), `make test`, `make bench`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup test bench demo clean

setup: $(VENV)/.installed

# torch is pinned to the CPU build that this kind of machine carries (a plain `torch` pulls a
# multi-GB CUDA build); on a GPU machine install the CUDA torch first, then `make setup`.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: setup
	$(PY) -m pytest -q

# the whole pipeline on the sample footage: writes demo/swap.mp4, demo/report.html, demo/model/
demo: setup
	$(PY) -m facepair demo -o demo

bench: setup
	$(PY) benchmarks/extract_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/swap_speed.py
	$(PY) benchmarks/watermark.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
