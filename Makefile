# Two commands matter: `make demo` (set up, then generate the spec's example storyboard) and
# `make test` (set up, then run every test). Both need only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PROMPT ?= A robot exploring Mars

.PHONY: demo test bench smoke serve worker clean

$(VENV)/.run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.run
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.run  ## generate the spec's example storyboard on the embedded defaults
	$(BIN)/storyboard generate "$(PROMPT)" --duration 30 --style cinematic

test: $(VENV)/.test  ## the whole test suite
	$(BIN)/python -m pytest

bench: $(VENV)/.test  ## benchmarks, printed as a table
	$(BIN)/python -m bench

smoke: $(VENV)/.run  ## one real storyboard on Replicate, only when a key is set
	@if [ -z "$$REPLICATE_API_KEY$$REPLICATE_API_TOKEN" ]; then \
	  echo "smoke: skipped - set REPLICATE_API_KEY to run one real storyboard on Replicate"; \
	else \
	  STORYBOARD_IMAGE_PROVIDER=replicate $(BIN)/storyboard generate "$(PROMPT)" --duration 15 --style cinematic; \
	fi

serve: $(VENV)/.run  ## the API and the studio on http://127.0.0.1:8000
	$(BIN)/storyboard serve

clean:
	rm -rf $(VENV) DATA
