# Quick start on a fresh machine:
#   make demo   set up .venv (no model weights, no network beyond PyPI) and remove the
#               spoon from the bundled example photo; writes out/ and its stage sheet
#   make test   set up .venv with the model and test extras (torch==2.14.1, about 6 GB), lint with
#               ruff and run the test suite on every core
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,models,batch,server,detect]'
	$(BIN)/pip install -q --no-deps rapidocr-onnxruntime==1.4.4  # PP-OCRv4's detector and recognizer files, nothing else
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/clearfill remove examples/coffee/coffee.png --mask examples/coffee/spoon-mask.png \
	    -o out/coffee-clean.png --preset offline --save-stages out/coffee-stages -v
	@echo "result: out/coffee-clean.png   stage sheet: out/coffee-stages/sheet.png"

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# The editor's browser test drives Debian's Chromium (Playwright's own browser download
# does not work offline).
/usr/bin/chromium:
	$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver

# axe-core (the accessibility checker the editor's browser test runs), from npm at
# build time into the static folder; never loaded from a CDN.
AXE := src/clearfill/server/static/vendor/axe.min.js
AXE_VERSION := 4.14.1
$(AXE):
	command -v npm >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q npm)
	npm install --silent --no-audit --no-fund --prefix build/axe axe-core@$(AXE_VERSION)
	mkdir -p $(dir $@) && cp build/axe/node_modules/axe-core/axe.min.js $@

# Lint first (ruff, as pyproject.toml configures it), then the suite on every core.
test: $(VENV)/.installed-dev /usr/bin/chromium $(AXE)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n auto

clean:
	rm -rf $(VENV) out .pytest_cache
