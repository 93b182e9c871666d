# Two commands on a fresh machine: `make demo` (offline end-to-end run) and `make test`.
# Each creates or refreshes .venv itself.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test bench lint screenshot clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,redis]'
	@touch $(STAMP)

demo: venv
	$(BIN)/veille demo

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m bench

lint: venv
	$(BIN)/ruff check app crawler pipeline storage tests bench
	$(BIN)/mypy -p veille

screenshot: venv
	bash docs/make_screenshot.sh

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache *.egg-info
