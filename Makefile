# `make run`: set up and run the main job. `make test`: set up and run the whole suite.
# Both create .venv with the Python found on PATH (3.10 or newer) when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/llmplan plan --gpu h100 --gpus 256 --days 30 --format table
	$(BIN)/llmplan optimal --budget 3000pfd --format table
	$(BIN)/llmplan compare --format table

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/memory_report.py
	$(BIN)/python benchmarks/serve_report.py
	$(BIN)/python benchmarks/throughput_report.py

schema: $(STAMP)
	$(BIN)/python -m llmplan.cli.schema > docs/schema.md.tmp && mv docs/schema.md.tmp docs/schema.md

clean:
	rm -rf $(VENV) build *.egg-info
