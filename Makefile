# Developer entry points. `make test` is what CI runs (.ci/run); it installs first when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vkd_install_stamp
PYTEST_ARGS ?=

.PHONY: install test lint demo

$(STAMP): requirements/pinned.txt setup.py tools/install_env.sh
	VENV=$(VENV) bash tools/install_env.sh

install:
	VENV=$(VENV) bash tools/install_env.sh

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo: $(STAMP)
	@echo "make demo is not there yet (issue #5: synthetic COCO data + CPU distillation demo)."; exit 1
