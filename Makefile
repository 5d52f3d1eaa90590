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

.PHONY: run test setup model validate test-stories pytest pytest-future evaluate deidentify benchmark benchmark-bot benchmark-review benchmark-inbox benchmark-scale benchmark-engines benchmark-journal compare-pipelines clean

run: setup model            ## set up, train if needed, start everything, chat as the demo patient
	$(AFTERCARE) run

test: setup model validate test-stories pytest pytest-future evaluate deidentify   ## every test, as CI runs them

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

# Debian's faketime (libfaketime, scripts/setup.sh installs it): the clock a year
# ahead, in Auckland's time zone. The libfaketime settings keep Python sound:
# --exclude-monotonic, or a timed lock waits the year (glibc's sem_clockwait);
# FAKETIME_FORCE_MONOTONIC_FIX=0, or threads waiting for the GIL stall (a test's
# 0.7 s wait took 1.5 s); FAKETIME_CACHE_DURATION, or every 10 s libfaketime reads the environment
# from whichever thread asks the time, which crashes one that a test's setenv races.
FUTURE := TZ=Pacific/Auckland FAKETIME_CACHE_DURATION=1000000 FAKETIME_FORCE_MONOTONIC_FIX=0 \
	faketime --exclude-monotonic -f +365d
pytest-future: setup        ## the unit tests (not those marked e2e) a year from now, proof that no test depends on today's date
	@command -v faketime >/dev/null || { echo "pytest-future: faketime is missing; as root: apt-get install -y faketime (scripts/setup.sh does it)" >&2; exit 1; }
	@$(FUTURE) $(PY) -c 'import datetime, sys, time; ahead = (time.time() - float(sys.argv[1])) / 86400; \
	  print(f"pytest-future: the tests see {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {ahead:.0f} days ahead"); \
	  sys.exit(0 if 364 < ahead < 366 else "pytest-future: the clock is not a year ahead")' $$(date +%s)
	$(FUTURE) $(PY) -m pytest -q -m "not e2e"

evaluate: model             ## intent and red-flag figures on the measuring sets, with the bars as hard limits
	$(AFTERCARE) evaluate $(EVAL_SET) --min-intent-accuracy 0.92 --min-red-flag-recall 1.0 --min-red-flag-precision 0.95
	$(AFTERCARE) evaluate $(LONG_SET) --min-intent-accuracy 0.85 --min-red-flag-recall 1.0 --min-red-flag-precision 0.82
	$(AFTERCARE) evaluate $(EVAL_SET) $(LONG_SET) tests/holdout_messages.tsv --record

deidentify: setup           ## de-identification of the authors' inbox on tests/deidentify_cases.tsv; fails below recall 1.0
	$(AFTERCARE) privacy measure

benchmark: model            ## training time, start-up time and reply latency (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_rasa.py

benchmark-bot: model        ## Telegram bot: reply latency, check-in delivery rate, restarts, start-up (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_bot.py

benchmark-review: setup     ## staff review list with 2,000 open escalations: latency and page size (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_review.py --write-docs

benchmark-inbox: setup      ## authors' inbox page with 5,000 items: latency and page size (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_inbox.py --write-docs

benchmark-scale: model      ## one Rasa server against two (PostgreSQL, Redis), 50 and 200 patients at once (README: Running beyond one machine)
	$(PY) benchmarks/benchmark_scale.py

benchmark-journal: setup    ## the bot's reply time with updates kept in hand and without, SQLite and PostgreSQL (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_journal.py

benchmark-engines: model    ## check-in wave on SQLite and PostgreSQL, one bot process and two, leader killed; start-up with 100,000 jobs on both (docs/benchmarks.md)
	$(PY) benchmarks/benchmark_bot.py --part engines --write-docs

compare-pipelines: setup    ## NLU pipelines side by side (docs/pipeline-comparison.md)
	$(PY) benchmarks/compare_pipelines.py --eval $(EVAL_SET) $(LONG_SET)

clean:
	rm -rf build models results .pytest_cache
