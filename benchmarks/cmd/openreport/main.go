// Command openreport turns the output of `load -open-compare` (read on
// standard input) into BENCHMARKS.md's latency under open load: a Markdown
// table of each server's p50, p99 and p99.9 at each rate, or, with -svg, a
// plot of latency against rate (an SVG image, which GitHub renders). It reads
// the tool's "open-capacity" line and its "open-point" lines, one per server
// and rate:
//
//	open-capacity 4903 req/s: bare httputil.ReverseProxy → upstream, …
//	open-point server=proxy percent=25 rate=1226 sent=1225 answered=1225 held=0 status503=0 p50=1.154ms p99=5.525ms p99.9=8.424ms
//
// and ignores every other line.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	svg := flag.Bool("svg", false, "write the plot (SVG) instead of the Markdown table")
	flag.Parse()
	res, err := parse(os.Stdin)
	if err == nil {
		if *svg {
			err = writeSVG(os.Stdout, res)
		} else {
			err = writeTable(os.Stdout, res)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openreport:", err)
		os.Exit(1)
	}
}

// quantiles are the latencies each point reports, in the order of point.lat.
var quantiles = []string{"p50", "p99", "p99.9"}

// point is one server's figures at one rate.
type point struct {
	server  string
	percent float64
	rate    float64
	sent    int
	n503    int              // answers 503
	lat     [3]time.Duration // p50, p99, p99.9
}

// results is what parse reads: the capacity and its line's description, the
// points, and the servers and percents in the order they first appear.
type results struct {
	capacity float64
	about    string
	points   []point
	servers  []string
	percents []float64
}

// names are the servers' names in the table and the plot.
var names = map[string]string{
	"proxy":   "bare httputil.ReverseProxy",
	"gateway": "gateway",
	"redis":   "gateway on Redis",
}

func name(server string) string {
	if n, ok := names[server]; ok {
		return n
	}
	return server
}

// parse reads the tool's output; it is an error if it holds no capacity, no
// point, or a point line it cannot read.
func parse(r io.Reader) (*results, error) {
	res := &results{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "open-capacity "); ok {
			num, about, _ := strings.Cut(rest, " req/s: ")
			c, err := strconv.ParseFloat(num, 64)
			if err != nil || c <= 0 {
				return nil, fmt.Errorf("line %d: capacity %q", n, num)
			}
			res.capacity, res.about = c, about
			continue
		}
		rest, ok := strings.CutPrefix(line, "open-point ")
		if !ok {
			continue
		}
		p, err := parsePoint(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		res.points = append(res.points, p)
		if !slices.Contains(res.servers, p.server) {
			res.servers = append(res.servers, p.server)
		}
		if !slices.Contains(res.percents, p.percent) {
			res.percents = append(res.percents, p.percent)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if res.capacity == 0 || len(res.points) == 0 {
		return nil, errors.New("no open-capacity line or no open-point line: not the output of load -open-compare")
	}
	return res, nil
}

// parsePoint reads the key=value fields of an open-point line.
func parsePoint(s string) (point, error) {
	var p point
	f := map[string]string{}
	for kv := range strings.FieldsSeq(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, fmt.Errorf("field %q: want key=value", kv)
		}
		f[k] = v
	}
	var errs []error
	num := func(k string) float64 {
		v, err := strconv.ParseFloat(f[k], 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want a number", k, f[k]))
		}
		return v
	}
	p.server = f["server"]
	if p.server == "" {
		errs = append(errs, errors.New("no server"))
	}
	p.percent, p.rate, p.sent = num("percent"), num("rate"), int(num("sent"))
	if _, ok := f["status503"]; ok {
		p.n503 = int(num("status503"))
	}
	for i, q := range quantiles {
		d, err := time.ParseDuration(f[q])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want a duration", q, f[q]))
		}
		p.lat[i] = d
	}
	return p, errors.Join(errs...)
}

// find returns the point of server at percent.
func (r *results) find(server string, percent float64) (point, bool) {
	for _, p := range r.points {
		if p.server == server && p.percent == percent {
			return p, true
		}
	}
	return point{}, false
}

// ms formats d in milliseconds with three significant digits or so.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// writeTable writes one row per percent of capacity, with each server's
// p50 / p99 / p99.9 in milliseconds, and its 503s if it answered any.
func writeTable(w io.Writer, r *results) error {
	fmt.Fprintf(w, "Capacity: %.0f req/s (%s).\n\n", r.capacity, r.about)
	fmt.Fprint(w, "| load | rate (req/s) |")
	for _, s := range r.servers {
		fmt.Fprintf(w, " %s: p50 / p99 / p99.9 (ms) |", name(s))
	}
	fmt.Fprint(w, "\n|---:|---:|")
	for range r.servers {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, pct := range r.percents {
		rate := 0.0
		var cells []string
		for _, s := range r.servers {
			p, ok := r.find(s, pct)
			if !ok {
				cells = append(cells, " – |")
				continue
			}
			rate = p.rate
			shed := ""
			if p.n503 > 0 {
				shed = fmt.Sprintf(" (%d of %d answered 503)", p.n503, p.sent)
			}
			cells = append(cells, fmt.Sprintf(" %s / %s / %s%s |", ms(p.lat[0]), ms(p.lat[1]), ms(p.lat[2]), shed))
		}
		fmt.Fprintf(w, "| %g%% | %.0f |%s\n", pct, rate, strings.Join(cells, ""))
	}
	return nil
}

// The plot's geometry, in SVG user units: the plot area is inside the
// margins, the legend right of it.
const (
	plotW, plotH             = 760, 420
	left, right, top, bottom = 70, 230, 40, 60
	innerW                   = plotW - left - right
	innerH                   = plotH - top - bottom
	legendX                  = plotW - right + 20
)

// The plot's style.
const (
	fontStyle = `font-family="sans-serif" font-size="12" fill="#222"`
	axisColor = "#333"
	gridColor = "#ddd"
	lineWidth = 1.5
)

// colors of the servers in order; dashes of the quantiles (p50 solid).
var (
	colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}
	dashes = []string{"", "6 3", "2 3"}
)

// writeSVG draws each server's p50, p99 and p99.9 against the rate: one
// colour a server, one dash a quantile, the rate on a linear axis from 0 to
// past the capacity (a dashed line), and the latency on a logarithmic one
// spanning whole decades.
func writeSVG(w io.Writer, r *results) error {
	maxRate, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, p := range r.points {
		maxRate = max(maxRate, p.rate)
		for _, d := range p.lat {
			v := max(float64(d)/float64(time.Millisecond), 0.001)
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	xMax := niceCeil(max(maxRate, r.capacity))
	decLo, decHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if decHi == decLo {
		decHi++
	}
	x := func(rate float64) float64 { return left + rate/xMax*innerW }
	y := func(d time.Duration) float64 {
		v := max(float64(d)/float64(time.Millisecond), 0.001)
		return top + innerH - (math.Log10(v)-decLo)/(decHi-decLo)*innerH
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", plotW, plotH)
	fmt.Fprintf(b, `<text x="%d" y="24" font-family="sans-serif" font-size="15" fill="#222">Latency under an open load</text>`+"\n", left)
	// Grid and ticks: the latency's decades, five steps of rate.
	for dec := decLo; dec <= decHi; dec++ {
		yy := top + innerH - (dec-decLo)/(decHi-decLo)*innerH
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", left, yy, left+innerW, yy, gridColor)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" %s text-anchor="end">%s</text>`+"\n", left-6, yy+4, fontStyle, strconv.FormatFloat(math.Pow(10, dec), 'f', -1, 64))
	}
	for i := 0; i <= 5; i++ {
		rate := xMax * float64(i) / 5
		xx := x(rate)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", xx, top, xx, top+innerH, gridColor)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" %s text-anchor="middle">%.0f</text>`+"\n", xx, top+innerH+16, fontStyle, rate)
	}
	xx := x(r.capacity)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="4 4"/>`+"\n", xx, top, xx, top+innerH, axisColor)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" %s text-anchor="end">capacity %.0f</text>`+"\n", xx-4, top+14, fontStyle, r.capacity)
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="%s"/>`+"\n", left, top, innerW, innerH, axisColor)
	fmt.Fprintf(b, `<text x="%d" y="%d" %s text-anchor="middle">offered rate (requests a second)</text>`+"\n", left+innerW/2, plotH-16, fontStyle)
	fmt.Fprintf(b, `<text x="16" y="%d" %s text-anchor="middle" transform="rotate(-90 16 %d)">latency (ms, log scale)</text>`+"\n", top+innerH/2, fontStyle, top+innerH/2)
	// The series, and the legend beside the plot.
	for si, s := range r.servers {
		color := colors[si%len(colors)]
		for qi := range quantiles {
			var pts []string
			for _, pct := range r.percents {
				if p, ok := r.find(s, pct); ok {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.rate), y(p.lat[qi])))
				}
			}
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%g"%s/>`+"\n", strings.Join(pts, " "), color, lineWidth, dash(qi))
			for _, xy := range pts {
				cx, cy, _ := strings.Cut(xy, ",")
				fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", cx, cy, color)
			}
		}
		ly := top + 10 + si*20
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="10" fill="%s"/>`+"\n", legendX, ly-9, color)
		fmt.Fprintf(b, `<text x="%d" y="%d" %s>%s</text>`+"\n", legendX+20, ly, fontStyle, escape(name(s)))
	}
	for qi, q := range quantiles {
		ly := top + 10 + (len(r.servers)+1+qi)*20
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="%g"%s/>`+"\n", legendX, ly-4, legendX+28, ly-4, axisColor, lineWidth, dash(qi))
		fmt.Fprintf(b, `<text x="%d" y="%d" %s>%s</text>`+"\n", legendX+34, ly, fontStyle, q)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dash is the stroke-dasharray attribute of quantile qi ("" for p50).
func dash(qi int) string {
	if dashes[qi] == "" {
		return ""
	}
	return fmt.Sprintf(` stroke-dasharray="%s"`, dashes[qi])
}

// niceCeil returns the least of 1, 2, 2.5 or 5 times a power of ten that is
// at least v (and 1 for v ≤ 0): an axis end whose fifths read well.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// escape makes s safe as SVG text.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
