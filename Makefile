# qabot: `make run` and `make test` do all the set-up on a new machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exactly this torch: a CPU wheel that installs in seconds here. Any other pulls a CUDA build.
TORCH := torch==2.13.0

.PHONY: install run test bench eval clean-index help

help:
	@echo "make run    install if needed, index the bundled article if the index is empty, then"
	@echo "            start the Slack bot (SLACK_BOT_TOKEN set) or the CLI chat (not set)"
	@echo "make test   install if needed and run the test suite"
	@echo "make bench  performance benchmark (QUICK=1 for the 2-minute version)"
	@echo "make eval   answer-quality evaluation on ../shared/eval (SQuAD subset)"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@$(BIN)/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') and '+cu' not in v else 'unexpected torch build ' + v)"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/qabot ingest --if-empty data/articles
	@if [ -n "$$SLACK_BOT_TOKEN$$SLACK_BOT_TOKEN_FILE" ]; then \
		exec $(BIN)/qabot serve; \
	else \
		echo "SLACK_BOT_TOKEN is not set: starting the CLI chat (see README for the Slack bot)."; \
		exec $(BIN)/qabot chat; \
	fi

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench.py $(if $(QUICK),--quick,)

eval: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/qabot eval --contexts ../shared/eval/squad-dev10.contexts.jsonl \
		--questions ../shared/eval/squad-dev10.questions.jsonl --abstain-check

clean-index:
	rm -rf data/index
