#!/usr/bin/env bash
# bench/profile.sh: CPU and allocation profiles of the read and modify
# paths of httpsession-nacl, -encrypted and -memory (BenchmarkMiddleware),
# with the top entries printed. Profiles land in bench/prof/ (ignored).
#
#	bash bench/profile.sh [lib...]
set -euo pipefail
cd "$(dirname "$0")"
GO=${GO:-go}
libs=("$@")
[ ${#libs[@]} -gt 0 ] || libs=(httpsession-nacl httpsession-encrypted httpsession-memory)
mkdir -p prof
$GO test -c -o prof/bench.test .
for lib in "${libs[@]}"; do
	for sc in read modify; do
		p="prof/$lib-$sc"
		./prof/bench.test -test.run '^$' -test.bench "^BenchmarkMiddleware/scenario=$sc/lib=$lib\$" \
			-test.benchtime 2s -test.benchmem -test.cpuprofile "$p.cpu.prof" >/dev/null
		# A separate run for allocations: -memprofilerate=1 records every
		# allocation but slows the run, so it must not share the CPU profile.
		./prof/bench.test -test.run '^$' -test.bench "^BenchmarkMiddleware/scenario=$sc/lib=$lib\$" \
			-test.benchtime 200000x -test.benchmem -test.memprofile "$p.mem.prof" -test.memprofilerate 1 >/dev/null
		echo "==== $lib $sc: CPU (top 25 by cumulative, then flat)"
		$GO tool pprof -top -cum -nodecount 25 prof/bench.test "$p.cpu.prof" 2>/dev/null | sed -n '1,32p'
		$GO tool pprof -top -nodecount 20 prof/bench.test "$p.cpu.prof" 2>/dev/null | sed -n '6,27p'
		echo "==== $lib $sc: allocations per site (alloc_objects)"
		$GO tool pprof -top -sample_index alloc_objects -nodecount 30 prof/bench.test "$p.mem.prof" 2>/dev/null | sed -n '5,36p'
	done
done
