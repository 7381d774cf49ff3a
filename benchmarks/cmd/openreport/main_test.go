package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// TestGolden: a small output of load -open-compare (testdata/open.txt)
// renders to exactly the table and the plot of testdata/open.md and
// testdata/open.svg (go test -update rewrites them).
func TestGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "open.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		golden string
		write  func(*bytes.Buffer, *results) error
	}{
		{"open.md", func(b *bytes.Buffer, r *results) error { return writeTable(b, r) }},
		{"open.svg", func(b *bytes.Buffer, r *results) error { return writeSVG(b, r) }},
	} {
		res, err := parse(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := tt.write(&got, res); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", tt.golden)
		if *update {
			if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.golden, got.Bytes(), want)
		}
	}
}

// TestParseRefuses: input that is not load -open-compare's output, or a
// point line it cannot read, is an error naming the line.
func TestParseRefuses(t *testing.T) {
	const capacity = "open-capacity 100 req/s: proxy\n"
	for _, tt := range []struct{ in, want string }{
		{"PASS\n", "no open-capacity line or no open-point line: not the output of load -open-compare"},
		{capacity, "no open-capacity line or no open-point line: not the output of load -open-compare"},
		{"open-capacity none req/s: proxy\n", `line 1: capacity "none"`},
		{capacity + "open-point server=proxy percent=50 rate=50 sent=1 answered=1 held=0 p50=1ms p99=2ms\n", `line 2: p99.9="": want a duration`},
		{capacity + "open-point server=proxy percent=half rate=50 sent=1 answered=1 held=0 p50=1ms p99=2ms p99.9=3ms\n", `line 2: percent="half": want a number`},
		{capacity + "open-point proxy\n", `line 2: field "proxy": want key=value`},
	} {
		if _, err := parse(strings.NewReader(tt.in)); err == nil || err.Error() != tt.want {
			t.Errorf("parse(%q) = %v, want %s", tt.in, err, tt.want)
		}
	}
}
