# seq2seq: make setup | demo | test | check | bench
PYTHON ?= python3
SHELL := /bin/bash
# Use the shared data sets when they sit beside the checkout and nothing else is set.
SEQ2SEQ_DATA ?= $(if $(wildcard ../shared/data/multi30k),$(abspath ../shared/data),$(abspath data))
export SEQ2SEQ_DATA
DEMO_MINUTES ?= 6

.PHONY: setup browser demo demo-music test test-fast check format bench

setup:
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[dev]"

# Trains German->English for a few minutes, translates everyday sentences, prints BLEU:
# on Multi30k when $SEQ2SEQ_DATA has it, else on the Tatoeba corpus shipped with the
# package (82,000 short pairs, CC BY 2.0, see NOTICE): offline, no download.
DEMO_SENTENCES = "Ich habe Hunger.\nWo ist der Bahnhof?\nDas Wetter ist heute schön.\nEin Hund läuft über die Wiese."
demo: setup
	@if [ -f "$(SEQ2SEQ_DATA)/multi30k/train.de" ]; then \
	  echo "== Multi30k German->English, $(DEMO_MINUTES) minutes of training (SEQ2SEQ_DATA=$(SEQ2SEQ_DATA))"; \
	  recipe=recipes/translation/multi30k_de_en.yaml; run=runs/demo_multi30k; split=test2016; \
	  extra=train.validate_every=200; \
	else \
	  echo "== no Multi30k under $(SEQ2SEQ_DATA): the shipped Tatoeba German->English corpus, $(DEMO_MINUTES) minutes"; \
	  recipe=recipes/translation/tatoeba_demo_de_en.yaml; run=runs/demo_tatoeba; split=test; \
	  extra=; \
	fi; \
	seq2seq train $$recipe output_dir=$$run train.max_minutes=$(DEMO_MINUTES) $$extra && \
	printf $(DEMO_SENTENCES) | seq2seq translate $$run -q | paste <(printf $(DEMO_SENTENCES)) - | sed 's/\t/  ->  /' && \
	seq2seq evaluate $$run --split $$split -q

# Offline music demo: harmonise Bach chorales from the corpus inside music21 (no download),
# a few minutes of training, then MIDI + MusicXML of two test chorales and the metrics.
demo-music: setup
	seq2seq train recipes/music/bach_harmonize_music21.yaml output_dir=runs/demo_bach \
	  train.max_minutes=$(DEMO_MINUTES) train.validate_every=50
	seq2seq generate runs/demo_bach --split test -n 2 -o runs/demo_bach/midi -q
	seq2seq evaluate runs/demo_bach --split test -q

test: setup browser
	$(PYTHON) -m pytest -q

# Debian's headless Chromium and its driver, for the web page's browser test (it skips,
# saying why, where neither can be installed)
browser:
	@command -v chromedriver >/dev/null || ! command -v apt-get >/dev/null || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    ($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "no chromium installed: the browser test will skip"; }

# The unit tests only (no test marked slow: those that train in subprocesses or run the
# tools), about half a minute on 2 cores.
test-fast:
	$(PYTHON) -m pytest -q -m "not slow"

check: setup
	ruff check seq2seq tests tools
	ruff format --check seq2seq tests tools
	mypy seq2seq

format:
	ruff check --fix seq2seq tests tools
	ruff format seq2seq tests tools

bench: setup
	$(PYTHON) tools/benchmark.py all recipes/translation/multi30k_de_en.yaml --json bench.json
