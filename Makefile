# The commands behind the README. Two are enough on a fresh machine:
#   make lab    sets up .venv and opens the course in JupyterLab
#   make test   sets up .venv, lints, type-checks, and runs every test and notebook check
# Every target that needs Python sets up first; setup is skipped while .venv is up to date.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.course-setup.stamp
# Two workers suit a 2-core machine; --dist loadscope keeps each notebook's cells in one kernel.
# WORKERS=0 runs pytest in one process.
WORKERS ?= 2
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k lstm" or make grade PYTEST_ARGS=-v
PYTEST_ARGS ?=

.PHONY: setup lab test lint format exercises execute grade grade-class benchmark benchmark-grading clean distclean figures

setup: $(STAMP)

# The stamp is renewed whenever pyproject.toml or constraints.txt change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/00_welcome.ipynb

# Lint, format check and pytest all run, so one run reports everything; the target fails if any
# failed. pytest's exit code 5 ("no tests collected") is not a failure here.
test: setup
	@status=0; \
	echo "== ruff check"; $(BIN)/ruff check . || status=1; \
	echo "== ruff format --check"; $(BIN)/ruff format --check . || status=1; \
	echo "== mypy"; $(BIN)/mypy || status=1; \
	echo "== pytest"; \
	$(BIN)/pytest -n $(WORKERS) --dist loadscope \
		tests --nbval-lax --nbval-current-env --nbval-cell-timeout=180 $(wildcard notebooks solutions) \
		--ignore-glob='$(CURDIR)/tests/*.ipynb' $(PYTEST_ARGS); \
	rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; elif [ $$rc -ne 0 ]; then status=1; fi; \
	exit $$status

# ruff (lint and format) on Python files and notebooks, and mypy on course_lib (pyproject.toml
# configures both).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Apply ruff's fixes and formatting in place.
format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate exercises/ from solutions/ (never overwrites a notebook a learner changed).
exercises: setup
	$(BIN)/python -m course_lib.instructor.generate $(ARGS)

# Redraw the lectures' diagrams (notebooks/figures/*.svg) from course_lib.diagrams.
figures: setup
	$(BIN)/python -m course_lib.diagrams

# Re-execute the lectures in place, so they are committed with their outputs. On the CPU, so the
# committed outputs do not depend on the machine; no widget state or timing metadata is stored,
# and no progress bars (their saved text would read as if training never ran).
# One lecture: make execute NB=notebooks/02_lstm.ipynb
execute: setup
	COURSE_DEVICE=cpu TQDM_DISABLE=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.kernel_name=python3 \
		--ExecutePreprocessor.timeout=600 \
		--ExecutePreprocessor.store_widget_state=False \
		--ExecutePreprocessor.record_timing=False \
		$(or $(NB),notebooks/*.ipynb)

# Grade one notebook or a folder: make grade NB=exercises/02_lstm.ipynb (default: exercises/).
# course_lib.instructor.grade runs pytest --nbval-lax with the grading plugin and prints points per exercise.
grade: setup
	$(BIN)/python -m course_lib.instructor.grade $(or $(NB),exercises) $(PYTEST_ARGS)

# Grade a class against solutions/: make grade-class SUBMISSIONS=submissions/ ARGS="--csv g.csv"
# Test cells restored from the source, a sandbox per notebook, verdicts outside the kernels.
grade-class: setup
	$(BIN)/python -m course_lib.instructor.grade --instructor $(or $(SUBMISSIONS),submissions) \
		-n $(or $(filter-out 0,$(WORKERS)),1) $(ARGS)

# Seconds per notebook for 60 submissions: a learner's run against the instructor's command.
benchmark-grading: setup
	$(BIN)/python -m benchmarks.grading $(ARGS)

benchmark: setup
	$(BIN)/python -m benchmarks.rnn $(ARGS)

clean:
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) \
		-type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info test-results .coverage htmlcov

# clean, and remove the virtual environment too
distclean: clean
	rm -rf $(VENV)
