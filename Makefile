# make test   lint, then the tests against real Redis, Redis Cluster,
#             Memcached, PostgreSQL, MariaDB and Python's aiohttp_session
#             (what CI runs), on both supported Go releases: under -race on
#             $(GO), then on $(GO_NEXT)
# make lint   gofmt, go vet, staticcheck (pinned)
# make fuzz   every fuzz target for FUZZTIME each
# make bench  benchmarks (see bench/)
GO          ?= go
# The other supported release; the go command fetches it from the module proxy.
GO_NEXT     ?= env GOTOOLCHAIN=go1.27.3 go
FUZZTIME    ?= 20s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test suite lint fuzz bench

# One set of servers for both releases: the race detector on $(GO), a
# plain run on $(GO_NEXT), which keeps make test within 15 minutes on two
# cores even when $(GO_NEXT)'s build cache is cold.
test: lint
	bash scripts/testenv.sh bash -c '$(MAKE) --no-print-directory suite GO="$(GO)" RACE=-race && $(MAKE) --no-print-directory suite GO="$(GO_NEXT)" RACE='

# suite: every test (with $(RACE)) on the release $(GO) runs, and the
# nested modules' vet; make test runs it inside scripts/testenv.sh. The SQL
# store's module (sqltest) runs on PostgreSQL, MariaDB and SQLite; its
# timing test (a million expired rows) skips itself under -race, so the
# pass without it runs it.
RACE ?= -race
suite:
	$(GO) version
	$(GO) test $(RACE) -count=1 ./...
	cd examples/chi && $(GO) vet ./... && $(GO) test $(RACE) -count=1 ./...
	cd examples/gorilla && $(GO) vet ./... && $(GO) test $(RACE) -count=1 ./...
	cd examples/adapters && $(GO) vet ./... && $(GO) test $(RACE) -count=1 ./...
	cd examples/sqlite && $(GO) vet ./... && $(GO) test $(RACE) -count=1 ./...
	cd sqltest && $(GO) vet ./... && $(GO) test $(RACE) -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd examples/chi && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd examples/gorilla && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd examples/adapters && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd sqltest && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd examples/sqlite && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

fuzz:
	@for t in $$($(GO) test -list '^Fuzz' . | grep '^Fuzz'); do \
		echo "== $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) . || exit 1; \
	done

bench:
	bash scripts/testenv.sh env GO=$(GO) BENCHCOUNT=6 \
		BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da \
		bash bench/run.sh
