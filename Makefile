# The two commands of the README's quick start: `make train` (the main job) and `make test`.
# Both create .venv and install the project on first use.
#   make train DATA_DIR=<dir>   uses MNIST files already in <dir>/MNIST/raw

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
# exact versions known to work together (pyproject.toml states the ranges)
TORCH := torch==2.14.1 torchvision==0.29.1
INSTALLED := $(VENV)/.installed

.PHONY: install train test lint smoke package benchmark mutation mutants clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

train: $(INSTALLED)
	$(BIN)/litmodules fit --config mnist_mlp --data.data_dir $(DATA_DIR)

test: $(INSTALLED)
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# one epoch on real MNIST through the plain script; fails below 90% test accuracy
smoke: $(INSTALLED)
	$(BIN)/python scripts/train_mnist.py --data-dir $(DATA_DIR) --max-epochs 1 --min-test-acc 0.90

# the sdist and the wheel built from it (dist/), the wheel installed into a fresh venv and run from an
# empty folder, as a user who installs the package has it: the recipes by name, a toy fit, and, where
# $(DATA_DIR)/MNIST/raw holds MNIST, one epoch of the main job (fails below 90% test accuracy)
FRESH := build/fresh
package: $(INSTALLED)
	rm -rf dist $(FRESH)
	$(BIN)/python -m build --quiet --outdir dist .
	$(PYTHON) -m venv $(FRESH)
	$(FRESH)/bin/python -m pip install --quiet $(TORCH)
	$(FRESH)/bin/python -m pip install --quiet dist/*.whl
	data="$(abspath $(DATA_DIR))" && cd "$$(mktemp -d)" && $(CURDIR)/$(FRESH)/bin/litmodules --version && \
		$(CURDIR)/$(FRESH)/bin/litmodules recipes > recipes.txt && \
		$(CURDIR)/$(FRESH)/bin/litmodules fit --help > /dev/null && \
		$(CURDIR)/$(FRESH)/bin/litmodules fit --config toy_regression --trainer.enable_progress_bar false > toy.log && \
		echo "installed package: --version, recipes and a toy_regression fit work from an empty folder" && \
		if [ -d "$$data/MNIST/raw" ]; then \
			$(CURDIR)/$(FRESH)/bin/litmodules fit --config mnist_mlp --data.data_dir "$$data" --trainer.max_epochs 1 \
				--trainer.enable_progress_bar false > mnist.log 2>&1 && grep "^test/acc" mnist.log && \
			grep -q "^test/acc: 0\.9" mnist.log; \
		fi

benchmark: $(INSTALLED)
	$(BIN)/python -m benchmarks --data-dir $(DATA_DIR)

# mutation testing (slow: not in CI): scripts/mutation.py names the modules and the tests of each;
# `make mutation MODULES=preprocess` tests one of them, `make mutation MODULES='tasks runs' SAMPLE=100`
# a random hundred mutants of each of two
MODULES ?=
SAMPLE ?=
mutation: $(INSTALLED)
	$(BIN)/python scripts/mutants.py
	$(BIN)/python scripts/mutation.py $(MODULES) $(if $(SAMPLE),--sample $(SAMPLE))

# the repository's own realistic mutants alone (tests/mutants/), each against the tests chosen to catch it
mutants: $(INSTALLED)
	$(BIN)/python scripts/mutants.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache build/mutation $(FRESH) dist
