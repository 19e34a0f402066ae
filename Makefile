# Two commands matter: `make demo` (set up, then generate the spec's example storyboard) and
# `make test` (set up, then run every test). Both need only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PROMPT ?= A robot exploring Mars

.PHONY: demo test bench chaos smoke serve worker clean

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

SMOKE_PROMPT ?= A lonely lighthouse keeper finds a message in a bottle. She sails out into the storm to find its sender, and discovers a hidden island.
LLM_KEYS = $$OPENAI_API_KEY$$STORYBOARD_LLM_API_KEY$$OPENAI_BASE_URL$$STORYBOARD_LLM_BASE_URL

chaos: $(VENV)/.test  ## SIGKILLs while jobs run (embedded, then Dramatiq): prints the figures
	$(BIN)/python -m tests.chaos

smoke: $(VENV)/.run  ## one real storyboard: real images with a Replicate key, a real plan with an LLM
	@if [ -z "$$REPLICATE_API_KEY$$REPLICATE_API_TOKEN" ]; then \
	  echo "smoke: images skipped - set REPLICATE_API_KEY to draw real images on Replicate"; fi
	@if [ -z "$$REPLICATE_API_KEY$$REPLICATE_API_TOKEN$(LLM_KEYS)" ]; then \
	  echo "smoke: plan skipped - set OPENAI_API_KEY (or STORYBOARD_LLM_BASE_URL, or REPLICATE_API_KEY) to plan with a language model"; \
	else \
	  provider=sketch; [ -n "$$REPLICATE_API_KEY$$REPLICATE_API_TOKEN" ] && provider=replicate; \
	  STORYBOARD_IMAGE_PROVIDER=$$provider $(BIN)/storyboard generate "$(SMOKE_PROMPT)" \
	    --duration 15 --style cinematic --planner llm | tee .smoke.log && \
	  grep -q "^Planned by" .smoke.log && echo "smoke: a real plan and $$provider images" || \
	  { echo "smoke: FAILED - no plan from the language model (see above)"; rm -f .smoke.log; exit 1; }; \
	  rm -f .smoke.log; \
	fi

serve: $(VENV)/.run  ## the API and the studio on http://127.0.0.1:8000
	$(BIN)/storyboard serve

clean:
	rm -rf $(VENV) DATA
