// Package cli holds the command-line rules that the gatehouse command
// (cmd/gatehouse) and the load tool (benchmarks/load) share, so that both read
// their flags alike.
//
//	fs := cli.FlagSet("load", stderr)
//	n := fs.Int("requests", 20000, "requests per run")
//	if err := cli.Parse(fs, args); err != nil { // flag.ErrHelp after -h
//		return err
//	}
package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// FlagSet returns an empty flag set named name that reports its errors and
// usage to stderr and returns them from Parse instead of exiting.
func FlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// Parse parses args with fs and refuses any argument left after the flags:
// the commands take flags only, and a word they would ignore is a mistake
// (a flag's value given without its flag, a misspelt -flag after a value).
// After -h or -help it returns flag.ErrHelp, which the caller treats as
// success.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}
