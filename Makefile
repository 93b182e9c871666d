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

# mypy reads the package through a tree of links (.lint/veille): setuptools' editable
# finder maps folders to package names at import time, which mypy cannot follow.
# vulture: a function, method or class nobody calls fails the lint (hooks that Scrapy,
# SQLAlchemy, Alembic, http.server, aiosmtpd, urllib, pydantic and pytest fixtures call by
# name are listed).
VULTURE_HOOKS := handle_*,_no_env*,redirect_request,process_request,process_response,process_item,do_GET,do_HEAD,log_message,downgrade,upgrade,process_bind_param,process_result_value,SharedScheduler

lint: venv
	$(BIN)/ruff check app crawler pipeline storage tests bench
	rm -rf .lint && mkdir -p .lint/veille
	for f in app/*; do ln -s ../../$$f .lint/veille/$$(basename $$f); done
	for d in crawler pipeline storage; do ln -s ../../$$d .lint/veille/$$d; done
	cd .lint && ../$(BIN)/mypy --config-file ../pyproject.toml -p veille
	! $(BIN)/vulture app crawler pipeline storage tests bench --min-confidence 60 \
	    --ignore-names '$(VULTURE_HOOKS)' --ignore-decorators '@field_validator,@model_validator,@pytest.fixture' \
	    | grep -E 'unused (function|method|class)'

screenshot: venv
	bash docs/make_screenshot.sh
	$(BIN)/python docs/make_web_screenshots.py

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache *.egg-info
