# make test   vet + race tests against real Redis, Redis Cluster and Memcached
# make lint   gofmt, go vet, staticcheck (pinned)
# make fuzz   every fuzz target for FUZZTIME each
# make bench  benchmarks (see bench/)
GO          ?= go
FUZZTIME    ?= 20s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test lint fuzz bench

test:
	$(GO) vet ./...
	bash scripts/testenv.sh $(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz:
	@for t in $$($(GO) test -list '^Fuzz' . | grep '^Fuzz'); do \
		echo "== $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) . || exit 1; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 . | tee .bench.txt
