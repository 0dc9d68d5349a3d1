# seq2seq: make setup | demo | test | check | bench
PYTHON ?= python3
# Use the shared data sets when they sit beside the checkout and nothing else is set.
SEQ2SEQ_DATA ?= $(if $(wildcard ../shared/data/multi30k),$(abspath ../shared/data),$(abspath data))
export SEQ2SEQ_DATA
DEMO_MINUTES ?= 6

.PHONY: setup demo demo-music test test-fast check format bench

setup:
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[dev]"

# Trains for a few minutes, translates a sentence, prints BLEU. Multi30k when
# $SEQ2SEQ_DATA has it; otherwise a generated task (reverse digit strings), offline.
demo: setup
	@if [ -f "$(SEQ2SEQ_DATA)/multi30k/train.de" ]; then \
	  echo "== Multi30k German->English, $(DEMO_MINUTES) minutes of training (SEQ2SEQ_DATA=$(SEQ2SEQ_DATA))"; \
	  seq2seq train recipes/translation/multi30k_de_en.yaml output_dir=runs/demo_multi30k \
	    train.max_minutes=$(DEMO_MINUTES) train.validate_every=200 && \
	  echo "Ein Hund läuft über die Wiese." && \
	  echo "Ein Hund läuft über die Wiese." | seq2seq translate runs/demo_multi30k -q && \
	  seq2seq evaluate runs/demo_multi30k --split test2016 -q; \
	else \
	  echo "== no Multi30k under $(SEQ2SEQ_DATA): generated task (reverse a digit string)"; \
	  $(PYTHON) -m seq2seq.data.synthetic data/toy_reverse && \
	  SEQ2SEQ_DATA=$(abspath data) seq2seq train recipes/translation/toy_reverse.yaml output_dir=runs/demo_toy && \
	  echo "3 1 4 1 5 9 2 6" && \
	  echo "3 1 4 1 5 9 2 6" | seq2seq translate runs/demo_toy -q && \
	  SEQ2SEQ_DATA=$(abspath data) seq2seq evaluate runs/demo_toy --split test -q; \
	fi

# Offline music demo: harmonise Bach chorales from the corpus inside music21 (no download),
# a few minutes of training, then MIDI + MusicXML of two test chorales and the metrics.
demo-music: setup
	seq2seq train recipes/music/bach_harmonize_music21.yaml output_dir=runs/demo_bach \
	  train.max_minutes=$(DEMO_MINUTES) train.validate_every=50
	seq2seq generate runs/demo_bach --split test -n 2 -o runs/demo_bach/midi -q
	seq2seq evaluate runs/demo_bach --split test -q

test: setup
	$(PYTHON) -m pytest -q

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
