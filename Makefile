# offtheshelf: `make demo` and `make test` work on a fresh clone as the only command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DATASET ?= flowers17
BACKBONE ?= vgg16
MODEL ?= logreg
GRID ?= default
EXTRACT_ARGS ?=
CLASSIFY_ARGS ?=

.PHONY: install demo extract classify test bench clean clean-outputs clean-cache

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/python -m extract.demo
	$(BIN)/classify --dataset digits --backbone efficientnet_lite0 --model logreg --grid C

extract: install
	$(BIN)/extract --dataset $(DATASET) --backbone $(BACKBONE) $(EXTRACT_ARGS)

# DATASET and BACKBONE reach classify only when given (make classify DATASET=... BACKBONE=...);
# otherwise classify reads the feature file extracted or reused most recently. GRID searches
# the model's own default grid (classify --list-models); GRID="max_depth=3,6 n_estimators"
# names parameters, and GRID= fits the model's defaults once.
given = $(filter command line environment,$(origin $(1)))
classify: install
	$(BIN)/classify --model $(MODEL) $(foreach g,$(GRID),--grid $(g)) \
		$(if $(call given,DATASET),--dataset $(DATASET)) \
		$(if $(call given,BACKBONE),--backbone $(BACKBONE)) $(CLASSIFY_ARGS)

# Every test, the `long` ones too (a plain `pytest` leaves those out, for quick runs).
test: install
	$(BIN)/python -m pytest -m "long or not long"

bench: install
	$(BIN)/python -m bench $(if $(QUICK),--quick)

# Removes what `make install` and the tools made; never datasets/ or outputs/.
clean:
	@echo "make clean: removing $(VENV)/, *.egg-info, .pytest_cache, .ruff_cache, .hypothesis and __pycache__/"
	@echo "            (datasets/ and outputs/ are kept; 'make clean-outputs' removes outputs/)"
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -path ./datasets -prune -o -path ./outputs -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Feature files, models, reports and results.csv: everything under outputs/ but its README.
clean-outputs:
	@echo "make clean-outputs: removing everything in outputs/ (features, models, reports, results.csv, index.html, bench); datasets/ is kept"
	find outputs -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

# The models extract converted for OpenVINO (57-90 MB each, one per backbone, pooling and
# size): each is converted again when an extraction needs it. `extract --list` lists them.
clean-cache:
	@echo "make clean-cache: removing the converted OpenVINO models in $${XDG_CACHE_HOME:-$$HOME/.cache}/offtheshelf/openvino/"
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/offtheshelf/openvino"
