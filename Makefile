# Strata — see README.md. `make demo` runs the system; `make test` runs every test.

GO        ?= go
TESTFLAGS ?=
# STRATA_TEST_BACKEND=containers runs the suites against containers, which
# needs the harness built with the containers tag.
ifeq ($(STRATA_TEST_BACKEND),containers)
TAGS := -tags containers
endif

.PHONY: all build test check fmt-check tidy-check vet lint compose-check size-check bench chaos demo deps clean screenshots

all: build

build:
	$(GO) build -o bin/writer ./cmd/writer
	$(GO) build -o bin/projector ./cmd/projector

# Installs what the tests need that a fresh Debian machine lacks.
deps:
	scripts/ensure-deps

# The chaos suite's short run (60 s of faults) goes last, alone: its
# recovery targets are wall-clock, and it should not share two cores with
# the rest of the suite.
test: deps check
	$(GO) test -race -count=1 -timeout 20m $(TAGS) $(TESTFLAGS) $$($(GO) list ./... | grep -v /tests/chaos)
	$(GO) test -race -count=1 -timeout 10m $(TAGS) $(TESTFLAGS) ./tests/chaos/

check: fmt-check tidy-check vet lint compose-check size-check

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# go.mod and go.sum must be tidy for every build tag (the containers build too).
tidy-check:
	$(GO) mod tidy -diff

vet:
	$(GO) vet ./...
	$(GO) vet -tags containers ./internal/harness/

lint:
	$(GO) tool staticcheck ./...

# No tracked file over 1 MB: build outputs and data belong outside git.
size-check:
	@big=$$(git ls-files -z | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$$1 > 1048576 {print $$2" ("$$1" bytes)"}'); \
	if [ -n "$$big" ]; then echo "tracked files over 1 MB (build outputs? add them to .gitignore and git rm --cached):"; echo "$$big"; exit 1; fi

# The compose deployment: `docker compose config` where the tool is, and
# static checks always (scripts/check-compose).
compose-check:
	scripts/check-compose

bench: deps
	$(GO) run ./cmd/bench $(BENCHFLAGS)

# The fault-injection suite alone, run long, with its table (-v): `make chaos
# DURATION=10m`; CHAOS_SEED=N replays a run's choices. Its short run is
# part of `make test` (see `test` above). See README.md, "The chaos suite".
DURATION      ?= 10m
CHAOS_TIMEOUT ?= 3h
chaos: deps
	DURATION=$(DURATION) $(GO) test -count=1 -v -run 'TestChaos$$' -timeout $(CHAOS_TIMEOUT) ./tests/chaos/

demo: deps build
	$(GO) run ./cmd/demo

# The console's browser tests, keeping their screenshots: the overview of
# a running system (writer, relay, projector) and a stream page go to
# docs/ for the README.
screenshots: deps
	rm -rf .screenshots && mkdir -p .screenshots/console .screenshots/system
	$(GO) test -count=1 -run TestTheConsoleInABrowser -artifacts -outputdir $(CURDIR)/.screenshots/console ./internal/console/
	$(GO) test -count=1 -run TestTheConsoleOperatesARunningSystem -artifacts -outputdir $(CURDIR)/.screenshots/system ./tests/
	cp .screenshots/system/_artifacts/*/overview.png docs/console-overview.png
	cp .screenshots/console/_artifacts/*/stream.png docs/console-stream.png
	rm -rf .screenshots

clean:
	rm -rf bin .data
