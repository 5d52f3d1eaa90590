# The two commands a newcomer needs:  make run   and   make test
# Everything else here is what they are made of.
SHELL := /bin/bash
PY := .venv/bin/python
AFTERCARE := .venv/bin/aftercare
EVAL_SET ?= ../shared/eval/dev_messages.tsv
# Our own long, narrative messages, written apart from data/ (tests/long_messages.md)
LONG_SET ?= tests/long_messages.tsv
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore

.PHONY: run test setup model validate test-stories pytest evaluate benchmark benchmark-bot compare-pipelines clean

run: setup model            ## set up, train if needed, start everything, chat as the demo patient
	$(AFTERCARE) run

test: setup model validate test-stories pytest evaluate   ## every test, as CI runs them

setup:                      ## .venv with the pinned versions (requirements/constraints.txt)
	@scripts/setup.sh

model: setup                ## build the spaCy pipeline and train Rasa if the data changed
	$(AFTERCARE) train

validate: setup             ## Rasa's data validation with warnings as errors, plus the response checks (docs/authoring.md)
	$(AFTERCARE) validate

test-stories: model         ## the test conversations in tests/test_stories.yml
	$(AFTERCARE) test-stories

pytest: model               ## unit and end-to-end tests
	$(PY) -m pytest -q

evaluate: model             ## intent and red-flag figures on the measuring sets, with the bars as hard limits
	$(AFTERCARE) evaluate $(EVAL_SET) --min-intent-accuracy 0.92 --min-red-flag-recall 1.0 --min-red-flag-precision 0.95
	$(AFTERCARE) evaluate $(LONG_SET) --min-intent-accuracy 0.85 --min-red-flag-recall 1.0 --min-red-flag-precision 0.85

benchmark: model            ## training time, start-up time and reply latency (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_rasa.py

benchmark-bot: model        ## Telegram bot: reply latency, check-in delivery rate, restarts, start-up (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_bot.py

compare-pipelines: setup    ## NLU pipelines side by side (docs/pipeline-comparison.md)
	$(PY) benchmarks/compare_pipelines.py --eval $(EVAL_SET) $(LONG_SET)

clean:
	rm -rf build models results .pytest_cache
