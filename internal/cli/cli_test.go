package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantN   int
		wantErr string // "" for none; flag.ErrHelp's text for -h
	}{
		{"no arguments", nil, 1, ""},
		{"a flag", []string{"-n", "7"}, 7, ""},
		{"a word after the flags", []string{"-n", "7", "extra"}, 7, "unexpected arguments: extra"},
		{"a value without its flag", []string{"7", "-n", "8"}, 1, "unexpected arguments: 7 -n 8"},
		{"help", []string{"-h"}, 1, flag.ErrHelp.Error()},
		{"an unknown flag", []string{"-m", "1"}, 1, "flag provided but not defined: -m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			fs := FlagSet("cmd", &stderr)
			n := fs.Int("n", 1, "a number")
			err := Parse(fs, tt.args)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr || *n != tt.wantN {
				t.Errorf("Parse(%q) = n %d, error %q; want n %d, error %q", tt.args, *n, got, tt.wantN, tt.wantErr)
			}
			if tt.wantErr == flag.ErrHelp.Error() && (!errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "Usage of cmd:")) {
				t.Errorf("-h: error %v, usage %q; want flag.ErrHelp and the usage on stderr", err, stderr.String())
			}
		})
	}
}

func ExampleParse() {
	fs := FlagSet("load", io.Discard)
	requests := fs.Int("requests", 20000, "requests per run")
	fmt.Println(Parse(fs, []string{"-requests", "500"}), *requests)
	fmt.Println(Parse(fs, []string{"-requests", "500", "now"}))
	// Output:
	// <nil> 500
	// unexpected arguments: now
}
