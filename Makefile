# qabot: `make run` and `make test` do all the set-up on a new machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exactly this torch: a CPU wheel that installs in seconds here. Any other pulls a CUDA build.
TORCH := torch==2.13.0

.PHONY: install run test test-fast lint bench eval clean-index help test-services

help:
	@echo "make run    install if needed, index the bundled article if the index is empty, then"
	@echo "            start the Slack bot (SLACK_BOT_TOKEN set) or the CLI chat (not set)"
	@echo "make test   install if needed and run the whole test suite (what CI runs) on two"
	@echo "            workers, about 4 minutes on 2 idle cores; TEST_WORKERS=0 for one process"
	@echo "make test-fast  the fast part only (tests not marked slow), under a minute"
	@echo "make lint   ruff and mypy, as configured in pyproject.toml (CI runs it before the tests)"
	@echo "make bench  performance benchmark: about 7 minutes on 2 idle cores, 15 on a busy machine;"
	@echo "            QUICK=1 for the small version CI runs, about 1.5 minutes"
	@echo "make eval   answer-quality evaluation on ../shared/eval (SQuAD subset), about 2.5 minutes;"
	@echo "            EVAL_DIR=DIR for another set, e.g. EVAL_DIR=tests/fixtures/squad-mini"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@$(BIN)/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') and '+cu' not in v else 'unexpected torch build ' + v)"
	touch $(STAMP)

# Bytecode for the project's own modules, written ahead: a process started with
# PYTHONDONTWRITEBYTECODE set (containers, CI, some shells) would otherwise compile every module
# of bot/ and embeddings/ from source on each start, about a fifth of a cold `qabot ask`.
# compileall rewrites only what changed since; pip already compiles the dependencies.
BYTECODE := $(VENV)/.bytecode
$(BYTECODE): $(STAMP) $(shell find bot embeddings -name '*.py' 2>/dev/null)
	$(BIN)/python -m compileall -q bot embeddings
	touch $(BYTECODE)

run: $(BYTECODE)
	$(BIN)/qabot ingest --if-empty
	@if [ -n "$$SLACK_BOT_TOKEN$$SLACK_BOT_TOKEN_FILE" ]; then \
		exec $(BIN)/qabot serve; \
	else \
		echo "SLACK_BOT_TOKEN is not set: starting the CLI chat (see README, \"Slack setup\", for the bot)."; \
		exec $(BIN)/qabot chat; \
	fi

# The shared-state tests start a real redis-server (Debian package) on a free port, and the report
# page test opens it in headless Chromium through chromedriver (Debian packages chromium and
# chromium-driver): install them once on a fresh machine (CI runs as root). `make run` needs none.
test-services:
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq redis-server; } \
		|| echo "warning: could not install redis-server: the Redis tests will be skipped"
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } \
		|| { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } \
		|| echo "warning: could not install chromium: the report page test will be skipped"

# Two pytest-xdist workers: the suite spends much of its time waiting on qabot processes, servers
# and kills, which a second worker fills. TEST_WORKERS=0 runs in one process (e.g. to use -s or pdb).
TEST_WORKERS ?= 2

test: $(BYTECODE) test-services
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: $(BYTECODE) test-services
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

# ruff (bug-finding rules) on the whole tree, then mypy on the packages; either finding fails.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The bench extra (LangChain, for the side-by-side ingest comparison) is installed with torch
# pinned in the same command so nothing can replace it. QUICK (CI) goes on without it if the
# install fails; the langchain section then prints that it was skipped. The full run needs it.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[bench]" "$(TORCH)"
	touch $(BENCH_STAMP)

bench: $(BYTECODE)
	@$(MAKE) --no-print-directory $(BENCH_STAMP) $(if $(QUICK),|| echo "bench extra not installed: the langchain section will be skipped",)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench.py $(if $(QUICK),--quick,)

# The evaluation set: a folder with one NAME.contexts.jsonl and one NAME.questions.jsonl (the
# format of ../shared/eval/README.md). Checked before anything installs, so a clone without
# ../shared says so in one line: make's $(error) prints one line and stops.
EVAL_DIR ?= ../shared/eval
ifneq ($(filter eval,$(MAKECMDGOALS)),)
  EVAL_CONTEXTS := $(wildcard $(EVAL_DIR)/*.contexts.jsonl)
  EVAL_QUESTIONS := $(wildcard $(EVAL_DIR)/*.questions.jsonl)
  EVAL_UNANSWERABLE := $(wildcard $(EVAL_DIR)/*.unanswerable.jsonl)
  ifneq ($(shell test -d '$(EVAL_DIR)' && echo yes),yes)
    $(error make eval: no folder $(EVAL_DIR); pass EVAL_DIR=DIR (the tests ship a small set: EVAL_DIR=tests/fixtures/squad-mini))
  endif
  ifneq ($(words $(EVAL_CONTEXTS)) $(words $(EVAL_QUESTIONS)),1 1)
    $(error make eval: $(EVAL_DIR) must hold one *.contexts.jsonl and one *.questions.jsonl (found $(words $(EVAL_CONTEXTS)) and $(words $(EVAL_QUESTIONS))))
  endif
endif

eval: $(BYTECODE)
	HF_HUB_OFFLINE=1 $(BIN)/qabot eval --contexts $(EVAL_CONTEXTS) \
		--questions $(EVAL_QUESTIONS) $(if $(EVAL_UNANSWERABLE),--unanswerable $(EVAL_UNANSWERABLE)) --abstain-check

clean-index:
	rm -rf data/index
