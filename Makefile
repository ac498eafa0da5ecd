# RNA-GAN: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-checkpoints test install lint services browser bench clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo   - install, prepare the demo content, start a Celery worker and http://127.0.0.1:8000"
	@echo "make test   - install with dev extras, check PostgreSQL/Redis/Chromium, run ruff and pytest"
	@echo "make lint   - ruff only"
	@echo "make clean  - remove the virtual environment and var/"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "RNA-GAN needs Python 3.11 (set PYTHON=/path/to/python3.11)")'
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

services:
	@scripts/ensure-services.sh

browser:
	@scripts/ensure-chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) services browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	DJANGO_DEBUG=1 RNAGAN_DEMO_COHORT=1 RNAGAN_POOL_MIN=20 RNAGAN_TILE_MAX_EXPOSURES=1000 $(BIN)/python manage.py demo

# Retrain the small checkpoints committed in demo/checkpoints: the VAE, then a GAN and an RNA-GAN a tissue,
# 800 steps each at 256 px (10–16 min a generator on a shared 2-core machine).
demo-checkpoints: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m generation.demo --train

clean:
	rm -rf $(VENV) var
