#!/usr/bin/env bash
# bench/run.sh: the body of `make bench`. Run it through scripts/testenv.sh,
# which starts Redis, Memcached and PostgreSQL and exports their addresses
# (SQLite needs no server):
#
#	bash scripts/testenv.sh bash bench/run.sh
#
# It counts round trips and SQL statements (TestRoundTrips), runs every benchmark
# $BENCHCOUNT times with -benchmem, summarises them with
# $BENCHSTAT and regenerates bench/RESULTS.md and bench/chart.svg.
# Intermediate files are bench/*.out, bench/bench.test and bench/httpsession.test
# (ignored by git).
#
# The $BENCHCOUNT runs (6: what -count 6 gives benchstat) are interleaved
# passes of -count 1 over all benchmarks, not -count 6 of each benchmark in
# a row: a burst of load from something else on the machine then touches
# one sample of many libraries instead of every sample of a few, and the
# medians, hence the ratios, stay put.
#
set -euo pipefail
cd "$(dirname "$0")"

GO=${GO:-go}
BENCHSTAT=${BENCHSTAT:-golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da}
BENCHCOUNT=${BENCHCOUNT:-6}
# Middleware, RawRoundTrip and UntouchedPaired carry the targets: 500ms
# per run gives each sub-benchmark 100k-300k iterations for the in-process
# libraries. Scale and Parallel are context: 300ms. MemoryFlood (the
# memory store's reads under a flood of new sessions, a benchmark of the
# library's own package, ../bench_test.go) carries a target too: 300ms.
BENCHTIME_MAIN=${BENCHTIME_MAIN:-500ms}
BENCHTIME_MORE=${BENCHTIME_MORE:-300ms}
# TAGS: extra build flags for the test binary, e.g. TAGS="-tags foo".
TAGS=${TAGS:-}

log() { printf 'bench: %s\n' "$*" >&2; }

# Facts for the report (key: value).
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc: $(nproc)"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "go: $($GO version | sed 's/^go version //')"
	echo "kernel: $(uname -r)"
	echo "redis: $(redis-server --version 2>/dev/null | sed 's/^Redis server v=//' | cut -d' ' -f1 || true)"
	echo "memcached: $(memcached -V 2>/dev/null || true)"
	echo "postgres: $("${HTTPSESSION_POSTGRES_BIN:+$HTTPSESSION_POSTGRES_BIN/}postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //' || true)"
	echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "count: $BENCHCOUNT"
	echo "flags: $BENCHCOUNT interleaved passes of: go test${TAGS:+ $TAGS} -run '^\$' -bench . -count 1 -benchmem -benchtime $BENCHTIME_MAIN (Middleware, RawRoundTrip, UntouchedPaired) / $BENCHTIME_MORE (Scale, Parallel, and the library's MemoryFlood)"
	echo "benchstat: go run $BENCHSTAT"
} >meta.out

log "round trips per request (TestRoundTrips)"
$GO test $TAGS -run '^TestRoundTrips$' -v -count 1 . >roundtrips.out 2>&1 || { cat roundtrips.out; exit 1; }
grep ROUNDTRIPS roundtrips.out | sed 's/^ *roundtrip_test.go:[0-9]*: //' >&2

log "benchmarks: $BENCHCOUNT passes of Middleware, RawRoundTrip, UntouchedPaired ($BENCHTIME_MAIN), Scale, Parallel, MemoryFlood ($BENCHTIME_MORE)"
# shellcheck disable=SC2086
$GO test $TAGS -c -o bench.test .
# shellcheck disable=SC2086
(cd .. && $GO test $TAGS -c -o bench/httpsession.test .)
: >bench.out
for pass in $(seq "$BENCHCOUNT"); do
	log "pass $pass/$BENCHCOUNT"
	./bench.test -test.run '^$' -test.bench '^Benchmark(Middleware|RawRoundTrip|UntouchedPaired)$' -test.count 1 -test.benchmem \
		-test.benchtime "$BENCHTIME_MAIN" -test.timeout 30m | tee -a bench.out
	./bench.test -test.run '^$' -test.bench '^Benchmark(Scale|Parallel)$' -test.count 1 -test.benchmem \
		-test.benchtime "$BENCHTIME_MORE" -test.timeout 30m | tee -a bench.out
	./httpsession.test -test.run '^$' -test.bench '^BenchmarkMemoryFlood$' -test.count 1 -test.benchmem \
		-test.benchtime "$BENCHTIME_MORE" -test.timeout 30m | tee -a bench.out
done
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>meta.out

log "benchstat"
args=()
for b in Middleware RawRoundTrip UntouchedPaired Scale Parallel MemoryFlood; do
	$GO run "$BENCHSTAT" -filter ".name:$b" bench.out >"benchstat-$b.out"
	args+=(-benchstat "Benchmark$b=benchstat-$b.out")
done

log "report"
$GO run ./cmd/report -bench bench.out -roundtrips roundtrips.out -gomod go.mod -meta meta.out \
	-out RESULTS.md -chart chart.svg "${args[@]}"
