// Command report turns `go test -bench` output of BenchmarkRateLimit (read on
// standard input) into Markdown tables, one per scenario: the median ns/op, B/op
// and allocs/op of each implementation over its runs, and its ns/op as a ratio to
// the fastest peer's and to the fastest library's (every peer but the bare
// x/time/rate middleware, which sets no headers). Implementations whose name
// starts with "gatehouse" are gatehouse's own, not peers.
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// bare is the hand-rolled middleware, the one peer that is not a library.
const bare = "x-time-rate"

type result struct{ ns, bytes, allocs []float64 }

func main() {
	results := map[string]map[string]*result{} // scenario → impl → runs
	var scenarios []string
	implOrder := map[string][]string{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkRateLimit/") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the -GOMAXPROCS suffix
		}
		parts := strings.SplitN(strings.TrimPrefix(name, "BenchmarkRateLimit/"), "/", 2)
		if len(parts) != 2 {
			continue
		}
		scen, impl := parts[0], parts[1]
		if results[scen] == nil {
			results[scen] = map[string]*result{}
			scenarios = append(scenarios, scen)
		}
		r := results[scen][impl]
		if r == nil {
			r = &result{}
			results[scen][impl] = r
			implOrder[scen] = append(implOrder[scen], impl)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.ns = append(r.ns, v)
			case "B/op":
				r.bytes = append(r.bytes, v)
			case "allocs/op":
				r.allocs = append(r.allocs, v)
			}
		}
	}
	if len(scenarios) == 0 {
		fmt.Fprintln(os.Stderr, "report: no BenchmarkRateLimit results on standard input")
		os.Exit(1)
	}
	for _, scen := range scenarios {
		fastest, fastestName := 0.0, ""
		lib, libName := 0.0, ""
		for _, impl := range implOrder[scen] {
			if strings.HasPrefix(impl, "gatehouse") {
				continue
			}
			ns := median(results[scen][impl].ns)
			if fastestName == "" || ns < fastest {
				fastest, fastestName = ns, impl
			}
			if impl != bare && (libName == "" || ns < lib) {
				lib, libName = ns, impl
			}
		}
		fmt.Printf("### %s\n\n", scen)
		fmt.Printf("| implementation | ns/op | B/op | allocs/op | ÷ fastest peer (%s) | ÷ fastest library (%s) | runs |\n", fastestName, libName)
		fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
		for _, impl := range implOrder[scen] {
			r := results[scen][impl]
			ns := median(r.ns)
			fmt.Printf("| %s | %.1f | %.0f | %.0f | %.2f | %.2f | %d |\n", impl, ns, median(r.bytes), median(r.allocs), ns/fastest, ns/lib, len(r.ns))
		}
		fmt.Println()
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
