#!/usr/bin/env bash
# run.sh runs the rate-limit benchmarks of this module against the peers and
# writes ../BENCHMARKS.md; the raw `go test` output goes to results/raw.txt.
# It also runs load -compare (the whole gateway against a bare net/http
# server, and on Redis against in memory), into results/gateway.txt.
# Then load -open-compare (latency under an open load at percents of a bare
# proxy's capacity), into results/openload.txt, which cmd/openreport turns
# into a table and the plot results/openload.svg.
# COUNT (default 6) and BENCHTIME (default 1s) tune the run; OPEN_DURATION
# (default 5s) is the length of each trial of each open-load point (1s makes
# it short);
# OPEN_ONLY=1 runs the open load alone; REPORT_ONLY=1 rewrites BENCHMARKS.md
# (and the plot) from the last results without running anything.
set -euo pipefail
cd "$(dirname "$0")"
count=${COUNT:-6}
benchtime=${BENCHTIME:-1s}
open_duration=${OPEN_DURATION:-5s}
mkdir -p results
if [ "${REPORT_ONLY:-}" != 1 ] && [ "${OPEN_ONLY:-}" != 1 ]; then
	# count passes of one run each, rather than one pass of count runs each:
	# each implementation's runs are then spread over the same minutes, so
	# that a spell of a busy machine weighs on all of them alike instead of
	# on whichever ran during it.
	for _ in $(seq "$count"); do
		go test -run='^$' -bench=. -benchmem -count=1 -benchtime="$benchtime" . || exit 1
	done | tee results/raw.txt
	date -u '+%Y-%m-%d %H:%M UTC' > results/date.txt
	echo "$count $benchtime" > results/params.txt
	# The machine the figures are from, kept beside them for REPORT_ONLY.
	cpu=$(grep -m1 '^cpu:' results/raw.txt | cut -d: -f2- | sed 's/^ *//; s/ *$//' || true)
	echo "$(nproc) CPUs, ${cpu:-unknown CPU}, $(go version | cut -d' ' -f3-)" > results/machine.txt
	# The whole gateway over loopback sockets, with the request log on, against a
	# bare net/http server, and on a redis-server the tool starts against in memory.
	go run ./load -compare -redis-compare -usage-compare -log-level INFO -requests 20000 | tee results/gateway.txt
fi
if [ "${REPORT_ONLY:-}" != 1 ]; then
	# Latency under an open load: requests on a fixed schedule, at 25, 50, 75
	# and 90% of a bare proxy's closed-loop capacity, each for open_duration.
	go run ./load -open-compare -redis-compare -log-level INFO -requests 20000 -open-duration "$open_duration" | tee results/openload.txt
	date -u '+%Y-%m-%d %H:%M UTC' > results/openload-date.txt
fi
go run ./cmd/openreport -svg < results/openload.txt > results/openload.svg

# median_awk is an awk function: the median of the numbers in a space-separated string.
median_awk='
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}'

# usage_ratio reads BenchmarkGatewayUsage lines and prints the median ns/op
# and allocs/op of off and on, and the ratio of the medians' ns/op.
usage_ratio() {
	awk "$median_awk"'{ v = $1; sub(/-[0-9]+$/, "", v); sub(/.*\//, "", v); ns[v] = ns[v] " " $3; al[v] = $(NF-1) }
	END {
		off = median(ns["off"]); on = median(ns["on"])
		printf "usage off: %.0f ns/op, %d allocs/op\nusage on:  %.0f ns/op, %d allocs/op\nratio on/off: %.2f\n", off, al["off"], on, al["on"], on / off
	}'
}

# redis_decisions reads BenchmarkRedisDecision lines and prints, for Serial and
# Parallel, each implementation's median µs/op and allocs/op, and the ratio of
# gatehouse-redisstore's median to redis_rate's.
redis_decisions() {
	awk "$median_awk"'{ n = $1; sub(/-[0-9]+$/, "", n); sub(/^BenchmarkRedisDecision\//, "", n); ns[n] = ns[n] " " $3; al[n] = $(NF-1) }
	END {
		split("Serial Parallel", modes, " ")
		for (m = 1; m <= 2; m++) {
			g = median(ns[modes[m] "/gatehouse-redisstore"]); r = median(ns[modes[m] "/redis_rate"])
			printf "%-8s gatehouse-redisstore %.1f µs/op, %d allocs/op; redis_rate %.1f µs/op, %d allocs/op; ratio %.2f\n", modes[m], g / 1000, al[modes[m] "/gatehouse-redisstore"], r / 1000, al[modes[m] "/redis_rate"], g / r
		}
	}'
}

# key_checks reads BenchmarkKeyCheck lines and prints a Markdown table: for
# each scenario, the median ns/op, B/op and allocs/op of each key check.
key_checks() {
	awk "$median_awk"'{ n = $1; sub(/-[0-9]+$/, "", n); sub(/^BenchmarkKeyCheck\//, "", n)
		split(n, p, "/"); if (!(p[1] in seen)) { seen[p[1]] = 1; order[++ns] = p[1] }
		if (!(p[2] in seenc)) { seenc[p[2]] = 1; checks[++nc] = p[2] }
		t[n] = t[n] " " $3; by[n] = by[n] " " $5; al[n] = al[n] " " $7 }
	END {
		printf "| scenario |"; for (c = 1; c <= nc; c++) printf " %s ns/op (B/op, allocs/op) |", checks[c]; printf "\n|---|"
		for (c = 1; c <= nc; c++) printf "---:|"; printf "\n"
		for (s = 1; s <= ns; s++) {
			printf "| %s |", order[s]
			for (c = 1; c <= nc; c++) { k = order[s] "/" checks[c]; printf " %.1f (%d, %d) |", median(t[k]), median(by[k]), median(al[k]) }
			printf "\n"
		}
	}'
}

# from_raw prints what the function $2 makes of benchmark $1's lines in
# results/raw.txt, or that raw.txt has none.
from_raw() {
	if grep -q "^$1/" results/raw.txt; then
		grep "^$1/" results/raw.txt | "$2"
	else
		echo "(not in results/raw.txt: it predates $1; run run.sh in full)"
	fi
}

# The report names the count and benchtime raw.txt was made with, whatever
# this run's are (REPORT_ONLY, OPEN_ONLY).
read -r count benchtime < results/params.txt
{
	echo "# Rate-limit middleware benchmarks"
	echo
	echo "Generated by \`benchmarks/run.sh\` on $(cat results/date.txt): \`go test -run='^\$' -bench=. -benchmem -count=1 -benchtime=$benchtime\` in \`benchmarks/\`, $count times over (each pass runs every implementation once, so that each one's runs are spread over the same minutes); raw output in \`benchmarks/results/raw.txt\`."
	echo "A full \`run.sh\` (about 10 minutes) also runs the load tool's comparisons below, and"
	echo "needs \`redis-server\` on PATH; \`COUNT\` and \`BENCHTIME\` set the passes and each run's"
	echo "time, and \`REPORT_ONLY=1 ./run.sh\` rewrites this page from \`benchmarks/results/\`"
	echo "without running anything."
	echo
	echo "Machine: $(cat results/machine.txt 2>/dev/null || echo "not recorded with these results")."
	echo
	echo "What each of the code's tricks (unsafe, hand-written code) buys against the plain"
	echo "code, with the command that measures it: [docs/performance.md](docs/performance.md)."
	echo
	echo "Every implementation wraps the same no-op handler, runs over prebuilt requests,"
	echo "one client address and one API key each (RemoteAddr and Authorization set per"
	echo "request), and writes into a shared no-op ResponseWriter; the limits are high enough"
	echo "that nothing is refused (the benchmark fails if the middleware answers any request"
	echo "itself), so all measure the pass path. Values are medians over the runs."
	echo
	echo "What each does per request: gatehouse (\`ratelimit.Middleware\` alone) keys on the"
	echo "client IP, checks two token buckets (per minute and per day) and sets four"
	echo "X-RateLimit-* headers; gatehouse-fullstack is the key check in front of it, as"
	echo "\`gatehouse.Middleware\` composes them: the API key's format and checksum, its SHA-256,"
	echo "the lookup in an \`auth.MemoryStore\` of every key, then the limiter keyed on the key;"
	echo "httprate, ulule/limiter, sethvargo/go-limiter and throttled key on the client IP,"
	echo "check one window and set their own headers; x-time-rate is the usual hand-rolled map +"
	echo "mutex of \`rate.Limiter\`s, one window, no headers."
	echo
	echo "Two ratios, each an implementation's ns/op divided by another's (lower is faster): to"
	echo "the fastest peer, and to the fastest library. Peers are every implementation but the two"
	echo "gatehouse rows; the libraries, every peer but the bare x-time-rate middleware, which"
	echo "does neither a second window nor headers."
	echo
	go run ./cmd/report < results/raw.txt
	echo
	echo "## The key check alone"
	echo
	echo "\`BenchmarkKeyCheck\` (in the \`go test\` run at the top): gatehouse-fullstack's key check"
	echo "without the limiter behind it, over the same requests and the same \`auth.MemoryStore\` of"
	echo "100,000 keys. auth-middleware is \`auth.Middleware\` as the full stack builds it (no"
	echo "throttle, no report of outcomes): both key headers and the rules between them, the key's"
	echo "format and checksum, SHA-256, the lookup, the record's Disabled and ExpiresAt, and the"
	echo "record handed on in a copy of the request and a context value made in one allocation. The"
	echo "two floors are the least any check of keys stored as SHA-256 hashes does: floor reads the"
	echo "Authorization header, hashes the key and looks the hash up in the store; floor-handing-on"
	echo "also hands the record on to the handlers after it in the plain way net/http has, a copy of"
	echo "the request with a context holding it (\`r.WithContext(context.WithValue(…))\`, two"
	echo "allocations), so auth-middleware can take less time than it. With 100,000 keys each"
	echo "request's header map and the key's record are out of the CPU's caches when the request"
	echo "comes round again, as each peer's RemoteAddr and bucket are; so is the memory a copy is"
	echo "made in, which the garbage collector freed a heap's worth of allocations earlier, the"
	echo "heap here (the prebuilt requests and the keys) being larger than the caches."
	echo
	from_raw BenchmarkKeyCheck key_checks
	echo
	echo "## The whole gateway"
	echo
	echo "\`go run ./load -compare -redis-compare -usage-compare -log-level INFO -requests 20000\` in \`benchmarks/\`"
	echo "(run by \`run.sh\` too): three interleaved trials over loopback sockets, each a"
	echo "gateway process with the request log on, against a bare net/http server answering the"
	echo "same JSON; the median of the three; full output in \`benchmarks/results/gateway.txt\`."
	echo "The contract's floor is a bare server that writes the request line and the four"
	echo "\`X-RateLimit-*\` headers every answer must carry, with nothing checked: no gateway of"
	echo "this contract can beat it, so contract-floor/bare bounds gateway/bare on this machine"
	echo "([docs/reliability.md](docs/reliability.md#what-the-stack-costs-a-request))."
	echo "\"Product in process\": the gateway answers the product itself (its \`inprocess:calculate\`"
	echo "upstream); \"product upstream\": it proxies to the product's service, a second hop."
	echo "\`-redis-compare\` starts a \`redis-server\` from PATH on loopback. Before the trials, the"
	echo "tool sends the contract's whole traffic mix and checks every answer (the first lines of"
	echo "\`gateway.txt\`)."
	echo
	echo '```'
	grep '^ratio' results/gateway.txt
	echo '```'
	echo
	echo "## Counting usage"
	echo
	echo "The gateway's figure with usage on and off is the ratio gateway-usage-on/gateway-usage-off above"
	echo "(two gateways on one SQLite key database, \`-usage-flush 10s\` and \`0\`)."
	echo "\`BenchmarkGatewayUsage\` (in the \`go test\` run at the top): the whole gateway handler (\`gatehouse.New\`, no"
	echo "sockets, no request log) on one key, with \`Config.Usage\` off and on (a \`sqlstore.Usage\`"
	echo "on SQLite, written every 10 s). Counting costs no database call on the request path and one"
	echo "allocation (the writer wrapper that learns the status); the median time per request, on / off:"
	echo
	echo '```'
	from_raw BenchmarkGatewayUsage usage_ratio
	echo '```'
	echo
	echo "## One decision on Redis"
	echo
	echo "\`BenchmarkRedisDecision\` (in the \`go test\` run at the top): one decision on a redis-server"
	echo "on loopback, over 1,000 keys, by \`redisstore.Store.Take\` (two windows, the decision's id"
	echo "kept for a retry) and by go-redis/redis_rate's \`Allow\` (one window), from one goroutine"
	echo "(Serial) and from GOMAXPROCS goroutines at once (Parallel); medians, and the ratio of the"
	echo "store's time to redis_rate's. A Store has one pipeline in flight at a time, and the"
	echo "decisions asked meanwhile go in the next ([docs/redis.md](docs/redis.md#decisions-in-flight-share-a-round-trip)):"
	echo "a decision that misses a pipeline waits for its round trip, where redis_rate sends each"
	echo "decision at once on a connection of its own. What sharing buys is at many callers: the"
	echo "gateway on Redis above, at 32 connections, makes about one round trip for ten requests."
	echo
	echo '```'
	from_raw BenchmarkRedisDecision redis_decisions
	echo '```'
	echo
	echo "## Latency under an open load"
	echo
	echo "\`go run ./load -open-compare -redis-compare -log-level INFO -requests 20000 -open-duration $(grep -o -- '-open-duration [^ ]*' results/openload.txt | head -1 | cut -d' ' -f2 || true)\`"
	echo "in \`benchmarks/\` (run by \`run.sh\` too) on $(cat results/openload-date.txt); full output in \`benchmarks/results/openload.txt\`."
	echo "One bare net/http server is the upstream of three servers, each a process of its own: a"
	echo "bare \`httputil.ReverseProxy\` (no log), the gateway with its request log on (\`-log-level"
	echo "INFO\`, the command's default), and that gateway with its limits on a redis-server on"
	echo "loopback. The proxy's capacity is its median closed-loop throughput over three runs of"
	echo "20,000 requests, 32 at a time. At 25, 50, 75 and 90% of it, each server gets an open load in"
	echo "turn, in three interleaved trials: requests on a fixed schedule, each sent when due whether"
	echo "or not the ones before it were answered, its latency counted from when it was due, so that"
	echo "queueing shows (a closed-loop load sends less when the server is slow, and hides it). The"
	echo "table gives the medians over the trials. A request may be answered 200 or 503 (the gateway"
	echo "on Redis answers 503 when a decision runs past \`-redis-timeout\`, 50 ms by default): the"
	echo "table counts the 503s, over the three trials together, and their latencies are in the"
	echo "percentiles; any other answer fails the run. From about 75% on, the bare proxy itself does"
	echo "not keep up with requests that do not wait for answers (its capacity is a closed-loop"
	echo "figure), so the latencies there are queues, and the gateway on Redis's lower ones come"
	echo "from its 503s, each given once its decision's 50 ms have passed rather than queued. All processes share the machine's cores with the load tool; the machine's load"
	echo "average (1, 5, 15 min) was $(sed -n 's/^open-loadavg before: //p' results/openload.txt) before the run and"
	echo "$(sed -n 's/^open-loadavg after: //p' results/openload.txt) after it."
	echo
	go run ./cmd/openreport < results/openload.txt
	echo
	echo "![p50, p99 and p99.9 latency against the offered rate, for each server](benchmarks/results/openload.svg)"
	echo
	echo "The gateways' p99 ÷ the bare proxy's at the same rate, the median over the trials of each"
	echo "trial's ratio (so not always the ratio of the table's medians); the goals, at 50% of"
	echo "capacity: gateway ≤ 1.2, gateway on Redis ≤ 1.5."
	echo
	echo '```'
	grep '^ratio' results/openload.txt
	echo '```'
} > ../BENCHMARKS.md
echo "wrote $(cd .. && pwd)/BENCHMARKS.md"
